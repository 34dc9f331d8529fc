package dev.nativescope.examples.userpredictor;

import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.bindings.nsc_context;
import dev.nativescope.tensor.DLPack;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What the context checks cost a user's predictor: {@code user_conv2d} (one
 * {@code nsc_checker_poll} per output row) against the same source compiled with the checks
 * removed ({@code libuser_predictor_nochecks.so}, built by the same Makefile with
 * {@code -DUSER_PREDICTOR_NO_CHECKS}). Both are called with the bare FFM API on the same live
 * context and the same tensors, so the difference is the checks alone. Goal: with checks at least
 * 0.98x the speed of without.
 *
 * <p>It lives in the examples module because that is where the user predictor is built. Run:
 * {@code java --enable-native-access=ALL-UNNAMED -cp examples/target/nativescope-examples.jar org.openjdk.jmh.Main UserPredictorCheck}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 8, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class UserPredictorCheckBenchmark {
    private static final int SIZE = 256;
    private static final int KERNEL = 5;

    private Arena arena;
    private MethodHandle withChecks;
    private MethodHandle withoutChecks;
    private MemorySegment context;
    private MemorySegment input;
    private MemorySegment kernel;
    private MemorySegment output;

    @Setup
    public void setUp() {
        arena = Arena.ofShared();
        withChecks = UserPredictorBuilds.conv2d(UserPredictorBuilds.CHECKED);
        withoutChecks = UserPredictorBuilds.conv2d(UserPredictorBuilds.WITHOUT_CHECKS);
        context = arena.allocate(nsc_context.sizeof(), 64);
        if (nativescope_h.nsc_context_init(context, nativescope_h.NSC_NO_DEADLINE(), MemorySegment.NULL, 0) != 0) {
            throw new IllegalStateException("nsc_context_init failed");
        }
        Random random = new Random(1);
        Tensor in = Tensor.of(arena.allocate((long) SIZE * SIZE * Float.BYTES, 64), DType.FLOAT32, SIZE, SIZE);
        Tensor k = Tensor.of(arena.allocate((long) KERNEL * KERNEL * Float.BYTES, 64), DType.FLOAT32, KERNEL, KERNEL);
        Tensor out = Tensor.of(arena.allocate((long) (SIZE - KERNEL + 1) * (SIZE - KERNEL + 1) * Float.BYTES, 64),
                DType.FLOAT32, SIZE - KERNEL + 1, SIZE - KERNEL + 1);
        for (long i = 0; i < SIZE; i++) {
            for (long j = 0; j < SIZE; j++) {
                in.setDouble(random.nextFloat(), i, j);
            }
        }
        for (long i = 0; i < KERNEL; i++) {
            for (long j = 0; j < KERNEL; j++) {
                k.setDouble(random.nextFloat(), i, j);
            }
        }
        input = DLPack.export(in, arena);
        kernel = DLPack.export(k, arena);
        output = DLPack.export(out, arena);
    }

    @TearDown
    public void tearDown() {
        nativescope_h.nsc_context_destroy(context);
        arena.close();
    }

    @Benchmark
    public int withChecks() throws Throwable {
        return (int) withChecks.invokeExact(context, input, kernel, output, 1L, MemorySegment.NULL);
    }

    @Benchmark
    public int checksCompiledOut() throws Throwable {
        return (int) withoutChecks.invokeExact(context, input, kernel, output, 1L, MemorySegment.NULL);
    }
}
