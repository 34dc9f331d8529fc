package dev.nativescope.examples;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.ContextKey;
import dev.nativescope.DeadlineExceededException;
import dev.nativescope.diagnostics.Diagnostics;
import dev.nativescope.reference.EventFd;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.reference.PredictionStats;
import dev.nativescope.reference.ReferencePredictors;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.StructuredTaskScope;
import java.util.concurrent.StructuredTaskScope.Joiner;
import java.util.concurrent.atomic.AtomicLong;

/**
 * {@code ./run demo}: native predictors under a {@link StructuredTaskScope}, stopped by the scope's
 * timeout, by a failing sibling, and by a context deadline. Each scenario forks compute-bound
 * predictors (dense layers that would run for about 30 s) sharing one input buffer, and one
 * predictor blocked on an fd that is never signalled; it prints what each subtask did, what
 * cancelled it, how long after the trigger its native code returned, and the trace id that native
 * code read from its context. {@code ./run demo --stuck} runs {@link StuckDemo} instead.
 *
 * <p>The scopes use their default thread factory: virtual threads. The predictors' native calls are
 * offloaded to native threads ({@code CallMode.AUTO}, the reference predictors' mode), so they never
 * pin a carrier and the failing sibling and the scopes' owners run while they compute. The
 * scope-timeout rows take milliseconds from the timeout to native return (the JDK's timer must get a
 * CPU from the spinning predictors, then interrupt each subtask); the context-deadline rows take
 * microseconds, because native code reads the deadline itself: to make a scope's timeout stop native
 * code that fast, carry it in the context, {@code Context.current().withTimeout(d)} around the scope
 * (see README, "Structured concurrency").
 */
public final class Demo {
    static final ContextKey<String> TRACE_ID = ContextKey.ofString("trace-id");
    private static final int SIZE = 256;
    /** About 30 s of work per predictor on one core of a 2-core VM. */
    private static final long REPEAT = 3000;

    private Demo() {
    }

    /** One subtask's report. */
    record Row(String scenario, String subtask, String outcome, String cause, long triggerToNativeReturnNanos,
               long nativeMillis, long workUnits, String traceId) {
    }

    /** The moment something asked the subtasks to stop, on the {@link System#nanoTime()} clock. */
    static final class Trigger {
        private final AtomicLong nanoTime = new AtomicLong(Long.MIN_VALUE);

        void setOnce(long value) {
            nanoTime.compareAndSet(Long.MIN_VALUE, value);
        }

        long get() {
            return nanoTime.get();
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("--stuck")) {
            // Before the first call: the dump shows the values of the demo's own contexts.
            System.setProperty(Diagnostics.SHOW_VALUES_PROPERTY, "true");
            System.setProperty(Diagnostics.START_TIMES_PROPERTY, "true");
            StuckDemo.run(args);
            return;
        }
        NativeLibrary.load();
        Duration timeout = Duration.ofMillis(args.length > 0 ? Long.parseLong(args[0]) : 300);
        List<Row> rows = new ArrayList<>();
        try (Arena arena = Arena.ofShared()) {
            Inputs inputs = Inputs.random(arena, SIZE, 42);
            warmUp(arena, inputs);
            rows.addAll(scopeTimeout(arena, inputs, timeout));
            rows.addAll(siblingFailure(arena, inputs, timeout));
            rows.addAll(contextDeadline(arena, inputs, timeout));
        }
        System.out.println();
        System.out.println("nativescope demo: JDK " + Runtime.version() + ", " + Runtime.getRuntime().availableProcessors()
                + " CPUs, dense " + SIZE + "x" + SIZE + "x" + SIZE + " x " + REPEAT + " passes per predictor"
                + " (seconds of work each), subtasks on the scopes' default virtual threads, native calls offloaded"
                + " to native threads (CallMode.AUTO)");
        System.out.println(format(rows));
    }

    /**
     * Runs every native path of the scenarios once, so that they measure cancellation rather than a
     * cold JVM: the first call of each predictor loads and links its downcall (and the first cancel
     * the cancel downcall, in the cancelling thread), which took over 200 ms on a loaded 2-core
     * machine. Without this, a short timeout (say {@code 200}) could cancel the first scenario's
     * subtasks before they ever reached native code. The JDK's scope timer is started the same way.
     */
    static void warmUp(Arena arena, Inputs inputs) throws InterruptedException {
        MemorySegment y = arena.allocate(ValueLayout.JAVA_FLOAT, (long) SIZE * SIZE);
        ReferencePredictors.dense(Context.background(), inputs.x(), inputs.w(), inputs.bias(), y, SIZE, SIZE, SIZE, 1, null);
        try (EventFd neverSignalled = EventFd.create()) {
            ReferencePredictors.awaitFd(Context.background(), neverSignalled.fd(), Duration.ZERO, null);
        }
        // An interrupt cancels the spin, in native code or just before it, both through the cancel path.
        Thread spinner = Thread.ofPlatform().start(() -> {
            try {
                ReferencePredictors.spin(Context.background(), null, null);
            } catch (CancellationException expected) {
                // what the interrupt is for
            }
        });
        spinner.interrupt();
        spinner.join();
        // The JDK starts the timer behind scope timeouts on first use, inside the first open(). The
        // timeout must not expire: with no subtask join() returns at once, but a loaded machine can
        // take longer than a short timeout to get there, and join() would then throw.
        try (var scope = StructuredTaskScope.open(Joiner.<Object>awaitAll(), cf -> cf.withTimeout(Duration.ofMinutes(1)))) {
            scope.join();
        }
    }

