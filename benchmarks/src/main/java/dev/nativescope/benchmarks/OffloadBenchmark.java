package dev.nativescope.benchmarks;

import dev.nativescope.Context;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.call.CallMode;
import dev.nativescope.call.NativeCall;
import dev.nativescope.library.NativeLibrary;

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

import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * The cost of offloading a bridged call to a native thread ({@link CallMode#OFFLOAD}) against
 * running it inline, for a no-op and a 100 us call ({@code nsc_predict_spin}), beside the floor of
 * any handoff measured in the same run: a bare {@link LockSupport#park()}/{@code unpark} ping-pong
 * between two platform threads ({@link #parkUnparkPingPong}). Goal: the offloaded no-op's extra
 * cost (offload minus inline) within 2x of the ping-pong's round trip.
 *
 * <p>Sample mode: every op is timed, and the percentiles are the figures to compare. A mean on this
 * 2-core machine is the tail's: a wake-up that waits for a CPU costs 50-100 us, against a median of
 * one to a few microseconds, and the ping-pong has the same tail as the handoff.
 *
 * <p>The caller is the JMH thread (a platform thread), so {@code OFFLOAD} is named explicitly
 * ({@code AUTO} would run inline there); a virtual-thread caller parks and is unparked the same way
 * (plus the scheduler's mount). Rerun: {@code ./run bench OffloadBenchmark}; short:
 * {@code ./run bench OffloadBenchmark -f 1 -wi 2 -i 3 -w 1s -r 1s}.
 *
 * <p>Threading: one JMH thread per trial; the ping-pong partner is a daemon platform thread started
 * and stopped with the trial.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class OffloadBenchmark {
    @Param({"INLINE", "OFFLOAD"})
    public CallMode mode;

    private final Context context = Context.background();
    private static final long HUNDRED_MICROS = 100_000;

    @Setup
    public void load() {
        NativeLibrary.load();
    }

    @Benchmark
    public int noop() {
        return NativeCall.invoke(context, mode, nativescope_h::nsc_noop_ctx);
    }

    @Benchmark
    public int spin100us() {
        return NativeCall.invoke(context, mode, ctx -> nativescope_h.nsc_predict_spin(ctx, HUNDRED_MICROS, MemorySegment.NULL));
    }

    /** The partner of the ping-pong: answers every ping with a pong. */
    @State(Scope.Benchmark)
    public static class PingPong {
        volatile long ping;
        volatile long pong;
        volatile boolean stop;
        Thread caller;
        Thread partner;

        @Setup(Level.Trial)
        public void start() {
            caller = Thread.currentThread();
            partner = Thread.ofPlatform().daemon().name("pingpong-partner").start(() -> {
                long seen = 0;
                while (!stop) {
                    long now = ping;
                    if (now != seen) {
                        seen = now;
                        pong = now;
                        LockSupport.unpark(caller);
                    } else {
                        LockSupport.park(this);
                    }
                }
            });
        }

        @TearDown(Level.Trial)
        public void end() throws InterruptedException {
            stop = true;
            LockSupport.unpark(partner);
            partner.join();
        }
    }

    /** The floor of a handoff: one park/unpark round trip between two platform threads. */
    @Benchmark
    public long parkUnparkPingPong(PingPong state) {
        long next = state.ping + 1;
        state.caller = Thread.currentThread();
        state.ping = next;
        LockSupport.unpark(state.partner);
        while (state.pong != next) {
            LockSupport.park(state);
        }
        return next;
    }
}
