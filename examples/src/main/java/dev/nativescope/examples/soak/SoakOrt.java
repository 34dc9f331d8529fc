package dev.nativescope.examples.soak;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.nativescope.Context;
import dev.nativescope.onnxruntime.OrtPredictor;
import dev.nativescope.onnxruntime.ReferenceMlp;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/**
 * The soak's ONNX Runtime side: the models (written at start by the onnxruntime module's
 * {@code make_models.py} with Debian's python3-onnx), two predictors shared by all workers, and the
 * runs the soak's operations make on them.
 *
 * <ul>
 *   <li>The MLP ({@code y = Relu(x W1 + b1) W2 + b2}, x float32[4, 8]) for runs that complete:
 *       each output is checked against the same function computed here in Java.</li>
 *   <li>A long chain of {@value #CHAIN_SIZE}x{@value #CHAIN_SIZE} identity MatMul nodes for runs
 *       that are stopped: sized from the measured time of one node to run for seconds, far longer
 *       than any trigger delay, so that a run that completes is a lost cancel. ORT checks its
 *       terminate flag between nodes, so a stop lands within about one node.</li>
 *   <li>A shorter chain that each close-churn operation opens as its own session and closes
 *       during a run.</li>
 * </ul>
 *
 * <p>Both shared predictors take runs from several threads at once ({@link OrtPredictor}'s
 * threading contract), so the workers and scope forks share them.
 */
final class SoakOrt implements AutoCloseable {
    static final int MLP_BATCH = ReferenceMlp.BATCH;
    static final int MLP_IN = ReferenceMlp.IN;
    static final int MLP_OUT = ReferenceMlp.OUT;
    /** Chain node size: ~0.1 ms per node on the reference 2-vCPU VM, so a stop lands in well under 1 ms. */
    static final int CHAIN_SIZE = 256;
    /**
     * Rows of the churn chain's input: 4x the long chain's, so each node costs ~4x as much and a
     * chain of a few hundred nodes runs long enough; loading costs per node (~20-50 us each), and
     * each churn operation loads its chain anew.
     */
    static final int CHURN_ROWS = 4 * CHAIN_SIZE;
    /** ORT loads ~16 nodes per ms; more than this makes the start slow for no gain. */
    private static final int MAX_CHAIN_NODES = 20_000;

    private static final String SCRIPT_PROPERTY = "nsc.ort.makeModels";
    private static final String DEFAULT_SCRIPT = "onnxruntime/src/test/resources/dev/nativescope/onnxruntime/make_models.py";
    private static final String PYTHON_PROPERTY = "nsc.ort.python";

    private final Path mlpModel;
    private final Path churnChainModel;
    final OrtPredictor mlp;
    final OrtPredictor longChain;
    /** The time of one node at {@value #CHAIN_SIZE} rows (the long chain's runs). */
    final long nodeNanos;
    /** The time of one node at {@value #CHURN_ROWS} rows (the churn chain's runs). */
    final long churnNodeNanos;
    final int longChainNodes;
    final int churnChainNodes;
    private final Arena shared = Arena.ofShared();
    /**
     * The chains' inputs, read by concurrent runs from a shared arena (so every run also takes a
     * SegmentHold); their contents do not matter, since these runs are all stopped.
     */
    private final Tensor longChainInput;
    private final Tensor churnChainInput;

    private SoakOrt(Path mlpModel, Path churnChainModel, OrtPredictor mlp, OrtPredictor longChain, long nodeNanos,
                    long churnNodeNanos, int longChainNodes, int churnChainNodes) {
        this.mlpModel = mlpModel;
        this.churnChainModel = churnChainModel;
        this.mlp = mlp;
        this.longChain = longChain;
        this.nodeNanos = nodeNanos;
        this.churnNodeNanos = churnNodeNanos;
        this.longChainNodes = longChainNodes;
        this.churnChainNodes = churnChainNodes;
        MemorySegment x = shared.allocate(ValueLayout.JAVA_FLOAT, (long) CHURN_ROWS * CHAIN_SIZE);
        for (long i = 0; i < x.byteSize() / Float.BYTES; i++) {
            x.setAtIndex(ValueLayout.JAVA_FLOAT, i, (i % 17) / 17.0f);
        }
        churnChainInput = Tensor.of(x, DType.FLOAT32, CHURN_ROWS, CHAIN_SIZE);
        longChainInput = Tensor.of(x.asSlice(0, (long) CHAIN_SIZE * CHAIN_SIZE * Float.BYTES), DType.FLOAT32,
                CHAIN_SIZE, CHAIN_SIZE);
    }

