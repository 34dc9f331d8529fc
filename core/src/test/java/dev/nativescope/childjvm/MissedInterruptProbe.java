package dev.nativescope.childjvm;

import dev.nativescope.Context;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.bindings.nsc_predict_stats;
import dev.nativescope.call.NativeCall;
import dev.nativescope.library.NativeLibrary;

import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Main class run in a child JVM by {@code NativeCallNestedInterruptTest} (the missed-interrupt
 * WARNING is logged once per process, so it needs a fresh one): a Downcall reads an interruptible
 * NIO channel, then spins in native code for 300 ms; another thread interrupts it meanwhile. Prints
 * {@code outcome=<exception or status> interrupted=<status after>}; the WARNING goes to stderr.
 */
public final class MissedInterruptProbe {
    private MissedInterruptProbe() {
    }

    public static void main(String[] args) throws Exception {
        NativeLibrary.load();
        Path file = Files.createTempFile("nsc-missed", ".bin");
        try {
            Files.write(file, new byte[16]);
            CountDownLatch spinning = new CountDownLatch(1);
            AtomicReference<String> outcome = new AtomicReference<>();
            Thread caller = Thread.ofPlatform().start(() -> {
                try {
                    int status = NativeCall.invoke(Context.background(), ctx -> {
                        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
                            channel.read(ByteBuffer.allocate(16)); // begin()/end(): the thread's blocker is now null
                        }
                        spinning.countDown();
                        try (Arena arena = Arena.ofConfined()) {
                            return nativescope_h.nsc_predict_spin(ctx, TimeUnit.MILLISECONDS.toNanos(300),
                                    nsc_predict_stats.allocate(arena));
                        }
                    });
                    outcome.set("status " + status);
                } catch (Throwable e) {
                    outcome.set(e + " caused by " + e.getCause());
                }
                outcome.set(outcome.get() + " interrupted=" + Thread.interrupted());
            });
            spinning.await();
            Thread.sleep(20);
            caller.interrupt();
            caller.join();
            System.out.println("outcome=" + outcome.get());
        } finally {
            Files.deleteIfExists(file);
        }
    }
}
