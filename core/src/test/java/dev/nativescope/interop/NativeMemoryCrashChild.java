package dev.nativescope.interop;

import dev.nativescope.Context;
import dev.nativescope.reference.ReferencePredictors;
import dev.nativescope.tensor.DLPack;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;
import dev.nativescope.tensor.io.MappedFile;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Child JVM of {@link NativeMemoryCrashTest}: runs one scenario that crashed the JVM (or silently
 * wrote read-only memory) before issue 13 and prints {@code outcome: <exception or OK>}. A crash
 * shows up as a non-zero exit code without that line.
 */
public final class NativeMemoryCrashChild {
    private static final int N = 64;

    private NativeMemoryCrashChild() {
    }

    public static void main(String[] args) throws Exception {
        String outcome;
        try {
            outcome = switch (args[0]) {
                case "dense.readOnlyMapping" -> denseIntoReadOnlyMapping(Path.of(args[1]));
                case "dense.asReadOnly" -> denseIntoAsReadOnly();
                case "dlpack.exportForWriting" -> exportForWriting();
                case "dense.confinedOtherThread" -> denseOverAnotherThreadsConfinedArena();
                default -> throw new IllegalArgumentException(args[0]);
            };
        } catch (Throwable e) {
            outcome = e.getClass().getSimpleName() + ": " + e.getMessage();
        }
        System.out.println("outcome: " + outcome);
        System.out.flush();
    }

    private static Tensor matrix(Arena arena) {
        return matrix(arena, N);
    }

    private static Tensor matrix(Arena arena, int n) {
        MemorySegment segment = arena.allocate((long) n * n * Float.BYTES, 64);
        return Tensor.of(segment, DType.FLOAT32, n, n);
    }

    private static String denseIntoReadOnlyMapping(Path dir) throws Exception {
        Path file = dir.resolve("y.bin");
        Files.write(file, new byte[N * N * Float.BYTES]);
        try (Arena arena = Arena.ofConfined()) {
            MappedFile mapped = MappedFile.map(file, MappedFile.Mode.READ_ONLY, arena);
            Tensor y = Tensor.of(mapped.segment(), DType.FLOAT32, N, N);
            Tensor x = matrix(arena);
            x.segment().fill((byte) 0x3f);
            ReferencePredictors.denseDLPack(Context.background(), x, matrix(arena), null, y, 1, null);
            return "OK (wrote a read-only mapping)";
        }
    }

    private static String denseIntoAsReadOnly() {
        try (Arena arena = Arena.ofConfined()) {
            Tensor x = matrix(arena);
            x.segment().fill((byte) 0x3f);
            Tensor w = matrix(arena);
            w.segment().fill((byte) 0x3f);
            MemorySegment out = arena.allocate((long) N * N * Float.BYTES, 64);
            Tensor y = Tensor.of(out.asReadOnly(), DType.FLOAT32, N, N);
            ReferencePredictors.denseDLPack(Context.background(), x, w, null, y, 1, null);
            return out.get(java.lang.foreign.ValueLayout.JAVA_FLOAT, 0) != 0 ? "OK (wrote through asReadOnly)" : "OK";
        }
    }

    private static String exportForWriting() {
        try (Arena arena = Arena.ofConfined()) {
            Tensor y = Tensor.of(arena.allocate(16).asReadOnly(), DType.FLOAT32, 4);
            DLPack.exportForWriting(y, arena);
            return "OK (exported read-only memory for writing)";
        }
    }

    /** T1 owns a confined arena and closes it while T2 runs denseDLPack over its tensors. */
    private static String denseOverAnotherThreadsConfinedArena() throws Exception {
        try (Arena warm = Arena.ofConfined()) {
            // Loads the library and links the calls first, so the close below lands during the run.
            ReferencePredictors.denseDLPack(Context.background(), matrix(warm), matrix(warm), null, matrix(warm), 1, null);
        }
        AtomicReference<Tensor[]> tensors = new AtomicReference<>();
        CountDownLatch made = new CountDownLatch(1);
        CountDownLatch tryClose = new CountDownLatch(1);
        AtomicReference<String> closeOutcome = new AtomicReference<>("not tried");
        Thread owner = Thread.ofPlatform().start(() -> {
            Arena arena = Arena.ofConfined();
            // y is 64 MiB, above glibc's largest mmap threshold: freeing it unmaps its pages.
            int n = 4096;
            tensors.set(new Tensor[] {
                    Tensor.of(arena.allocate((long) n * Float.BYTES, 64), DType.FLOAT32, n, 1),
                    Tensor.of(arena.allocate((long) n * Float.BYTES, 64), DType.FLOAT32, 1, n),
                    Tensor.of(arena.allocate((long) n * n * Float.BYTES, 64), DType.FLOAT32, n, n)});
            made.countDown();
            try {
                tryClose.await();
                arena.close();
                closeOutcome.set("closed");
            } catch (Throwable e) {
                closeOutcome.set(e.toString());
            }
        });
        made.await();
        Tensor[] t = tensors.get();
        Thread closer = Thread.ofPlatform().start(() -> {
            try {
                Thread.sleep(500);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            tryClose.countDown();
        });
        try {
            ReferencePredictors.denseDLPack(Context.background().withTimeout(java.time.Duration.ofSeconds(5)), t[0], t[1],
                    null, t[2], 1_000, null);
            return "OK (native code ran over another thread's confined arena; close: " + closeOutcome.get() + ")";
        } finally {
            tryClose.countDown();
            closer.join();
            owner.join(TimeUnit.SECONDS.toMillis(30));
            System.out.println("close: " + closeOutcome.get());
        }
    }
}
