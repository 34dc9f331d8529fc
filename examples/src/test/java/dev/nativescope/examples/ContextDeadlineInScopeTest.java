package dev.nativescope.examples;

import dev.nativescope.call.OffloadMode;
import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.DeadlineExceededException;
import dev.nativescope.reference.EventFd;
import dev.nativescope.examples.NativeWork.Outcome;
import dev.nativescope.examples.NativeWork.Threads;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.StructuredTaskScope;
import java.util.concurrent.StructuredTaskScope.Joiner;
import java.util.concurrent.StructuredTaskScope.Subtask;
import java.util.concurrent.TimeoutException;

import static dev.nativescope.examples.NativeWork.NSC_DEADLINE_EXCEEDED;
import static dev.nativescope.examples.NativeWork.PROMPTLY;
import static dev.nativescope.examples.NativeWork.TRACE_ID;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * A context deadline bound around a scope stops the forks' native predictors by itself: the scope
 * has no timeout, is never cancelled and interrupts nobody; the deadline reaches native code
 * through the {@code nsc_context} (its timer cancels the calls, and native code reads the clock),
 * and each call ends with a {@link DeadlineExceededException}.
 */
@OffloadMode
class ContextDeadlineInScopeTest extends NativeScopeTest {
    private static final Duration DEADLINE = Duration.ofMillis(400);

    @ParameterizedTest
    @EnumSource(Threads.class)
    void contextDeadlineStopsForkedPredictorsWithoutTheScope(Threads threads) throws Exception {
        // A blocked predictor and compute predictors; no Java-side subtask needs a carrier meanwhile
        // (the deadline timer is a platform thread), so on virtual threads they may pin every carrier.
        int predictors = threads.nativeSubtasks(3, 0);
        assertThat(predictors).isPositive();
        Queue<Outcome> outcomes = new ConcurrentLinkedQueue<>();
        long deadline;
        List<Subtask<Outcome>> subtasks;
        boolean scopeCancelled;
        long started = System.nanoTime();

        try (EventFd neverSignalled = EventFd.create();
             CancellableContext request = Context.background().withValue(TRACE_ID, "req-deadline-" + threads)
                     .withTimeout(DEADLINE)) {
            deadline = request.deadlineNanoTime().orElseThrow();
            var result = request.call(() -> {
                try (var scope = StructuredTaskScope.open(Joiner.<Object>awaitAll(), threads::configure)) {
                    List<Subtask<Outcome>> forked = NativeWork.forkLongPredictors(scope, predictors, "", neverSignalled,
                            outcomes, null);
                    scope.join(); // awaitAll: returns once every subtask is done, failed or not
                    return Map.entry(forked, scope.isCancelled());
                }
            });
            subtasks = result.getKey();
            scopeCancelled = result.getValue();
        }

        assertThat(Duration.ofNanos(System.nanoTime() - started)).as("the scope's join + close").isLessThan(PROMPTLY);
        assertThat(scopeCancelled).as("the scope was cancelled").isFalse();
        // The scope was not cancelled, so it kept every subtask's result: each failed with the deadline.
        assertThat(subtasks).hasSize(predictors).allSatisfy(subtask -> {
            assertThat(subtask.state()).isEqualTo(Subtask.State.FAILED);
            assertThat(subtask.exception()).isInstanceOf(DeadlineExceededException.class);
        });
        assertThat(outcomes).hasSize(predictors).allSatisfy(outcome -> {
            assertThat(outcome.virtualThread()).isEqualTo(threads == Threads.VIRTUAL);
            assertThat(outcome.failure()).as("%s: what the call threw", outcome.name())
                    .isInstanceOf(DeadlineExceededException.class)
                    .hasCauseInstanceOf(TimeoutException.class);
            assertThat(outcome.interruptedAfter()).as("%s: thread interrupted", outcome.name()).isFalse();
            assertThat(outcome.stats()).as("%s entered native code", outcome.name()).isNotNull();
            assertThat(outcome.stats().status()).as("%s native status", outcome.name()).isEqualTo(NSC_DEADLINE_EXCEEDED);
            assertThat(outcome.stats().checks()).as("%s context checks", outcome.name()).isPositive();
            assertThat(outcome.stats().endNanoTime()).as("%s returned from native code after the deadline", outcome.name())
                    .isGreaterThanOrEqualTo(deadline);
            assertThat(outcome.stats().traceId()).as("%s trace id read natively", outcome.name())
                    .hasValue("req-deadline-" + threads);
        });
    }
}
