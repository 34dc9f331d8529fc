package dev.nativescope.benchmarks;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.ContextKey;
import dev.nativescope.call.NativeCall;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.call.NativeResources;
import dev.nativescope.Registration;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.testing.ProcSelf;

import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.CancellationException;
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
import org.openjdk.jmh.infra.BenchmarkParams;

/**
 * What a {@link Context} costs: the time to derive and end one, and the memory a live one holds.
 *
 * <p><b>Time</b> (average, ns/op), all under a live cancellable parent, as a request context would
 * be: {@code withCancel()} + {@code cancel()} (and + {@code close()}), {@code withTimeout()} +
 * {@code cancel()} (a deadline enters and leaves the shared timer's queue), {@code withValue()},
 * and {@code onDone()} + {@code remove()} (what every bridge call does on its context). A bare
 * {@code new CancellationException(...)} is there to show how much of {@code cancel()} is the
 * cause's stack trace.
 *
 * <p><b>Memory</b> ({@link Footprint}: single shot, in a JVM limited to {@code -Xmx1g}): each
 * invocation derives 10^6 children of one parent (10^5 for those that call native code) and keeps
 * them live; the iteration's tear-down forces GCs, waits for the values cleaner, and prints, as
 * {@code FOOTPRINT ...} lines, the Java heap (MemoryMXBean, after GC), the native bytes the Java
 * side counts ({@link NativeResources#javaNativeBytes()}), the shim's native bytes and done fds,
 * and the growth of the process RSS (which includes malloc's overhead and the heap's own growth),
 * each divided by the number of contexts. The JMH score of those methods is the time to derive one
 * context while its many siblings are live. {@code liveWithValueAfterNativeCall} makes one bridge
 * call per value context, so its native copy of the values exists; and
 * {@code droppedValueContextsAfterNativeCall} drops such contexts again while their parent stays
 * live, to show what a long-lived parent keeps of short-lived children.
 *
 * <p>Goals: at most 256 native bytes per context plus its values, no fd until native code waits,
 * 10^6 live contexts well under 1 GiB.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class ContextBenchmark {
    static final ContextKey<String> TRACE_ID = ContextKey.ofString("trace-id");
    private static final Duration ONE_HOUR = Duration.ofHours(1);
    private static final Runnable NOTHING = () -> { };

    private CancellableContext parent;

    @Setup
    public void setUp() {
        parent = Context.background().withCancel();
    }

    @TearDown
    public void tearDown() {
        parent.close();
    }

    /** Derive a cancellable child, cancel it (it unlinks itself from the parent). */
    @Benchmark
    public CancellableContext withCancelCancel() {
        CancellableContext child = parent.withCancel();
        child.cancel();
        return child;
    }

    /** Derive a cancellable child and close it, as try-with-resources does. */
    @Benchmark
    public CancellableContext withCancelClose() {
        CancellableContext child = parent.withCancel();
        child.close();
        return child;
    }

    /** Derive a child with its own deadline (a timer queue entry), cancel it (the entry is removed). */
    @Benchmark
    public CancellableContext withTimeoutCancel() {
        CancellableContext child = parent.withTimeout(ONE_HOUR);
        child.cancel();
        return child;
    }

    /** Derive a value child (no state of its own, no link in the tree). */
    @Benchmark
    public Context withValue() {
        return parent.withValue(TRACE_ID, "req-42");
    }

    /** Register a done action on a live context and remove it again: what each bridge call does. */
    @Benchmark
    public boolean onDoneRemove() {
        Registration registration = parent.onDone(NOTHING);
        return registration.remove();
    }

    /** The cause {@code cancel()} creates before it cancels, on its own: mostly the stack trace. */
    @Benchmark
    public CancellationException newCancellationException() {
        return new CancellationException("context canceled");
    }

    // ---------------------------------------------------------------------------------------------
    // Memory
    // ---------------------------------------------------------------------------------------------

    /** Contexts per footprint invocation without native calls: the goal's 10^6. */
    static final int LIVE = 1_000_000;
    /** Contexts per footprint invocation with a native call each (slower to make and to free). */
    static final int LIVE_NATIVE = 100_000;

    /**
     * Holds the contexts of one footprint invocation and measures around it: the baseline after GC
     * before, the totals after GC after, printed per context.
     */
    @State(Scope.Thread)
    public static class Live {
        CancellableContext parent;
        Context[] live;
        private long heapBefore;
        private long javaNativeBefore;
        private long valueBlocksBefore;
        private long shimNativeBefore;
        private long fdsBefore;
        private long rssBefore;

        @Setup(Level.Iteration)
        public void before() {
            NativeLibrary.load();
            parent = Context.background().withCancel();
            live = new Context[LIVE];
            settle();
            heapBefore = usedHeap();
            NativeResources resources = NativeResources.snapshot();
            javaNativeBefore = resources.javaNativeBytes();
            valueBlocksBefore = resources.liveValueBlocks();
            shimNativeBefore = resources.shimNativeBytes();
            fdsBefore = resources.shimLiveFds();
            rssBefore = rssBytes();
        }

        @TearDown(Level.Iteration)
        public void after(BenchmarkParams params) {
            long drainStart = System.nanoTime();
            settle();
            awaitValueCleaner();
            long drainMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - drainStart);
            long heap = usedHeap() - heapBefore;
            NativeResources resources = NativeResources.snapshot();
            long javaNative = resources.javaNativeBytes() - javaNativeBefore;
            long valueBlocks = resources.liveValueBlocks() - valueBlocksBefore;
            long shimNative = resources.shimNativeBytes() - shimNativeBefore;
            long fds = resources.shimLiveFds() - fdsBefore;
            long rss = rssBytes() - rssBefore;
            long referenced = 0;
            for (Context context : live) {
                if (context != null) {
                    referenced++;
                }
            }
            String name = params.getBenchmark().substring(params.getBenchmark().lastIndexOf('.') + 1);
            double n = params.getOpsPerInvocation();
            System.out.printf(Locale.ROOT, "%nFOOTPRINT %s contexts=%d referenced=%d heap=%.1f MiB (%.1f B/context)"
                            + " java-native=%.1f B/context value-blocks=%d shim-native=%d B fds=%d"
                            + " rss-growth=%.1f MiB (%.1f B/context) settle=%d ms%n",
                    name, (long) n, referenced, heap / 1048576.0, heap / n, javaNative / n, valueBlocks,
                    shimNative, fds, rss / 1048576.0, rss / n, drainMillis);
            parent.close();
            live = null;
            parent = null;
        }

        private static void settle() {
            for (int i = 0; i < 3; i++) {
                System.gc();
                sleep(50);
            }
        }

        /**
         * Waits (at most 60 s) until the cleaner that frees the native values of unreachable contexts
         * has stopped making progress, so that what remains is what is really retained.
         */
        private static void awaitValueCleaner() {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            long previous = -1;
            while (System.nanoTime() - deadline < 0) {
                long blocks = NativeResources.snapshot().liveValueBlocks();
                if (blocks == previous) {
                    break;
                }
                previous = blocks;
                System.gc();
                sleep(500);
            }
        }

        private static void sleep(long millis) {
            try {
                Thread.sleep(millis);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        private static long usedHeap() {
            return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
        }

        /** The resident set from /proc/self/status (kB), in bytes: includes malloc's overhead. */
        private static long rssBytes() {
            return ProcSelf.rssKib().orElse(0) * 1024;
        }
    }

    /**
     * The memory benchmarks: single shot, one fork each, in a JVM limited to {@code -Xmx1g}. See
     * the class description; the figures are the {@code FOOTPRINT} lines.
     */
    @BenchmarkMode(Mode.SingleShotTime)
    @OutputTimeUnit(TimeUnit.NANOSECONDS)
    @Warmup(iterations = 1)
    @Measurement(iterations = 1)
    @Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx1g"})
    public static class Footprint {
        /** 10^6 live {@code withCancel()} children of one parent. */
        @Benchmark
        @OperationsPerInvocation(LIVE)
        public void liveWithCancel(Live state) {
            CancellableContext parent = state.parent;
            Context[] live = state.live;
            for (int i = 0; i < LIVE; i++) {
                live[i] = parent.withCancel();
            }
        }

        /** 10^6 live {@code withTimeout(1 h)} children: each also holds an entry in the timer's queue. */
        @Benchmark
        @OperationsPerInvocation(LIVE)
        public void liveWithTimeout(Live state) {
            CancellableContext parent = state.parent;
            Context[] live = state.live;
            for (int i = 0; i < LIVE; i++) {
                live[i] = parent.withTimeout(ONE_HOUR);
            }
        }

        /** 10^6 live {@code withValue()} children (value "req-N"), never handed to native code. */
        @Benchmark
        @OperationsPerInvocation(LIVE)
        public void liveWithValue(Live state) {
            CancellableContext parent = state.parent;
            Context[] live = state.live;
            for (int i = 0; i < LIVE; i++) {
                live[i] = parent.withValue(TRACE_ID, "req-" + i);
            }
        }

        /**
         * 10^5 live {@code withValue()} children, each used for one bridge call ({@code nsc_noop_ctx}),
         * which builds its native copy of the values (kept until the context is done or unreachable).
         */
        @Benchmark
        @OperationsPerInvocation(LIVE_NATIVE)
        public void liveWithValueAfterNativeCall(Live state) {
            CancellableContext parent = state.parent;
            Context[] live = state.live;
            for (int i = 0; i < LIVE_NATIVE; i++) {
                Context child = parent.withValue(TRACE_ID, "req-" + i);
                NativeCall.invoke(child, nativescope_h::nsc_noop_ctx);
                live[i] = child;
            }
        }

        /**
         * 10^5 {@code withValue()} children, each used for one bridge call and then dropped, while the
         * parent stays live: ideally nothing remains once the GC and the values cleaner have run.
         */
        @Benchmark
        @OperationsPerInvocation(LIVE_NATIVE)
        public void droppedValueContextsAfterNativeCall(Live state) {
            CancellableContext parent = state.parent;
            for (int i = 0; i < LIVE_NATIVE; i++) {
                NativeCall.invoke(parent.withValue(TRACE_ID, "req-" + i), nativescope_h::nsc_noop_ctx);
            }
        }
    }
}
