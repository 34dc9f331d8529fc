package dev.nativescope;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/** Deadlines: effective deadline, expiry, the shared timer. Time bounds are generous on purpose. */
class ContextDeadlineTest {
    private static final long GENEROUS_SECONDS = 10;

    @Test
    void timeoutExpiresWithDeadlineExceededException() throws InterruptedException {
        long before = System.nanoTime();
        CancellableContext context = Context.background().withTimeout(Duration.ofMillis(50));
        CountDownLatch done = new CountDownLatch(1);
        AtomicLong doneAt = new AtomicLong();
        AtomicReference<Thread> ranIn = new AtomicReference<>();
        context.onDone(() -> {
            doneAt.set(System.nanoTime());
            ranIn.set(Thread.currentThread());
            done.countDown();
        });
        // A test thread descheduled for the whole 50 ms (seen at load 12) registers on a context the timer
        // has already expired, and runs the action itself: only a registration in time tests the timer.
        boolean registeredInTime = System.nanoTime() - before < Duration.ofMillis(40).toNanos();

        assertThat(done.await(GENEROUS_SECONDS, TimeUnit.SECONDS)).as("expired within the bound").isTrue();

        long deadline = context.deadlineNanoTime().orElseThrow();
        assertThat(deadline - before).isGreaterThanOrEqualTo(Duration.ofMillis(50).toNanos());
        assertThat(doneAt.get() - deadline).as("not before the deadline").isNotNegative();
        assertThat(context.isDone()).isTrue();
        assertThat(context.isDeadlineExceeded()).isTrue();
        if (registeredInTime) {
            assertThat(ranIn.get().getName()).isEqualTo(DeadlineTimer.THREAD_NAME);
            assertThat(ranIn.get().isDaemon()).isTrue();
        } else {
            assertThat(ranIn.get().getName()).isIn(DeadlineTimer.THREAD_NAME, Thread.currentThread().getName());
        }
        DeadlineExceededException cause = (DeadlineExceededException) context.cause();
        assertThat(cause).hasMessage("context deadline exceeded");
        assertThat(cause.deadlineNanoTime()).isEqualTo(deadline);
        assertThat(cause.detectedNanoTime() - deadline).isNotNegative();
        assertThat(cause.getCause()).isInstanceOf(TimeoutException.class)
                .hasMessageContaining("System.nanoTime() " + deadline)
                .hasMessageContaining(" ms after it");
    }

    @Test
    void zeroTimeoutIsExpiredAtOnce() {
        CancellableContext context = Context.background().withTimeout(Duration.ZERO);
        assertThat(context.isDone()).isTrue();
        assertThat(context.cause()).isInstanceOf(DeadlineExceededException.class);
    }

    @Test
    void pastDeadlinesAreExpiredAtOnce() {
        assertThat(Context.background().withDeadline(Instant.now().minusSeconds(1)).isDeadlineExceeded()).isTrue();
        assertThat(Context.background().withDeadline(Instant.MIN).isDeadlineExceeded()).isTrue();
        assertThat(Context.background().withDeadlineNanoTime(System.nanoTime()).isDeadlineExceeded()).isTrue();
    }

