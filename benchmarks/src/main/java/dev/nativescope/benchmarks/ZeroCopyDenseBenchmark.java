package dev.nativescope.benchmarks;

import dev.nativescope.Context;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.reference.ReferencePredictors;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.io.IfExists;
import dev.nativescope.tensor.io.MappedFile;
import dev.nativescope.tensor.npy.Npy;
import dev.nativescope.tensor.Tensor;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Comparator;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

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
 * One inference end to end, from input files to an output file: the dense predictor over inputs
 * mapped from {@code .npy} files writing into a mapped {@code .npy} output (zero copy), against the
 * same predictor over inputs read into fresh native buffers and an output written back to the file
 * (what a copying bridge does). The shape is {@code rows x 64} times {@code 64 x 64}: little
 * arithmetic per byte, so the copies are a visible share of the work, as they are for the wide,
 * shallow layers of real models. Files are in the page cache: this compares work, not the disk.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class ZeroCopyDenseBenchmark {
    private static final int INNER = 64;
    private static final int COLS = 64;

    @Param({"4096", "262144"})
    public int rows;

    private Path dir;
    private Path xFile;
    private Path wFile;
    private Path yFile;
    private long xOffset;
    private long wOffset;

    @Setup(Level.Trial)
    public void writeInputs() throws IOException {
        NativeLibrary.load();
        dir = Files.createTempDirectory("nsc-zero-copy-bench");
        xFile = dir.resolve("x.npy");
        wFile = dir.resolve("w.npy");
        yFile = dir.resolve("y.npy");
        xOffset = NpyBenchFiles.write(xFile, (long) rows * INNER);
        wOffset = NpyBenchFiles.write(wFile, (long) INNER * COLS);
    }

    @TearDown(Level.Trial)
    public void deleteFiles() throws IOException {
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path path : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(path);
            }
        }
    }

    /** Map x and w, create and map y, run the predictor on the mappings. */
    @Benchmark
    public float mapped() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            Tensor x = Npy.map(xFile, MappedFile.Mode.READ_ONLY, arena).tensor();
            Tensor w = Npy.map(wFile, MappedFile.Mode.READ_ONLY, arena).tensor();
            Tensor y = Npy.create(yFile, DType.FLOAT32, new long[] {rows, COLS}, false, IfExists.REPLACE, arena);
            ReferencePredictors.dense(Context.background(), x.data(), w.data(), MemorySegment.NULL, y.data(),
                    rows, INNER, COLS, 1, null);
            return y.getFloat(rows - 1, COLS - 1);
        }
    }

    /** Read x and w into fresh buffers, run the predictor into a fresh buffer, write y to the file. */
    @Benchmark
    public float copied() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment x = read(xFile, xOffset, (long) rows * INNER * Float.BYTES, arena);
            MemorySegment w = read(wFile, wOffset, (long) INNER * COLS * Float.BYTES, arena);
            MemorySegment y = arena.allocate((long) rows * COLS * Float.BYTES, 64);
            ReferencePredictors.dense(Context.background(), x, w, MemorySegment.NULL, y, rows, INNER, COLS, 1, null);
            try (Arena header = Arena.ofConfined()) {
                Npy.create(yFile, DType.FLOAT32, new long[] {rows, COLS}, false, IfExists.REPLACE, header);
            }
            long yOffset = Npy.readHeader(yFile).dataOffset();
            try (FileChannel channel = FileChannel.open(yFile, StandardOpenOption.WRITE)) {
                write(channel, yOffset, y);
            }
            return y.getAtIndex(ValueLayout.JAVA_FLOAT, (long) rows * COLS - 1);
        }
    }

    private static MemorySegment read(Path file, long offset, long bytes, Arena arena) throws IOException {
        MemorySegment target = arena.allocate(bytes, 64);
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            var buffer = target.asByteBuffer();
            while (buffer.hasRemaining()) {
                if (channel.read(buffer, offset + buffer.position()) < 0) {
                    throw new IOException(file + " ended early");
                }
            }
        }
        return target;
    }

    private static void write(FileChannel channel, long offset, MemorySegment source) throws IOException {
        var buffer = source.asByteBuffer();
        while (buffer.hasRemaining()) {
            channel.write(buffer, offset + buffer.position());
        }
    }
}
