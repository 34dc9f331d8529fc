package dev.nativescope.benchmarks;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.DeadlineExceededException;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.bindings.nsc_predict_stats;
import dev.nativescope.call.CallMode;
import dev.nativescope.call.NativeCall;
import dev.nativescope.reference.EventFd;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.reference.ReferencePredictors;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.CancellationException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

import org.HdrHistogram.Histogram;
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
import org.openjdk.jmh.infra.BenchmarkParams;
import org.openjdk.jmh.infra.IterationParams;
import org.openjdk.jmh.runner.IterationType;

/**
 * How long a cancel takes to land: from the cancelling action (a {@link CancellableContext#cancel()}
 * or a {@link Thread#interrupt()}) to the return of the downcall it stops, as percentiles.
 *
 * <p>Each JMH invocation is one sample. A worker thread (platform or virtual, {@code worker}
 * parameter) starts a reference predictor through the bridge: {@link ReferencePredictors#spin}
 * without a duration (a busy loop polling the state word) or {@link ReferencePredictors#awaitFd} on
 * an eventfd that is never signalled (blocked in {@code ppoll} on that fd and the context's done
 * fd). The benchmark thread waits until the worker has announced the call, lets
 * {@value #SETTLE_MICROS} us pass so that the worker is surely in native code (and blocked, for
 * the fd), takes {@code System.nanoTime()}, cancels, and waits for the worker to report. Latencies
 * are recorded into HdrHistograms (measurement iterations only) and printed when the trial ends, as
 * {@code LATENCY ...} lines:
 * <ul>
 * <li>{@code native}: to the predictor's {@code nsc_predict_stats.end_ns}, the predictor's last clock read
 *     before it returns; the figure the goals are about;</li>
 * <li>{@code caught}: to the worker catching the {@link CancellationException}, i.e. including
 *     the bridge's way out (hook removal, status translation, exception construction);</li>
 * <li>{@code cancel-call}: how long the cancelling call itself took in the cancelling thread (for
 *     an interrupt, the JDK's interrupt path plus our hook, cancel and eventfd write);</li>
 * <li>{@code state-word}: to the {@code cancel_ns} that {@code nsc_context_cancel} records right
 *     after its compare-and-set of the state word (read by the Downcall before it returns): what
 *     runs in the library before native code can see the cancel;</li>
 * <li>{@code native-after-return}: from the cancelling call's return to the native return, negative
 *     values clamped to 0: how long native code went on after the canceller was done (on the
 *     canceller's CPU it cannot run before the canceller gives the CPU up).</li>
 * </ul>
 * The spin and fd predictors are called as {@link ReferencePredictors#spin} and
 * {@link ReferencePredictors#awaitFd} call them ({@code NativeCall.invoke} in {@link CallMode#AUTO},
 * {@code nsc_predict_spin} / {@code nsc_predict_wait}), so the Downcall can read the state word's time.
 * With {@code -Dcancel.trace=FILE} every measured sample's timestamps, CPUs and the threads'
 * {@code /proc/thread-self/schedstat} deltas (read outside the timed window) go to FILE.{benchmark}.{worker}.csv.
 * The same {@code native} histogram is also split by whether the worker returned on the CPU the
 * cancelling thread ran on ({@code sched_getcpu()} in both), to see where wake-ups land.
 *
 * <p>JMH's own score is the time per sample (settle time included): it is not the latency.
 *
 * <p>Goals: direct cancel of a spinning predictor p50 &lt;= 1 us and p99 &lt;= 10 us; cancel or
 * interrupt of an fd-blocked predictor p50 &lt;= 10 us and p99 &lt;= 50 us.
 *
 * <p>{@code deadlineFd}: the fd-blocked predictor under a {@value #DEADLINE_MILLIS} ms
 * {@code withTimeout} context that nobody cancels; {@code native} is then the lateness,
 * the predictor's {@code nsc_predict_stats.end_ns} minus the deadline, and the trial also counts who was
 * first: the native wait's own timer ({@code native-first}: the context's
 * {@link DeadlineExceededException#detectedNanoTime()} comes after the native return, so the Java
 * timer had not even read its clock when the wait ended: surely ended by the wait itself) or the
 * Java timer thread ({@code timer-first}: it read its clock past the deadline before the native
 * return; an upper bound of the calls it ended, since both timers expire at the same instant and
 * the timer thread's clock read comes before the woken wait's return even when the wait's own
 * timer woke it). Goal (issue 12): lateness within 1.2x of the plain C
 * {@code ppoll} with the same timeout, {@link Floors#ppollDefaultSlack}, measured in the same run;
 * the fd-blocked cancel and interrupt within 1.5x of {@link Floors#eventfdWake}.
 *
 * <p>{@code canceller=park} (default) lets the benchmark thread sleep while it waits, as a thread
 * that cancels and then joins would; {@code canceller=spin} keeps it busy on its CPU instead (an
 * investigation knob: a busy CPU is never idle when the wake-up comes).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 4, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class CancelLatencyBenchmark {
    static final long SETTLE_MICROS = 200;
    static final long DEADLINE_MILLIS = 2;
    private static final Duration DEADLINE = Duration.ofMillis(DEADLINE_MILLIS);
    private static final long SETTLE_NANOS = TimeUnit.MICROSECONDS.toNanos(SETTLE_MICROS);
    private static final MethodHandle SCHED_GETCPU;

    static {
        NativeLibrary.load();
        Linker linker = Linker.nativeLinker();
        SCHED_GETCPU = linker.downcallHandle(linker.defaultLookup().find("sched_getcpu").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT));
    }

    /** The worker's kind: {@code platform} or {@code virtual}. */
    @Param({"platform", "virtual"})
    public String worker;

    /** How the cancelling thread waits around the cancel: {@code park} (sleeps) or {@code spin} (busy). */
    @Param({"park"})
    public String canceller;

    private Worker workerTask;
    private Thread workerThread;
    private EventFd neverSignalled;
    private boolean measuring;
    private boolean spinCanceller;
    private String benchmarkName;

    private final Histogram nativeReturn = histogram();
    private final Histogram caught = histogram();
    private final Histogram cancelCall = histogram();
    private final Histogram nativeSameCpu = histogram();
    private final Histogram nativeOtherCpu = histogram();
    private final Histogram stateWord = histogram();
    /** The *Paired benchmarks: the plain C floor, one sample beside each library sample. */
    private final Histogram floor = histogram();
    private final Histogram floorSameCpu = histogram();
    private final Histogram floorOtherCpu = histogram();
    private long pairs;
    private final Histogram nativeAfterReturn = histogram();
    private final Trace trace = Trace.fromProperty();
    private long migrated;
    /** Samples whose cancel came before the worker was in native code (it was descheduled for 200 us). */
    private long notInNative;
    /** Samples where native code returned anything but NSC_CANCELED, or no exception was caught. */
    private long unexpected;
    /** deadlineFd: the native wait returned before the Java timer detected the deadline. */
    private long nativeFirst;
    /** deadlineFd: the Java timer detected the deadline (and stopped the call) before the native return. */
    private long timerFirst;

    private static Histogram histogram() {
        return new Histogram(TimeUnit.SECONDS.toNanos(10), 3);
    }

    @Setup(Level.Trial)
    public void setUp(BenchmarkParams params) {
        benchmarkName = params.getBenchmark().substring(params.getBenchmark().lastIndexOf('.') + 1);
        spinCanceller = switch (canceller) {
            case "park" -> false;
            case "spin" -> true;
            default -> throw new IllegalArgumentException("canceller must be park or spin, got " + canceller);
        };
        neverSignalled = EventFd.create();
        workerTask = new Worker(Thread.currentThread(), neverSignalled.fd(), spinCanceller);
        workerTask.traced = trace.enabled();
        workerThread = switch (worker) {
            case "platform" -> Thread.ofPlatform().daemon().name("latency-worker").start(workerTask);
            case "virtual" -> Thread.ofVirtual().name("latency-worker").start(workerTask);
            default -> throw new IllegalArgumentException("worker must be platform or virtual, got " + worker);
        };
    }

    @Setup(Level.Iteration)
    public void iteration(IterationParams params) {
        measuring = params.getType() == IterationType.MEASUREMENT;
    }

    @TearDown(Level.Trial)
    public void tearDown() throws InterruptedException {
        workerTask.stop();
        workerThread.join();
        neverSignalled.close();
        String label = String.format(Locale.ROOT, "%s worker=%s canceller=%s benchmark-thread=%s", benchmarkName,
                worker, canceller, Thread.currentThread().isVirtual() ? "virtual" : "platform");
        System.out.println();
        print(label, "native", nativeReturn);
        print(label, "caught", caught);
        print(label, "cancel-call", cancelCall);
        print(label, "native-same-cpu", nativeSameCpu);
        print(label, "native-other-cpu", nativeOtherCpu);
        print(label, "state-word", stateWord);
        print(label, "native-after-return", nativeAfterReturn);
        trace.write(benchmarkName + "." + worker);
        if (floor.getTotalCount() > 0) {
            print(label, "floor", floor);
            print(label, "floor-same-cpu", floorSameCpu);
            print(label, "floor-other-cpu", floorOtherCpu);
            System.out.printf(Locale.ROOT, "LATENCY %s ratio-to-floor p50=%.2f p90=%.2f p99=%.2f load=%s%n", label,
                    ratio(nativeReturn, floor, 50), ratio(nativeReturn, floor, 90), ratio(nativeReturn, floor, 99),
                    loadAverage());
        }
    }

    static String loadAverage() {
        try {
            return java.nio.file.Files.readString(java.nio.file.Path.of("/proc/loadavg")).trim().replace(' ', '/');
        } catch (java.io.IOException e) {
            return "unknown";
        }
    }

    static void print(String label, String what, Histogram histogram) {
        System.out.printf(Locale.ROOT,
                "LATENCY %s %-16s n=%6d p50=%8.2f p90=%8.2f p99=%8.2f p99.9=%8.2f max=%9.2f mean=%8.2f us%n",
                label, what, histogram.getTotalCount(), us(histogram.getValueAtPercentile(50)),
                us(histogram.getValueAtPercentile(90)), us(histogram.getValueAtPercentile(99)),
                us(histogram.getValueAtPercentile(99.9)), us(histogram.getMaxValue()), histogram.getMean() / 1000.0);
    }

    private static double ratio(Histogram measured, Histogram floor, double percentile) {
        return (double) measured.getValueAtPercentile(percentile) / Math.max(1, floor.getValueAtPercentile(percentile));
    }

    private static double us(long nanos) {
        return nanos / 1000.0;
    }

    /** (a) {@code CancellableContext.cancel()} of a spinning predictor. */
    @Benchmark
    public void cancelSpin() {
        sample(false, false);
    }

    /** (b) {@code CancellableContext.cancel()} of a predictor blocked on an fd. */
    @Benchmark
    public void cancelFd() {
        sample(true, false);
    }

    /** (c)/(d) {@code Thread.interrupt()} of the worker blocked on an fd. */
    @Benchmark
    public void interruptFd() {
        sample(true, true);
    }

    /** (e) {@code Thread.interrupt()} of the worker spinning. */
    @Benchmark
    public void interruptSpin() {
        sample(false, true);
    }

    /**
     * (a) beside its floor: each invocation takes one {@link #cancelSpin} sample and one
     * {@link Floors#spinStop} sample (a C spinner stopped by a plain store, same choreography), in
     * alternating order, so both see the same load; printed as {@code native} and {@code floor}.
     */
    @Benchmark
    public void cancelSpinPaired() {
        paired(false, false);
    }

    /** (e) beside the same floor as {@link #cancelSpinPaired}. */
    @Benchmark
    public void interruptSpinPaired() {
        paired(false, true);
    }

    /**
     * (b) beside an eventfd wake with the worker's choreography ({@code JniNoop.wokenEventfdWake}: the C
     * waiter woken per sample, as the worker is), alternated as in {@link #cancelSpinPaired}.
     */
    @Benchmark
    public void cancelFdPaired() {
        paired(true, false);
    }

    /** (c)/(d) beside the same floor as {@link #cancelFdPaired}. */
    @Benchmark
    public void interruptFdPaired() {
        paired(true, true);
    }

    private void paired(boolean fd, boolean interrupt) {
        boolean floorFirst = (pairs++ & 1) == 0;
        if (floorFirst) {
            floorSample(fd);
        }
        sample(fd, interrupt);
        if (!floorFirst) {
            floorSample(fd);
        }
    }

    private void floorSample(boolean fd) {
        JniNoop.ensureLoaded();
        long nanos = fd ? JniNoop.wokenEventfdWake(SETTLE_NANOS) : JniNoop.spinStop(SETTLE_NANOS);
        if (nanos < 0 || !measuring) {
            return;
        }
        floor.recordValue(nanos);
        if (!fd) {
            (JniNoop.spinStopSameCpu() ? floorSameCpu : floorOtherCpu).recordValue(nanos);
        }
    }

    /**
     * (f) An fd-blocked predictor under a {@value #DEADLINE_MILLIS} ms deadline that nobody cancels:
     * {@code native} is the lateness (native return - deadline).
     */
    @Benchmark
    public void deadlineFd() {
        try (CancellableContext context = Context.background().withTimeout(DEADLINE)) {
            long deadline = context.deadlineNanoTime().orElseThrow();
            long seq = workerTask.start(context, true);
            workerTask.awaitDone(seq);
            if (!measuring) {
                return;
            }
            if (workerTask.nativeEnd == 0) {
                notInNative++;
                return;
            }
            if (workerTask.status != 2 /* NSC_DEADLINE_EXCEEDED */ || workerTask.caughtAt == 0
                    || !(context.cause() instanceof DeadlineExceededException expired)) {
                unexpected++;
                return;
            }
            long late = Math.max(0, workerTask.nativeEnd - deadline);
            nativeReturn.recordValue(late);
            caught.recordValue(Math.max(0, workerTask.caughtAt - deadline));
            (workerTask.cpuAfter == cpu() ? nativeSameCpu : nativeOtherCpu).recordValue(late);
            if (expired.detectedNanoTime() - workerTask.nativeEnd >= 0) {
                nativeFirst++;
            } else {
                timerFirst++;
            }
        }
    }

    private void sample(boolean fd, boolean interrupt) {
        // An interrupt needs no cancellable context: the bridge cancels the call's own frame.
        CancellableContext cancellable = interrupt ? null : Context.background().withCancel();
        Context context = interrupt ? Context.background() : cancellable;
        try {
            long seq = workerTask.start(context, fd);
            workerTask.awaitInCall(seq);
            long settleUntil = System.nanoTime() + SETTLE_NANOS;
            if (spinCanceller) {
                while (System.nanoTime() - settleUntil < 0) {
                    Thread.onSpinWait();
                }
            } else {
                long left;
                while ((left = settleUntil - System.nanoTime()) > 0) {
                    LockSupport.parkNanos(left);
                }
            }

            long[] cancellerSched = trace.enabled() ? Trace.schedstat() : null;
            int cancellerCpu = cpu();
            long start = System.nanoTime();
            if (interrupt) {
                workerThread.interrupt();
            } else {
                cancellable.cancel();
            }
            long cancelReturned = System.nanoTime();
            workerTask.awaitDone(seq);

            if (!measuring) {
                return;
            }
            if (workerTask.nativeEnd == 0) {
                notInNative++;
                return;
            }
            if (workerTask.status != 1 /* NSC_CANCELED */ || workerTask.caughtAt == 0) {
                unexpected++;
                return;
            }
            long nativeNanos = Math.max(0, workerTask.nativeEnd - start);
            nativeReturn.recordValue(nativeNanos);
            caught.recordValue(Math.max(0, workerTask.caughtAt - start));
            cancelCall.recordValue(cancelReturned - start);
            if (workerTask.stateAt != 0) {
                stateWord.recordValue(Math.max(0, workerTask.stateAt - start));
            }
            nativeAfterReturn.recordValue(Math.max(0, workerTask.nativeEnd - cancelReturned));
            if (cancellerSched != null) {
                trace.add(workerTask, start, cancelReturned, cancellerCpu, cancellerSched, Trace.schedstat());
            }
            (workerTask.cpuAfter == cancellerCpu ? nativeSameCpu : nativeOtherCpu).recordValue(nativeNanos);
            if (workerTask.cpuAfter != workerTask.cpuBefore) {
                migrated++;
            }
        } finally {
            if (cancellable != null) {
                cancellable.close();
            }
        }
    }

    static int cpu() {
        try {
            return (int) SCHED_GETCPU.invokeExact();
        } catch (Throwable e) {
            throw new IllegalStateException("sched_getcpu", e);
        }
    }

    /**
     * The plain C floors the goals are ratios to, measured by the same {@code ./run bench
     * CancelLatency} run (through JNI, {@link JniNoop}; no Java thread and no nativescope in the
     * measured path): {@code eventfdWake} (a C waiter thread blocked in {@code poll} on an eventfd,
     * woken by this thread's {@code write} after the same {@value #SETTLE_MICROS} us settle; the
     * floor of {@code cancelFd} / {@code interruptFd}), {@code ppollDefaultSlack} (one {@code ppoll}
     * with a {@value #DEADLINE_MILLIS} ms timespec and the thread's default 50 us timer slack: the
     * floor of {@code deadlineFd}'s lateness) and {@code ppollTightSlack} (the same with the 1 ns
     * slack the shim's timed waits use: what the shim's own timer can reach). Printed as
     * {@code LATENCY CancelLatencyBenchmark.Floors...} lines.
     */
    @State(Scope.Benchmark)
    @BenchmarkMode(Mode.AverageTime)
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    public static class Floors {
        private final Histogram wake = histogram();
        private final Histogram ppollDefault = histogram();
        private final Histogram ppollTight = histogram();
        private final Histogram spinStop = histogram();
        private final Histogram spinStopSameCpu = histogram();
        private final Histogram spinStopOtherCpu = histogram();
        private boolean measuring;
        private long errors;

        @Setup(Level.Trial)
        public void load() {
            JniNoop.ensureLoaded();
        }

        @Setup(Level.Iteration)
        public void iteration(IterationParams params) {
            measuring = params.getType() == IterationType.MEASUREMENT;
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            System.out.println();
            String label = "CancelLatencyBenchmark.Floors load=" + loadAverage();
            // JMH gives each benchmark method its own state: print only what this one measured.
            for (var entry : java.util.Map.of("eventfd-wake", wake, "ppoll-default-slack-late", ppollDefault,
                    "ppoll-1ns-slack-late", ppollTight, "spin-stop", spinStop, "spin-stop-same-cpu", spinStopSameCpu,
                    "spin-stop-other-cpu", spinStopOtherCpu).entrySet()) {
                if (entry.getValue().getTotalCount() > 0) {
                    print(label, entry.getKey(), entry.getValue());
                }
            }
            if (errors > 0) {
                System.out.printf(Locale.ROOT, "LATENCY %s errors=%d%n", label, errors);
            }
        }

        private void record(Histogram histogram, long nanos) {
            if (nanos < 0) {
                errors++;
            } else if (measuring) {
                histogram.recordValue(nanos);
            }
        }

        @Benchmark
        public void eventfdWake() {
            record(wake, JniNoop.eventfdWake(SETTLE_NANOS));
        }

        /** The floor of {@code cancelSpin}: a C spinner stopped by a plain store, same choreography. */
        @Benchmark
        public void spinStop() {
            long nanos = JniNoop.spinStop(SETTLE_NANOS);
            record(spinStop, nanos);
            if (nanos >= 0 && measuring) {
                (JniNoop.spinStopSameCpu() ? spinStopSameCpu : spinStopOtherCpu).recordValue(nanos);
            }
        }

        @Benchmark
        public void ppollDefaultSlack() {
            record(ppollDefault, JniNoop.ppollLate(TimeUnit.MILLISECONDS.toNanos(DEADLINE_MILLIS), 0));
        }

        @Benchmark
        public void ppollTightSlack() {
            record(ppollTight, JniNoop.ppollLate(TimeUnit.MILLISECONDS.toNanos(DEADLINE_MILLIS), 1));
        }
    }

    /**
     * The thread that makes the cancelled calls. One sample at a time: the benchmark thread posts a
     * request ({@link #start}), the worker announces that it is about to enter the call, makes it,
     * records what it saw and posts the request's number back ({@link #awaitDone}). Fields written by
     * the worker before the volatile {@link #doneSeq} write are read by the benchmark thread after it
     * has read that write.
     */
    static final class Worker implements Runnable {
        private final Thread benchmarkThread;
        private final int fd;
        private final boolean spinWaits;
        /** The predictors' stats, reused by every call (shared: an offloaded call writes it on a native thread). */
        private final MemorySegment stats = nsc_predict_stats.allocate(Arena.ofShared());
        private final MemorySegment value = Arena.ofShared().allocate(ValueLayout.JAVA_LONG);
        private final NativeCall.Downcall spinCall = this::spinCall;
        private final NativeCall.Downcall fdCall = this::fdCall;

        private volatile long requestSeq;
        private volatile long inCallSeq;
        private volatile long doneSeq;
        private volatile boolean stopped;
        private volatile Thread thread;
        private Context context;
        private boolean fdPredictor;

        long nativeEnd;
        int status;
        long caughtAt;
        int cpuBefore;
        int cpuAfter;
        /** The struct's cancel_ns on the System.nanoTime() clock, or 0 when not cancelled. */
        long stateAt;
        long[] schedBefore;
        long[] schedAfter;
        /** Traced only: the CPU and schedstat of the thread running the downcall (a native thread when offloaded), around it. */
        int downcallCpuBefore;
        int downcallCpuAfter;
        long[] downcallSchedBefore;
        long[] downcallSchedAfter;
        boolean traced;

        Worker(Thread benchmarkThread, int fd, boolean spinWaits) {
            this.benchmarkThread = benchmarkThread;
            this.fd = fd;
            this.spinWaits = spinWaits;
        }

        long start(Context context, boolean fdPredictor) {
            this.context = context;
            this.fdPredictor = fdPredictor;
            long seq = requestSeq + 1;
            requestSeq = seq;
            LockSupport.unpark(thread);
            return seq;
        }

        void awaitInCall(long seq) {
            int spins = 0;
            while (inCallSeq != seq) {
                if (++spins > 1_000) {
                    Thread.yield();
                }
                Thread.onSpinWait();
            }
        }

        void awaitDone(long seq) {
            while (doneSeq != seq) {
                if (spinWaits) {
                    Thread.onSpinWait();
                } else {
                    LockSupport.park(this);
                }
            }
        }

        void stop() {
            stopped = true;
            LockSupport.unpark(thread);
        }

        private int spinCall(MemorySegment ctx) {
            downcallBefore();
            int result = nativescope_h.nsc_predict_spin(ctx, -1, stats);
            stateAt = stateWordNanoTime(ctx);
            downcallAfter();
            return result;
        }

        private int fdCall(MemorySegment ctx) {
            downcallBefore();
            int result = nativescope_h.nsc_predict_wait(ctx, fd, -1, value, stats);
            stateAt = stateWordNanoTime(ctx);
            downcallAfter();
            return result;
        }

        /** Traced only, on the thread that runs the downcall, before the timed window opens (the canceller settles 200 us). */
        private void downcallBefore() {
            if (traced) {
                downcallSchedBefore = Trace.schedstat();
                downcallCpuBefore = cpu();
            }
        }

        /** Traced only, after the predictor's end_ns: outside the timed window. */
        private void downcallAfter() {
            if (traced) {
                downcallCpuAfter = cpu();
                downcallSchedAfter = Trace.schedstat();
            }
        }

        /** {@code cancel_ns} (offset 24 of nsc_context) on the System.nanoTime() clock; 0 if not cancelled. */
        private static long stateWordNanoTime(MemorySegment ctx) {
            long cancelNs = ctx.reinterpret(32).get(ValueLayout.JAVA_LONG, 24);
            return cancelNs == 0 ? 0 : cancelNs - NativeLibrary.toMonotonicNanos(0);
        }

        private void readStats() {
            // start_ns stays 0 when the bridge refused to enter native code (context already done).
            if (nsc_predict_stats.start_ns(stats) != 0) {
                nativeEnd = nsc_predict_stats.end_ns(stats) - NativeLibrary.toMonotonicNanos(0);
                status = nsc_predict_stats.status(stats);
            }
        }

        @Override
        public void run() {
            thread = Thread.currentThread();
            long seen = 0;
            while (true) {
                long seq;
                while ((seq = requestSeq) == seen) {
                    if (stopped) {
                        return;
                    }
                    LockSupport.park(this);
                }
                seen = seq;
                nativeEnd = 0;
                status = -1;
                caughtAt = 0;
                stateAt = 0;
                nsc_predict_stats.start_ns(stats, 0);
                schedBefore = traced ? Trace.schedstat() : null;
                cpuBefore = cpu();
                inCallSeq = seq;
                try {
                    NativeCall.invoke(context, fdPredictor ? "nsc_predict_wait" : "nsc_predict_spin", CallMode.AUTO,
                            fdPredictor ? fdCall : spinCall);
                } catch (CancellationException expected) {
                    caughtAt = System.nanoTime();
                }
                cpuAfter = cpu();
                readStats();
                schedAfter = traced ? Trace.schedstat() : null;
                // The interrupt that cancelled the call stays pending: clear it for the next sample.
                Thread.interrupted();
                doneSeq = seq;
                LockSupport.unpark(benchmarkThread);
            }
        }
    }

    /**
     * Per-sample timestamps for {@code -Dcancel.trace=FILE}: one CSV row per measured sample, in
     * memory until the trial ends. Columns (ns on the System.nanoTime() clock, relative to the cancel's
     * start): state word written, cancel call returned, native return, exception caught; CPUs of the
     * canceller (at the cancel), of the worker (before and after the call) and of the thread running the
     * downcall (the worker inline, a native thread offloaded; before and after it); the canceller's, the
     * worker's and the downcall thread's schedstat deltas (run ns, runnable-but-waiting ns, context
     * switches) around the sample.
     */
    static final class Trace {
        private static final int MAX_ROWS = 200_000;
        private final String prefix;
        private final StringBuilder rows = new StringBuilder();
        private int count;

        private Trace(String prefix) {
            this.prefix = prefix;
        }

        static Trace fromProperty() {
            return new Trace(System.getProperty("cancel.trace"));
        }

        boolean enabled() {
            return prefix != null;
        }

        /** {@return run ns, wait ns and timeslices of the calling thread, from /proc/thread-self/schedstat} */
        static long[] schedstat() {
            try {
                String[] fields = Files.readString(Path.of("/proc/thread-self/schedstat")).trim().split(" ");
                return new long[] {Long.parseLong(fields[0]), Long.parseLong(fields[1]), Long.parseLong(fields[2])};
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        void add(Worker w, long start, long cancelReturned, int cancellerCpu, long[] cancellerBefore,
                 long[] cancellerAfter) {
            if (count++ >= MAX_ROWS) {
                return;
            }
            rows.append(w.stateAt == 0 ? -1 : w.stateAt - start).append(',')
                    .append(cancelReturned - start).append(',')
                    .append(w.nativeEnd - start).append(',')
                    .append(w.caughtAt - start).append(',')
                    .append(cancellerCpu).append(',').append(w.cpuBefore).append(',').append(w.cpuAfter)
                    .append(',').append(w.downcallCpuBefore).append(',').append(w.downcallCpuAfter);
            for (long[][] pair : new long[][][] {{cancellerBefore, cancellerAfter}, {w.schedBefore, w.schedAfter},
                    {w.downcallSchedBefore, w.downcallSchedAfter}}) {
                for (int i = 0; i < 3; i++) {
                    rows.append(',').append(pair[1][i] - pair[0][i]);
                }
            }
            rows.append('\n');
        }

        void write(String name) {
            if (prefix == null) {
                return;
            }
            try (PrintWriter out = new PrintWriter(Files.newBufferedWriter(Path.of(prefix + "." + name + ".csv")))) {
                out.println("state,cancel_return,native,caught,canceller_cpu,worker_cpu_before,worker_cpu_after,"
                        + "downcall_cpu_before,downcall_cpu_after,canceller_run,canceller_wait,canceller_switches,"
                        + "worker_run,worker_wait,worker_switches,downcall_run,downcall_wait,downcall_switches");
                out.print(rows);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }
}
