package dev.nativescope.examples.userpredictor;

import dev.nativescope.Context;
import dev.nativescope.call.NativeCall;
import dev.nativescope.tensor.DLPack;
import dev.nativescope.tensor.Tensor;
import dev.nativescope.testing.CapturedWarnings;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.Timeout;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.time.Duration;
import java.util.concurrent.CancellationException;
import java.util.concurrent.StructuredTaskScope;
import java.util.concurrent.StructuredTaskScope.Joiner;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static dev.nativescope.examples.userpredictor.UserPredictorExample.randomMatrix;
import static dev.nativescope.examples.userpredictor.UserPredictorExample.zeros;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * A predictor that never checks its context (the user's convolution compiled with
 * {@code -DUSER_PREDICTOR_NO_CHECKS}) inside a structured scope whose other subtask fails:
 * nothing can stop it, so the scope reports the failure from {@code join()} at once, a sibling that
 * does check stops at once, {@code close()} waits for the unchecked call to end at its own pace, its result
 * is complete and right, a warning names how late it came, and the next scope runs normally.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class UncheckedPredictorInScopeTest {
    private static final int OUT = 252;
    /** How long the unchecked call should run: well past the failure, short enough for a test. */
    private static final Duration UNCHECKED_RUN = Duration.ofMillis(1500);
    private static final Arena ARENA = Arena.ofAuto();
    private static Tensor input;
    private static Tensor kernel;
    private static MethodHandle uncheckedConv2d;
    private static long uncheckedRepeat;

    @RegisterExtension
    final CapturedWarnings warnings = CapturedWarnings.of(NativeCall.class.getName());

    @BeforeAll
    static void calibrate() {
        UserPredictor.load();
        input = randomMatrix(ARENA, 256, 256, 21);
        kernel = randomMatrix(ARENA, 5, 5, 22);
        uncheckedConv2d = UserPredictorBuilds.conv2d(UserPredictorBuilds.WITHOUT_CHECKS);
        Tensor output = zeros(ARENA, OUT, OUT);
        convolveUnchecked(output, 1); // links and warms up
        // The fastest of three timings: a stall of a loaded machine during one would make the call too
        // short to still run well past its cancel (and then no late return would be reported).
        long perRepeat = Long.MAX_VALUE;
        for (int i = 0; i < 3; i++) {
            long start = System.nanoTime();
            convolveUnchecked(output, 20);
            perRepeat = Math.min(perRepeat, Math.max(1, (System.nanoTime() - start) / 20));
        }
        uncheckedRepeat = Math.max(1, UNCHECKED_RUN.toNanos() / perRepeat);
    }

    /** @return the output rows completed; the call goes through the bridge under the current context */
    private static long convolveUnchecked(Tensor output, long repeat) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment in = DLPack.export(input, arena);
            MemorySegment k = DLPack.export(kernel, arena);
            MemorySegment out = DLPack.export(output, arena);
            MemorySegment rowsDone = arena.allocate(ValueLayout.JAVA_LONG);
            NativeCall.invoke(Context.current(),
                    ctx -> (int) uncheckedConv2d.invokeExact(ctx, in, k, out, repeat, rowsDone));
            return rowsDone.get(ValueLayout.JAVA_LONG, 0);
        }
    }

    /**
     * Waits until the unchecked subtask's thread has burnt 20 ms of CPU time: the bridge's
     * prologue takes microseconds, so by then it computes in native code, and a cancel now can no
     * longer be refused at the call's entry.
     */
    private static void awaitComputingInNativeCode(AtomicReference<Thread> uncheckedThread) throws InterruptedException {
        ThreadMXBean threads = ManagementFactory.getThreadMXBean();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < deadline) {
            Thread thread = uncheckedThread.get();
            if (thread != null && threads.getThreadCpuTime(thread.threadId()) > TimeUnit.MILLISECONDS.toNanos(20)) {
                return;
            }
            Thread.sleep(1);
        }
        throw new AssertionError("the unchecked subtask did not start computing within 30 s");
    }

    @Test
    void scopeReportsTheFailureAndCloseWaitsForTheUncheckedCallWhoseResultStands() throws Exception {
        Tensor uncheckedOutput = zeros(ARENA, OUT, OUT);
        AtomicLong uncheckedRows = new AtomicLong();
        AtomicLong uncheckedEnded = new AtomicLong();
        AtomicLong siblingEnded = new AtomicLong();
        AtomicReference<Throwable> siblingFailure = new AtomicReference<>();

        long opened = System.nanoTime();
        long joinThrew;
        StructuredTaskScope.Subtask<Object> unchecked;
        AtomicReference<Thread> uncheckedThread = new AtomicReference<>();
        try (var scope = StructuredTaskScope.open(Joiner.<Object>awaitAllSuccessfulOrThrow(),
                cf -> cf.withThreadFactory(Thread.ofPlatform().factory()))) {
            unchecked = scope.fork(() -> {
                uncheckedThread.set(Thread.currentThread());
                try {
                    uncheckedRows.set(convolveUnchecked(uncheckedOutput, uncheckedRepeat));
                    return uncheckedRows.get();
                } finally {
                    uncheckedEnded.set(System.nanoTime());
                }
            });
            scope.fork(() -> {
                try {
                    // The checking build, asked for minutes of work.
                    return UserPredictor.conv2d(Context.current(), input, kernel, zeros(ARENA, OUT, OUT), 1_000_000, null);
                } catch (CancellationException stopped) {
                    siblingFailure.set(stopped);
                    throw stopped;
                } finally {
                    siblingEnded.set(System.nanoTime());
                }
            });
            scope.fork(() -> {
                awaitComputingInNativeCode(uncheckedThread);
                throw new IllegalStateException("a sibling failed while the unchecked predictor ran");
            });
            assertThatThrownBy(scope::join).isInstanceOf(StructuredTaskScope.FailedException.class)
                    .hasRootCauseMessage("a sibling failed while the unchecked predictor ran");
            joinThrew = System.nanoTime();
        }
        long closed = System.nanoTime();

        assertThat(uncheckedEnded.get()).as("join reported the failure while the unchecked call still ran")
                .isGreaterThan(joinThrew);
        assertThat(closed).as("close() waits for it").isGreaterThanOrEqualTo(uncheckedEnded.get());
        assertThat(siblingFailure.get()).as("the checking sibling was cancelled").isNotNull();
        assertThat(Duration.ofNanos(siblingEnded.get() - opened)).as("and stopped long before the unchecked call")
                .isLessThan(Duration.ofNanos(uncheckedEnded.get() - opened));

        // The call returned its result (the scope, cancelled by then, no longer takes it).
        assertThat(unchecked.state()).isEqualTo(StructuredTaskScope.Subtask.State.UNAVAILABLE);
        assertThat(uncheckedRows.get()).as("all its work was done").isEqualTo(uncheckedRepeat * OUT);
        UserPredictorTest.assertMatchesReference(uncheckedOutput, input, kernel);
        assertThat(warnings.messages()).as("the late return is reported").anySatisfy(warning -> assertThat(warning)
                .contains("after it was cancelled").contains("does not check its nsc_context"));

        // Nothing else broke: the next scope's calls run and finish normally.
        try (var scope = StructuredTaskScope.open(Joiner.<Long>allSuccessfulOrThrow())) {
            var next = scope.fork(() -> UserPredictor.conv2d(Context.current(), input, kernel, zeros(ARENA, OUT, OUT), 1, null));
            var nextUnchecked = scope.fork(() -> convolveUnchecked(zeros(ARENA, OUT, OUT), 1));
            scope.join();
            assertThat(next.get()).isEqualTo(OUT);
            assertThat(nextUnchecked.get()).isEqualTo(OUT);
        }
    }
}
