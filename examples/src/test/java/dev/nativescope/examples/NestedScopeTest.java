package dev.nativescope.examples;

import dev.nativescope.call.OffloadMode;
import dev.nativescope.Context;
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
import static dev.nativescope.examples.NativeWork.TRACE_ID;
import static dev.nativescope.examples.NativeWork.assertStoppedNativelyByInterrupt;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assumptions.assumeThat;

/**
 * Cancelling an outer scope reaches native predictors two levels down: the outer scope interrupts
 * its subtask, which owns an inner scope and is waiting in the inner {@code join()}; that join
 * throws {@link InterruptedException}, the inner scope's {@code close()} cancels it, and its
 * interrupts stop the predictors in native code. The request value bound around the outer scope
 * reaches the native code of the inner forks too.
 */
@OffloadMode
class NestedScopeTest extends NativeScopeTest {
    private static final Duration OUTER_TIMEOUT = Duration.ofMillis(500);
    private static final Duration FAIL_AFTER = Duration.ofMillis(200);

    @ParameterizedTest
    @EnumSource(Threads.class)
    void outerTimeoutStopsPredictorsOfAnInnerScope(Threads threads) throws Exception {
        // On virtual threads one carrier stays free: the inner scope's owner must wake from join()
        // to close the inner scope while its predictors pin the other carriers.
        int predictors = threads.nativeSubtasks(3, 1);
        assumeThat(predictors).as("virtual-thread carriers left for the inner scope's owner").isPositive();
        Queue<Outcome> outcomes = new ConcurrentLinkedQueue<>();
        Queue<String> innerJoin = new ConcurrentLinkedQueue<>();
        Context request = Context.background().withValue(TRACE_ID, "nested-timeout-1");

        long opened = System.nanoTime();
        request.call(() -> {
            try (EventFd neverSignalled = EventFd.create();
                 var outer = StructuredTaskScope.open(Joiner.<Object>awaitAll(),
                         cf -> threads.configure(cf).withTimeout(OUTER_TIMEOUT))) {
                outer.fork(() -> runInnerScope(threads, predictors, neverSignalled, outcomes, null, innerJoin));
                assertThatThrownBy(outer::join).isInstanceOf(StructuredTaskScope.TimeoutException.class);
            }
            return null;
        });
        long closed = System.nanoTime();

        assertThat(Duration.ofNanos(closed - opened)).as("outer join + close").isLessThan(PROMPTLY);
        assertThat(innerJoin).containsExactly("inner join interrupted");
        assertThat(outcomes).hasSize(predictors).allSatisfy(outcome -> {
            assertStoppedNativelyByInterrupt(outcome, opened + OUTER_TIMEOUT.toNanos(), threads);
            assertThat(outcome.stats().traceId()).as("%s trace id read natively", outcome.name())
                    .hasValue("nested-timeout-1");
        });
    }

    @ParameterizedTest
    @EnumSource(Threads.class)
    void outerSiblingFailureStopsPredictorsOfAnInnerScope(Threads threads) throws Exception {
        // One carrier left free suffices on virtual threads: the failing sibling runs first, and the
        // inner scope's owner wakes on that carrier once the sibling is done with it.
        int predictors = threads.nativeSubtasks(3, 1);
        assumeThat(predictors).as("virtual-thread carriers left for the Java-side subtasks").isPositive();
        Queue<Outcome> outcomes = new ConcurrentLinkedQueue<>();
        Queue<String> innerJoin = new ConcurrentLinkedQueue<>();
        CountDownLatch entering = new CountDownLatch(predictors);
        IllegalStateException siblingFailure = new IllegalStateException("outer sibling failed");
        AtomicLong failedAt = new AtomicLong();
        Context request = Context.background().withValue(TRACE_ID, "nested-sibling-2");

        request.call(() -> {
            try (EventFd neverSignalled = EventFd.create();
                 var outer = StructuredTaskScope.open(Joiner.<Object>awaitAllSuccessfulOrThrow(), threads::configure)) {
                outer.fork(() -> runInnerScope(threads, predictors, neverSignalled, outcomes, entering, innerJoin));
                outer.fork(NativeWork.failingSibling(entering, FAIL_AFTER, failedAt, siblingFailure));
                assertThatThrownBy(outer::join).isInstanceOf(StructuredTaskScope.FailedException.class)
                        .cause().isSameAs(siblingFailure);
            }
            return null;
        });
        long closed = System.nanoTime();

        assertThat(failedAt).as("the sibling failed").doesNotHaveValue(0L);
        assertThat(Duration.ofNanos(closed - failedAt.get())).as("outer sibling failure -> outer join + close")
                .isLessThan(PROMPTLY);
        assertThat(innerJoin).containsExactly("inner join interrupted");
        assertThat(outcomes).hasSize(predictors).allSatisfy(outcome -> {
            assertStoppedNativelyByInterrupt(outcome, failedAt.get(), threads);
            assertThat(outcome.stats().traceId()).as("%s trace id read natively", outcome.name())
                    .hasValue("nested-sibling-2");
        });
    }

    /**
     * The outer subtask: opens an inner scope with a blocked predictor and compute predictors and
     * joins it. It has no cancellation of its own; only the outer scope's interrupt ends it.
     */
    private static Object runInnerScope(Threads threads, int predictors, EventFd neverSignalled,
                                        Queue<Outcome> outcomes, CountDownLatch entering, Queue<String> innerJoin)
            throws Exception {
        try (var inner = StructuredTaskScope.open(Joiner.<Object>awaitAll(), threads::configure)) {
            NativeWork.forkLongPredictors(inner, predictors, "inner-", neverSignalled, outcomes, entering);
            try {
                inner.join();
                innerJoin.add("inner join returned");
            } catch (InterruptedException expected) {
                innerJoin.add("inner join interrupted");
                throw expected;
            }
        }
        return null;
    }
}
