package com.example.consumer;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.ContextKey;
import dev.nativescope.DeadlineExceededException;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.call.NativeCall;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.library.UserLibrary;
import dev.nativescope.tensor.DLPack;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;
import dev.nativescope.tensor.io.MappedFile;
import dev.nativescope.tensor.npy.Npy;
import dev.nativescope.tensor.npy.NpyFile;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CancellationException;
import java.util.concurrent.atomic.AtomicReference;

/**
 * What a user's program does with nativescope, checked step by step; any failure exits non-zero, which fails the
 * consumer build (and so ./run test).
 */
public final class Main {
    private static final long N = 4096;
    private static final long FOREVER = Long.MAX_VALUE / 2;

    private Main() {
    }

    public static void main(String[] args) throws Throwable {
        String where = Main.class.getModule().isNamed() ? "module path" : "class path";
        // 0. A function of nativescope's bindings as the very first native call, with no NativeLibrary.load(): the
        //    bindings' load hook loads the shim from the native-shim jar (it used to fail with UnsatisfiedLinkError).
        long clock = nativescope_h.nsc_monotonic_ns();
        check(clock > 0, "nsc_monotonic_ns() called first reads the clock");
        System.out.println("[" + where + "] a binding called first loaded the shim from " + NativeLibrary.path());

        // 1. The shim from the native-shim jar, then the user's own library from this jar, through the helper.
        Path userLibrary = UserLibrary.load(Main.class, "META-INF/native/linux-x86_64/libconsumer.so");
        check(!Files.exists(userLibrary), "the extracted libconsumer.so is deleted once loaded");
        System.out.println("[" + where + "] shim ABI " + NativeLibrary.abiVersion() + ", libconsumer.so loaded");

        Path dir = Files.createTempDirectory("nativescope-consumer");
        Path npy = dir.resolve("x.npy");
        try (Arena arena = Arena.ofShared()) { // shared: the interrupted call runs in another thread
            // 2. A .npy file written in place, then mapped read-only: Npy.map returns an NpyFile.
            Tensor written = Npy.create(npy, DType.FLOAT32, new long[] {N}, false, arena);
            for (long i = 0; i < N; i++) {
                written.segment().setAtIndex(ValueLayout.JAVA_FLOAT, i, 1.0f);
            }
            NpyFile file = Npy.map(npy, MappedFile.Mode.READ_ONLY, arena);
            MemorySegment dl = DLPack.export(file.tensor(), arena);
            MemorySegment out = arena.allocate(ValueLayout.JAVA_FLOAT);

            // 3. A cancellable call over the mapped tensor, with a request value that native code reads.
            ContextKey<String> traceId = ContextKey.ofString("trace-id");
            Context request = Context.background().withValue(traceId, "req-42");
            NativeCall.invoke(request, ctx -> consumer_h.consumer_sum(ctx, dl, out, 3));
            check(out.get(ValueLayout.JAVA_FLOAT, 0) == N, "sum over the mapped .npy is " + N);
            MemorySegment key = arena.allocateFrom("trace-id");
            MemorySegment buf = arena.allocate(64);
            NativeCall.invoke(request, ctx -> consumer_h.consumer_value(ctx, key, buf, buf.byteSize()));
            check(buf.getString(0).equals("req-42"), "native code read the request value req-42");
            System.out.println("[" + where + "] sum " + out.get(ValueLayout.JAVA_FLOAT, 0) + ", trace-id "
                    + buf.getString(0));

            // 4. Stopped by a deadline.
            long start = System.nanoTime();
            try (CancellableContext deadline = Context.background().withTimeout(Duration.ofMillis(50))) {
                NativeCall.invoke(deadline, ctx -> consumer_h.consumer_sum(ctx, dl, out, FOREVER));
                throw new AssertionError("the call outlived its deadline");
            } catch (DeadlineExceededException expected) {
                System.out.println("[" + where + "] deadline stopped the call after "
                        + (System.nanoTime() - start) / 1_000_000 + " ms");
            }

            // 5. Stopped by an interrupt of the calling thread.
            AtomicReference<Throwable> outcome = new AtomicReference<>();
            Thread worker = Thread.ofPlatform().start(() -> {
                try {
                    NativeCall.invoke(Context.background(), ctx -> consumer_h.consumer_sum(ctx, dl, out, FOREVER));
                } catch (Throwable t) {
                    outcome.set(t);
                }
            });
            Thread.sleep(50);
            worker.interrupt();
            worker.join(Duration.ofSeconds(10));
            check(!worker.isAlive(), "the interrupted call returned");
            check(outcome.get() instanceof CancellationException, "an interrupt is a CancellationException, got "
                    + outcome.get());
            System.out.println("[" + where + "] interrupt stopped the call: " + outcome.get().getClass().getSimpleName());
        } finally {
            Files.deleteIfExists(npy);
            Files.deleteIfExists(dir);
        }
        System.out.println("[" + where + "] CONSUMER OK");
    }

    private static void check(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError("consumer check failed: " + what);
        }
    }
}
