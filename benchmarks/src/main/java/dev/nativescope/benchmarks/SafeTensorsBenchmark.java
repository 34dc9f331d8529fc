package dev.nativescope.benchmarks;

import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.safetensors.SafeTensors;
import dev.nativescope.tensor.safetensors.SafeTensorsFile;
import dev.nativescope.tensor.TensorSpec;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SequencedMap;
import java.util.concurrent.TimeUnit;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Opening a 1 GiB safetensors file (one F32 tensor of 2^28 elements) and reading one element:
 * mapping it with {@link SafeTensors#map} (header parsed, nothing copied, one page touched)
 * versus the classic way, reading the whole tensor into a heap {@code float[]}. The file is
 * written once per trial, so both read from a warm page cache; neither measures the disk.
 * The file goes to {@code java.io.tmpdir} (override with {@code -Dnsc.bench.dir=DIR}).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Xmx3g", "--enable-native-access=ALL-UNNAMED"})
public class SafeTensorsBenchmark {
    private static final long ELEMENTS = 1L << 28; // 1 GiB of float32
    private static final long PROBE = ELEMENTS / 2 + 12_345;
    private static final int CHUNK = 16 << 20;

    private Path file;

    @Setup(Level.Trial)
    public void writeFile() throws IOException {
        Path dir = Path.of(System.getProperty("nsc.bench.dir", System.getProperty("java.io.tmpdir")));
        file = Files.createTempFile(dir, "nsc-bench-", ".safetensors");
        Files.delete(file);
        SequencedMap<String, TensorSpec> specs = new LinkedHashMap<>();
        specs.put("weight", TensorSpec.of(DType.FLOAT32, ELEMENTS));
        try (Arena arena = Arena.ofConfined()) {
            SafeTensorsFile created = SafeTensors.create(file, specs, Map.of(), arena);
            created.tensor("weight").data().fill((byte) 0x3f); // every float 0.7470588; no sparse holes
            created.tensor("weight").setDouble(1.5, PROBE);
            created.force();
        }
    }

    @TearDown(Level.Trial)
    public void deleteFile() throws IOException {
        Files.deleteIfExists(file);
    }

    /** Map the file (validating the header) and read one element. */
    @Benchmark
    public float mapAndReadOne() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            return SafeTensors.map(file, arena).tensor("weight").getFloat(PROBE);
        }
    }

    /** Read the header length, skip the header, read the whole tensor into a float[], read one element. */
    @Benchmark
    public float readIntoHeapArrayAndReadOne() throws IOException {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer lengthField = ByteBuffer.allocate(Long.BYTES).order(ByteOrder.LITTLE_ENDIAN);
            channel.read(lengthField, 0);
            long position = Long.BYTES + lengthField.getLong(0);
            float[] values = new float[(int) ELEMENTS];
            ByteBuffer chunk = ByteBuffer.allocateDirect(CHUNK).order(ByteOrder.LITTLE_ENDIAN);
            int filled = 0;
            while (filled < values.length) {
                chunk.clear().limit((int) Math.min(CHUNK, (values.length - filled) * 4L));
                while (chunk.hasRemaining()) {
                    int read = channel.read(chunk, position);
                    if (read < 0) {
                        throw new IOException(file + " ended early");
                    }
                    position += read;
                }
                FloatBuffer floats = chunk.flip().asFloatBuffer();
                int count = floats.remaining();
                floats.get(values, filled, count);
                filled += count;
            }
            return values[(int) PROBE];
        }
    }
}
