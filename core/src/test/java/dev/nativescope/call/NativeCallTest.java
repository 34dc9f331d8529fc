package dev.nativescope.call;

import dev.nativescope.internal.access.SharedAccess;
import dev.nativescope.library.NativeStatus;
import dev.nativescope.library.NativeStatusException;
import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.ContextKey;
import dev.nativescope.DeadlineExceededException;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.reference.EventFd;
import dev.nativescope.reference.PredictionStats;
import dev.nativescope.reference.ReferencePredictors;
import dev.nativescope.bindings.nativescope_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;
import java.util.Random;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

/** The cancellable call bridge on real native code: completion, cancel, interrupt, deadline, values. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
@OffloadMode
class NativeCallTest {
    private static final ContextKey<String> TRACE_ID = ContextKey.ofString("trace-id");
    /** Bounds for "promptly": generous for a loaded 2-core machine; the latency itself is benchmarked. */
    private static final long PROMPT_SECONDS = 10;

    @BeforeAll
    static void load() {
        NativeLibrary.load();
    }

    @Test
    void denseCompletesWithTheSameResultAsJava() {
        int rows = 37;
        int inner = 70;
        int cols = 45;
        Random random = new Random(7);
        // Shared: a confined operand keeps dense() inline (NativeThreads.modeFor), also in the offload-mode run.
        try (Arena arena = Arena.ofShared()) {
            MemorySegment x = randomFloats(arena, random, rows * inner);
            MemorySegment w = randomFloats(arena, random, inner * cols);
            MemorySegment bias = randomFloats(arena, random, cols);
            MemorySegment y = arena.allocate(ValueLayout.JAVA_FLOAT, (long) rows * cols);
            PredictionStats stats = ReferencePredictors.dense(Context.background().withValue(TRACE_ID, "t-1"),
                    x, w, bias, y, rows, inner, cols, 2, null);
            assertThat(stats.status()).isZero();
            assertThat(stats.traceId()).contains("t-1");
            for (int i = 0; i < rows; i++) {
                for (int j = 0; j < cols; j++) {
                    double sum = bias.getAtIndex(ValueLayout.JAVA_FLOAT, j);
                    for (int k = 0; k < inner; k++) {
                        sum += x.getAtIndex(ValueLayout.JAVA_FLOAT, (long) i * inner + k)
                                * w.getAtIndex(ValueLayout.JAVA_FLOAT, (long) k * cols + j);
                    }
                    float expected = (float) Math.max(0, sum);
                    assertThat(y.getAtIndex(ValueLayout.JAVA_FLOAT, (long) i * cols + j))
                            .as("y[%d][%d]", i, j).isCloseTo(expected, org.assertj.core.data.Offset.offset(1e-3f));
                }
            }
        }
    }

    @Test
    void cancelStopsASpinningPredictorWithTheCauseAttached() throws Exception {
        try (CancellableContext context = Context.background().withCancel();
             ExecutorService executor = Executors.newSingleThreadExecutor()) {
            AtomicReference<PredictionStats> returned = new AtomicReference<>();
            Future<?> call = executor.submit(() -> ReferencePredictors.spin(context, null, returned::set));
            Thread.sleep(50);
            IllegalStateException cause = new IllegalStateException("user gave up");
            context.cancel(cause);
            Throwable thrown = unwrap(call);
            assertThat(thrown).isInstanceOf(CancellationException.class).hasCauseReference(cause);
            assertThat(thrown).isNotInstanceOf(DeadlineExceededException.class);
            assertThat(returned.get().status()).isEqualTo(NativeStatus.CANCELED.code());
            assertThat(returned.get().checks()).isPositive();
        }
    }

    @Test
    void cancellingAParentStopsCallsOnItsChildren() throws Exception {
        try (CancellableContext parent = Context.background().withCancel();
             ExecutorService executor = Executors.newFixedThreadPool(3)) {
            List<Future<?>> calls = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                Context child = parent.withCancel().withValue(TRACE_ID, "child-" + i);
                calls.add(executor.submit(() -> ReferencePredictors.spin(child, null, null)));
            }
            Thread.sleep(50);
            parent.cancel();
            for (Future<?> call : calls) {
                assertThat(unwrap(call)).isInstanceOf(CancellationException.class);
            }
        }
    }

    @Test
    void aContextDoneBeforeTheCallNeverEntersNativeCode() {
        CancellableContext context = Context.background().withCancel();
        IllegalArgumentException cause = new IllegalArgumentException("stop");
        context.cancel(cause);
        AtomicReference<PredictionStats> returned = new AtomicReference<>();
        assertThatThrownBy(() -> ReferencePredictors.spin(context, null, returned::set))
                .isInstanceOf(CancellationException.class)
                .hasCauseReference(cause);
        assertThat(returned.get()).as("native code must not have run").isNull();
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void interruptStopsAnFdBlockedCallAndOnlyThatCall(boolean virtual) throws Exception {
        try (EventFd never = EventFd.create(); EventFd later = EventFd.create()) {
            Context shared = Context.background().withValue(TRACE_ID, "shared");
            AtomicReference<Throwable> interruptedOutcome = new AtomicReference<>();
            AtomicReference<Boolean> interruptStatusAfter = new AtomicReference<>();
            AtomicReference<OptionalLong> siblingOutcome = new AtomicReference<>();
            Thread.Builder builder = virtual ? Thread.ofVirtual() : Thread.ofPlatform();
            Thread victim = builder.start(() -> {
                interruptedOutcome.set(catchThrowable(() -> ReferencePredictors.awaitFd(shared, never.fd(), null, null)));
                interruptStatusAfter.set(Thread.currentThread().isInterrupted());
            });
            Thread sibling = Thread.ofPlatform().start(
                    () -> siblingOutcome.set(ReferencePredictors.awaitFd(shared, later.fd(), null, null)));
            Thread.sleep(50);
            victim.interrupt();
            assertThat(victim.join(Duration.ofSeconds(PROMPT_SECONDS))).isTrue();
            assertThat(interruptedOutcome.get()).isInstanceOf(CancellationException.class)
                    .hasCauseInstanceOf(InterruptedException.class);
            assertThat(interruptStatusAfter.get()).as("interrupt status preserved").isTrue();
            // The interrupt cancelled only the victim's call: the sibling on the same context still waits.
            assertThat(shared.isDone()).isFalse();
            assertThat(sibling.isAlive()).isTrue();
            later.signal(5);
            assertThat(sibling.join(Duration.ofSeconds(PROMPT_SECONDS))).isTrue();
            assertThat(siblingOutcome.get()).hasValue(5);
        }
    }

    @Test
    void anAlreadyInterruptedThreadIsCancelledBeforeNativeEntry() {
        AtomicReference<PredictionStats> returned = new AtomicReference<>();
        Thread.currentThread().interrupt();
        try {
            assertThatThrownBy(() -> ReferencePredictors.spin(Context.background(), null, returned::set))
                    .isInstanceOf(CancellationException.class)
                    .hasCauseInstanceOf(InterruptedException.class);
            assertThat(Thread.currentThread().isInterrupted()).isTrue();
            assertThat(returned.get()).as("native code must not have run").isNull();
        } finally {
            Thread.interrupted();
        }
    }

    @Test
    void deadlineStopsNativeCodeWithADistinctTimeoutException() {
        try (CancellableContext context = Context.background().withTimeout(Duration.ofMillis(30))) {
            long deadline = context.deadlineNanoTime().orElseThrow();
            AtomicReference<PredictionStats> returned = new AtomicReference<>();
            Throwable thrown = catchThrowable(() -> ReferencePredictors.spin(context, null, returned::set));
            assertThat(thrown).isInstanceOf(DeadlineExceededException.class)
                    .hasRootCauseInstanceOf(java.util.concurrent.TimeoutException.class);
            assertThat(((DeadlineExceededException) thrown).deadlineNanoTime()).isEqualTo(deadline);
            assertThat(returned.get().endNanoTime()).isGreaterThanOrEqualTo(deadline);
        }
    }

    @Test
    void nativeCodeNeverReportsADeadlineBeforeItPasses() {
        Random random = new Random(11);
        int exceeded = 0;
        for (int i = 0; i < 10_000; i++) {
            long timeoutNanos = random.nextLong(300_000);
            AtomicReference<PredictionStats> returned = new AtomicReference<>();
            try (CancellableContext context = Context.background().withTimeout(Duration.ofNanos(timeoutNanos))) {
                long deadline = context.deadlineNanoTime().orElseThrow();
                try {
                    // Spin a little longer than the deadline, so both outcomes happen.
                    ReferencePredictors.spin(context, Duration.ofNanos(random.nextLong(400_000)), returned::set);
                } catch (DeadlineExceededException e) {
                    exceeded++;
                    if (returned.get() != null) {
                        assertThat(returned.get().endNanoTime()).as("iteration %d", i).isGreaterThanOrEqualTo(deadline);
                    }
                    assertThat(System.nanoTime()).isGreaterThanOrEqualTo(deadline);
                }
            }
        }
        assertThat(exceeded).as("some deadlines must have fired").isPositive();
    }

    @Test
    void nativeCodeReadsTheNearestValueOfAKey() {
        ContextKey<String> tenant = ContextKey.ofString("tenant");
        Context context = Context.background().withValue(TRACE_ID, "outer").withValue(tenant, "acme")
                .withValue(TRACE_ID, "inner");
        NativeCall.invoke(context, struct -> {
            assertThat(nativeValue(struct, "trace-id")).isEqualTo("inner");
            assertThat(nativeValue(struct, "tenant")).isEqualTo("acme");
            assertThat(nativeValue(struct, "absent")).isNull();
            return NativeStatus.OK.code();
        });
    }

    @Test
    void valuesStayValidForACallInFlightAfterTheContextIsClosed() throws Exception {
        CancellableContext owner = Context.background().withCancel();
        Context context = owner.withValue(TRACE_ID, "still-here");
        CountDownLatch closed = new CountDownLatch(1);
        AtomicReference<String> readAfterClose = new AtomicReference<>();
        Thread caller = Thread.ofPlatform().start(() -> catchThrowable(() -> NativeCall.invoke(context, struct -> {
            // Native code that is still running when its context is closed and cancelled: its
            // struct and values must stay readable until it returns.
            closed.await();
            readAfterClose.set(nativeValue(struct, "trace-id"));
            return nativescope_h.nsc_noop_ctx(struct);
        })));
        Thread.sleep(20);
        owner.close();
        assertThat(((NativeValues) SharedAccess.CONTEXTS.get().nativeValues(context)).isFreed()).as("freed under an in-flight call").isFalse();
        closed.countDown();
        assertThat(caller.join(Duration.ofSeconds(PROMPT_SECONDS))).isTrue();
        assertThat(readAfterClose.get()).isEqualTo("still-here");
        assertThat(((NativeValues) SharedAccess.CONTEXTS.get().nativeValues(context)).isFreed()).as("freed once the call returned").isTrue();
    }

    @Test
    void aClosedContextIsRejectedWithAMessageThatSaysWhatToDo() {
        CancellableContext context = Context.background().withCancel();
        context.close();
        assertThatThrownBy(() -> ReferencePredictors.noop(context))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("closed by its owner")
                .hasMessageContaining("derive a new context");
    }

    @Test
    void errorStatusesBecomeNativeStatusExceptions() {
        assertThatThrownBy(() -> NativeCall.invoke(Context.background(), struct -> nativescope_h.NSC_ERR_INVALID()))
                .isInstanceOf(NativeStatusException.class)
                .hasMessageContaining("NSC_ERR_INVALID")
                .satisfies(e -> assertThat(((NativeStatusException) e).status()).isEqualTo(-1));
        assertThatThrownBy(() -> ReferencePredictors.dense(Context.background(), MemorySegment.NULL, MemorySegment.NULL,
                MemorySegment.NULL, MemorySegment.NULL, 0, 1, 1, 1, null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("must be positive");
        assertThatThrownBy(() -> NativeCall.invoke(null, struct -> 0)).isInstanceOf(NullPointerException.class)
                .hasMessageContaining("context");
    }

    static String nativeValue(MemorySegment struct, String key) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment keyBytes = arena.allocateFrom(key);
            MemorySegment value = arena.allocate(ValueLayout.ADDRESS);
            MemorySegment length = arena.allocate(ValueLayout.JAVA_LONG);
            int status = nativescope_h.nsc_value(struct, keyBytes, keyBytes.byteSize() - 1, value, length);
            if (status == nativescope_h.NSC_NOT_FOUND()) {
                return null;
            }
            assertThat(status).isZero();
            long size = length.get(ValueLayout.JAVA_LONG, 0);
            return value.get(ValueLayout.ADDRESS, 0).reinterpret(size + 1).getString(0);
        }
    }

    static MemorySegment randomFloats(Arena arena, Random random, long count) {
        MemorySegment segment = arena.allocate(ValueLayout.JAVA_FLOAT, count);
        for (long i = 0; i < count; i++) {
            segment.setAtIndex(ValueLayout.JAVA_FLOAT, i, random.nextFloat() - 0.5f);
        }
        return segment;
    }

    static Throwable unwrap(Future<?> call) throws InterruptedException, java.util.concurrent.TimeoutException {
        try {
            call.get(PROMPT_SECONDS, TimeUnit.SECONDS);
            return null;
        } catch (ExecutionException e) {
            return e.getCause();
        }
    }
}
