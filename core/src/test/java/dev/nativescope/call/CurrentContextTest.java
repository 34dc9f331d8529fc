package dev.nativescope.call;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.ContextKey;
import dev.nativescope.DeadlineExceededException;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.bindings.nsc_predict_stats;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.library.NativeStatus;
import dev.nativescope.reference.EventFd;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

/**
 * The current context ({@link NativeCall#call(Context, NativeCall.CurrentCall)}, {@code nsc_current()}):
 * native functions without a context parameter find the call's context on the thread that runs
 * them, inline on platform and virtual threads and offloaded on native threads; values, checks,
 * waits and hooks work through it; nesting restores the outer context; a pooled native thread never
 * sees a previous call's context, whether that call returned, threw or was cancelled.
 */
@Timeout(120)
@OffloadMode
class CurrentContextTest {
    private static final ContextKey<String> TRACE_ID = ContextKey.ofString("trace-id");
    private static final Duration PROMPTLY = Duration.ofSeconds(10);

    @BeforeAll
    static void load() {
        NativeLibrary.load();
    }

    /** The current context of the thread (the carrier, for a virtual thread) as an address; 0 for none. */
    static long current() {
        return nativescope_h.nsc_current().address();
    }

    /** Runs body on a thread of caller's kind, waits for it, rethrows what it threw. */
    static void onCaller(Caller caller, ThrowingRunnable body) throws Exception {
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread thread = caller.start(() -> {
            try {
                body.run();
            } catch (Throwable t) {
                failure.set(t);
            }
        });
        assertThat(thread.join(PROMPTLY.multipliedBy(3))).as("the caller finished").isTrue();
        if (failure.get() instanceof Exception e) {
            throw e;
        }
        if (failure.get() instanceof Error e) {
            throw e;
        }
    }

    interface ThrowingRunnable {
        void run() throws Exception;
    }

    @ParameterizedTest
    @EnumSource(Caller.class)
    void theCallsContextIsCurrentOnlyWhileItRuns(Caller caller) throws Exception {
        onCaller(caller, () -> {
            assertThat(current()).as("before the call").isZero();
            AtomicReference<Thread> ranOn = new AtomicReference<>();
            long inside = NativeCall.call(Context.background(), caller.mode, () -> {
                ranOn.set(Thread.currentThread());
                return current();
            });
            assertThat(inside).as("nsc_current() in the call").isNotZero();
            assertThat(current()).as("after the call").isZero();
            assertThat(ranOn.get() instanceof NativeThreadPool.NativeThread).isEqualTo(caller.offloads());
            // A plain downcall (no current context) made the same way sees none.
            assertThat(NativeCall.invoke(Context.background(), caller.mode, ctx -> (int) current())).isZero();
        });
    }

    @ParameterizedTest
    @EnumSource(Caller.class)
    void valuesReachAFunctionWithoutAContextParameter(Caller caller) throws Exception {
        Context context = Context.background().withValue(TRACE_ID, "req-18");
        onCaller(caller, () -> {
            try (Arena arena = Arena.ofShared()) {
                MemorySegment stats = nsc_predict_stats.allocate(arena);
                int status = NativeCall.call(context, caller.mode, () -> nativescope_h.nsc_predict_spin_current(1_000_000, stats));
                assertThat(status).isEqualTo(NativeStatus.OK.code());
                assertThat(nsc_predict_stats.trace_id(stats).getString(0)).isEqualTo("req-18");
                assertThat(nsc_predict_stats.checks(stats)).isPositive();
            }
        });
    }

    @ParameterizedTest
    @EnumSource(Caller.class)
    void aCancelStopsChecksThroughTheCurrentContext(Caller caller) throws Exception {
        try (CancellableContext context = Context.background().withCancel()) {
            CountDownLatch entered = new CountDownLatch(1);
            AtomicReference<Throwable> seen = new AtomicReference<>();
            Thread thread = caller.start(() -> seen.set(catchThrowable(() -> NativeCall.call(context, caller.mode, () -> {
                entered.countDown();
                return nativescope_h.nsc_predict_spin_current(-1, MemorySegment.NULL);
            }))));
            assertThat(entered.await(PROMPTLY.toSeconds(), TimeUnit.SECONDS)).isTrue();
            Thread.sleep(20);
            IllegalStateException cause = new IllegalStateException("user gave up");
            context.cancel(cause);
            assertThat(thread.join(PROMPTLY)).as("stopped").isTrue();
            assertThat(seen.get()).isInstanceOf(CancellationException.class).isNotInstanceOf(DeadlineExceededException.class)
                    .hasCauseReference(cause);
        }
    }

