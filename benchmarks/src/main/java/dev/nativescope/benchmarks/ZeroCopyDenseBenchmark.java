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
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
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
 * same predictor over inputs read into fresh native buffers and an output written to the file with
 * {@code write(2)} (what a copying bridge does). The shape is {@code rows x 64} times {@code 64 x 64}:
 * little arithmetic per byte, so the copies are a visible share of the work, as they are for the wide,
 * shallow layers of real models. Files are in the page cache: this compares work, not the disk.
 *
 * <p>The weights {@code w} are the model: loaded once per trial by both paths (mapped, or read into a
 * buffer), as no user maps or reads a model per inference; the input {@code x} and the output
 * {@code y} are per inference. Both paths make their output file the way their kind of user would: {@code mapped} with
 * {@link Npy#create} (storage reserved with {@code posix_fallocate}, then mapped), {@code copied}
 * by writing the header and the data into a new file ({@code open(O_CREAT|O_EXCL)}, two writes: no
 * reservation, no mapping). {@code output} says which file: {@code fresh} (the default), a new file
 * per inference, as a server writing one result per request does, the previous one deleted between
 * invocations (outside the timing, for both paths alike: deleting results is not part of an
 * inference); {@code replace}, the same file atomically replaced per inference ({@link IfExists#REPLACE};
 * the copied path writes a temporary file and renames it over, as atomic replacement needs). On ext4
 * replacing a file frees the blocks of the one replaced, a journalled step that costs 0.1-2.5 ms
 * per rename under load and is the same for both paths: at small sizes it is most of the time of
 * both, see BENCHMARKS.md section 6.
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

    /** {@code fresh}: a new output file per inference; {@code replace}: one file replaced per inference. */
    @Param({"fresh"})
    public String output;

    /** The directory of the files; empty for {@code java.io.tmpdir}. */
    @Param({""})
    public String directory;

    private Path dir;
    private Path xFile;
    private Path wFile;
    /** The outputs of the next invocation: of the mapped path and of the copied path. */
    private Path yMapped;
    private Path yCopied;
    private long xOffset;
    /** Owns the weights of both paths for the trial (shared: JMH may set up on another thread). */
    private Arena model;
    private MemorySegment wMapped;
    private MemorySegment wCopied;
    private byte[] yHeader;
    private boolean replace;
    private long invocations;
    private final AlternatedPairs pairs = new AlternatedPairs();
    private float sink;

    @Setup(Level.Trial)
    public void writeInputs() throws IOException {
        NativeLibrary.load();
        replace = switch (output) {
            case "fresh" -> false;
            case "replace" -> true;
            default -> throw new IllegalArgumentException("output must be fresh or replace, not " + output);
        };
        dir = directory.isEmpty() ? Files.createTempDirectory("nsc-zero-copy-bench")
                : Files.createTempDirectory(Path.of(directory), "nsc-zero-copy-bench");
        xFile = dir.resolve("x.npy");
        wFile = dir.resolve("w.npy");
        xOffset = NpyBenchFiles.write(xFile, (long) rows * INNER);
        long wOffset = NpyBenchFiles.write(wFile, (long) INNER * COLS);
        model = Arena.ofShared();
        wMapped = Npy.map(wFile, MappedFile.Mode.READ_ONLY, model).tensor().data();
        wCopied = read(wFile, wOffset, (long) INNER * COLS * Float.BYTES, model);
        // The header a copying writer writes (the library's encoder is not public): NumPy's, as Npy writes it.
        Path probe = dir.resolve("header.npy");
        try (Arena arena = Arena.ofConfined()) {
            Npy.create(probe, DType.FLOAT32, new long[] {rows, COLS}, false, IfExists.FAIL, arena, MappedFile.Option.SPARSE);
        }
        long dataOffset = Npy.readHeader(probe).dataOffset();
        try (FileChannel channel = FileChannel.open(probe, StandardOpenOption.READ)) {
            ByteBuffer header = ByteBuffer.allocate((int) dataOffset);
            while (header.hasRemaining() && channel.read(header) >= 0) {
                // reads the whole header
            }
            yHeader = header.array();
        }
        Files.delete(probe);
    }

    /** The outputs of the next inferences: new names per invocation, or the ones replaced. */
    @Setup(Level.Invocation)
    public void nameOutputs() {
        String suffix = replace ? ".npy" : "-" + invocations++ + ".npy";
        yMapped = dir.resolve("y-mapped" + suffix);
        yCopied = dir.resolve("y-copied" + suffix);
    }

    /** A fresh output is a result kept elsewhere: deleted here, outside the timing, for both paths. */
    @TearDown(Level.Invocation)
    public void deleteFreshOutputs() throws IOException {
        if (!replace) {
            Files.deleteIfExists(yMapped);
            Files.deleteIfExists(yCopied);
        }
    }

    @Setup(Level.Iteration)
    public void resetSamples() {
        pairs.reset();
    }

    /** After an iteration of {@link #alternated}: p50 of each path and copied/mapped, from the same invocations. */
    @TearDown(Level.Iteration)
    public void reportSamples() {
        pairs.report("ZeroCopy", "rows " + rows + ", " + output + " output", "mapped", "copied");
    }

    @TearDown(Level.Trial)
    public void deleteFiles() throws IOException {
        model.close();
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path path : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(path);
            }
        }
    }

    /** Map x, create and map y, run the predictor on the mappings (and the mapped weights). */
    @Benchmark
    public float mapped() throws IOException {
        return mapped(yMapped);
    }

    /** Read x into a fresh buffer, run the predictor (on the weights read) into a fresh buffer, write y into a new file. */
    @Benchmark
    public float copied() throws IOException {
        return copied(yCopied);
    }

    /**
     * Both paths in each invocation, in alternating order, each timed: the two are compared under the
     * same load (a shared machine's load changes within seconds); p50s printed per iteration as
     * {@code [ZeroCopy] ...} lines.
     */
    @Benchmark
    public float alternated() throws IOException {
        pairs.time(() -> sink += mapped(yMapped), () -> sink += copied(yCopied));
        return sink;
    }

    private float mapped(Path yFile) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            Tensor x = Npy.map(xFile, MappedFile.Mode.READ_ONLY, arena).tensor();
            Tensor y = Npy.create(yFile, DType.FLOAT32, new long[] {rows, COLS}, false,
                    replace ? IfExists.REPLACE : IfExists.FAIL, arena);
            ReferencePredictors.dense(Context.background(), x.data(), wMapped, MemorySegment.NULL, y.data(),
                    rows, INNER, COLS, 1, null);
            return y.getFloat(rows - 1, COLS - 1);
        }
    }

    private float copied(Path yFile) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment x = read(xFile, xOffset, (long) rows * INNER * Float.BYTES, arena);
            MemorySegment y = arena.allocate((long) rows * COLS * Float.BYTES, 64);
            ReferencePredictors.dense(Context.background(), x, wCopied, MemorySegment.NULL, y, rows, INNER, COLS, 1, null);
            Path target = replace ? Files.createTempFile(dir, ".y.npy", ".partial") : yFile;
            try (FileChannel channel = FileChannel.open(target, StandardOpenOption.WRITE,
                    replace ? StandardOpenOption.TRUNCATE_EXISTING : StandardOpenOption.CREATE_NEW)) {
                write(channel, 0, MemorySegment.ofArray(yHeader));
                write(channel, yHeader.length, y);
            }
            if (replace) {
                Files.move(target, yFile, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
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
