package dev.nativescope;

import dev.nativescope.call.OffloadMode;
import dev.nativescope.interop.CancellationSignal;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.reference.ReferencePredictors;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

/**
 * Deadlines as native code sees them: conversions that cannot wrap (issue 12, "spurious deadline")
 * and a passed deadline refused at entry even before the timer fires ("a passed deadline is not
 * seen at entry"), with the context's isDone()/cause() agreeing with what native code reported.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
@OffloadMode
class ContextNativeDeadlineTest {
    /** Far enough from the deadline that the clock moving during the test cannot matter. */
    private static final long MARGIN_NANOS = TimeUnit.SECONDS.toNanos(5);

    @BeforeAll
    static void load() {
        NativeLibrary.load();
    }

    @Test
    void theNoDeadlineIdiomGivesALiveContextWhoseNativeCallsRun() {
        try (CancellableContext context = Context.background().withDeadlineNanoTime(System.nanoTime() + Long.MAX_VALUE)) {
            assertThat(context.isDone()).isFalse();
            Throwable thrown = catchThrowable(() -> ReferencePredictors.spin(context, Duration.ofMillis(1), null));
            assertThat(thrown).as("a native call under a far-future deadline").isNull();
            assertThat(context.isDone()).isFalse();
        }
    }

    @Test
    void extremeInstantsAndDurationsConvertWithoutWrapping() {
        assertLiveAndRuns("Instant.MAX", () -> Context.background().withDeadline(Instant.MAX));
        assertLiveAndRuns("the longest Duration", () -> Context.background().withTimeout(Duration.ofSeconds(Long.MAX_VALUE, 999_999_999)));
        assertExpiredAndRefused("Instant.MIN", () -> Context.background().withDeadline(Instant.MIN));
        assertExpiredAndRefused("nanoTime() - Long.MAX_VALUE + 1 s", () -> Context.background().withDeadlineNanoTime(System.nanoTime() - Long.MAX_VALUE + 1_000_000_000L));
        assertExpiredAndRefused("nanoTime() + Long.MIN_VALUE + 1 s", () -> Context.background().withDeadlineNanoTime(System.nanoTime() + Long.MIN_VALUE + 1_000_000_000L));
    }

    /** Random deadlines over the whole long range, Instants over [MIN, MAX], Durations over their range. */
    @Test
    void nativeCallsAndTheContextAgreeOverTheWholeRange() {
        SplittableRandom random = new SplittableRandom(12);
        for (int i = 0; i < 400; i++) {
            long nanoTime = switch (i % 4) {
                case 0 -> random.nextLong();
                case 1 -> System.nanoTime() + random.nextLong();
                case 2 -> System.nanoTime() + (random.nextBoolean() ? Long.MAX_VALUE - random.nextInt(1000) : Long.MIN_VALUE + 2 * MARGIN_NANOS + random.nextInt(1000));
                default -> i % 8 == 3 ? Long.MAX_VALUE : Long.MIN_VALUE;
            };
            long ahead = nanoTime - System.nanoTime(); // how the JDK defines a nanoTime value: by its difference
            // Near zero the clock decides; near the wrap point (+-2^63, where the JDK's difference of two
            // nanoTime values is undefined) so does the time between this line and the context's creation.
            if (Math.abs(ahead) < MARGIN_NANOS || Math.abs(ahead) > Long.MAX_VALUE - MARGIN_NANOS) {
                continue;
            }
            check("withDeadlineNanoTime(" + nanoTime + ")", () -> Context.background().withDeadlineNanoTime(nanoTime), ahead > 0);
        }
        for (int i = 0; i < 200; i++) {
            Instant deadline = Instant.ofEpochSecond(random.nextLong(Instant.MIN.getEpochSecond(), Instant.MAX.getEpochSecond()));
            long aheadSeconds = deadline.getEpochSecond() - Instant.now().getEpochSecond();
            if (Math.abs(aheadSeconds) < 5) {
                continue;
            }
            check("withDeadline(" + deadline + ")", () -> Context.background().withDeadline(deadline), aheadSeconds > 0);
        }
        for (int i = 0; i < 200; i++) {
            Duration timeout = Duration.ofSeconds(random.nextLong(5, Long.MAX_VALUE), random.nextInt(1_000_000_000));
            check("withTimeout(" + timeout + ")", () -> Context.background().withTimeout(timeout), true);
        }
    }

    @Test
    void aPassedDeadlineIsRefusedAtEntryBeforeTheTimerFires() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        // Hold the shared timer thread in a done action, so that no deadline fires by the timer (the
        // action is registered well before the blocker's deadline, so it runs on the timer thread).
        CancellableContext blocker = Context.background().withTimeout(Duration.ofMillis(300));
        CountDownLatch timerHeld = new CountDownLatch(1);
        blocker.onDone(() -> {
            timerHeld.countDown();
            try {
                release.await(60, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        try {
            assertThat(timerHeld.await(30, TimeUnit.SECONDS)).isTrue();
            try (CancellableContext bridged = Context.background().withTimeout(Duration.ofMillis(2));
                 CancellableContext signalled = Context.background().withTimeout(Duration.ofMillis(2))) {
                Context withValue = bridged.withValue(ContextKey.ofString("k"), "v");
                Thread.sleep(50);
                assertThat(bridged.isDone()).as("the timer is held, so nothing fired the deadline").isFalse();

                Throwable thrown = catchThrowable(() -> ReferencePredictors.noop(withValue));
                assertThat(thrown).as("a call entered after its deadline").isInstanceOf(DeadlineExceededException.class);
                assertThat(bridged.isDone()).as("the context agrees with what the call reported").isTrue();
                assertThat(bridged.cause()).isInstanceOf(DeadlineExceededException.class);
                assertThat(withValue.cause()).isSameAs(bridged.cause());

                AtomicBoolean stopped = new AtomicBoolean();
                try (CancellationSignal signal = CancellationSignal.open(signalled, reason -> stopped.set(true))) {
                    assertThat(signal.isStopped()).as("CancellationSignal.open after the deadline (ONNX Runtime's entry)").isTrue();
                    assertThat(signal.stoppedException("run")).isInstanceOf(DeadlineExceededException.class);
                }
                assertThat(stopped).isTrue();
                assertThat(signalled.cause()).isInstanceOf(DeadlineExceededException.class);
            }
        } finally {
            release.countDown();
            blocker.close();
        }
    }

    private static void check(String what, Supplier<CancellableContext> make, boolean expectLive) {
        if (expectLive) {
            assertLiveAndRuns(what, make);
        } else {
            assertExpiredAndRefused(what, make);
        }
    }

    private static void assertLiveAndRuns(String what, Supplier<CancellableContext> make) {
        try (CancellableContext context = make.get()) {
            assertThat(context.isDone()).as(what + " is live").isFalse();
            Throwable thrown = catchThrowable(() -> ReferencePredictors.spin(context, Duration.ofNanos(1000), null));
            assertThat(thrown).as(what + ": a native call under a deadline in the future").isNull();
            assertThat(context.isDone()).as(what + " still live").isFalse();
        }
    }

    private static void assertExpiredAndRefused(String what, Supplier<CancellableContext> make) {
        try (CancellableContext context = make.get()) {
            Throwable thrown = catchThrowable(() -> ReferencePredictors.spin(context, Duration.ofNanos(1000), null));
            assertThat(thrown).as(what + ": a native call under a deadline in the past").isInstanceOf(DeadlineExceededException.class);
            assertThat(context.isDone()).as(what + " is done").isTrue();
            assertThat(context.cause()).isInstanceOf(DeadlineExceededException.class);
        }
    }
}
