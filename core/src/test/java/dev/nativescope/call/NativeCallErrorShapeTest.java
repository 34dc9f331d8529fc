package dev.nativescope.call;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.interop.CancellationSignal;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.reference.ReferencePredictors;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.SplittableRandom;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

/**
 * Errors in the right shape (issue 12): FFM's own exceptions reach callers as themselves, never as
 * jextract's {@code AssertionError: should not reach here}; overflowing sizes are an
 * IllegalArgumentException; a cause whose toString() throws still gives a CancellationException.
 */
@OffloadMode
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class NativeCallErrorShapeTest {
    private static final long N = 4;

    @BeforeAll
    static void load() {
        NativeLibrary.load();
    }

    private static Throwable dense(MemorySegment x, MemorySegment w, MemorySegment y) {
        return catchThrowable(() -> ReferencePredictors.dense(Context.background(), x, w, MemorySegment.NULL, y, N, N, N, 1, null));
    }

    @Test
    void aClosedArenasSegmentIsAnIllegalStateException() {
        // Shared arenas: a native thread may pass their segments, so this holds offloaded too, where
        // FFM's refusal happens on the native thread and comes back through the handoff.
        aClosedArenasSegmentIsAnIllegalStateException(Arena::ofShared);
    }

    @Test
    void aClosedConfinedArenasSegmentIsAnIllegalStateExceptionInline() {
        // Offloaded, a raw downcall passes the confined segments from a native thread, and FFM checks
        // the thread before liveness: a WrongThreadException (the next test), not this one.
        OffloadMode.Run.assumeInline("FFM's liveness check of a confined segment runs only on its owner thread");
        aClosedArenasSegmentIsAnIllegalStateException(Arena::ofConfined);
    }

    /** A segment of a closed arena of {@code kind}, passed beside a live one of the same kind. */
    private static void aClosedArenasSegmentIsAnIllegalStateException(Supplier<Arena> kind) {
        MemorySegment closed;
        try (Arena arena = kind.get()) {
            closed = arena.allocate(N * N * Float.BYTES, 4);
        }
        try (Arena arena = kind.get()) {
            MemorySegment live = arena.allocate(N * N * Float.BYTES, 4);
            assertThat(dense(closed, live, live)).isInstanceOf(IllegalStateException.class).isNotInstanceOf(Error.class);
            assertThat(catchThrowable(() -> NativeCall.invoke(Context.background(), ctx -> nativescope_h.nsc_dl_sum_f32(ctx, closed, live))))
                    .as("NativeCall with a raw downcall").isInstanceOf(IllegalStateException.class);
        }
    }

    @Test
    void aConfinedSegmentOfAnOffloadedRawDowncallIsAWrongThreadExceptionThatNamesTheFix() {
        // The reference predictors see their segments and run a call with a confined one inline
        // (NativeThreads.modeFor); a raw downcall cannot be seen into, so an offloaded one is refused
        // by FFM on the native thread, and the message says what to allocate instead.
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment live = arena.allocate(N * N * Float.BYTES, 4);
            assertThat(catchThrowable(() -> NativeCall.invoke(Context.background(), CallMode.OFFLOAD,
                    ctx -> nativescope_h.nsc_dl_sum_f32(ctx, MemorySegment.NULL, live))))
                    .isInstanceOf(WrongThreadException.class)
                    .hasMessageContaining("Arena.ofConfined()").hasMessageContaining("NativeThreads.arenaForCall(mode)");
        }
    }

    @Test
    void anotherThreadsConfinedSegmentIsAWrongThreadException() throws Exception {
        CountDownLatch done = new CountDownLatch(1);
        CompletableFuture<MemorySegment> foreign = new CompletableFuture<>();
        Thread owner = Thread.ofPlatform().start(() -> {
            try (Arena arena = Arena.ofConfined()) {
                foreign.complete(arena.allocate(N * N * Float.BYTES, 4));
                done.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment live = arena.allocate(N * N * Float.BYTES, 4);
            assertThat(dense(foreign.get(), live, live)).isInstanceOf(WrongThreadException.class);
        } finally {
            done.countDown();
            owner.join();
        }
    }

    @Test
    void aHeapSegmentIsAnIllegalArgumentException() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment live = arena.allocate(N * N * Float.BYTES, 4);
            MemorySegment heap = MemorySegment.ofArray(new float[(int) (N * N)]);
            assertThat(dense(heap, live, live)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("x");
        }
    }

    @Test
    void overflowingSizesAreAnIllegalArgumentExceptionNamingTheArgument() {
        SplittableRandom random = new SplittableRandom(3);
        for (int i = 0; i < 200; i++) {
            long rows = 1L << (32 + random.nextInt(31));
            long inner = 1L << (32 + random.nextInt(31));
            Throwable thrown = catchThrowable(() -> ReferencePredictors.dense(Context.background(), MemorySegment.NULL,
                    MemorySegment.NULL, MemorySegment.NULL, MemorySegment.NULL, rows, inner, 3, 1, null));
            assertThat(thrown).as("rows=%d inner=%d", rows, inner).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("x").hasMessageContaining("overflow");
        }
    }

    /** A cause whose toString() (and getMessage()) throws. */
    private static final class HostileCause extends RuntimeException {
        @Override
        public String toString() {
            throw new IllegalStateException("toString() of a hostile cause");
        }

        @Override
        public String getMessage() {
            throw new IllegalStateException("getMessage() of a hostile cause");
        }
    }

    @Test
    void aCauseWhoseToStringThrowsStillGivesACancellationException() throws Exception {
        // Before entry.
        try (CancellableContext context = Context.background().withCancel()) {
            HostileCause cause = new HostileCause();
            context.cancel(cause);
            assertThat(catchThrowable(() -> ReferencePredictors.noop(context)))
                    .isInstanceOf(CancellationException.class).hasCause(cause);
            assertThat(CancellationSignal.canceled("work", cause)).hasCause(cause);
        }
        // During the call, by a canceller in another thread.
        try (CancellableContext context = Context.background().withCancel()) {
            HostileCause cause = new HostileCause();
            Thread canceller = Thread.ofPlatform().start(() -> {
                try {
                    Thread.sleep(20);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                context.cancel(cause);
            });
            assertThat(catchThrowable(() -> ReferencePredictors.spin(context, null, null)))
                    .isInstanceOf(CancellationException.class).hasCause(cause);
            canceller.join();
        }
        // A late return of native code that ignores its context: reportLateReturn formats the cause.
        try (CancellableContext context = Context.background().withCancel()) {
            HostileCause cause = new HostileCause();
            Thread canceller = Thread.ofPlatform().start(() -> {
                try {
                    Thread.sleep(20);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                context.cancel(cause);
            });
            Throwable thrown = catchThrowable(() -> NativeCall.invoke(context, ignored -> {
                // Java "native work" that never looks at its context, for longer than the warning threshold.
                Thread.sleep(NativeCall.DEFAULT_LATE_RETURN_WARNING_MILLIS + 200);
                return 0;
            }));
            assertThat(thrown).as("the result of a late return stands").isNull();
            canceller.join();
        }
        // The owner path of CancellationSignal.
        try (CancellableContext owner = Context.background().withCancel()) {
            HostileCause cause = new HostileCause();
            owner.cancel(cause);
            try (CancellationSignal signal = CancellationSignal.open(Context.background(), owner, reason -> { })) {
                assertThat(signal.stoppedException("work")).isInstanceOf(CancellationException.class).hasCause(cause);
            }
        }
        assertThat(Duration.ZERO).isNotNull();
    }
}
