package dev.nativescope.benchmarks;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.onnxruntime.OrtPredictor;
import dev.nativescope.tensor.Tensor;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CountDownLatch;
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
 * ONNX Runtime under a {@code Context}: how long a cancel takes to stop a run, against the time of
 * one node (ORT checks its terminate flag between nodes, so the latency should be about one node
 * at most), and what zero-copy inputs save over {@code float[]} inputs, which ORT's Java API
 * copies into a direct buffer before every run.
 *
 * <p>The models are written by the onnxruntime module's {@code make_models.py} with Debian's
 * python3-onnx; run from the repository root ({@code ./run bench OrtCancel}) or set
 * {@code -Dnsc.ort.makeModels=PATH}. Each fork prints the measured time of one node.
 */
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class OrtCancelBenchmark {

    /** A long MatMul chain, one run in flight per invocation, cancelled by the benchmark method. */
    @State(Scope.Benchmark)
    public static class Chain {
        /** Matrix size of each node: the node time grows with its cube. */
        @Param({"128", "512"})
        public int size;

        Path dir;
        OrtPredictor predictor;
        Arena arena;
        Tensor x;
        Tensor y;
        CancellableContext context;
        CountDownLatch returned;
        volatile Throwable ended;
        Thread runner;

        @Setup(Level.Trial)
        public void open() throws Exception {
            dir = Files.createTempDirectory("ort-bench");
            arena = Arena.ofShared();
            x = OrtBenchInputs.filled(arena, size, size);
            y = OrtBenchInputs.filled(arena, size, size);
            long nodeNanos = measureNode();
            int nodes = (int) Math.min(20_000, Math.max(200, TimeUnit.SECONDS.toNanos(10) / nodeNanos));
            predictor = openSingleThreaded(OrtBenchInputs.model(dir, "chain", "chain-long.onnx", Integer.toString(nodes), Integer.toString(size)));
            System.out.printf("%n[OrtCancelBenchmark] %dx%d MatMul node: %.1f us; chain of %d nodes%n",
                    size, size, nodeNanos / 1e3, nodes);
        }

        private long measureNode() throws Exception {
            final int nodes = 32;
            try (OrtPredictor shortChain = openSingleThreaded(OrtBenchInputs.model(dir, "chain", "chain-short.onnx",
                    Integer.toString(nodes), Integer.toString(size)))) {
                long fastest = Long.MAX_VALUE;
                for (int i = 0; i < 10; i++) {
                    long start = System.nanoTime();
                    shortChain.run(Context.background(), Map.of("x", x), Map.of("y", y));
                    fastest = Math.min(fastest, System.nanoTime() - start);
                }
                return Math.max(1, fastest / nodes);
            }
        }

        /** Starts a run and lets it get well into ORT before the benchmark method cancels it. */
        @Setup(Level.Invocation)
        public void startRun() throws InterruptedException {
            context = Context.background().withCancel();
            returned = new CountDownLatch(1);
            ended = null;
            CancellableContext ctx = context;
            runner = Thread.ofPlatform().start(() -> {
                try {
                    predictor.run(ctx, Map.of("x", x), Map.of("y", y));
                } catch (Throwable e) {
                    ended = e;
                } finally {
                    returned.countDown();
                }
            });
            Thread.sleep(20);
        }

        @TearDown(Level.Invocation)
        public void checkStopped() throws InterruptedException {
            runner.join();
            context.close();
            if (!(ended instanceof CancellationException)) {
                throw new IllegalStateException("the run was not cancelled: " + ended);
            }
        }

        @TearDown(Level.Trial)
        public void close() throws Exception {
            closeAll(predictor, arena, dir);
        }
    }

    /** Cancel to return: the time from {@code cancel()} until the running thread is back from ORT. */
    @Benchmark
    public void cancelLatency(Chain chain) throws InterruptedException {
        chain.context.cancel();
        chain.returned.await();
    }

    /** A cheap pass (ReduceSum) over a large float32 input: the input's cost dominates. */
    @State(Scope.Benchmark)
    public static class LargeInput {
        /** Input elements: 16 Mi floats = 64 MiB. */
        @Param({"16777216"})
        public int count;

        Path dir;
        OrtPredictor predictor;
        Arena arena;
        Tensor x;
        Tensor y;
        float[] xArray;
        OrtEnvironment environment;

        @Setup(Level.Trial)
        public void open() throws Exception {
            dir = Files.createTempDirectory("ort-bench");
            predictor = openSingleThreaded(OrtBenchInputs.model(dir, "sum", "sum.onnx", Integer.toString(count)));
            arena = Arena.ofShared();
            x = OrtBenchInputs.filled(arena, count);
            y = OrtBenchInputs.filled(arena, 1);
            xArray = x.segment().toArray(ValueLayout.JAVA_FLOAT);
            environment = OrtEnvironment.getEnvironment();
        }

        @TearDown(Level.Trial)
        public void close() throws Exception {
            closeAll(predictor, arena, dir);
        }
    }

    /** The input is a Tensor over an arena: ORT reads it in place; the output is pinned. */
    @Benchmark
    @BenchmarkMode(Mode.AverageTime)
    public float zeroCopyInput(LargeInput state) throws OrtException {
        state.predictor.run(Context.background(), Map.of("x", state.x), Map.of("y", state.y));
        return state.y.getFloat(0);
    }

    /** The input is a float[]: ORT's Java API copies it into a direct buffer for every run. */
    @Benchmark
    @BenchmarkMode(Mode.AverageTime)
    public float floatArrayInput(LargeInput state) throws OrtException {
        try (OnnxTensor input = OnnxTensor.createTensor(state.environment, FloatBuffer.wrap(state.xArray),
                new long[] {state.count});
             OrtSession.Result result = state.predictor.session().run(Map.of("x", input))) {
            return ((float[]) result.get(0).getValue())[0];
        }
    }

    private static OrtPredictor openSingleThreaded(Path model) throws OrtException {
        try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
            options.setIntraOpNumThreads(1);
            options.setInterOpNumThreads(1);
            return OrtPredictor.open(model, options);
        }
    }



    private static void closeAll(OrtPredictor predictor, Arena arena, Path dir) throws Exception {
        predictor.close();
        arena.close();
        deleteTree(dir);
    }

    private static void deleteTree(Path dir) throws IOException {
        try (Stream<Path> paths = Files.walk(dir)) {
            for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(path);
            }
        }
    }
}
