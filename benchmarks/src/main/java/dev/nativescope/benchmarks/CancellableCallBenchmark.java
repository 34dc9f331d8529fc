package dev.nativescope.benchmarks;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.call.NativeCall;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.bindings.nsc_context;
import dev.nativescope.bindings.nsc_predict_stats;
import dev.nativescope.interop.CancellationSignal;
import dev.nativescope.interop.InterruptHook;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.spi.AbstractInterruptibleChannel;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import org.HdrHistogram.Histogram;

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
import org.openjdk.jmh.infra.BenchmarkParams;
import org.openjdk.jmh.infra.IterationParams;
import org.openjdk.jmh.runner.IterationType;

/**
 * What the cancellable call bridge costs per call: the same native function called
 * <ul>
 * <li>through a method handle made here with the bare FFM API, on an {@code nsc_context} that was
 *     initialised once (no Java context, no interrupt hook: the floor for FFM), in the global arena
 *     and, for comparison, in a shared arena like the bridge's own structs;</li>
 * <li>through {@link NativeCall#invoke(Context, NativeCall.Downcall)} under a live
 *     {@link CancellableContext} (a pooled call frame is armed, a done action registered on the
 *     context, the interrupt hook entered and left, the status translated: everything a real call
 *     pays);</li>
 * <li>through JNI ({@link JniNoop}), the pre-FFM way of reaching C.</li>
 * </ul>
 * Two functions: {@code nsc_noop_ctx} (one load of the state word; the fixed cost is all there is)
 * and {@code nsc_predict_spin(ctx, 10_000, stats)}, nominally 10 us of polling work, where the fixed
 * cost should vanish in the work (its JNI twin runs the same loop without a context). The spin
 * checks its own duration only every 1024 iterations of a {@code pause} loop, so on a CPU where
 * {@code pause} takes ~25 ns the call really lasts ~26 us: read the 10 us goal against the
 * measured duration. The spins are sampled one call at a time (JMH SampleTime: median and
 * percentiles per call), and each spin call also records its wall time minus the native time the
 * predictor reports ({@code OVERHEAD ...} lines at the end of the trial): a paired figure that the
 * spin's own variation does not drown. The bridge's
 * goals: no-op at most 3x the bare call, the 10 us call at most 1.01x, and virtual threads
 * ({@link Virtual}, the same methods with JMH's virtual-thread executor) within 1.5x of platform
 * threads.
 *
 * <p><b>The fast path by layers</b> (issue 12 item 1; BENCHMARKS.md section 17): between the bare
 * call and the bridge, {@link #noopJdkHook} runs the same downcall inside
 * {@code AbstractInterruptibleChannel.begin()/end()} (the JDK's interrupt hook, the one cost the JDK
 * imposes), {@link #noopInterruptHook} inside {@link InterruptHook} (adds the per-thread stack of
 * nested hooks), {@link #noopSignalBackground} / {@link #noopSignalLive} inside a reusable
 * {@link CancellationSignal} reopened per call as the bridge's frame does (adds the context's stop
 * slot and the entry checks); the bridge then adds the frame pool, the values hold, arming the
 * struct, the in-flight registry and the status translation. Each difference between neighbours is
 * that layer's cost in the same fork (the JIT schedules neighbours together, so read it with the
 * run's error). The {@code primitive*} methods price the steps the layers are made of, alone.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class CancellableCallBenchmark {
    /** The nominal duration of the spin: {@code nsc_predict_spin} checks its clock every 1024 spins. */
    static final long SPIN_NANOS = 10_000;

    private static final MethodHandle BARE_NOOP_CTX;
    private static final MethodHandle BARE_SPIN;

    static {
        NativeLibrary.load();
        Linker linker = Linker.nativeLinker();
        SymbolLookup lookup = SymbolLookup.loaderLookup();
        BARE_NOOP_CTX = linker.downcallHandle(lookup.find("nsc_noop_ctx").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
        BARE_SPIN = linker.downcallHandle(lookup.find("nsc_predict_spin").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                        ValueLayout.ADDRESS));
        JniNoop.ensureLoaded();
    }

    /** The JDK's hook alone: begin()/end() made callable. */
    private static final class BareChannel extends AbstractInterruptibleChannel {
        void enter() {
            begin();
        }

        void exit() {
            try {
                end(true);
            } catch (AsynchronousCloseException closed) {
                throw new IllegalStateException("the benchmark thread was interrupted", closed);
            }
        }

        @Override
        protected void implCloseChannel() {
        }
    }

    private static final ThreadLocal<Object> LOCAL = ThreadLocal.withInitial(Object::new);

    private final BareChannel channel = new BareChannel();
    private final InterruptHook hook = new InterruptHook(() -> { });
    private CancellationSignal signal;
    private final AtomicReference<Object> slot = new AtomicReference<>();
    private final Object lock = new Object();
    private int guarded;
    private Arena arena;
    /**
     * The bare calls' struct, initialised once: in the global arena, whose segments cost a
     * downcall nothing to keep alive (the fastest a bare FFM user can get).
     */
    private MemorySegment bareStruct;
    /** The same, in a shared arena like the bridge's call frames: each downcall acquires and releases it. */
    private MemorySegment bareSharedStruct;
    /** The context of the bridge calls: live (cancellable, never cancelled) for the whole trial. */
    private CancellableContext context;
    /** Where the spin predictor reports how long it ran natively. */
    private MemorySegment stats;
    private boolean measuring;
    private final Histogram overheads = new Histogram(TimeUnit.SECONDS.toNanos(1), 3);
    private final Histogram nativeDurations = new Histogram(TimeUnit.SECONDS.toNanos(1), 3);
    private String benchmarkName;

    @Setup
    public void setUp(BenchmarkParams params) {
        benchmarkName = params.getBenchmark().replace("dev.nativescope.benchmarks.", "");
        open();
    }

    /** The state of every benchmark here, without JMH (also for {@link CallPathCpuTime}). */
    void open() {
        arena = Arena.ofShared();
        stats = nsc_predict_stats.allocate(arena);
        // 128 bytes per trial that are never freed: the global arena is what makes the call cheapest.
        bareStruct = initialised(Arena.global().allocate(nsc_context.sizeof(), 64));
        bareSharedStruct = initialised(arena.allocate(nsc_context.sizeof(), 64));
        context = Context.background().withCancel();
        MemorySegment cancelled = bareStruct;
        signal = CancellationSignal.reusable(reason -> nativescope_h.nsc_context_cancel(cancelled, nativescope_h.NSC_CANCELED()));
        // JMH runs state setup in the benchmark thread: this line shows which kind the run used.
        System.out.println("# benchmark thread: " + (Thread.currentThread().isVirtual() ? "virtual" : "platform")
                + " (" + Thread.currentThread() + ")");
    }

    private static MemorySegment initialised(MemorySegment struct) {
        int status = nativescope_h.nsc_context_init(struct, nativescope_h.NSC_NO_DEADLINE(), MemorySegment.NULL, 0);
        if (status != 0) {
            throw new IllegalStateException("nsc_context_init: " + status);
        }
        return struct;
    }

    @Setup(Level.Iteration)
    public void iteration(IterationParams params) {
        measuring = params.getType() == IterationType.MEASUREMENT;
    }

    @TearDown
    public void tearDown() {
        if (overheads.getTotalCount() > 0) {
            System.out.printf(Locale.ROOT, "%nOVERHEAD %s thread=%s calls=%d wall-minus-native p50=%d p90=%d p99=%d mean=%.0f ns;"
                            + " native duration p50=%.2f us mean=%.2f us%n",
                    benchmarkName, Thread.currentThread().isVirtual() ? "virtual" : "platform", overheads.getTotalCount(),
                    overheads.getValueAtPercentile(50), overheads.getValueAtPercentile(90),
                    overheads.getValueAtPercentile(99), overheads.getMean(),
                    nativeDurations.getValueAtPercentile(50) / 1000.0, nativeDurations.getMean() / 1000.0);
        }
        context.close();
        nativescope_h.nsc_context_destroy(bareStruct);
        nativescope_h.nsc_context_destroy(bareSharedStruct);
        arena.close();
    }

    /** (a) The floor: a bare FFM downcall of {@code nsc_noop_ctx} on a pre-initialised struct (global arena). */
    @Benchmark
    public int noopBareFfm() throws Throwable {
        return (int) BARE_NOOP_CTX.invokeExact(bareStruct);
    }

    /**
     * The bare call on a struct in a shared arena, as the bridge's frames are: the difference to
     * {@link #noopBareFfm()} is the arena's acquire/release around the downcall.
     */
    @Benchmark
    public int noopBareFfmSharedArena() throws Throwable {
        return (int) BARE_NOOP_CTX.invokeExact(bareSharedStruct);
    }

    /** (b) The same function through the bridge, under a live cancellable context. */
    @Benchmark
    public int noopCancellable() {
        return NativeCall.invoke(context, nativescope_h::nsc_noop_ctx);
    }

    /**
     * The bridge under {@link Context#background()}, which can never be done: no done action is
     * registered, so the difference to {@link #noopCancellable()} is that registration.
     */
    @Benchmark
    public int noopBackground() {
        return NativeCall.invoke(Context.background(), nativescope_h::nsc_noop_ctx);
    }

    /** Layer 2: the bare call inside the JDK's interrupt hook ({@code begin()/end()} on a channel made once). */
    @Benchmark
    public int noopJdkHook() throws Throwable {
        channel.enter();
        try {
            return (int) BARE_NOOP_CTX.invokeExact(bareStruct);
        } finally {
            channel.exit();
        }
    }

    /** Layer 3: inside an {@link InterruptHook} made once: the JDK's hook plus the stack of nested hooks. */
    @Benchmark
    public int noopInterruptHook() throws Throwable {
        hook.enter();
        int status;
        try {
            status = (int) BARE_NOOP_CTX.invokeExact(bareStruct);
        } finally {
            hook.exit();
        }
        return status;
    }

    /** Layer 4a: inside a reusable signal reopened under {@code Context.background()} (no stop slot). */
    @Benchmark
    public int noopSignalBackground() throws Throwable {
        return underSignal(Context.background());
    }

    /** Layer 4b: inside a reusable signal reopened under the live context: its stop slot, attached and detached. */
    @Benchmark
    public int noopSignalLive() throws Throwable {
        return underSignal(context);
    }

    private int underSignal(Context under) throws Throwable {
        CancellationSignal open = signal.reopen(under);
        try {
            return open.isStopped() ? -1 : (int) BARE_NOOP_CTX.invokeExact(bareStruct);
        } finally {
            open.close();
        }
    }

    /** A step alone: one {@code ThreadLocal.get()}. */
    @Benchmark
    public Object primitiveThreadLocalGet() {
        return LOCAL.get();
    }

    /** A step alone: an uncontended compare-and-set and a release store back (a stop slot's attach and detach). */
    @Benchmark
    public boolean primitiveCasAndRelease() {
        boolean won = slot.compareAndSet(null, lock);
        slot.setRelease(null);
        return won;
    }

    /** A step alone: an uncontended exchange (the frame cache's take). */
    @Benchmark
    public Object primitiveExchange() {
        return slot.getAndSet(null);
    }

    /** A step alone: a volatile store (on x86 a store and a full fence). */
    @Benchmark
    public void primitiveVolatileStore() {
        slot.set(null);
    }

    /** A step alone: two uncontended synchronized blocks, as begin() and end() each take the thread's interrupt lock. */
    @Benchmark
    public int primitiveTwoMonitors() {
        synchronized (lock) {
            guarded++;
        }
        synchronized (lock) {
            guarded++;
        }
        return guarded;
    }

    /** JNI baseline: a static native method that returns at once. */
    @Benchmark
    public void noopJni() {
        JniNoop.noop();
    }

    /** (c) Bare FFM downcall of {@code nsc_predict_spin(ctx, 10_000, stats)} on the pre-initialised struct. */
    @Benchmark
    @BenchmarkMode(Mode.SampleTime)
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    public int spin10usBareFfm() throws Throwable {
        long start = System.nanoTime();
        int status = (int) BARE_SPIN.invokeExact(bareStruct, SPIN_NANOS, stats);
        recordOverhead(start, nsc_predict_stats.end_ns(stats) - nsc_predict_stats.start_ns(stats));
        return status;
    }

    /** (d) The same spin through the bridge, under a live cancellable context. */
    @Benchmark
    @BenchmarkMode(Mode.SampleTime)
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    public int spin10usCancellable() {
        long start = System.nanoTime();
        MemorySegment stats = this.stats;
        int status = NativeCall.invoke(context, ctx -> nativescope_h.nsc_predict_spin(ctx, SPIN_NANOS, stats));
        recordOverhead(start, nsc_predict_stats.end_ns(stats) - nsc_predict_stats.start_ns(stats));
        return status;
    }

    /** JNI baseline: the spin predictor's loop, without a context, as a static native method. */
    @Benchmark
    @BenchmarkMode(Mode.SampleTime)
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    public long spin10usJni() {
        long start = System.nanoTime();
        long nativeNanos = JniNoop.spin(SPIN_NANOS);
        recordOverhead(start, nativeNanos);
        return nativeNanos;
    }

    /**
     * Records one spin call's wall time minus the time its native code reported: the cost of
     * getting there and back, paired per call, so it is not drowned by how long the spin itself
     * happens to take (which varies by tens of percent from run to run on a shared VM).
     */
    private void recordOverhead(long start, long nativeNanos) {
        long wall = System.nanoTime() - start;
        if (measuring) {
            overheads.recordValue(Math.max(0, wall - nativeNanos));
            nativeDurations.recordValue(Math.max(0, nativeNanos));
        }
    }

    /**
     * The same benchmarks with JMH's benchmark threads as virtual threads ({@code -Djmh.executor=VIRTUAL}):
     * a virtual thread stays pinned to its carrier for the downcall, and the interrupt hook's
     * {@code begin()/end()} take the virtual-thread path in the JDK.
     */
    @Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Djmh.executor=VIRTUAL"})
    public static class Virtual extends CancellableCallBenchmark {
    }
}