    @ParameterizedTest
    @EnumSource(Caller.class)
    void anInterruptStopsAWaitThroughTheCurrentContext(Caller caller) throws Exception {
        try (EventFd never = EventFd.create(); Arena arena = Arena.ofShared()) {
            MemorySegment value = arena.allocate(8);
            CountDownLatch entered = new CountDownLatch(1);
            AtomicReference<Throwable> seen = new AtomicReference<>();
            AtomicReference<Boolean> interruptedAfter = new AtomicReference<>();
            Thread thread = caller.start(() -> {
                seen.set(catchThrowable(() -> NativeCall.call(Context.background(), caller.mode, () -> {
                    entered.countDown();
                    return nativescope_h.nsc_predict_wait_current(never.fd(), -1, value, MemorySegment.NULL);
                })));
                interruptedAfter.set(Thread.currentThread().isInterrupted());
            });
            assertThat(entered.await(PROMPTLY.toSeconds(), TimeUnit.SECONDS)).isTrue();
            Thread.sleep(20);
            thread.interrupt();
            assertThat(thread.join(PROMPTLY)).as("stopped").isTrue();
            assertThat(seen.get()).isInstanceOf(CancellationException.class).hasCauseInstanceOf(InterruptedException.class);
            assertThat(interruptedAfter.get()).as("the caller's interrupt status stays set").isTrue();
        }
    }

    @ParameterizedTest
    @EnumSource(Caller.class)
    void theDeadlineRunsAHookRegisteredOnTheCurrentContext(Caller caller) throws Exception {
        onCaller(caller, () -> {
            try (CancellableContext context = Context.background().withTimeout(Duration.ofMillis(100))) {
                long start = System.nanoTime();
                // Blocks in a futex wait for up to a minute: only the hook, run by the deadline timer, ends it.
                assertThatThrownBy(() -> NativeCall.call(context, caller.mode,
                        () -> nativescope_h.nsc_predict_hook_current(60_000_000_000L)))
                        .isInstanceOf(DeadlineExceededException.class);
                assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(PROMPTLY);
            }
        });
    }

    @ParameterizedTest
    @EnumSource(Caller.class)
    void aDeadlineSeenOnlyOnTheClockStillEndsTheCallAsExpired(Caller caller) throws Exception {
        onCaller(caller, () -> {
            try (CancellableContext context = Context.background().withTimeout(Duration.ofMillis(50))) {
                // The spin reads the clock every 64 polls and returns NSC_DEADLINE_EXCEEDED, often before the
                // timer fires; the Java result would then be a status the bridge cannot see: it checks the clock.
                assertThatThrownBy(() -> NativeCall.call(context, caller.mode,
                        () -> nativescope_h.nsc_predict_spin_current(-1, MemorySegment.NULL)))
                        .isInstanceOf(DeadlineExceededException.class);
                assertThat(context.cause()).isInstanceOf(DeadlineExceededException.class);
            }
        });
    }

    @ParameterizedTest
    @EnumSource(Caller.class)
    void resultsAndExceptionsComeBackAndTheContextIsRestored(Caller caller) throws Exception {
        onCaller(caller, () -> {
            assertThat(NativeCall.call(Context.background(), caller.mode, () -> "done")).isEqualTo("done");
            IllegalArgumentException thrown = new IllegalArgumentException("bad input 18");
            assertThat(catchThrowable(() -> NativeCall.call(Context.background(), caller.mode, () -> {
                assertThat(current()).isNotZero();
                throw thrown;
            }))).isSameAs(thrown);
            assertThat(current()).isZero();
            // A checked exception passes through as itself.
            java.io.IOException io = new java.io.IOException("vendor file missing");
            assertThat(catchThrowable(() -> NativeCall.<Void, java.io.IOException>call(Context.background(), caller.mode,
                    () -> {
                        throw io;
                    }))).isSameAs(io);
            assertThat(current()).isZero();
        });
    }

    @Test
    void aContextDoneBeforeTheCallRefusesItBeforeNativeCode() {
        try (CancellableContext context = Context.background().withCancel()) {
            context.cancel();
            AtomicLong ran = new AtomicLong();
            assertThatThrownBy(() -> NativeCall.call(context, () -> ran.incrementAndGet()))
                    .isInstanceOf(CancellationException.class);
            assertThat(ran.get()).isZero();
        }
    }

    @Test
    void aCancelAfterTheWorkDropsTheResultOfAFunctionThatCannotReportIt() {
        try (CancellableContext context = Context.background().withCancel()) {
            assertThatThrownBy(() -> NativeCall.call(context, () -> {
                context.cancel(); // the call's context is done when the function returns
                return 42;
            })).isInstanceOf(CancellationException.class);
            assertThat(current()).isZero();
        }
    }

