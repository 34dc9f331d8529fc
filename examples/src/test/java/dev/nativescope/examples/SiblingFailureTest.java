package dev.nativescope.examples;

import dev.nativescope.call.OffloadMode;
import dev.nativescope.reference.EventFd;
import dev.nativescope.examples.NativeWork.Outcome;
import dev.nativescope.examples.NativeWork.Threads;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.time.Duration;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.StructuredTaskScope;
import java.util.concurrent.StructuredTaskScope.Joiner;
import java.util.concurrent.atomic.AtomicLong;

import static dev.nativescope.examples.NativeWork.PROMPTLY;
import static dev.nativescope.examples.NativeWork.assertStoppedNativelyByInterrupt;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assumptions.assumeThat;

/**
 * With {@link Joiner#awaitAllSuccessfulOrThrow()}, a failing subtask cancels the scope, whose
 * interrupt stops its siblings' native predictors, including one blocked in {@code poll} on an fd
 * that nobody will ever signal.
 */
@OffloadMode
class SiblingFailureTest extends NativeScopeTest {
    /** How long the sibling waits, once the predictors are on their way into native code, before failing. */
    private static final Duration FAIL_AFTER = Duration.ofMillis(200);

    @ParameterizedTest
    @EnumSource(Threads.class)
    void failingSiblingCancelsPredictorBlockedOnAnFd(Threads threads) throws Exception {
        // The blocked predictor plus, where they fit, two compute predictors. On virtual threads one
        // carrier stays free for the failing sibling, which would otherwise never run (Threads.nativeSubtasks).
        int predictors = threads.nativeSubtasks(3, 1);
        assumeThat(predictors).as("virtual-thread carriers left for the failing sibling").isPositive();
        Queue<Outcome> outcomes = new ConcurrentLinkedQueue<>();
        CountDownLatch entering = new CountDownLatch(predictors);
        IllegalStateException siblingFailure = new IllegalStateException("tokenizer failed");
        AtomicLong failedAt = new AtomicLong();

        try (EventFd neverSignalled = EventFd.create();
             var scope = StructuredTaskScope.open(Joiner.<Object>awaitAllSuccessfulOrThrow(), threads::configure)) {
            NativeWork.forkLongPredictors(scope, predictors, "", neverSignalled, outcomes, entering);
            scope.fork(NativeWork.failingSibling(entering, FAIL_AFTER, failedAt, siblingFailure));

            assertThatThrownBy(scope::join).isInstanceOf(StructuredTaskScope.FailedException.class)
                    .cause().isSameAs(siblingFailure);
            assertThat(scope.isCancelled()).isTrue();
        }
        long closed = System.nanoTime();

        assertThat(failedAt).as("the sibling failed").doesNotHaveValue(0L);
        assertThat(Duration.ofNanos(closed - failedAt.get())).as("sibling failure -> join + close returned")
                .isLessThan(PROMPTLY);
        assertThat(outcomes).hasSize(predictors)
                .allSatisfy(outcome -> assertStoppedNativelyByInterrupt(outcome, failedAt.get(), threads));
        Outcome blocked = outcomes.stream().filter(outcome -> outcome.name().equals("wait-fd")).findFirst().orElseThrow();
        assertThat(blocked.stats().workUnits()).as("bytes read from the never signalled fd").isZero();
    }
}
