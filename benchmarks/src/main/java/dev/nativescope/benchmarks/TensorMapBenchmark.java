package dev.nativescope.benchmarks;

import dev.nativescope.tensor.io.MappedFile;
import dev.nativescope.tensor.npy.Npy;
import dev.nativescope.tensor.npy.NpyFile;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.TimeUnit;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Opening a float32 {@code .npy} file and reading its last element: mapping it in place
 * ({@link Npy#map}, then closing the arena, which unmaps) against copying the data into a heap
 * {@code float[]} or into off-heap memory with {@link FileChannel#read}. Mapping should be O(1):
 * the same few microseconds at 1 MiB and 1 GiB; copying is O(size). The files are written once per
 * trial and stay in the page cache, so the copies measure memory bandwidth, not the disk.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx3g"})
public class TensorMapBenchmark {
    private static final int CHUNK = 8 << 20;

    @Param({"1", "64", "1024"})
    public int sizeMiB;

    private Path dir;
    private Path file;
    private long elements;
    private long dataOffset;

    @Setup(Level.Trial)
    public void writeFile() throws IOException {
        dir = Files.createTempDirectory(Path.of(System.getProperty("nsc.bench.dir", System.getProperty("java.io.tmpdir"))),
                "tensor-bench");
        file = dir.resolve("data-" + sizeMiB + "m.npy");
        elements = (long) sizeMiB << 18; // MiB / 4 bytes
        dataOffset = NpyBenchFiles.write(file, elements);
    }

    @TearDown(Level.Trial)
    public void deleteFile() throws IOException {
        Files.deleteIfExists(file);
        Files.deleteIfExists(dir);
    }

    /** Npy.map: read and validate the header, mmap the data, read the last element, munmap. */
    @Benchmark
    public float mapNpy() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            NpyFile npy = Npy.map(file, MappedFile.Mode.READ_ONLY, arena);
            return npy.tensor().getFloat(elements - 1);
        }
    }

    /** Read the data into a heap float[] (8 MiB chunks through a direct buffer), then read the last element. */
    @Benchmark
    public float readIntoHeapArray() throws IOException {
        float[] values = new float[Math.toIntExact(elements)];
        MemorySegment target = MemorySegment.ofArray(values);
        ByteBuffer chunk = ByteBuffer.allocateDirect(CHUNK);
        MemorySegment chunkSegment = MemorySegment.ofBuffer(chunk);
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            long bytes = elements * Float.BYTES;
            for (long done = 0; done < bytes; ) {
                chunk.clear().limit((int) Math.min(CHUNK, bytes - done));
                int read = channel.read(chunk, dataOffset + done);
                MemorySegment.copy(chunkSegment, 0, target, done, read);
                done += read;
            }
        }
        return values[values.length - 1];
    }

    /** Read the data into off-heap memory (a direct buffer over an arena's segment), then read the last element. */
    @Benchmark
    public float readIntoDirectBuffer() throws IOException {
        try (Arena arena = Arena.ofConfined(); FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            long bytes = elements * Float.BYTES;
            MemorySegment target = arena.allocate(bytes, 64);
            ByteBuffer buffer = target.asByteBuffer();
            while (buffer.hasRemaining()) {
                channel.read(buffer, dataOffset + buffer.position());
            }
            return target.get(ValueLayout.JAVA_FLOAT_UNALIGNED, bytes - Float.BYTES);
        }
    }
}
