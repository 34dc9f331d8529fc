package dev.nativescope.benchmarks;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.bindings.nsc_context;
import dev.nativescope.call.NativeCall;
import dev.nativescope.library.NativeLibrary;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.concurrent.TimeUnit;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What the current context (issue 18) costs, side by side with its floors in one run:
 * <ul>
 * <li>per call: {@link NativeCall#call(Context, NativeCall.CurrentCall)} of {@code nsc_noop} (the
 *     context is set before and restored after the downcall) against
 *     {@link NativeCall#invoke(Context, NativeCall.Downcall)} of the same function (no current
 *     context), both under a live cancellable context; goal: at most 5 ns more. {@link #alternated}
 *     runs the two in the same invocations ({@value #BATCH} calls of each, in alternating order) and
 *     prints, per iteration, the p50 and p90 of each batch and of their difference ({@code
 *     [CurrentContext] ...} lines: microseconds per batch are nanoseconds per call). The set + restore
 *     pair alone, as the bridge does it (two loads and two stores through the thread's
 *     {@code nsc_current_slot()}), as it did before (two critical downcalls of {@code
 *     nsc_current_set}), and a bare FFM downcall of {@code nsc_noop} are the floors;</li>
 * <li>per poll, in a tight C loop of {@value #POLLS} polls: {@code nsc_current_check()} (a call into the
 *     shim and a thread-local load) against {@code nsc_check(ctx)} on a pointer that was passed in.</li>
 * </ul>
 * The poll benchmarks run with the struct made current on the benchmark thread once, at setup (a
 * platform thread: the same OS thread for the whole trial).
 */
// Differences of a few ns on a loaded machine: more iterations and two forks than the other benchmarks.
@Fork(value = 2, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@Warmup(iterations = 5, time = 1)
@Measurement(iterations = 10, time = 1)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@State(Scope.Thread)
public class CurrentContextBenchmark {
    static final int POLLS = 10_000;
    /** Calls of each kind per {@link #alternated} invocation: about 80 us, far above the clock's resolution. */
    static final int BATCH = 1000;

    /** The bridge's own setter, made the same way: critical, pointers as longs. */
    private static final MethodHandle SET;
    private static final MethodHandle SLOT;
    private static final MethodHandle BARE_NOOP;
    private static final NativeCall.CurrentCall<Object, RuntimeException> NOOP_CALL = () -> {
        nativescope_h.nsc_noop();
        return null;
    };
    private static final NativeCall.Downcall NOOP_DOWNCALL = ctx -> {
        nativescope_h.nsc_noop();
        return 0;
    };

    static {
        NativeLibrary.load();
        Linker linker = Linker.nativeLinker();
        BARE_NOOP = linker.downcallHandle(nativescope_h.nsc_noop$address(), FunctionDescriptor.ofVoid());
        SET = linker.downcallHandle(nativescope_h.nsc_current_set$address(),
                FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG), Linker.Option.critical(false));
        SLOT = linker.downcallHandle(nativescope_h.nsc_current_slot$address(),
                FunctionDescriptor.of(ValueLayout.ADDRESS.withTargetLayout(ValueLayout.JAVA_LONG)),
                Linker.Option.critical(false));
    }

    private CancellableContext context;
    private MemorySegment struct;
    private long structAddress;
    private long previous;
    /** The benchmark thread's slot (a platform thread: the same OS thread for the whole trial). */
    private MemorySegment slot;
    private final AlternatedPairs pairs = new AlternatedPairs();
    private Object sink;

    @Setup
    public void setUp() throws Throwable {
        context = Context.background().withCancel();
        struct = Arena.global().allocate(nsc_context.sizeof(), 64);
        int status = nativescope_h.nsc_context_init(struct, nativescope_h.NSC_NO_DEADLINE(), MemorySegment.NULL, 0);
        if (status != 0) {
            throw new IllegalStateException("nsc_context_init: " + status);
        }
        structAddress = struct.address();
        previous = (long) SET.invokeExact(structAddress);
        slot = (MemorySegment) SLOT.invokeExact();
    }

    @Setup(Level.Iteration)
    public void resetPairs() {
        pairs.reset();
    }

    /** After an iteration of {@link #alternated}: p50 of each and of call - invoke, from the same invocations. */
    @TearDown(Level.Iteration)
    public void reportPairs() {
        pairs.report("CurrentContext", "per " + BATCH + " calls (us = ns per call)", "invoke", "call");
    }

    @TearDown
    public void tearDown() throws Throwable {
        long restored = (long) SET.invokeExact(previous);
        if (restored != structAddress) {
            throw new IllegalStateException("the benchmark thread's current context changed during the trial");
        }
        nativescope_h.nsc_context_destroy(struct);
        context.close();
    }

    /** Floor of the per-call figures: a bare FFM downcall of {@code nsc_noop}. */
    @Benchmark
    public void noopBareFfm() throws Throwable {
        BARE_NOOP.invokeExact();
    }

    /** What the bridge adds for the current context, alone: set, then restore (two critical downcalls). */
    @Benchmark
    public long setRestorePair() throws Throwable {
        long outer = (long) SET.invokeExact(structAddress);
        return (long) SET.invokeExact(outer);
    }

    /** What the bridge adds for the current context now, alone: two loads and two stores through the slot. */
    @Benchmark
    public long setRestoreStores() {
        long outer = slot.get(ValueLayout.JAVA_LONG, 0);
        slot.set(ValueLayout.JAVA_LONG, 0, structAddress);
        long inner = slot.get(ValueLayout.JAVA_LONG, 0);
        slot.set(ValueLayout.JAVA_LONG, 0, outer);
        return inner;
    }

    /** The bridged call without a current context: {@code invoke} of a downcall that ignores its pointer. */
    @Benchmark
    public int noopBridged() {
        return NativeCall.invoke(context, NOOP_DOWNCALL);
    }

    /** The same bridged call with the current context set and restored around it. */
    @Benchmark
    public Object noopBridgedWithCurrent() {
        return NativeCall.call(context, NOOP_CALL);
    }

    /**
     * {@value #BATCH} {@code invoke}s and {@value #BATCH} {@code call}s of the same function, timed as a pair
     * (order alternating): the goal's difference under the same load.
     */
    @Benchmark
    @OperationsPerInvocation(2 * BATCH)
    public Object alternated() {
        pairs.time(this::invokeBatch, this::callBatch);
        return sink;
    }

    private void invokeBatch() {
        int sum = 0;
        for (int i = 0; i < BATCH; i++) {
            sum += NativeCall.invoke(context, NOOP_DOWNCALL);
        }
        sink = sum;
    }

    private void callBatch() {
        Object last = null;
        for (int i = 0; i < BATCH; i++) {
            last = NativeCall.call(context, NOOP_CALL);
        }
        sink = last;
    }

    /** Floor of the per-poll figures: {@code nsc_check(ctx)} on the pointer passed in, {@value #POLLS} times. */
    @Benchmark
    @OperationsPerInvocation(POLLS)
    public long pollPassedPointer() {
        return nativescope_h.nsc_bench_poll_ctx(struct, POLLS);
    }

    /** {@code nsc_current_check()} {@value #POLLS} times: the pointer found through the thread-local each time. */
    @Benchmark
    @OperationsPerInvocation(POLLS)
    public long pollCurrent() {
        return nativescope_h.nsc_bench_poll_current(POLLS);
    }
}
