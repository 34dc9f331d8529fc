package dev.nativescope.call;

import dev.nativescope.library.NativeStatus;
import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.DeadlineExceededException;
import dev.nativescope.reference.ReferencePredictors;
import dev.nativescope.testing.CapturedWarnings;
import dev.nativescope.testing.ProcSelf;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.time.Duration;
import java.util.concurrent.CancellationException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Native code that never checks its context (here libc's {@code usleep}, called through the
 * bridge): cancelling, a deadline or an interrupt cannot stop it, so the call ends at its own pace
 * and returns its result; a warning says how late it came; the frame, the thread and other calls
 * carry on unharmed. The same offloaded: the caller stays parked until the native thread returns.
 */
@OffloadMode
class UncheckedNativeCodeTest {
    private static final MethodHandle USLEEP = Linker.nativeLinker().downcallHandle(
            Linker.nativeLinker().defaultLookup().find("usleep").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final long SLEEP_MILLIS = 400;
    /** The kernel's id of the thread that runs the downcall: the caller inline, a native thread offloaded. */
    private static final MethodHandle GETTID = Linker.nativeLinker().downcallHandle(
            Linker.nativeLinker().defaultLookup().find("gettid").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT));
    /** {@code SYS_clock_nanosleep} on x86-64, which glibc's usleep makes. */
    private static final int CLOCK_NANOSLEEP = 230;

    @RegisterExtension
    final CapturedWarnings warnings = CapturedWarnings.of(NativeCall.class.getName());

    /**
     * Sleeps in native code without ever looking at the context; returns usleep's 0 (NSC_OK).
     * {@code nativeTid} gets the id of the thread the downcall runs on, which is not the caller's
     * when the call is offloaded ({@code -Dnativescope.callMode=OFFLOAD}).
     */
    private static int sleepIgnoringTheContext(Context context, long millis, AtomicInteger nativeTid) {
        return NativeCall.invoke(context, ignored -> {
            nativeTid.set((int) GETTID.invokeExact());
            return (int) USLEEP.invokeExact((int) TimeUnit.MILLISECONDS.toMicros(millis));
        });
    }

    /** {@link #sleepIgnoringTheContext} on its own thread, with what it returned or threw. */
    private static final class UncheckedCall {
        private final AtomicInteger nativeTid = new AtomicInteger(-1);
        private final Thread thread;
        private volatile Integer status;
        private volatile Throwable failure;
        private volatile long elapsedNanos;

        UncheckedCall(Context context, Runnable afterwards) {
            this(context, SLEEP_MILLIS, afterwards);
        }

        UncheckedCall(Context context, long sleepMillis, Runnable afterwards) {
            thread = Thread.ofPlatform().name("nsc-unchecked").start(() -> {
                long start = System.nanoTime();
                try {
                    status = sleepIgnoringTheContext(context, sleepMillis, nativeTid);
                } catch (Throwable e) {
                    failure = e;
                } finally {
                    elapsedNanos = System.nanoTime() - start;
                }
                afterwards.run();
            });
        }

        /**
         * Waits until the thread running the downcall is in usleep's system call, so that what follows
         * happens while native code runs, not before the call (when the bridge would refuse to enter
         * it). That thread is found by the id the downcall recorded, not by the caller's name, so this
         * holds offloaded too.
         */
        UncheckedCall awaitInNativeSleep() throws InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (System.nanoTime() < deadline) {
                int tid = nativeTid.get();
                if (tid != -1) {
                    for (ProcSelf.Task task : ProcSelf.tasks()) {
                        if (task.dir().getFileName().toString().equals(Integer.toString(tid))
                                && task.syscall().startsWith(CLOCK_NANOSLEEP + " ")) {
                            return this;
                        }
                    }
                }
                Thread.sleep(1);
            }
            throw new AssertionError("the call did not reach usleep within 30 s");
        }

