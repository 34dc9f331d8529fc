package dev.nativescope.examples;

import dev.nativescope.call.OffloadMode;
import dev.nativescope.reference.EventFd;
import dev.nativescope.examples.NativeWork.Outcome;
import dev.nativescope.examples.NativeWork.Threads;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.time.Duration;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.StructuredTaskScope;
import java.util.concurrent.StructuredTaskScope.Joiner;

import static dev.nativescope.examples.NativeWork.LONG_REPEAT;
import static dev.nativescope.examples.NativeWork.PROMPTLY;
import static dev.nativescope.examples.NativeWork.assertCancelledByInterrupt;
import static dev.nativescope.examples.NativeWork.assertStoppedNativelyByInterrupt;
import static dev.nativescope.examples.NativeWork.runRecorded;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * A {@link StructuredTaskScope} timeout interrupts its subtasks; the call bridge turns that
 * interrupt into a native cancel, so compute-bound predictors that would run for 30 s stop and
 * {@code close()} returns at once instead of waiting for them.
 */
@OffloadMode
class ScopeTimeoutTest extends NativeScopeTest {
    private static final Duration SCOPE_TIMEOUT = Duration.ofMillis(500);

    @ParameterizedTest
    @EnumSource(Threads.class)
    void scopeTimeoutStopsComputePredictorsInNativeCode(Threads threads) throws Exception {
        // Four compute predictors; on virtual threads no more than there are carriers (they pin
        // them: see Threads.nativeSubtasks). Nothing Java-side must run meanwhile: the owner is this
        // platform thread and the scope's timer runs in the common pool.
        int predictors = threads.nativeSubtasks(4, 0);
        assertThat(predictors).as("compute predictors that can all run at once").isPositive();
        Queue<Outcome> outcomes = new ConcurrentLinkedQueue<>();

        long opened = System.nanoTime();
        try (var scope = StructuredTaskScope.open(Joiner.<Outcome>awaitAll(),
                cf -> threads.configure(cf).withTimeout(SCOPE_TIMEOUT))) {
            for (int i = 0; i < predictors; i++) {
                String name = "dense-" + i;
                scope.fork(() -> runRecorded(name, NativeWork.longDense(), outcomes, null));
            }
            assertThatThrownBy(scope::join).isInstanceOf(StructuredTaskScope.TimeoutException.class);
            assertThat(scope.isCancelled()).isTrue();
        }
        long closed = System.nanoTime();

        assertThat(Duration.ofNanos(closed - opened)).as("join + close, while uncancelled the predictors run %s",
                NativeWork.UNCANCELLED_RUN).isLessThan(PROMPTLY);
        assertThat(outcomes).hasSize(predictors).allSatisfy(outcome -> {
            assertStoppedNativelyByInterrupt(outcome, opened + SCOPE_TIMEOUT.toNanos(), threads);
            assertThat(outcome.stats().workUnits()).as("%s tiles computed", outcome.name())
                    .isPositive()
                    .isLessThan(LONG_REPEAT * (NativeWork.SIZE / 32) * (NativeWork.SIZE / 32));
        });
    }

    /**
     * More pinning predictors than carriers: those that got a carrier are stopped in native code,
     * the others start only once those returned, find their thread interrupted, and are cancelled
     * by the bridge before they enter native code. The scope still closes promptly, which it could
     * not if the cancel had to wait for 30 s predictors to make room.
     */
    @Test
    void scopeTimeoutReachesVirtualThreadsWaitingForAPinnedCarrier() throws Exception {
        int predictors = 2 * Threads.CARRIERS + 1;
        Queue<Outcome> outcomes = new ConcurrentLinkedQueue<>();

        long opened = System.nanoTime();
        try (var scope = StructuredTaskScope.open(Joiner.<Outcome>awaitAll(), cf -> cf.withTimeout(SCOPE_TIMEOUT))) {
            for (int i = 0; i < predictors; i++) {
                String name = "dense-" + i;
                scope.fork(() -> runRecorded(name, NativeWork.longDense(), outcomes, null));
            }
            assertThatThrownBy(scope::join).isInstanceOf(StructuredTaskScope.TimeoutException.class);
        }
        long closed = System.nanoTime();

        assertThat(Duration.ofNanos(closed - opened)).isLessThan(PROMPTLY);
        assertThat(outcomes).hasSize(predictors).allSatisfy(NativeWork::assertCancelledByInterrupt);
        List<Outcome> entered = outcomes.stream().filter(Outcome::enteredNative).toList();
        assertThat(entered).as("predictors that got a carrier before the timeout").isNotEmpty()
                .allSatisfy(outcome -> assertStoppedNativelyByInterrupt(outcome, opened + SCOPE_TIMEOUT.toNanos(),
                        Threads.VIRTUAL));
    }

    /**
     * The bridge leaves the interrupt that cancelled a native call pending: the subtask's later
     * Java code still sees it (a sleep fails at once), and so does its next native call, which is
     * refused before entering native code rather than blocking until the scope gives up.
     */
    @ParameterizedTest
    @EnumSource(Threads.class)
    void interruptStatusSurvivesTheNativeCancel(Threads threads) throws Exception {
        Queue<Outcome> outcomes = new ConcurrentLinkedQueue<>();
        Queue<String> afterwards = new ConcurrentLinkedQueue<>();

        long opened = System.nanoTime();
        try (EventFd neverSignalled = EventFd.create();
             var scope = StructuredTaskScope.open(Joiner.<Object>awaitAll(),
                     cf -> threads.configure(cf).withTimeout(SCOPE_TIMEOUT))) {
            scope.fork(() -> {
                try {
                    runRecorded("wait-fd", NativeWork.awaitFd(neverSignalled), outcomes, null);
                } catch (CancellationException expected) {
                    afterwards.add("interrupted=" + Thread.currentThread().isInterrupted());
                }
                try {
                    runRecorded("wait-fd-again", NativeWork.awaitFd(neverSignalled), outcomes, null);
                } catch (CancellationException expected) {
                    afterwards.add("second call interrupted=" + Thread.currentThread().isInterrupted());
                }
                long sleepStart = System.nanoTime();
                try {
                    Thread.sleep(Duration.ofSeconds(30));
                    afterwards.add("slept");
                } catch (InterruptedException expected) {
                    afterwards.add("sleep interrupted after " + (System.nanoTime() - sleepStart < 1_000_000_000L
                            ? "less than 1 s" : "1 s or more"));
                }
                return null;
            });
            assertThatThrownBy(scope::join).isInstanceOf(StructuredTaskScope.TimeoutException.class);
        }

        assertThat(Duration.ofNanos(System.nanoTime() - opened)).isLessThan(PROMPTLY);
        assertThat(afterwards).containsExactly("interrupted=true", "second call interrupted=true",
                "sleep interrupted after less than 1 s");
        assertThat(outcomes).extracting(Outcome::name).containsExactly("wait-fd", "wait-fd-again");
        Outcome first = outcomes.remove();
        assertStoppedNativelyByInterrupt(first, opened + SCOPE_TIMEOUT.toNanos(), threads);
        assertThat(first.stats().workUnits()).as("bytes read from the fd").isZero();
        Outcome second = outcomes.remove();
        assertCancelledByInterrupt(second);
        assertThat(second.enteredNative()).as("second call entered native code").isFalse();
    }
}