    /** The shared input of every compute predictor: x, w and bias, read-only once filled. */
    record Inputs(MemorySegment x, MemorySegment w, MemorySegment bias) {
        static Inputs random(Arena arena, int size, long seed) {
            Random random = new Random(seed);
            MemorySegment x = arena.allocate(ValueLayout.JAVA_FLOAT, (long) size * size);
            MemorySegment w = arena.allocate(ValueLayout.JAVA_FLOAT, (long) size * size);
            MemorySegment bias = arena.allocate(ValueLayout.JAVA_FLOAT, size);
            for (long i = 0; i < (long) size * size; i++) {
                x.setAtIndex(ValueLayout.JAVA_FLOAT, i, random.nextFloat() - 0.5f);
                w.setAtIndex(ValueLayout.JAVA_FLOAT, i, random.nextFloat() - 0.5f);
            }
            for (int i = 0; i < size; i++) {
                bias.setAtIndex(ValueLayout.JAVA_FLOAT, i, random.nextFloat());
            }
            return new Inputs(x, w, bias);
        }
    }

    static List<Row> scopeTimeout(Arena arena, Inputs inputs, Duration timeout) throws Exception {
        String scenario = "scope timeout " + timeout.toMillis() + " ms";
        Trigger trigger = new Trigger();
        ConcurrentLinkedQueue<Row> rows = new ConcurrentLinkedQueue<>();
        Context request = Context.background().withValue(TRACE_ID, "req-timeout-1");
        request.call(() -> {
            // Before open(): the scope's timer starts counting inside open(), which can take tens of
            // milliseconds on a cold JVM; a trigger taken afterwards would be later than the expiry.
            trigger.setOnce(System.nanoTime() + timeout.toNanos());
            try (EventFd neverSignalled = EventFd.create();
                 var scope = StructuredTaskScope.open(Joiner.<Boolean>awaitAll(), cf -> cf.withTimeout(timeout))) {
                                for (int i = 0; i < 3; i++) {
                    String name = "dense-" + i;
                    scope.fork(() -> rows.add(dense(scenario, name, arena, inputs, trigger, "scope timed out")));
                }
                scope.fork(() -> rows.add(awaitFd(scenario, "wait-fd", neverSignalled, trigger, "scope timed out")));
                try {
                    scope.join();
                } catch (StructuredTaskScope.TimeoutException expected) {
                    // The scope cancelled its subtasks; their rows say how fast native code stopped.
                }
                scope.close();
            }
            return null;
        });
        return sorted(rows);
    }

    static List<Row> siblingFailure(Arena arena, Inputs inputs, Duration timeout) throws Exception {
        String scenario = "sibling fails at " + timeout.toMillis() / 2 + " ms";
        Trigger trigger = new Trigger();
        ConcurrentLinkedQueue<Row> rows = new ConcurrentLinkedQueue<>();
        Context request = Context.background().withValue(TRACE_ID, "req-sibling-2");
        request.call(() -> {
            try (EventFd neverSignalled = EventFd.create();
                 var scope = StructuredTaskScope.open(Joiner.<Object>awaitAllSuccessfulOrThrow())) {
                                for (int i = 0; i < 2; i++) {
                    String name = "dense-" + i;
                    scope.fork(() -> rows.add(dense(scenario, name, arena, inputs, trigger, "sibling failed")));
                }
                scope.fork(() -> rows.add(awaitFd(scenario, "wait-fd", neverSignalled, trigger, "sibling failed")));
                scope.fork((java.util.concurrent.Callable<Object>) () -> {
                    Thread.sleep(timeout.toMillis() / 2);
                    trigger.setOnce(System.nanoTime());
                    throw new IllegalStateException("tokenizer failed");
                });
                try {
                    scope.join();
                } catch (StructuredTaskScope.FailedException expected) {
                    rows.add(new Row(scenario, "tokenizer", "failed", expected.getCause().getMessage(), 0, 0, 0, "-"));
                }
                scope.close();
            }
            return null;
        });
        return sorted(rows);
    }

