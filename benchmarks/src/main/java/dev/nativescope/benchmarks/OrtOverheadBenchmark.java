package dev.nativescope.benchmarks;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.nativescope.Context;
import dev.nativescope.onnxruntime.OrtPredictor;
import dev.nativescope.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Map;
import java.util.Set;
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
 * Issue 13 item 3: what {@link OrtPredictor#run} costs over plain {@link OrtSession#run} with the
 * same pinned outputs and fresh {@code RunOptions} for each run (the plain side's input and output
 * {@link OnnxTensor}s are created once, so every per-run cost of the predictor is counted: its
 * tensor views, the hold, the cancellation signal, the lock).
 *
 * <p>{@link #alternated} runs plain then predictor in each invocation and records both with
 * {@code System.nanoTime()}; at the end of each trial it prints p50 and p90 of each and the p50
 * ratio and difference ({@code [OrtOverhead] ...} lines), so the two are compared under the same
 * load in the same JVM. {@link #plain} and {@link #predictor} are the same two alone.
 *
 * <p>Models (written by {@code make_models.py}, run from the repository root): {@code tiny}, one
 * 4 x 4 MatMul on a 1 x 4 input; {@code small}, four 64 x 64 MatMuls on a 64 x 64 input; {@code
 * large}, a ReduceSum over a 64 MiB input. Single-threaded sessions.
 */
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class OrtOverheadBenchmark {

    @State(Scope.Thread)
    public static class Model {
        @Param({"tiny", "small", "large"})
        public String model;

        Path dir;
        OrtEnvironment environment;
        OrtSession session;
        OrtPredictor predictor;
        Arena arena;
        Tensor x;
        Tensor y;
        Map<String, Tensor> inputs;
        Map<String, Tensor> outputs;
        Map<String, OnnxTensor> ortInputs;
        Map<String, OnnxTensor> ortOutputs;
        long[] plainNanos = new long[1 << 16];
        long[] predictorNanos = new long[1 << 16];
        int samples;

        @Setup(Level.Trial)
        public void open() throws Exception {
            dir = Files.createTempDirectory("ort-overhead");
            long[] xShape;
            long[] yShape;
            Path file;
            switch (model) {
                case "tiny" -> {
                    file = OrtBenchInputs.model(dir, "chain", "tiny.onnx", "1", "4");
                    xShape = new long[] {1, 4};
                    yShape = xShape;
                }
                case "small" -> {
                    file = OrtBenchInputs.model(dir, "chain", "small.onnx", "4", "64");
                    xShape = new long[] {64, 64};
                    yShape = xShape;
                }
                case "large" -> {
                    file = OrtBenchInputs.model(dir, "sum", "large.onnx", Integer.toString(16 << 20));
                    xShape = new long[] {16 << 20};
                    yShape = new long[] {1};
                }
                default -> throw new IllegalArgumentException(model);
            }
            environment = OrtEnvironment.getEnvironment();
            try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
                options.setIntraOpNumThreads(1);
                options.setInterOpNumThreads(1);
                session = environment.createSession(file.toString(), options);
                predictor = OrtPredictor.open(file, options);
            }
            arena = Arena.ofShared();
            x = OrtBenchInputs.filled(arena, xShape);
            y = OrtBenchInputs.filled(arena, yShape);
            inputs = Map.of("x", x);
            outputs = Map.of("y", y);
            ortInputs = Map.of("x", OnnxTensor.createTensor(environment,
                    x.segment().asByteBuffer().order(ByteOrder.nativeOrder()), xShape, ai.onnxruntime.OnnxJavaType.FLOAT));
            ortOutputs = Map.of("y", OnnxTensor.createTensor(environment,
                    y.segment().asByteBuffer().order(ByteOrder.nativeOrder()), yShape, ai.onnxruntime.OnnxJavaType.FLOAT));
        }

        @Setup(Level.Iteration)
        public void reset() {
            samples = 0;
        }

        @TearDown(Level.Iteration)
        public void report() {
            if (samples == 0) {
                return;
            }
            long[] plain = Arrays.copyOf(plainNanos, samples);
            long[] ours = Arrays.copyOf(predictorNanos, samples);
            Arrays.sort(plain);
            Arrays.sort(ours);
            double plain50 = plain[samples / 2] / 1e3;
            double ours50 = ours[samples / 2] / 1e3;
            System.out.printf("%n[OrtOverhead] %s: %d pairs; plain p50 %.1f us p90 %.1f us; predictor p50 %.1f us p90 %.1f us;"
                            + " ratio p50 %.3f, overhead p50 %.1f us%n", model, samples, plain50, plain[samples * 9 / 10] / 1e3,
                    ours50, ours[samples * 9 / 10] / 1e3, ours50 / plain50, ours50 - plain50);
        }

        @TearDown(Level.Trial)
        public void close() throws Exception {
            ortInputs.values().forEach(OnnxTensor::close);
            ortOutputs.values().forEach(OnnxTensor::close);
            session.close();
            predictor.close();
            arena.close();
            try (Stream<Path> paths = Files.walk(dir)) {
                for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(path);
                }
            }
        }

        void plainRun() throws OrtException {
            try (OrtSession.RunOptions options = new OrtSession.RunOptions()) {
                session.run(ortInputs, Set.of(), ortOutputs, options).close();
            }
        }
    }

    @Benchmark
    public float plain(Model state) throws OrtException {
        state.plainRun();
        return state.y.segment().getAtIndex(ValueLayout.JAVA_FLOAT, 0);
    }

    @Benchmark
    public float predictor(Model state) throws OrtException {
        state.predictor.run(Context.background(), state.inputs, state.outputs);
        return state.y.segment().getAtIndex(ValueLayout.JAVA_FLOAT, 0);
    }

    /** One plain run and one predictor run, each timed; the order alternates from one invocation to the next. */
    @Benchmark
    public float alternated(Model state) throws OrtException {
        int i = state.samples;
        boolean plainFirst = (i & 1) == 0;
        long t0 = System.nanoTime();
        if (plainFirst) {
            state.plainRun();
        } else {
            state.predictor.run(Context.background(), state.inputs, state.outputs);
        }
        long t1 = System.nanoTime();
        if (plainFirst) {
            state.predictor.run(Context.background(), state.inputs, state.outputs);
        } else {
            state.plainRun();
        }
        long t2 = System.nanoTime();
        if (i < state.plainNanos.length) {
            state.plainNanos[i] = plainFirst ? t1 - t0 : t2 - t1;
            state.predictorNanos[i] = plainFirst ? t2 - t1 : t1 - t0;
            state.samples = i + 1;
        }
        return state.y.segment().getAtIndex(ValueLayout.JAVA_FLOAT, 0);
    }


}