    @Test
    void negativeTimeoutIsRejected() {
        assertThatThrownBy(() -> Context.background().withTimeout(Duration.ofNanos(-1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("timeout must not be negative: PT-0.000000001S");
        assertThatThrownBy(() -> Context.background().withTimeout(null))
                .isInstanceOf(NullPointerException.class).hasMessage("timeout");
        assertThatThrownBy(() -> Context.background().withDeadline(null))
                .isInstanceOf(NullPointerException.class).hasMessage("deadline");
    }

    @Test
    void childDeadlineIsTheEarlierOfItsOwnAndItsParents() {
        try (CancellableContext parent = Context.background().withTimeout(Duration.ofHours(1))) {
            long parentDeadline = parent.deadlineNanoTime().orElseThrow();
            Instant parentWallClock = parent.deadline().orElseThrow();

            try (CancellableContext later = parent.withTimeout(Duration.ofHours(2));
                 CancellableContext earlier = parent.withTimeout(Duration.ofMinutes(1));
                 CancellableContext none = parent.withCancel()) {
                assertThat(later.deadlineNanoTime()).hasValue(parentDeadline);
                assertThat(later.deadline()).containsSame(parentWallClock);
                assertThat(none.deadlineNanoTime()).hasValue(parentDeadline);
                assertThat(earlier.deadlineNanoTime().orElseThrow()).isLessThan(parentDeadline);
                Context valueChild = earlier.withValue(ContextKey.ofString("k"), "v");
                assertThat(valueChild.deadlineNanoTime()).isEqualTo(earlier.deadlineNanoTime());
                assertThat(valueChild.deadline()).isEqualTo(earlier.deadline());
            }
        }
    }

    @Test
    void wallClockDeadlineIsKeptAsGivenAndConvertedToNanoTime() {
        Instant deadline = Instant.now().plusSeconds(3600);
        try (CancellableContext context = Context.background().withDeadline(deadline)) {
            assertThat(context.deadline()).containsSame(deadline);
            long expected = System.nanoTime() + Duration.ofHours(1).toNanos();
            assertThat(context.deadlineNanoTime().orElseThrow())
                    .isCloseTo(expected, within(TimeUnit.SECONDS.toNanos(GENEROUS_SECONDS)));
        }
        try (CancellableContext context = Context.background().withTimeout(Duration.ofHours(1))) {
            assertThat(context.deadline().orElseThrow())
                    .isBetween(Instant.now().plusSeconds(3600 - GENEROUS_SECONDS), Instant.now().plusSeconds(3600));
        }
    }

    @Test
    void farDeadlinesSaturateInsteadOfOverflowing() {
        try (CancellableContext max = Context.background().withDeadline(Instant.MAX);
             CancellableContext forever = Context.background().withTimeout(Duration.ofSeconds(Long.MAX_VALUE))) {
            long now = System.nanoTime();
            assertThat(max.deadlineNanoTime().orElseThrow() - now).isPositive();
            assertThat(forever.deadlineNanoTime().orElseThrow() - now).isPositive();
            assertThat(max.isDone()).isFalse();
            assertThat(forever.isDone()).isFalse();
            // A sooner child must still compare as sooner.
            try (CancellableContext child = forever.withTimeout(Duration.ofHours(1))) {
                assertThat(child.deadlineNanoTime().orElseThrow() - forever.deadlineNanoTime().orElseThrow()).isNegative();
            }
        }
    }

    @Test
    void parentExpiryCancelsChildrenWithTheSameException() throws InterruptedException {
        CancellableContext parent = Context.background().withTimeout(Duration.ofMillis(20));
        CancellableContext child = parent.withTimeout(Duration.ofHours(1));
        CancellableContext grandchild = child.withValue(ContextKey.ofString("k"), "v").withCancel();
        CountDownLatch done = new CountDownLatch(1);
        grandchild.onDone(done::countDown);

        assertThat(done.await(GENEROUS_SECONDS, TimeUnit.SECONDS)).isTrue();

        assertThat(parent.cause()).isInstanceOf(DeadlineExceededException.class);
        assertThat(child.cause()).isSameAs(parent.cause());
        assertThat(grandchild.cause()).isSameAs(parent.cause());
        assertThat(grandchild.isDeadlineExceeded()).isTrue();
    }

    @Test
    void childExpiringFirstDoesNotTouchItsParent() throws InterruptedException {
        try (CancellableContext parent = Context.background().withTimeout(Duration.ofHours(1))) {
            CancellableContext child = parent.withTimeout(Duration.ofMillis(10));
            CountDownLatch done = new CountDownLatch(1);
            child.onDone(done::countDown);
            assertThat(done.await(GENEROUS_SECONDS, TimeUnit.SECONDS)).isTrue();
            assertThat(child.isDeadlineExceeded()).isTrue();
            assertThat(parent.isDone()).isFalse();
            assertThat(parent.childCount()).isZero();
        }
    }

    @Test
    void randomShortDeadlinesNeverFireEarly() throws InterruptedException {
        int count = 10_000;
        SplittableRandom random = new SplittableRandom(42);
        CountDownLatch allDone = new CountDownLatch(count);
        AtomicInteger early = new AtomicInteger();
        AtomicInteger wrongCause = new AtomicInteger();
        List<CancellableContext> contexts = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            long deadline = System.nanoTime() + random.nextLong(TimeUnit.MILLISECONDS.toNanos(2) + 1);
            CancellableContext context = Context.background().withDeadlineNanoTime(deadline);
            context.onDone(() -> {
                if (System.nanoTime() - deadline < 0) {
                    early.incrementAndGet();
                }
                if (!(context.cause() instanceof DeadlineExceededException expired)
                        || expired.deadlineNanoTime() != deadline
                        || expired.detectedNanoTime() - deadline < 0) {
                    wrongCause.incrementAndGet();
                }
                allDone.countDown();
            });
            contexts.add(context);
        }

        assertThat(allDone.await(GENEROUS_SECONDS * 3, TimeUnit.SECONDS)).as("all expired").isTrue();
        assertThat(early).as("fired before the deadline").hasValue(0);
        assertThat(wrongCause).hasValue(0);
        assertThat(contexts).allMatch(Context::isDeadlineExceeded);
    }

    @Test
    void cancelledContextsLeaveNoTimerEntries() {
        int baseline = DeadlineTimer.queuedTaskCount();
        CancellableContext parent = Context.background().withCancel();

        // Coming and going one at a time.
        for (int i = 0; i < 100_000; i++) {
            parent.withTimeout(Duration.ofHours(1)).cancel();
        }
        assertThat(DeadlineTimer.queuedTaskCount()).isLessThanOrEqualTo(baseline);

        // All live at once, then cancelled through their parent.
        for (int i = 0; i < 100_000; i++) {
            parent.withTimeout(Duration.ofHours(1));
        }
        assertThat(parent.childCount()).isEqualTo(100_000);
        assertThat(DeadlineTimer.queuedTaskCount()).isGreaterThanOrEqualTo(100_000);
        parent.close();

        assertThat(parent.childCount()).isZero();
        assertThat(DeadlineTimer.queuedTaskCount()).isLessThanOrEqualTo(baseline);
    }

    @Test
    void childWithLaterDeadlineNeedsNoTimerEntry() {
        try (CancellableContext parent = Context.background().withTimeout(Duration.ofHours(1))) {
            int withParent = DeadlineTimer.queuedTaskCount();
            List<CancellableContext> children = new ArrayList<>();
            for (int i = 0; i < 1000; i++) {
                children.add(parent.withTimeout(Duration.ofHours(2)));
                children.add(parent.withDeadline(Instant.now().plusSeconds(7200)));
            }
            assertThat(DeadlineTimer.queuedTaskCount()).isLessThanOrEqualTo(withParent);
            children.forEach(CancellableContext::close);
        }
    }

    @Test
    void timerThreadDoesNotInheritTheCurrentContext() throws InterruptedException {
        Context bound = Context.background().withValue(ContextKey.ofString("k"), "v");
        AtomicReference<Context> seen = new AtomicReference<>();
        Thread timerThread = bound.call(() -> DeadlineTimer.newTimerThread(() -> seen.set(Context.current())));
        timerThread.start();
        timerThread.join();
        assertThat(seen).hasValue(Context.background());
        assertThat(timerThread.isDaemon()).isTrue();
        assertThat(timerThread.getName()).isEqualTo(DeadlineTimer.THREAD_NAME);
    }

    @Test
    void nativeCallExceptionCarriesTheDeadlineAndTheContextsCause() {
        CancellableContext context = Context.background().withTimeout(Duration.ZERO);
        DeadlineExceededException contextCause = (DeadlineExceededException) context.cause();

        DeadlineExceededException thrown = DeadlineExceededException.forNativeCall(context, contextCause);

        assertThat(thrown).isNotSameAs(contextCause).hasMessage("native call stopped: context deadline exceeded");
        assertThat(thrown.deadlineNanoTime()).isEqualTo(contextCause.deadlineNanoTime());
        assertThat(thrown.getCause()).isInstanceOf(TimeoutException.class);
        assertThat(thrown.getCause().getCause()).isSameAs(contextCause);

        try (CancellableContext live = Context.background().withTimeout(Duration.ofHours(1))) {
            DeadlineExceededException noticedByNativeCode = DeadlineExceededException.forNativeCall(live, null);
            assertThat(noticedByNativeCode.deadlineNanoTime()).isEqualTo(live.deadlineNanoTime().orElseThrow());
            assertThat(noticedByNativeCode.getCause()).isInstanceOf(TimeoutException.class).hasNoCause();
        }
    }
}