    static List<Row> contextDeadline(Arena arena, Inputs inputs, Duration timeout) throws Exception {
        String scenario = "context deadline " + timeout.toMillis() + " ms";
        Trigger trigger = new Trigger();
        ConcurrentLinkedQueue<Row> rows = new ConcurrentLinkedQueue<>();
        try (CancellableContext request = Context.background().withValue(TRACE_ID, "req-deadline-3").withTimeout(timeout)) {
            trigger.setOnce(request.deadlineNanoTime().orElseThrow());
            request.call(() -> {
                try (EventFd neverSignalled = EventFd.create();
                     var scope = StructuredTaskScope.open(Joiner.<Boolean>awaitAll())) {
                                        for (int i = 0; i < 2; i++) {
                        String name = "dense-" + i;
                        scope.fork(() -> rows.add(dense(scenario, name, arena, inputs, trigger, "deadline")));
                    }
                    scope.fork(() -> rows.add(awaitFd(scenario, "wait-fd", neverSignalled, trigger, "deadline")));
                    scope.join();
                }
                    return null;
            });
        }
        return sorted(rows);
    }

    private static Row dense(String scenario, String name, Arena arena, Inputs inputs, Trigger trigger, String stopper) {
        MemorySegment y = arena.allocate(ValueLayout.JAVA_FLOAT, (long) SIZE * SIZE);
        PredictionStats[] stats = new PredictionStats[1];
        try {
            ReferencePredictors.dense(Context.current(), inputs.x(), inputs.w(), inputs.bias(), y,
                    SIZE, SIZE, SIZE, REPEAT, s -> stats[0] = s);
            return report(scenario, name, "completed", "-", stats[0], trigger);
        } catch (DeadlineExceededException e) {
            return report(scenario, name, "deadline exceeded", stopper, stats[0], trigger);
        } catch (CancellationException e) {
            return report(scenario, name, "canceled", stopper + causeSuffix(e), stats[0], trigger);
        }
    }

    private static Row awaitFd(String scenario, String name, EventFd fd, Trigger trigger, String stopper) {
        PredictionStats[] stats = new PredictionStats[1];
        try {
            ReferencePredictors.awaitFd(Context.current(), fd.fd(), null, s -> stats[0] = s);
            return report(scenario, name, "completed", "-", stats[0], trigger);
        } catch (DeadlineExceededException e) {
            return report(scenario, name, "deadline exceeded", stopper, stats[0], trigger);
        } catch (CancellationException e) {
            return report(scenario, name, "canceled", stopper + causeSuffix(e), stats[0], trigger);
        }
    }

    private static String causeSuffix(CancellationException e) {
        return e.getCause() instanceof InterruptedException ? " (interrupt)" : "";
    }

    private static Row report(String scenario, String name, String outcome, String cause, PredictionStats stats,
                              Trigger trigger) {
        if (stats == null) {
            return new Row(scenario, name, outcome, cause + " before native entry", 0, 0, 0, "-");
        }
        long latency = trigger.get() == Long.MIN_VALUE ? 0 : stats.endNanoTime() - trigger.get();
        return new Row(scenario, name, outcome, cause, latency, stats.nativeNanos() / 1_000_000, stats.workUnits(),
                stats.traceId().orElse("-"));
    }

    private static List<Row> sorted(ConcurrentLinkedQueue<Row> rows) {
        return rows.stream().sorted(java.util.Comparator.comparing(Row::subtask)).toList();
    }

    static String format(List<Row> rows) {
        String[] header = {"scenario", "subtask", "outcome", "stopped by", "trigger -> native return", "native ran",
            "tiles", "trace-id (read natively)"};
        List<String[]> cells = new ArrayList<>();
        cells.add(header);
        for (Row row : rows) {
            cells.add(new String[] {row.scenario(), row.subtask(), row.outcome(), row.cause(),
                row.triggerToNativeReturnNanos() == 0 ? "-" : micros(row.triggerToNativeReturnNanos()),
                row.nativeMillis() + " ms", String.valueOf(row.workUnits()), row.traceId()});
        }
        int[] widths = new int[header.length];
        for (String[] line : cells) {
            for (int i = 0; i < line.length; i++) {
                widths[i] = Math.max(widths[i], line[i].length());
            }
        }
        StringBuilder out = new StringBuilder();
        for (int r = 0; r < cells.size(); r++) {
            String[] line = cells.get(r);
            for (int i = 0; i < line.length; i++) {
                out.append(i == 0 ? "" : " | ").append(String.format(Locale.ROOT, "%-" + widths[i] + "s", line[i]));
            }
            out.append('\n');
            if (r == 0) {
                for (int i = 0; i < widths.length; i++) {
                    out.append(i == 0 ? "" : "-+-").append("-".repeat(widths[i]));
                }
                out.append('\n');
            }
        }
        return out.toString();
    }

    private static String micros(long nanos) {
        return String.format(Locale.ROOT, "%,.1f us", nanos / 1000.0);
    }
}