    /** Raised when the models cannot be written; its message says what to install. */
    static final class SetupException extends Exception {
        SetupException(String message) {
            super(message);
        }
    }

    /**
     * Writes the models into {@code dir}, measures one chain node and opens the shared predictors.
     *
     * @param longRunNanos how long the long chain must run uncancelled, at the least
     * @param churnRunNanos the same for the chain each churn operation opens
     */
    static SoakOrt open(Path dir, long longRunNanos, long churnRunNanos) throws Exception {
        Path mlpModel = generate(dir.resolve("mlp.onnx"), "mlp");
        Path shortChain = generate(dir.resolve("chain-16.onnx"), "chain", "16", Integer.toString(CHAIN_SIZE));
        long nodeNanos = measureNodeNanos(shortChain, CHAIN_SIZE);
        long churnNodeNanos = measureNodeNanos(shortChain, CHURN_ROWS);
        int longNodes = nodesFor(longRunNanos, nodeNanos);
        int churnNodes = nodesFor(churnRunNanos, churnNodeNanos);
        Path longModel = generate(dir.resolve("chain-long.onnx"), "chain", Integer.toString(longNodes),
                Integer.toString(CHAIN_SIZE));
        Path churnModel = generate(dir.resolve("chain-churn.onnx"), "chain", Integer.toString(churnNodes),
                Integer.toString(CHAIN_SIZE));
        OrtPredictor mlp = openSingleThreaded(mlpModel);
        try {
            return new SoakOrt(mlpModel, churnModel, mlp, openSingleThreaded(longModel), nodeNanos, churnNodeNanos,
                    longNodes, churnNodes);
        } catch (Throwable e) {
            mlp.close();
            throw e;
        }
    }

    private static int nodesFor(long runNanos, long nodeNanos) {
        return (int) Math.min(MAX_CHAIN_NODES, Math.max(200, runNanos / nodeNanos));
    }

    /** {@return how long the long chain runs uncancelled, at the least (from the fastest node)} */
    long longChainNanos() {
        return longChainNodes * nodeNanos;
    }

    long churnChainNanos() {
        return churnChainNodes * churnNodeNanos;
    }

