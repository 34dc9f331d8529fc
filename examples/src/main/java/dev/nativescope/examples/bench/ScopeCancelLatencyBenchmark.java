package dev.nativescope.examples.bench;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.reference.PredictionStats;
import dev.nativescope.reference.ReferencePredictors;

import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.CancellationException;
import java.util.concurrent.StructuredTaskScope;
import java.util.concurrent.StructuredTaskScope.Joiner;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

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
import org.openjdk.jmh.infra.IterationParams;
import org.openjdk.jmh.runner.IterationType;

/**
 * How fast structured concurrency stops native code, from the trigger to the return of the
 * downcall, as percentiles ({@code LATENCY ...} lines printed at the end of each trial; JMH's own
 * score is the time per scope, not the latency). Each invocation opens one
 * {@link StructuredTaskScope} whose subtask runs a spinning predictor
 * ({@link ReferencePredictors#spin}) through the bridge:
 * <ul>
 * <li>{@code siblingFailure}: a second subtask waits until the predictor is in native code, takes
 *     the time and throws; the scope cancels and interrupts the predictor's thread.</li>
 * <li>{@code scopeTimeout}: the scope's own {@code withTimeout}; the trigger is the moment the
 *     timeout was due (the JDK starts it inside {@code open}, so the time just before it).</li>
 * <li>{@code contextDeadline}: no scope timeout; the subtask's {@link Context} (bound around the
 *     scope) has a deadline of the same length; the trigger is that deadline.</li>
 * </ul>
 * Goals: sibling failure p50 &lt;= 30 us; a context deadline stops native code at least 3x faster
 * than the scope's own timeout (the JDK's timer was measured firing ~280 us late).
 *
 * <p>Run: {@code java --enable-preview --enable-native-access=ALL-UNNAMED -cp
 * examples/target/nativescope-examples.jar org.openjdk.jmh.Main ScopeCancelLatency}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 4, time = 3)
@Fork(value = 1, jvmArgsAppend = {"--enable-preview", "--enable-native-access=ALL-UNNAMED"})
public class ScopeCancelLatencyBenchmark {
    private static final Duration TIMEOUT = Duration.ofMillis(2);
    private static final long SETTLE_NANOS = TimeUnit.MICROSECONDS.toNanos(200);

    @Param({"platform", "virtual"})
    public String threads;

    private final Histogram siblingFailure = new Histogram(TimeUnit.SECONDS.toNanos(10), 3);
    private final Histogram scopeTimeout = new Histogram(TimeUnit.SECONDS.toNanos(10), 3);
    private final Histogram contextDeadline = new Histogram(TimeUnit.SECONDS.toNanos(10), 3);
    private boolean measuring;

    @Setup(Level.Trial)
    public void load() {
        NativeLibrary.load();
    }

    @Setup(Level.Iteration)
    public void phase(IterationParams iteration) {
        measuring = iteration.getType() == IterationType.MEASUREMENT;
    }

    @TearDown(Level.Trial)
    public void report() {
        print("siblingFailure", siblingFailure);
        print("scopeTimeout", scopeTimeout);
        print("contextDeadline", contextDeadline);
    }

    private StructuredTaskScope.Configuration threads(StructuredTaskScope.Configuration configuration) {
        ThreadFactory factory = threads.equals("virtual") ? Thread.ofVirtual().factory() : Thread.ofPlatform().factory();
        return configuration.withThreadFactory(factory);
    }

    @Benchmark
    public void siblingFailure() throws InterruptedException {
        AtomicReference<PredictionStats> returned = new AtomicReference<>();
        AtomicLong inNative = new AtomicLong();
        AtomicLong trigger = new AtomicLong();
        try (var scope = StructuredTaskScope.open(Joiner.<Object>awaitAllSuccessfulOrThrow(), this::threads)) {
            scope.fork(() -> spin(returned, inNative));
            scope.fork((java.util.concurrent.Callable<Object>) () -> {
                awaitNative(inNative);
                trigger.set(System.nanoTime());
                throw new IllegalStateException("sibling failed");
            });
            try {
                scope.join();
            } catch (StructuredTaskScope.FailedException expected) {
                // the scope has cancelled the spinning subtask
            }
        }
        record(siblingFailure, returned.get(), trigger.get());
    }

    @Benchmark
    public void scopeTimeout() throws InterruptedException {
        AtomicReference<PredictionStats> returned = new AtomicReference<>();
        long due = System.nanoTime() + TIMEOUT.toNanos();
        try (var scope = StructuredTaskScope.open(Joiner.<Object>awaitAll(), cf -> threads(cf).withTimeout(TIMEOUT))) {
            scope.fork(() -> spin(returned, new AtomicLong()));
            try {
                scope.join();
            } catch (StructuredTaskScope.TimeoutException expected) {
                // the scope has cancelled the spinning subtask
            }
        }
        record(scopeTimeout, returned.get(), due);
    }

    @Benchmark
    public void contextDeadline() throws InterruptedException {
        AtomicReference<PredictionStats> returned = new AtomicReference<>();
        try (CancellableContext request = Context.background().withTimeout(TIMEOUT)) {
            long due = request.deadlineNanoTime().orElseThrow();
            request.call(() -> {
                try (var scope = StructuredTaskScope.open(Joiner.<Object>awaitAll(), this::threads)) {
                    scope.fork(() -> spin(returned, new AtomicLong()));
                    scope.join();
                }
                return null;
            });
            record(contextDeadline, returned.get(), due);
        }
    }

    private static Object spin(AtomicReference<PredictionStats> returned, AtomicLong inNative) {
        inNative.set(System.nanoTime());
        try {
            ReferencePredictors.spin(Context.current(), null, returned::set);
        } catch (CancellationException expected) {
            // DeadlineExceededException included: the stats say when native code returned
        }
        return null;
    }

    private static void awaitNative(AtomicLong inNative) throws InterruptedException {
        while (inNative.get() == 0) {
            Thread.onSpinWait();
        }
        long settled = inNative.get() + SETTLE_NANOS;
        while (System.nanoTime() < settled) {
            Thread.sleep(0, 50_000);
        }
    }

    private void record(Histogram histogram, PredictionStats stats, long trigger) {
        // No stats: the subtask was cancelled before it entered native code; nothing to time.
        if (measuring && stats != null && trigger != 0) {
            histogram.recordValue(Math.max(0, stats.endNanoTime() - trigger));
        }
    }

    private void print(String what, Histogram histogram) {
        if (histogram.getTotalCount() == 0) {
            return;
        }
        System.out.printf(Locale.ROOT,
                "LATENCY %s %-15s n=%5d p50=%9.1f p90=%9.1f p99=%9.1f max=%9.1f mean=%9.1f us%n",
                threads, what, histogram.getTotalCount(), histogram.getValueAtPercentile(50) / 1000.0,
                histogram.getValueAtPercentile(90) / 1000.0, histogram.getValueAtPercentile(99) / 1000.0,
                histogram.getMaxValue() / 1000.0, histogram.getMean() / 1000.0);
    }
}
