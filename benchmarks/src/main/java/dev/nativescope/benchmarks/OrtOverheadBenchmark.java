package dev.nativescope.benchmarks;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.call.Affinity;
import dev.nativescope.interop.CancellationSignal;
import dev.nativescope.interop.SegmentHold;
import dev.nativescope.interop.WritableMemory;
import dev.nativescope.onnxruntime.OrtPredictor;
import dev.nativescope.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantReadWriteLock;
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
 * <p>Where the predictor's time goes: {@code -p step=views,hold,signal,lock,maps} makes the second run
 * of each pair the plain run plus one of the predictor's per-run steps instead of the predictor
 * ({@code step=predictor}, the default): {@code views} (an {@code OnnxTensor} view per tensor made and
 * closed per run, as before views were reused), {@code hold} ({@link SegmentHold#call} around the run),
 * {@code signal} (a {@link CancellationSignal} with an owner and a terminate action), {@code rsignal}
 * (the same reusable, {@link CancellationSignal#reusable(Context, CancellationSignal.StopAction)},
 * reopened per run, as the predictor does now), {@code lock} (a
 * read lock), {@code maps} (the maps, the segment list and the write check of a run without reuse).
 * {@code affinity} is the predictor opened with an {@link Affinity} (every run handed to its one native
 * thread while the benchmark thread parks).
 * The printed difference is then that step's cost, against its own floor, under the same load.
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

        /** What the second run of each pair is: {@code predictor}, or the plain run plus one step (see the class comment). */
        @Param({"predictor"})
        public String step;

        /**
         * The tensors' arena: {@code shared} (held by a downcall per run), or {@code confined} to the
         * benchmark thread (JMH runs a thread state's setup on that thread), which needs no downcall.
         */
        @Param({"shared"})
        public String arena;

        Path dir;
        OrtEnvironment environment;
        OrtSession session;
        OrtPredictor predictor;
        /** Only for {@code step=affinity}: the same model on its own native thread. */
        Affinity affinity;
        OrtPredictor onItsThread;
        Arena memory;
        Tensor x;
        Tensor y;
        Map<String, Tensor> inputs;
        Map<String, Tensor> outputs;
        Map<String, OnnxTensor> ortInputs;
        Map<String, OnnxTensor> ortOutputs;
        List<MemorySegment> segments;
        final CancellableContext lifetime = Context.background().withCancel();
        final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
        final CancellationSignal reusableSignal = CancellationSignal.reusable(lifetime, reason -> { });
        float sink;
        final AlternatedPairs pairs = new AlternatedPairs();

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
                if (step.equals("affinity")) {
                    affinity = Affinity.create();
                    onItsThread = OrtPredictor.open(file, options, affinity);
                }
            }
            memory = switch (arena) {
                case "shared" -> Arena.ofShared();
                case "confined" -> Arena.ofConfined();
                default -> throw new IllegalArgumentException("arena is shared or confined, not " + arena);
            };
            x = OrtBenchInputs.filled(memory, xShape);
            y = OrtBenchInputs.filled(memory, yShape);
            inputs = Map.of("x", x);
            outputs = Map.of("y", y);
            ortInputs = Map.of("x", view(x));
            ortOutputs = Map.of("y", view(y));
            segments = List.of(x.segment(), y.segment());
        }

        OnnxTensor view(Tensor tensor) throws OrtException {
            return OnnxTensor.createTensor(environment, tensor.segment().asByteBuffer().order(ByteOrder.nativeOrder()),
                    tensor.shape(), OnnxJavaType.FLOAT);
        }

        @Setup(Level.Iteration)
        public void reset() {
            pairs.reset();
        }

        @TearDown(Level.Iteration)
        public void report() {
            pairs.report("OrtOverhead", model + " " + arena + " " + step, "plain", step);
        }

        @TearDown(Level.Trial)
        public void close() throws Exception {
            ortInputs.values().forEach(OnnxTensor::close);
            ortOutputs.values().forEach(OnnxTensor::close);
            session.close();
            predictor.close();
            if (onItsThread != null) {
                onItsThread.close();
                affinity.close();
            }
            lifetime.cancel();
            memory.close();
            try (Stream<Path> paths = Files.walk(dir)) {
                for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(path);
                }
            }
        }

        void plainRun() throws OrtException {
            plainRun(ortInputs, ortOutputs);
        }

        void plainRun(Map<String, OnnxTensor> in, Map<String, OnnxTensor> out) throws OrtException {
            try (OrtSession.RunOptions options = new OrtSession.RunOptions()) {
                session.run(in, Set.of(), out, options).close();
            }
        }

        /** The second run of a pair: the predictor's, or the plain run with one of its steps. */
        void stepRun() throws OrtException {
            switch (step) {
                case "predictor" -> predictor.run(Context.background(), inputs, outputs);
                case "affinity" -> onItsThread.run(Context.background(), inputs, outputs);
                case "views" -> {
                    OnnxTensor in = view(x);
                    OnnxTensor out = view(y);
                    try {
                        plainRun(Map.of("x", in), Map.of("y", out));
                    } finally {
                        in.close();
                        out.close();
                    }
                }
                case "hold" -> SegmentHold.call(segments, () -> {
                    plainRun();
                    return null;
                });
                case "signal" -> {
                    try (CancellationSignal signal = CancellationSignal.open(Context.background(), lifetime, reason -> { })) {
                        if (!signal.isStopped()) {
                            plainRun();
                        }
                    }
                }
                case "rsignal" -> {
                    try (CancellationSignal signal = reusableSignal.reopen(Context.background())) {
                        if (!signal.isStopped()) {
                            plainRun();
                        }
                    }
                }
                case "lock" -> {
                    ReentrantReadWriteLock.ReadLock read = lock.readLock();
                    read.lock();
                    try {
                        plainRun();
                    } finally {
                        read.unlock();
                    }
                }
                case "maps" -> {
                    List<MemorySegment> list = new ArrayList<>(2);
                    for (Tensor tensor : inputs.values()) {
                        list.add(tensor.segment());
                    }
                    for (Map.Entry<String, Tensor> output : outputs.entrySet()) {
                        WritableMemory.require("output '" + output.getKey() + "'", output.getValue().segment());
                        list.add(output.getValue().segment());
                    }
                    Map<String, OnnxTensor> in = new LinkedHashMap<>(ortInputs);
                    Map<String, OnnxTensor> out = new LinkedHashMap<>(ortOutputs);
                    plainRun(in, out);
                    sink += list.size();
                }
                default -> throw new IllegalArgumentException("unknown step " + step);
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

    /**
     * One plain run and one predictor run (or plain run with a step), each timed; the order alternates
     * from one invocation to the next.
     */
    @Benchmark
    public float alternated(Model state) throws OrtException {
        state.pairs.time(state::plainRun, state::stepRun);
        return state.y.segment().getAtIndex(ValueLayout.JAVA_FLOAT, 0) + state.sink;
    }
}
