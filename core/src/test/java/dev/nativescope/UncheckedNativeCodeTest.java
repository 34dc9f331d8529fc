package dev.nativescope;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Native code that never checks its context (here libc's {@code usleep}, called through the
 * bridge): cancelling, a deadline or an interrupt cannot stop it, so the call ends at its own pace
 * and returns its result; a warning says how late it came; the frame, the thread and other calls
 * carry on unharmed.
 */
class UncheckedNativeCodeTest {
    private static final MethodHandle USLEEP = Linker.nativeLinker().downcallHandle(
            Linker.nativeLinker().defaultLookup().find("usleep").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final long SLEEP_MILLIS = 400;
    private static final long CANCEL_AFTER_MILLIS = 50;

    private final Logger logger = Logger.getLogger(NativeCall.class.getName());
    private final List<LogRecord> warnings = new CopyOnWriteArrayList<>();
    private final Handler capture = new Handler() {
        @Override
        public void publish(LogRecord record) {
            if (record.getLevel().intValue() >= Level.WARNING.intValue()) {
                warnings.add(record);
            }
        }

        @Override
        public void flush() {
        }

        @Override
        public void close() {
        }
    };

    @BeforeEach
    void captureWarnings() {
        logger.addHandler(capture);
    }

    @AfterEach
    void stopCapturing() {
        logger.removeHandler(capture);
    }

    /** Sleeps in native code without ever looking at the context; returns usleep's 0 (NSC_OK). */
    private static int sleepIgnoringTheContext(Context context) {
        return NativeCall.invoke(context, ignored -> (int) USLEEP.invokeExact((int) TimeUnit.MILLISECONDS.toMicros(SLEEP_MILLIS)));
    }

    @Test
    void cancelledCallEndsAtItsOwnPaceReturnsItsResultAndIsReported() throws Exception {
        try (CancellableContext context = Context.background().withCancel()) {
            Thread canceller = Thread.ofPlatform().start(() -> {
                sleepQuietly(CANCEL_AFTER_MILLIS);
                context.cancel(new IllegalStateException("request abandoned"));
            });
            long start = System.nanoTime();
            int status = sleepIgnoringTheContext(context);
            long elapsedMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
            canceller.join();

            assertThat(status).as("the work finished; its result is returned").isEqualTo(Statuses.OK);
            assertThat(elapsedMillis).as("the call ran to its end").isGreaterThanOrEqualTo(SLEEP_MILLIS - 10);
            assertThat(context.isDone()).isTrue();
        }
        assertThat(warnings).singleElement().satisfies(warning -> assertThat(warning.getMessage())
                .contains("returned NSC_OK").contains("ms after it was cancelled").contains("request abandoned")
                .contains("does not check its nsc_context"));
        assertThat(lateMillis(warnings.getFirst())).isBetween((double) SLEEP_MILLIS - CANCEL_AFTER_MILLIS - 100, 60_000.0);
    }

    @Test
    void deadlineAndInterruptCannotStopItEither() throws Exception {
        try (CancellableContext context = Context.background().withTimeout(Duration.ofMillis(CANCEL_AFTER_MILLIS))) {
            assertThat(sleepIgnoringTheContext(context)).isEqualTo(Statuses.OK);
            assertThat(context.isDeadlineExceeded()).isTrue();
        }
        Thread caller = Thread.currentThread();
        Thread interrupter = Thread.ofPlatform().start(() -> {
            sleepQuietly(CANCEL_AFTER_MILLIS);
            caller.interrupt();
        });
        try {
            assertThat(sleepIgnoringTheContext(Context.background())).isEqualTo(Statuses.OK);
            interrupter.join();
            assertThat(Thread.interrupted()).as("the interrupt is still pending").isTrue();
        } finally {
            Thread.interrupted();
        }
        assertThat(warnings).hasSize(2);
        assertThat(warnings.get(0).getMessage()).contains("DeadlineExceededException");
        assertThat(warnings.get(1).getMessage()).contains("InterruptedException");
    }

    @Test
    void theFrameTheThreadAndOtherCallsCarryOn() throws Exception {
        CountDownLatch sleeping = new CountDownLatch(1);
        try (CancellableContext context = Context.background().withCancel()) {
            Thread stuck = Thread.ofPlatform().start(() -> {
                sleeping.countDown();
                sleepIgnoringTheContext(context);
                // The same thread, probably the same pooled frame: the next call is not cancelled.
                try (CancellableContext next = Context.background().withTimeout(Duration.ofSeconds(30))) {
                    ReferencePredictors.spin(next, Duration.ofMillis(5), stats -> { });
                }
            });
            sleeping.await();
            context.cancel();
            // Meanwhile other calls, checking their own contexts, are cancelled as promptly as ever.
            for (int i = 0; i < 20; i++) {
                try (CancellableContext other = Context.background().withCancel()) {
                    Thread spinner = Thread.ofPlatform().start(() -> {
                        try {
                            ReferencePredictors.spin(other, null, stats -> { });
                        } catch (java.util.concurrent.CancellationException expected) {
                            // stopped by the cancel below
                        }
                    });
                    sleepQuietly(1);
                    other.cancel();
                    assertThat(spinner.join(Duration.ofSeconds(10))).as("a checking predictor stops").isTrue();
                }
            }
            assertThat(stuck.join(Duration.ofSeconds(30))).isTrue();
        }
        assertThat(warnings).hasSize(1);
    }

    private static double lateMillis(LogRecord warning) {
        String message = warning.getMessage();
        String number = message.substring(message.indexOf("NSC_OK ") + "NSC_OK ".length(), message.indexOf(" ms after"));
        return Double.parseDouble(number);
    }

    private static void sleepQuietly(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
