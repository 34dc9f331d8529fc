package dev.nativescope.call;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.bindings.nsc_predict_stats;
import dev.nativescope.interop.CancellationSignal;
import dev.nativescope.interop.InterruptHook;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.reference.ReferencePredictors;
import dev.nativescope.childjvm.ChildJvm;
import dev.nativescope.childjvm.MissedInterruptProbe;
import dev.nativescope.testing.CapturedWarnings;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Interrupts are never lost (issue 12, "lost cancellation"): a Downcall that makes nested bridged
 * calls (or enters an InterruptHook) before its own native call must still hear Thread.interrupt();
 * Java code in a Downcall that uses an interruptible NIO channel is detected and reported.
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
@OffloadMode
class NativeCallNestedInterruptTest {
    /** How long the outer native spin would run if the interrupt were lost: far beyond PROMPT. */
    private static final long SPIN_NANOS = TimeUnit.SECONDS.toNanos(20);
    /** "Promptly", generous for a loaded 2-core machine; the latency itself is benchmarked. */
    private static final long PROMPT_NANOS = TimeUnit.SECONDS.toNanos(8);

    @RegisterExtension
    final CapturedWarnings warnings = CapturedWarnings.of(CancellationSignal.class.getName());

    @BeforeAll
    static void load() {
        NativeLibrary.load();
    }

