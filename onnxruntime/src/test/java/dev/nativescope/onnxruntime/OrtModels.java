package dev.nativescope.onnxruntime;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.nativescope.Context;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The test models, written at test time by {@code make_models.py} with Debian's python3-onnx
 * ({@code /usr/bin/python3}, or {@code -Dnsc.test.python=...}), and what the tests need around
 * them: tensors and the time one node of the chain model takes (the MLP's weights and its Java
 * reference are {@link ReferenceMlp}). Public for the examples module, which uses this test jar.
 */
public final class OrtModels {
    static final int MLP_BATCH = ReferenceMlp.BATCH;
    static final int MLP_IN = ReferenceMlp.IN;
    static final int MLP_OUT = ReferenceMlp.OUT;

    private OrtModels() {
    }

    /** Writes the MLP: y = Relu(x W1 + b1) W2 + b2, x float32[4, 8], y float32[4, 3]. */
    public static Path mlp(Path dir) throws IOException, InterruptedException {
        Path model = dir.resolve("mlp.onnx");
        generate("mlp", model.toString());
        return model;
    }

    /** Writes a chain of {@code nodes} MatMul nodes by a size x size identity: y = x, x float32[rows, size]. */
    public static Path chain(Path dir, int nodes, int size) throws IOException, InterruptedException {
        Path model = dir.resolve("chain-" + nodes + "x" + size + ".onnx");
        generate("chain", model.toString(), Integer.toString(nodes), Integer.toString(size));
        return model;
    }

    /** Writes one of the models without parameters of make_models.py: ints, types, nonzero, slice. */
    public static Path model(Path dir, String kind) throws IOException, InterruptedException {
        Path model = dir.resolve(kind + ".onnx");
        generate(kind, model.toString());
        return model;
    }

    /** Writes the single-operator models of make_models.py's OPS into {@code dir}; returns them by operator. */
    public static Map<String, Path> ops(Path dir) throws IOException, InterruptedException {
        generate("ops", dir.toString());
        Map<String, Path> models = new java.util.TreeMap<>();
        try (var files = Files.list(dir)) {
            files.filter(file -> file.getFileName().toString().startsWith("op-")).forEach(file -> {
                String name = file.getFileName().toString();
                models.put(name.substring(3, name.length() - ".onnx".length()), file);
            });
        }
        return models;
    }

    private static void generate(String... args) throws IOException, InterruptedException {
        Path script = Files.createTempFile("make_models", ".py");
        try {
            try (InputStream source = OrtModels.class.getResourceAsStream("make_models.py")) {
                assertThat(source).as("make_models.py on the test class path").isNotNull();
                Files.copy(source, script, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            }
            List<String> command = new ArrayList<>(List.of(System.getProperty("nsc.test.python", "/usr/bin/python3"),
                    script.toString()));
            command.addAll(List.of(args));
            Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
            String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(process.waitFor(60, TimeUnit.SECONDS)).as("make_models.py finished").isTrue();
            assertThat(process.exitValue())
                    .as("make_models.py %s failed (install Debian's python3-onnx: apt-get install python3-onnx):%n%s",
                            String.join(" ", args), output)
                    .isZero();
        } finally {
            Files.deleteIfExists(script);
        }
    }

    /** Session options for a shared, loaded 2-core machine: one intra-op thread, runs in sequence. */
    public static OrtSession.SessionOptions singleThreaded() throws OrtException {
        OrtSession.SessionOptions options = new OrtSession.SessionOptions();
        options.setIntraOpNumThreads(1);
        options.setInterOpNumThreads(1);
        return options;
    }

    public static OrtPredictor open(Path model) throws OrtException {
        try (OrtSession.SessionOptions options = singleThreaded()) {
            return OrtPredictor.open(model, options);
        }
    }

    public static float[] randomFloats(Random random, int count) {
        float[] values = new float[count];
        for (int i = 0; i < count; i++) {
            values[i] = random.nextFloat() * 2 - 1;
        }
        return values;
    }

    /** A float32 tensor in {@code arena} holding {@code values}. */
    public static Tensor tensor(Arena arena, float[] values, long... shape) {
        var segment = arena.allocate(ValueLayout.JAVA_FLOAT, values.length);
        segment.copyFrom(java.lang.foreign.MemorySegment.ofArray(values));
        return Tensor.of(segment, DType.FLOAT32, shape);
    }

    /** A float32 tensor in {@code arena} filled with NaN, so that anything ORT writes shows. */
    public static Tensor nanTensor(Arena arena, long... shape) {
        long count = 1;
        for (long dim : shape) {
            count *= dim;
        }
        var segment = arena.allocate(ValueLayout.JAVA_FLOAT, count);
        for (long i = 0; i < count; i++) {
            segment.setAtIndex(ValueLayout.JAVA_FLOAT, i, Float.NaN);
        }
        return Tensor.of(segment, DType.FLOAT32, shape);
    }

    /**
     * A chain sized from the measured time of one node to run for at least a given time when
     * nothing stops it (at most 20,000 nodes, which caps how long ORT takes to load it).
     *
     * @param model the written model file
     * @param nodeNanos the measured time of one node
     * @param nodes the chain's length
     */
    public record LongChain(Path model, long nodeNanos, int nodes) {
        /** How fast a stop must land: max(1 s, 50 nodes); generous for a loaded 2-core machine. */
        public Duration promptly() {
            return Duration.ofNanos(Math.max(Duration.ofSeconds(1).toNanos(), 50 * nodeNanos));
        }

        /** {@return how long the chain runs uncancelled, at the least (from the fastest node time)} */
        public Duration uncancelled() {
            return Duration.ofNanos(nodes * nodeNanos);
        }
    }

    /** Writes a chain of size x size MatMul nodes that runs for about {@code uncancelled} when nothing stops it. */
    public static LongChain longChain(Path dir, int size, Duration uncancelled) throws Exception {
        long nodeNanos = nodeNanos(dir, size, size);
        int nodes = (int) Math.min(20_000, Math.max(200, uncancelled.toNanos() / nodeNanos));
        LongChain chain = new LongChain(chain(dir, nodes, size), nodeNanos, nodes);
        System.out.printf("one %dx%d MatMul node: %.3f ms; long chain: %d nodes (>= %.1f s uncancelled); promptly: %d ms%n",
                size, size, nodeNanos / 1e6, nodes, chain.uncancelled().toNanos() / 1e9, chain.promptly().toMillis());
        return chain;
    }

    /**
     * Measures one node of a chain of the given row count and size: the fastest of a few runs of a
     * short chain, divided by its node count. The fastest, so that a busy moment during the
     * measurement makes the long chain longer, never shorter; bounds derived from it are generous
     * multiples with a floor.
     */
    public static long nodeNanos(Path dir, int rows, int size) throws Exception {
        final int nodes = 16;
        Path model = chain(dir, nodes, size);
        long fastest = Long.MAX_VALUE;
        try (OrtPredictor predictor = open(model); Arena arena = Arena.ofConfined()) {
            Tensor x = tensor(arena, randomFloats(new Random(1), rows * size), rows, size);
            Tensor y = nanTensor(arena, rows, size);
            for (int attempt = 0; attempt < 4; attempt++) {
                long start = System.nanoTime();
                predictor.run(Context.background(), Map.of("x", x), Map.of("y", y));
                fastest = Math.min(fastest, System.nanoTime() - start);
            }
        }
        return Math.max(1, fastest / nodes);
    }
}
