package dev.nativescope.examples;

import dev.nativescope.Context;
import dev.nativescope.ContextKey;
import dev.nativescope.reference.EventFd;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.reference.PredictionStats;
import dev.nativescope.reference.ReferencePredictors;
import dev.nativescope.bindings.nativescope_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.Callable;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.StructuredTaskScope;
import java.util.concurrent.StructuredTaskScope.Subtask;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * What the structured-concurrency tests share: real native predictors from the shim (through
 * {@link ReferencePredictors}), a dense workload sized to run for about 30 s when nothing cancels
 * it, and a record of how each predictor call ended, kept by the subtask itself (a cancelled
 * scope discards its subtasks' results, so the tests cannot ask the scope afterwards).
 *
 * <p>Threading: the inputs are read-only after class initialisation and shared by every subtask;
 * each call allocates its own output.
 */
final class NativeWork {
    static final ContextKey<String> TRACE_ID = ContextKey.ofString("trace-id");
    static final int SIZE = 256;
    static final int NSC_OK = nativescope_h.NSC_OK();
    static final int NSC_CANCELED = nativescope_h.NSC_CANCELED();
    static final int NSC_DEADLINE_EXCEEDED = nativescope_h.NSC_DEADLINE_EXCEEDED();

    /**
     * What "promptly" means for a cancelled scope: {@code join()} plus {@code close()}. An
     * uncancelled predictor runs for {@link #UNCANCELLED_RUN} (longer when predictors share a
     * core), so this bound can only hold when the cancel reached native code, while leaving room
     * for a loaded 2-core machine (the latencies themselves are microseconds).
     */
    static final Duration PROMPTLY = Duration.ofSeconds(10);
    /** How long one uncancelled dense predictor runs on an idle core, at the least. */
    static final Duration UNCANCELLED_RUN = Duration.ofSeconds(30);

    private static final Arena INPUT_ARENA = Arena.ofShared(); // lives as long as the test JVM
    static final Demo.Inputs INPUTS;
    /** The repeat count that makes one dense predictor run for {@link #UNCANCELLED_RUN}. */
    static final long LONG_REPEAT;

    static {
        NativeLibrary.load();
        INPUTS = Demo.Inputs.random(INPUT_ARENA, SIZE, 7);
        try {
            Demo.warmUp(INPUT_ARENA, INPUTS);
        } catch (InterruptedException e) {
            throw new ExceptionInInitializerError(e);
        }
        LONG_REPEAT = repeatFor(UNCANCELLED_RUN);
    }

    private NativeWork() {
    }

    /**
     * Initialises this class: loads the library, builds the inputs, links every native path once
     * and measures the workload. Call it from {@code @BeforeAll}: done inside a test's first fork,
     * on a cold JVM, it would eat into the scope's timeout before any predictor reached native code.
     */
    static void warmUp() {
        assertThat(LONG_REPEAT).isPositive();
    }

    /**
     * Measures one dense pass (the fastest of a few short runs, so that a measurement taken while
     * the machine was busy makes the workload longer, never shorter) and scales it to {@code run}.
     */
    private static long repeatFor(Duration run) {
        final int passes = 4;
        long fastestPassNanos = Long.MAX_VALUE;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment y = arena.allocate(ValueLayout.JAVA_FLOAT, (long) SIZE * SIZE);
            for (int attempt = 0; attempt < 3; attempt++) {
                PredictionStats stats = ReferencePredictors.dense(Context.background(), INPUTS.x(), INPUTS.w(),
                        INPUTS.bias(), y, SIZE, SIZE, SIZE, passes, null);
                fastestPassNanos = Math.min(fastestPassNanos, Math.max(1, stats.nativeNanos() / passes));
            }
        }
        return Math.max(1, Math.ceilDiv(run.toNanos(), fastestPassNanos));
    }

    /** The two kinds of threads a {@link StructuredTaskScope} can fork its subtasks on. */
    enum Threads {
        /** The scope's default thread factory: virtual threads. */
        VIRTUAL,
        PLATFORM;

        /** Virtual threads run on this many carriers (the JDK's default scheduler parallelism). */
        static final int CARRIERS = Integer.getInteger("jdk.virtualThreadScheduler.parallelism",
                Runtime.getRuntime().availableProcessors());

        StructuredTaskScope.Configuration configure(StructuredTaskScope.Configuration configuration) {
            return this == VIRTUAL
                    ? configuration // the default: proves that the out-of-the-box scope works
                    : configuration.withThreadFactory(Thread.ofPlatform().name("predictor-", 0).factory());
        }

        /**
         * How many long native predictors a test can fork on these threads so that they all start,
         * and every Java-side subtask still runs while they are in native code.
         *
         * <p>A virtual thread inside a downcall pins its carrier: the JDK cannot unmount it, and does
         * not compensate with another carrier. With more long native subtasks than carriers, the
         * extra ones would not start until others returned, and neither would a subtask that only
         * runs Java code (a failing sibling, an inner scope's owner waking from {@code join()} to
         * close its scope): those would wait for the predictors they are meant to stop. So virtual
         * threads get at most {@code CARRIERS - carriersToLeaveFree} predictors (the Java-side
         * subtasks run one after the other on the carrier left free). Platform threads are
         * scheduled by the OS and all run, whatever their number.
         *
         * @return the number of predictors to fork; 0 when this machine has too few carriers
         */
        int nativeSubtasks(int wanted, int carriersToLeaveFree) {
            return this == VIRTUAL ? Math.max(0, Math.min(wanted, CARRIERS - carriersToLeaveFree)) : wanted;
        }
    }

    /**
     * How one predictor call in a subtask ended.
     *
     * @param name the subtask's name in the test
     * @param virtualThread whether the subtask ran on a virtual thread
     * @param stats what native code reported, or null when it never ran (the bridge refused to
     *              enter native code because the call was cancelled before)
     * @param failure what the call threw, or null when it completed
     * @param interruptedAfter the thread's interrupt status right after the call
     * @param context the subtask's {@link Context#current()}, which the call ran under
     */
    record Outcome(String name, boolean virtualThread, PredictionStats stats, RuntimeException failure,
                   boolean interruptedAfter, Context context) {
        boolean enteredNative() {
            return stats != null;
        }
    }

    /** A native predictor call that reports its stats to {@code onReturn}. */
    @FunctionalInterface
    interface PredictorCall {
        void run(Context context, Consumer<PredictionStats> onReturn);
    }

    /** A dense predictor that runs for {@link #UNCANCELLED_RUN} unless cancelled. */
    static PredictorCall longDense() {
        return dense(LONG_REPEAT);
    }

    static PredictorCall dense(long repeat) {
        return (context, onReturn) -> {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment y = arena.allocate(ValueLayout.JAVA_FLOAT, (long) SIZE * SIZE);
                ReferencePredictors.dense(context, INPUTS.x(), INPUTS.w(), INPUTS.bias(), y, SIZE, SIZE, SIZE, repeat,
                        onReturn);
            }
        };
    }

    /** A predictor blocked on {@code fd} with no timeout of its own. */
    static PredictorCall awaitFd(EventFd fd) {
        return (context, onReturn) -> ReferencePredictors.awaitFd(context, fd.fd(), null, onReturn);
    }

    /**
     * Runs {@code call} under {@link Context#current()} in the calling subtask, records how it
     * ended in {@code outcomes}, and then ends like the call: returns the outcome or rethrows, so
     * the scope sees a cancelled predictor as a failed subtask.
     *
     * @param entering counted down just before the native call, so a test can trigger the cancel
     *                 once the predictors are on their way into native code; may be null
     */
    static Outcome runRecorded(String name, PredictorCall call, Queue<Outcome> outcomes, CountDownLatch entering) {
        Context context = Context.current();
        AtomicReference<PredictionStats> stats = new AtomicReference<>();
        RuntimeException failure = null;
        if (entering != null) {
            entering.countDown();
        }
        try {
            call.run(context, stats::set);
        } catch (RuntimeException e) {
            failure = e;
        }
        Outcome outcome = new Outcome(name, Thread.currentThread().isVirtual(), stats.get(), failure,
                Thread.currentThread().isInterrupted(), context);
        outcomes.add(outcome);
        if (failure != null) {
            throw failure;
        }
        return outcome;
    }

    /**
     * Forks {@code count} long predictors: the first ({@code <prefix>wait-fd}) blocked on
     * {@code neverSignalled}, the others ({@code <prefix>dense-<i>}) compute-bound for 30 s.
     *
     * @return the subtasks, in fork order
     */
    static List<Subtask<Outcome>> forkLongPredictors(StructuredTaskScope<? super Outcome, ?> scope, int count,
                                                     String prefix, EventFd neverSignalled, Queue<Outcome> outcomes,
                                                     CountDownLatch entering) {
        List<Subtask<Outcome>> subtasks = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            String name = prefix + (i == 0 ? "wait-fd" : "dense-" + i);
            PredictorCall call = i == 0 ? awaitFd(neverSignalled) : longDense();
            subtasks.add(scope.fork(() -> runRecorded(name, call, outcomes, entering)));
        }
        return subtasks;
    }

    /**
     * A subtask that fails with {@code failure} once the predictors counted by {@code entering} are
     * on their way into native code and {@code after} has passed, and notes in {@code failedAt}
     * when it failed ({@link System#nanoTime()}).
     */
    static Callable<Object> failingSibling(CountDownLatch entering, Duration after, AtomicLong failedAt,
                                           RuntimeException failure) {
        return () -> {
            entering.await();
            Thread.sleep(after);
            failedAt.set(System.nanoTime());
            throw failure;
        };
    }

    /**
     * Asserts that the scope's interrupt stopped the predictor in native code: it entered native
     * code, did some work, returned no earlier than {@code notBeforeNanoTime} (so nothing else
     * stopped it), and the bridge threw a {@link CancellationException}
     * whose cause is an {@link InterruptedException}, leaving the thread's interrupt status set.
     */
    static void assertStoppedNativelyByInterrupt(Outcome outcome, long notBeforeNanoTime, Threads threads) {
        assertThat(outcome.virtualThread()).as("%s ran on %s threads", outcome.name(), threads)
                .isEqualTo(threads == Threads.VIRTUAL);
        assertCancelledByInterrupt(outcome);
        assertThat(outcome.stats()).as("%s entered native code", outcome.name()).isNotNull();
        assertThat(outcome.stats().status()).as("%s native status", outcome.name()).isEqualTo(NSC_CANCELED);
        assertThat(outcome.stats().checks()).as("%s context checks in native code", outcome.name()).isPositive();
        assertThat(outcome.stats().endNanoTime()).as("%s returned from native code after the trigger", outcome.name())
                .isGreaterThanOrEqualTo(notBeforeNanoTime);
    }

    /** The outcome of a call that the thread's interrupt cancelled, in native code or before it. */
    static void assertCancelledByInterrupt(Outcome outcome) {
        assertThat(outcome.failure()).as("%s: what the call threw", outcome.name())
                .isExactlyInstanceOf(CancellationException.class)
                .hasCauseInstanceOf(InterruptedException.class);
        assertThat(outcome.interruptedAfter()).as("%s: interrupt status kept after the cancelled call", outcome.name())
                .isTrue();
    }
}