    /**
     * One intra-op and one inter-op thread: the soak's workers already keep both cores busy, and
     * ORT's own pools would only add threads that make the thread column noisy.
     */
    static OrtPredictor openSingleThreaded(Path model) throws OrtException {
        try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
            options.setIntraOpNumThreads(1);
            options.setInterOpNumThreads(1);
            return OrtPredictor.open(model, options);
        }
    }

    /** Opens a new session on the churn chain; the caller closes it. */
    OrtPredictor openChurnChain() throws OrtException {
        return openSingleThreaded(churnChainModel);
    }

    /** Opens a new session on the MLP; the caller closes it. */
    OrtPredictor openMlp() throws OrtException {
        return openSingleThreaded(mlpModel);
    }

    /**
     * Runs {@code predictor}'s MLP on fresh random inputs under {@code ctx} and checks every output
     * against the Java reference. The output starts as NaN, so an output ORT did not write shows.
     */
    void mlpChecked(OrtPredictor predictor, Context ctx) throws OrtException {
        ThreadLocalRandom random = ThreadLocalRandom.current();
        float[] x = new float[MLP_BATCH * MLP_IN];
        for (int i = 0; i < x.length; i++) {
            x[i] = random.nextFloat() * 2 - 1;
        }
        try (Arena arena = Arena.ofConfined()) {
            Tensor input = Tensor.of(arena.allocateFrom(ValueLayout.JAVA_FLOAT, x), DType.FLOAT32, MLP_BATCH, MLP_IN);
            MemorySegment out = arena.allocate(ValueLayout.JAVA_FLOAT, MLP_BATCH * MLP_OUT);
            out.fill((byte) 0xFF); // all-ones bit patterns: NaN floats
            Tensor output = Tensor.of(out, DType.FLOAT32, MLP_BATCH, MLP_OUT);
            predictor.run(ctx, Map.of("x", input), Map.of("y", output));
            float[] got = output.toFloatArray();
            float[] expected = ReferenceMlp.expected(x);
            for (int i = 0; i < got.length; i++) {
                if (!(Math.abs(got[i] - expected[i]) <= 1e-4f * Math.max(1f, Math.abs(expected[i])))) {
                    throw new Violation("ORT MLP output " + i + " = " + got[i] + ", Java reference " + expected[i]);
                }
            }
        }
    }

    /** Runs the shared long chain under {@code ctx}; only a stop should end it before seconds pass. */
    void longChainRun(Context ctx) throws OrtException {
        chainRun(longChain, longChainInput, ctx);
    }

    /** Runs a session opened by {@link #openChurnChain()} under {@code ctx}. */
    void churnChainRun(OrtPredictor churnChain, Context ctx) throws OrtException {
        chainRun(churnChain, churnChainInput, ctx);
    }

    /** Runs a chain model on {@code x}, into a fresh output of the same shape. */
    private static void chainRun(OrtPredictor predictor, Tensor x, Context ctx) throws OrtException {
        try (Arena arena = Arena.ofConfined()) {
            Tensor y = Tensor.of(arena.allocate(ValueLayout.JAVA_FLOAT, x.shape()[0] * x.shape()[1]), DType.FLOAT32,
                    x.shape());
            predictor.run(ctx, Map.of("x", x), Map.of("y", y));
        }
    }

    /**
     * The fastest of a few runs of a 16-node chain, per node. The fastest, so that a busy moment
     * makes the chains longer, never shorter.
     */
    private static long measureNodeNanos(Path model, int rows) throws OrtException {
        long fastest = Long.MAX_VALUE;
        try (OrtPredictor predictor = openSingleThreaded(model); Arena arena = Arena.ofConfined()) {
            Tensor x = Tensor.of(arena.allocate(ValueLayout.JAVA_FLOAT, (long) rows * CHAIN_SIZE), DType.FLOAT32,
                    rows, CHAIN_SIZE);
            Tensor y = Tensor.of(arena.allocate(ValueLayout.JAVA_FLOAT, (long) rows * CHAIN_SIZE), DType.FLOAT32,
                    rows, CHAIN_SIZE);
            for (int attempt = 0; attempt < 5; attempt++) {
                long start = System.nanoTime();
                predictor.run(Context.background(), Map.of("x", x), Map.of("y", y));
                fastest = Math.min(fastest, System.nanoTime() - start);
            }
        }
        return Math.max(1, fastest / 16);
    }

    private static Path generate(Path out, String kind, String... args) throws IOException, InterruptedException,
            SetupException {
        Path script = Path.of(System.getProperty(SCRIPT_PROPERTY, DEFAULT_SCRIPT));
        if (!Files.isRegularFile(script)) {
            throw new SetupException("make_models.py not found at " + script.toAbsolutePath() + ": run the soak from the"
                    + " repository root (./run soak does) or pass -D" + SCRIPT_PROPERTY + "=PATH");
        }
        String python = System.getProperty(PYTHON_PROPERTY, "/usr/bin/python3");
        List<String> command = new ArrayList<>(List.of(python, script.toString(), kind, out.toString()));
        command.addAll(List.of(args));
        Process process;
        try {
            process = new ProcessBuilder(command).redirectErrorStream(true).start();
        } catch (IOException e) {
            throw new SetupException("cannot start " + python + " (" + e.getMessage() + "): install Debian's python3,"
                    + " python3-numpy and python3-onnx (apt-get install python3-onnx), or pass -D" + PYTHON_PROPERTY
                    + "=PATH to a Python with the onnx package");
        }
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!process.waitFor(120, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new SetupException("make_models.py " + kind + " did not finish within 120 s");
        }
        if (process.exitValue() != 0) {
            String hint = output.contains("No module named") ? "the ONNX models need Debian's python3-onnx and"
                    + " python3-numpy: apt-get install python3-onnx python3-numpy (./run soak installs them when run as"
                    + " root), or pass -D" + PYTHON_PROPERTY + "=PATH to a Python with the onnx package"
                    : "see its output";
            throw new SetupException(String.format(Locale.ROOT, "%s %s %s failed (exit %d): %s%n%s", python, script,
                    kind, process.exitValue(), hint, output.strip()));
        }
        return out;
    }

    /** Closes the shared predictors (each terminates and waits for its runs in flight) and the input. */
    @Override
    public void close() throws OrtException {
        try {
            mlp.close();
        } finally {
            try {
                longChain.close();
            } finally {
                shared.close();
            }
        }
    }
}
