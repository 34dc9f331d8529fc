package dev.nativescope.benchmarks;

import dev.nativescope.tensor.io.MappedFile;
import dev.nativescope.tensor.npy.Npy;
import dev.nativescope.tensor.npy.NpyFile;
import dev.nativescope.testing.ProcSelf;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * Memory cost of mapping a large {@code .npy} file: RSS (VmRSS, RssAnon, RssFile from
 * /proc/self/status) and used heap before mapping, after mapping, and after touching one element,
 * and the same for a copy into a heap {@code float[]} for contrast. Run:
 * {@code java -Xmx3g -cp benchmarks/target/nativescope-benchmarks.jar dev.nativescope.benchmarks.TensorMapMemoryProbe [MiB]}
 */
public final class TensorMapMemoryProbe {
    private TensorMapMemoryProbe() {
    }

    public static void main(String[] args) throws Exception {
        int mib = args.length > 0 ? Integer.parseInt(args[0]) : 1024;
        Path dir = Files.createTempDirectory("tensor-memory");
        Path file = dir.resolve("data.npy");
        long elements = (long) mib << 18;
        try {
            NpyBenchFiles.write(file, elements);
            System.out.printf(Locale.ROOT, "%-44s %10s %10s %10s %10s%n", "step (" + mib + " MiB float32 .npy)",
                    "VmRSS KiB", "RssAnon", "RssFile", "heap KiB");
            report("before");
            try (Arena arena = Arena.ofConfined()) {
                NpyFile npy = Npy.map(file, MappedFile.Mode.READ_ONLY, arena);
                report("after Npy.map");
                float last = npy.tensor().getFloat(elements - 1);
                report("after reading one element (" + last + ")");
            }
            report("after closing the arena (unmap)");
            float[] copy = new float[Math.toIntExact(elements)];
            try (Arena arena = Arena.ofConfined()) {
                Npy.map(file, MappedFile.Mode.READ_ONLY, arena).tensor().data()
                        .asByteBuffer().order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(copy);
            }
            report("after copying into a heap float[] (" + copy[copy.length - 1] + ")");
        } finally {
            Files.deleteIfExists(file);
            Files.deleteIfExists(dir);
        }
    }

    private static void report(String step) throws IOException {
        System.gc();
        ProcSelf.Status status = ProcSelf.status();
        Runtime runtime = Runtime.getRuntime();
        long heap = runtime.totalMemory() - runtime.freeMemory();
        System.out.printf(Locale.ROOT, "%-44s %10d %10d %10d %10d%n", step, kib(status, "VmRSS"),
                kib(status, "RssAnon"), kib(status, "RssFile"), heap / 1024);
    }

    private static long kib(ProcSelf.Status status, String key) {
        return status.kib(key).orElse(-1L);
    }
}