    /** Spins in native code for up to {@code nanos}, checking its context. */
    private static int spin(MemorySegment ctx, long nanos) throws Throwable {
        try (Arena arena = Arena.ofConfined()) {
            return nativescope_h.nsc_predict_spin(ctx, nanos, nsc_predict_stats.allocate(arena));
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void anInterruptAfterANestedBridgedCallStillStopsTheOuterCall(boolean virtual) throws Exception {
        CountDownLatch spinning = new CountDownLatch(1);
        Outcome outcome = runAndInterrupt(virtual, () -> NativeCall.invoke(Context.background(), ctx -> {
            ReferencePredictors.noop(Context.background()); // a quick nested check, as in issue 12
            spinning.countDown();
            return spin(ctx, SPIN_NANOS);
        }), spinning, 20);
        assertThat(outcome.thrown()).as("outer call after %d ms", outcome.nanos() / 1_000_000)
                .isInstanceOf(CancellationException.class).hasCauseInstanceOf(InterruptedException.class);
        assertThat(outcome.nanos()).isLessThan(PROMPT_NANOS);
        assertThat(outcome.stillInterrupted()).isTrue();
    }

    @Test
    void anInterruptAfterANestedInterruptHookStillStopsTheOuterCall() throws Exception {
        CountDownLatch spinning = new CountDownLatch(1);
        Outcome outcome = runAndInterrupt(false, () -> NativeCall.invoke(Context.background(), ctx -> {
            InterruptHook inner = new InterruptHook(() -> { });
            inner.enter();
            inner.exit();
            spinning.countDown();
            return spin(ctx, SPIN_NANOS);
        }), spinning, 20);
        assertThat(outcome.thrown()).isInstanceOf(CancellationException.class).hasCauseInstanceOf(InterruptedException.class);
        assertThat(outcome.nanos()).isLessThan(PROMPT_NANOS);
    }

    /**
     * An interruptible NIO channel in a Downcall replaces the call's hook and cannot be repaired; the
     * interrupt it swallows is detected: a WARNING names the fix and the result is not silently NSC_OK.
     * In a child JVM, because the WARNING is logged once per process.
     */
    @Test
    void anInterruptMissedBecauseOfAnNioChannelIsReportedNotReturnedAsOk() throws Exception {
        ChildJvm.Result result = ChildJvm.run(List.of("--enable-native-access=ALL-UNNAMED"), List.of(),
                MissedInterruptProbe.class.getName());
        assertThat(result.exitCode()).as(result.output()).isZero();
        assertThat(result.output()).as("the call's outcome after a missed interrupt")
                .contains("outcome=java.util.concurrent.CancellationException")
                .contains("not installed")
                .contains("caused by java.lang.InterruptedException")
                .contains("interrupted=true")
                .doesNotContain("outcome=status");
        assertThat(result.output()).as("the WARNING naming the fix").contains("WARNING")
                .contains("interruptible NIO channel").contains("outside").contains("NativeCall.invoke");
    }

    /** Nesting depth 1-3 x interrupt timing (before, in an inner call, between, in the outer spin) x thread kind. */
    @Test
    void nestedCallsNeverLoseAnInterrupt() throws Exception {
        SplittableRandom random = new SplittableRandom(1212);
        for (int i = 0; i < 60; i++) {
            boolean virtual = random.nextBoolean();
            int depth = 1 + random.nextInt(3);
            long innerSpinNanos = random.nextInt(3) == 0 ? 0 : TimeUnit.MICROSECONDS.toNanos(random.nextInt(3000));
            int delayMicros = random.nextInt(4000);
            CountDownLatch started = new CountDownLatch(1);
            try (CancellableContext context = Context.background().withCancel()) {
                Outcome outcome = runAndInterrupt(virtual, () -> {
                    started.countDown();
                    return nested(context, depth, innerSpinNanos);
                }, started, delayMicros / 1000);
                assertThat(outcome.thrown()).as("iteration %d: depth %d, inner spin %d us, interrupt after %d us, %s thread",
                                i, depth, innerSpinNanos / 1000, delayMicros, virtual ? "virtual" : "platform")
                        .isInstanceOf(CancellationException.class).hasCauseInstanceOf(InterruptedException.class);
                assertThat(outcome.nanos()).isLessThan(PROMPT_NANOS);
                assertThat(outcome.stillInterrupted()).isTrue();
                assertThat(context.isDone()).as("an interrupt cancels the call, never the context").isFalse();
            }
        }
        assertThat(warnings.messages()).as("bridged calls alone never miss an interrupt").isEmpty();
    }

    /** A bridged call that first makes {@code depth - 1} nested bridged calls (each nesting further), then spins long. */
    private static int nested(Context context, int depth, long innerSpinNanos) {
        return NativeCall.invoke(context, ctx -> {
            if (depth > 1) {
                nested(context, depth - 1, innerSpinNanos);
                // The inner levels also end in a long spin, so only an interrupt ends them: reaching
                // here means an interrupt was heard by an inner level, which throws past us instead.
                throw new AssertionError("unreachable: the inner call returned normally");
            }
            if (innerSpinNanos > 0) {
                NativeCall.invoke(context, inner -> spin(inner, innerSpinNanos));
            }
            return spin(ctx, SPIN_NANOS);
        });
    }

    private record Outcome(Throwable thrown, long nanos, boolean stillInterrupted) {
    }

    /** Runs {@code call} in a new thread and interrupts it {@code delayMillis} after {@code ready}. */
    private static Outcome runAndInterrupt(boolean virtual, java.util.concurrent.Callable<Integer> call,
                                           CountDownLatch ready, long delayMillis) throws Exception {
        CompletableFuture<Outcome> result = new CompletableFuture<>();
        AtomicReference<Long> interruptedAt = new AtomicReference<>();
        Runnable body = () -> {
            Throwable thrown = null;
            try {
                call.call();
            } catch (Throwable e) {
                thrown = e;
            }
            long end = System.nanoTime();
            Long at = interruptedAt.get();
            result.complete(new Outcome(thrown, at == null ? 0 : end - at, Thread.interrupted()));
        };
        Thread thread = virtual ? Thread.ofVirtual().start(body) : Thread.ofPlatform().start(body);
        assertThat(ready.await(30, TimeUnit.SECONDS)).isTrue();
        Thread.sleep(delayMillis);
        interruptedAt.set(System.nanoTime());
        thread.interrupt();
        Outcome outcome = result.get(60, TimeUnit.SECONDS);
        thread.join();
        return outcome;
    }
}