        UncheckedCall join() throws InterruptedException {
            assertThat(thread.join(Duration.ofSeconds(30))).as("the call ended").isTrue();
            assertThat(failure).as("the call threw").isNull();
            return this;
        }
    }

    @Test
    void cancelledCallEndsAtItsOwnPaceReturnsItsResultAndIsReported() throws Exception {
        try (CancellableContext context = Context.background().withCancel()) {
            UncheckedCall call = new UncheckedCall(context, () -> { }).awaitInNativeSleep();
            context.cancel(new IllegalStateException("request abandoned"));
            call.join();

            assertThat(call.status).as("the work finished; its result is returned").isEqualTo(NativeStatus.OK.code());
            assertThat(call.elapsedNanos).as("the call ran to its end")
                    .isGreaterThanOrEqualTo(TimeUnit.MILLISECONDS.toNanos(SLEEP_MILLIS - 10));
            assertThat(context.isDone()).isTrue();
        }
        assertThat(warnings.messages()).singleElement().satisfies(warning -> assertThat(warning)
                .contains("returned NSC_OK").contains("ms after it was cancelled").contains("request abandoned")
                .contains("does not check its nsc_context"));
        assertThat(lateMillis(warnings.messages().getFirst())).isBetween(0.0, 60_000.0);
    }

    @Test
    void aDeadlineCannotStopItEither() throws Exception {
        // The deadline must pass while usleep runs: a call that starts late is refused at entry
        // instead, so give a slow start a longer deadline (and a longer sleep) and try again.
        for (long deadlineMillis = 50; ; deadlineMillis *= 2) {
            try (CancellableContext context = Context.background().withTimeout(Duration.ofMillis(deadlineMillis))) {
                UncheckedCall call = new UncheckedCall(context, 2 * deadlineMillis + 200, () -> { });
                call.thread.join();
                if (call.failure instanceof DeadlineExceededException && deadlineMillis < 10_000) {
                    continue;
                }
                call.join();
                assertThat(call.status).isEqualTo(NativeStatus.OK.code());
                assertThat(context.isDeadlineExceeded()).isTrue();
                break;
            }
        }
        assertThat(warnings.messages()).singleElement().satisfies(warning -> assertThat(warning)
                .contains("DeadlineExceededException"));
    }

    @Test
    void anInterruptCannotStopItEitherAndStaysPending() throws Exception {
        AtomicBoolean stillInterrupted = new AtomicBoolean();
        UncheckedCall call = new UncheckedCall(Context.background(),
                () -> stillInterrupted.set(Thread.currentThread().isInterrupted())).awaitInNativeSleep();
        call.thread.interrupt();
        call.join();
        assertThat(call.status).isEqualTo(NativeStatus.OK.code());
        assertThat(stillInterrupted).as("the interrupt is still pending").isTrue();
        assertThat(warnings.messages()).singleElement().satisfies(warning -> assertThat(warning)
                .contains("InterruptedException"));
    }

    @Test
    void theFrameTheThreadAndOtherCallsCarryOn() throws Exception {
        AtomicReference<Throwable> nextCall = new AtomicReference<>();
        try (CancellableContext context = Context.background().withCancel()) {
            UncheckedCall call = new UncheckedCall(context, () -> {
                // The same thread, probably the same pooled frame: the next call is not cancelled.
                try (CancellableContext next = Context.background().withTimeout(Duration.ofSeconds(30))) {
                    ReferencePredictors.spin(next, Duration.ofMillis(5), stats -> { });
                } catch (Throwable e) {
                    nextCall.set(e);
                }
            }).awaitInNativeSleep();
            context.cancel();
            // Meanwhile other calls, checking their own contexts, are cancelled as promptly as ever.
            for (int i = 0; i < 20; i++) {
                try (CancellableContext other = Context.background().withCancel()) {
                    Thread spinner = Thread.ofPlatform().start(() -> {
                        try {
                            ReferencePredictors.spin(other, null, stats -> { });
                        } catch (CancellationException expected) {
                            // stopped by the cancel below
                        }
                    });
                    Thread.sleep(1);
                    other.cancel();
                    assertThat(spinner.join(Duration.ofSeconds(10))).as("a checking predictor stops").isTrue();
                }
            }
            call.join();
        }
        assertThat(nextCall.get()).as("the thread's next call").isNull();
        assertThat(warnings.messages()).hasSize(1);
    }

    private static double lateMillis(String message) {
        String number = message.substring(message.indexOf("NSC_OK ") + "NSC_OK ".length(), message.indexOf(" ms after"));
        return Double.parseDouble(number);
    }
}