    @Test
    void nativeCodeThatDoesNotRestoreTheCurrentContextIsReported() {
        try (Arena arena = Arena.ofShared()) { // shared: the call may run offloaded (-Dnativescope.callMode=OFFLOAD)
            MemorySegment foreign = arena.allocate(64);
            assertThatThrownBy(() -> NativeCall.call(Context.background(), () -> nativescope_h.nsc_current_set(foreign)))
                    .isInstanceOf(IllegalStateException.class).hasMessageContaining("nsc_current_set");
            assertThat(current()).as("the bridge restored the outer context anyway").isZero();
        }
    }

    @ParameterizedTest
    @EnumSource(Caller.class)
    void nestedCallsRestoreTheOuterContextAtEveryDepth(Caller caller) throws Exception {
        onCaller(caller, () -> {
            List<Long> seen = new ArrayList<>();
            NativeCall.call(Context.background(), caller.mode, () -> {
                seen.add(current());
                NativeCall.call(Context.background(), () -> {
                    seen.add(current());
                    NativeCall.call(Context.background(), () -> seen.add(current()));
                    seen.add(current());
                    return null;
                });
                seen.add(current());
                return null;
            });
            assertThat(seen).hasSize(5).doesNotContain(0L);
            assertThat(seen.get(0)).isNotEqualTo(seen.get(1));
            assertThat(seen.get(1)).isNotEqualTo(seen.get(2));
            assertThat(seen.get(3)).as("depth 2 after depth 3").isEqualTo(seen.get(1));
            assertThat(seen.get(4)).as("depth 1 after depth 2").isEqualTo(seen.get(0));
            assertThat(current()).isZero();
        });
    }

    @Test
    void aCancelOfTheOuterContextStopsTheInnermostCall() throws Exception {
        try (CancellableContext outer = Context.background().withCancel();
             CancellableContext middle = outer.withCancel();
             CancellableContext inner = middle.withCancel()) {
            CountDownLatch entered = new CountDownLatch(1);
            AtomicReference<Throwable> seen = new AtomicReference<>();
            // Depth 1 inline, depth 2 offloaded, depth 3 inline on the native thread: each its own native context.
            Thread thread = Thread.ofPlatform().start(() -> seen.set(catchThrowable(() -> NativeCall.call(outer,
                    () -> NativeCall.call(middle, CallMode.OFFLOAD, () -> NativeCall.call(inner, () -> {
                        entered.countDown();
                        return nativescope_h.nsc_predict_spin_current(-1, MemorySegment.NULL);
                    }))))));
            assertThat(entered.await(PROMPTLY.toSeconds(), TimeUnit.SECONDS)).isTrue();
            outer.cancel();
            assertThat(thread.join(PROMPTLY)).isTrue();
            assertThat(seen.get()).isInstanceOf(CancellationException.class);
        }
    }

    @Test
    void aPooledNativeThreadNeverSeesThePreviousCallsContext() throws Exception {
        try (Affinity affinity = Affinity.create(); EventFd never = EventFd.create()) {
            for (int round = 0; round < 20; round++) {
                // A call that returns, one that throws, one cancelled in native code, one stopped before entry.
                assertThat(NativeCall.call(Context.background(), affinity, NativeCurrent::address)).isNotZero();
                assertThat(currentOn(affinity)).isZero();
                assertThat(catchThrowable(() -> NativeCall.call(Context.background(), affinity, () -> {
                    throw new IllegalStateException("vendor failed");
                }))).hasMessage("vendor failed");
                assertThat(currentOn(affinity)).isZero();
                try (CancellableContext context = Context.background().withTimeout(Duration.ofMillis(5))) {
                    assertThat(catchThrowable(() -> NativeCall.call(context, affinity,
                            () -> nativescope_h.nsc_predict_wait_current(never.fd(), -1, MemorySegment.NULL, MemorySegment.NULL))))
                            .isInstanceOf(DeadlineExceededException.class);
                }
                assertThat(currentOn(affinity)).isZero();
                try (CancellableContext done = Context.background().withCancel()) {
                    done.cancel();
                    assertThat(catchThrowable(() -> NativeCall.call(done, affinity, NativeCurrent::address)))
                            .isInstanceOf(CancellationException.class);
                }
                assertThat(currentOn(affinity)).isZero();
            }
        }
    }

    /** nsc_current() on affinity's native thread, read by work that is not a current call. */
    private static long currentOn(Affinity affinity) {
        return NativeThreads.call(Context.background(), CallMode.OFFLOAD, affinity, () -> false, () -> -1L,
                CurrentContextTest::current);
    }

    /** A method reference target: the current context's address. */
    static final class NativeCurrent {
        static long address() {
            return current();
        }
    }
}
