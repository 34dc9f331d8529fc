package dev.nativescope.call;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.ContextKey;
import dev.nativescope.DeadlineExceededException;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.library.NativeStatus;
import dev.nativescope.reference.EventFd;
import dev.nativescope.reference.PredictionStats;
import dev.nativescope.reference.ReferencePredictors;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

/**
 * Offloaded calls ({@link CallMode}, {@link NativeThreads}, {@link Affinity}): they run on native
 * threads with the caller's context, and cancels, deadlines and interrupts behave as inline, also
 * while the call waits for a native thread; 10^4 randomized cancel-vs-handoff races lose no cancel
 * and leak no thread or frame.
 */
@Timeout(120)
@OffloadMode
class OffloadedCallTest {
    private static final ContextKey<String> TRACE_ID = ContextKey.ofString("trace-id");
    private static final long PROMPT_SECONDS = 10;

    @BeforeAll
    static void load() {
        NativeLibrary.load();
    }

    @ParameterizedTest
    @EnumSource(value = Caller.class, names = {"VIRTUAL_AUTO", "PLATFORM_OFFLOAD", "VIRTUAL_INLINE"})
    void theDowncallRunsOnANativeThreadWithTheCallersContext(Caller caller) throws Exception {
        Context context = Context.background().withValue(TRACE_ID, "t-7");
        AtomicReference<Thread> ranOn = new AtomicReference<>();
        AtomicReference<Context> currentThere = new AtomicReference<>();
        AtomicReference<Integer> status = new AtomicReference<>();
        Thread thread = caller.start(() -> context.run(() -> status.set(NativeCall.invoke(context, caller.mode, ctx -> {
            ranOn.set(Thread.currentThread());
            currentThere.set(Context.current());
            return nativescope_h.nsc_noop_ctx(ctx);
        }))));
        assertThat(thread.join(Duration.ofSeconds(PROMPT_SECONDS))).isTrue();
        assertThat(status.get()).isEqualTo(NativeStatus.OK.code());
        assertThat(ranOn.get().getName().startsWith(NativeThreads.THREAD_NAME_PREFIX)).isEqualTo(caller.offloads());
        assertThat(ranOn.get() == thread).isEqualTo(!caller.offloads());
        assertThat(currentThere.get()).as("Context.current() in the downcall").isSameAs(context);
    }

    @Test
    void autoIsInlineOnPlatformThreadsAndInvokeIsInline() {
        org.junit.jupiter.api.Assumptions.assumeTrue(CallMode.FORCED == null, "not with -D" + CallMode.PROPERTY);
        AtomicReference<Thread> ranOn = new AtomicReference<>();
        NativeCall.invokeLong(Context.background(), ctx -> {
            ranOn.set(Thread.currentThread());
            return 0;
        });
        assertThat(ranOn.get()).isSameAs(Thread.currentThread());
        assertThat(NativeThreads.offloads(CallMode.AUTO)).isFalse();
        assertThat(NativeThreads.offloads(CallMode.OFFLOAD)).isTrue();
    }

    @ParameterizedTest
    @EnumSource(value = Caller.class, names = {"VIRTUAL_AUTO", "PLATFORM_OFFLOAD", "VIRTUAL_INLINE"})
    void exceptionsComeBackUnchanged(Caller caller) throws Exception {
        IllegalArgumentException thrown = new IllegalArgumentException("bad input 42");
        AtomicReference<Throwable> seen = new AtomicReference<>();
        Thread thread = caller.start(() -> seen.set(catchThrowable(() -> NativeCall.invoke(Context.background(), caller.mode, ctx -> {
            throw thrown;
        }))));
        assertThat(thread.join(Duration.ofSeconds(PROMPT_SECONDS))).isTrue();
        assertThat(seen.get()).isSameAs(thrown);
        // An error status: the same exception type and message as inline.
        Thread statusThread = caller.start(() -> seen.set(catchThrowable(() -> NativeCall.invoke(Context.background(), caller.mode,
                ctx -> NativeStatus.ERR_INVALID.code()))));
        assertThat(statusThread.join(Duration.ofSeconds(PROMPT_SECONDS))).isTrue();
        Throwable inline = catchThrowable(() -> NativeCall.invoke(Context.background(), ctx -> NativeStatus.ERR_INVALID.code()));
        assertThat(seen.get()).hasSameClassAs(inline).hasMessage(inline.getMessage());
    }

    @ParameterizedTest
    @EnumSource(value = Caller.class, names = {"VIRTUAL_AUTO", "PLATFORM_OFFLOAD", "VIRTUAL_INLINE"})
    void cancelStopsTheNativeCodeWithTheCause(Caller caller) throws Exception {
        try (CancellableContext context = Context.background().withCancel()) {
            AtomicReference<Throwable> seen = new AtomicReference<>();
            AtomicReference<PredictionStats> returned = new AtomicReference<>();
            CountDownLatch entered = new CountDownLatch(1);
            Thread thread = caller.start(() -> seen.set(catchThrowable(() -> spinUntilStopped(context, caller.mode, entered, returned))));
            assertThat(entered.await(PROMPT_SECONDS, TimeUnit.SECONDS)).isTrue();
            Thread.sleep(20);
            IllegalStateException cause = new IllegalStateException("user gave up");
            context.cancel(cause);
            assertThat(thread.join(Duration.ofSeconds(PROMPT_SECONDS))).isTrue();
            assertThat(seen.get()).isInstanceOf(CancellationException.class).isNotInstanceOf(DeadlineExceededException.class)
                    .hasCauseReference(cause).hasMessage("native call canceled: " + cause);
            assertThat(returned.get().status()).isEqualTo(NativeStatus.CANCELED.code());
        }
    }

    @ParameterizedTest
    @EnumSource(value = Caller.class, names = {"VIRTUAL_AUTO", "PLATFORM_OFFLOAD", "VIRTUAL_INLINE"})
    void interruptStopsTheNativeCodeAndStaysSet(Caller caller) throws Exception {
        try (EventFd never = EventFd.create()) {
            AtomicReference<Throwable> seen = new AtomicReference<>();
            AtomicReference<Boolean> interruptedAfter = new AtomicReference<>();
            AtomicReference<Thread> ranOn = new AtomicReference<>();
            CountDownLatch entered = new CountDownLatch(1);
            Thread thread = caller.start(() -> {
                seen.set(catchThrowable(() -> NativeCall.invoke(Context.background(), caller.mode, ctx -> {
                    ranOn.set(Thread.currentThread());
                    entered.countDown();
                    try (Arena arena = Arena.ofConfined()) {
                        return nativescope_h.nsc_predict_wait(ctx, never.fd(), -1, arena.allocate(8), MemorySegment.NULL);
                    }
                })));
                interruptedAfter.set(Thread.currentThread().isInterrupted());
            });
            assertThat(entered.await(PROMPT_SECONDS, TimeUnit.SECONDS)).isTrue();
            Thread.sleep(20);
            thread.interrupt();
            assertThat(thread.join(Duration.ofSeconds(PROMPT_SECONDS))).isTrue();
            assertThat(seen.get()).isInstanceOf(CancellationException.class).hasCauseInstanceOf(InterruptedException.class)
                    .hasMessage("native call canceled: the thread was interrupted");
            assertThat(interruptedAfter.get()).as("the caller's interrupt status, as inline").isTrue();
            if (caller.offloads()) {
                assertThat(ranOn.get().isInterrupted()).as("the native thread is never left interrupted").isFalse();
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = Caller.class, names = {"VIRTUAL_AUTO", "PLATFORM_OFFLOAD", "VIRTUAL_INLINE"})
    void theDeadlineStopsTheNativeCode(Caller caller) throws Exception {
        try (CancellableContext context = Context.background().withTimeout(Duration.ofMillis(30))) {
            AtomicReference<Throwable> seen = new AtomicReference<>();
            Thread thread = caller.start(() -> seen.set(catchThrowable(() -> spinUntilStopped(context, caller.mode, null, null))));
            assertThat(thread.join(Duration.ofSeconds(PROMPT_SECONDS))).isTrue();
            assertThat(seen.get()).isInstanceOf(DeadlineExceededException.class);
        }
    }

    @ParameterizedTest
    @EnumSource(value = Caller.class, names = {"VIRTUAL_AUTO", "PLATFORM_OFFLOAD", "VIRTUAL_INLINE"})
    void theDeadlineStopsABlockedCall(Caller caller) throws Exception {
        try (EventFd never = EventFd.create();
             CancellableContext context = Context.background().withValue(TRACE_ID, "t").withTimeout(Duration.ofMillis(100))) {
            AtomicReference<Throwable> seen = new AtomicReference<>();
            Thread thread = caller.start(() -> context.run(() -> seen.set(catchThrowable(
                    () -> ReferencePredictors.awaitFd(Context.current(), never.fd(), null, null)))));
            assertThat(thread.join(Duration.ofSeconds(PROMPT_SECONDS))).isTrue();
            assertThat(seen.get()).isInstanceOf(DeadlineExceededException.class);
        }
    }

    /** Interrupts at random moments of the handoff: every call ends cancelled, none is left in native code. */
    @Test
    void interruptsRaceTheHandoffWithoutLosingOne() throws Exception {
        SplittableRandom random = new SplittableRandom(41);
        try (EventFd never = EventFd.create()) {
            for (int i = 0; i < 2000; i++) {
                AtomicReference<Throwable> seen = new AtomicReference<>();
                Thread caller = Thread.ofVirtual().start(() -> seen.set(catchThrowable(
                        () -> ReferencePredictors.awaitFd(Context.background(), never.fd(), null, null))));
                LockSupport.parkNanos(random.nextLong(200_000));
                caller.interrupt();
                assertThat(caller.join(Duration.ofSeconds(PROMPT_SECONDS))).as("call %d ended", i).isTrue();
                assertThat(seen.get()).as("call %d", i).isInstanceOf(CancellationException.class);
            }
        }
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(PROMPT_SECONDS);
        while (NativeThreads.busyThreads() != 0 && System.nanoTime() < until) {
            Thread.sleep(1);
        }
        assertThat(NativeThreads.busyThreads()).as("native threads left in native code").isZero();
    }

    /**
     * The caller's interrupt reaches a nested bridged call the work makes on the native thread (as
     * inline), and never the thread's next work: on one native thread (an affinity), a call whose
     * work nests a second bridged call is interrupted at a random moment while a second call, whose
     * caller nobody interrupts, waits behind it; the second must see no interrupt, before or after a
     * short spin, however the interrupt and the end of the first call interleave.
     */
    @Test
    void aForwardedInterruptReachesNestedCallsAndNeverTheNextCall() throws Exception {
        SplittableRandom random = new SplittableRandom(1414);
        int interruptedCalls = 0;
        try (Affinity session = Affinity.create()) {
            for (int i = 0; i < 4000; i++) {
                long innerNanos = random.nextLong(100_000);
                long outerNanos = random.nextLong(100_000);
                AtomicReference<Throwable> first = new AtomicReference<>();
                Thread caller = Thread.ofVirtual().start(() -> first.set(catchThrowable(() -> NativeCall.invoke(
                        Context.background(), session, ctx -> {
                            NativeCall.invoke(Context.background(), inner -> spinFor(inner, innerNanos));
                            return spinFor(ctx, outerNanos);
                        }))));
                AtomicReference<String> next = new AtomicReference<>("did not run");
                Thread nextCaller = Thread.ofVirtual().start(() -> NativeCall.invoke(Context.background(), session, ctx -> {
                    boolean before = Thread.currentThread().isInterrupted();
                    int status = spinFor(ctx, 20_000);
                    next.set(before || Thread.currentThread().isInterrupted() ? "interrupted" : "clean");
                    return status;
                }));
                LockSupport.parkNanos(random.nextLong(250_000));
                caller.interrupt();
                assertThat(caller.join(Duration.ofSeconds(PROMPT_SECONDS))).as("call %d ended", i).isTrue();
                assertThat(nextCaller.join(Duration.ofSeconds(PROMPT_SECONDS))).as("the call after %d ended", i).isTrue();
                if (first.get() != null) {
                    assertThat(first.get()).as("call %d", i).isInstanceOf(CancellationException.class)
                            .hasCauseInstanceOf(InterruptedException.class);
                    interruptedCalls++;
                }
                assertThat(next.get()).as("the call after call %d", i).isEqualTo("clean");
            }
        }
        assertThat(interruptedCalls).as("calls the interrupt stopped (the race is exercised)").isPositive();
    }

    private static int spinFor(MemorySegment ctx, long nanos) {
        return nativescope_h.nsc_predict_spin(ctx, nanos, MemorySegment.NULL);
    }

    @Test
    void aConfinedSegmentIsRefusedOnANativeThreadWithAMessageThatSaysWhatToDo() {
        try (Arena confined = Arena.ofConfined()) {
            MemorySegment stats = confined.allocate(dev.nativescope.bindings.nsc_predict_stats.layout());
            assertThatThrownBy(() -> NativeCall.invoke(Context.background(), CallMode.OFFLOAD,
                    ctx -> nativescope_h.nsc_predict_spin(ctx, 0, stats)))
                    .isInstanceOf(WrongThreadException.class)
                    .hasMessageContaining("offloaded native call").hasMessageContaining("NativeThreads.arenaForCall")
                    .hasMessageContaining("CallMode.INLINE");
            assertThat(NativeThreads.modeFor(CallMode.AUTO, stats)).isEqualTo(CallMode.INLINE);
        }
        try (Arena shared = Arena.ofShared()) {
            assertThat(NativeThreads.modeFor(CallMode.AUTO, shared.allocate(8), null)).isEqualTo(CallMode.AUTO);
        }
    }

    /** The wait for a native thread is part of the call: cancellable, interruptible and under the deadline. */
    @Test
    void theWaitForANativeThreadIsCancellableAndCountsAgainstTheDeadline() throws Exception {
        try (Affinity session = Affinity.create(); CancellableContext blocker = Context.background().withCancel()) {
            CountDownLatch entered = new CountDownLatch(1);
            Thread busy = Thread.ofVirtual().start(() -> catchThrowable(() -> NativeCall.invoke(blocker, session, ctx -> {
                entered.countDown();
                return nativescope_h.nsc_predict_spin(ctx, -1, MemorySegment.NULL);
            })));
            assertThat(entered.await(PROMPT_SECONDS, TimeUnit.SECONDS)).isTrue();
            AtomicInteger nativeEntries = new AtomicInteger();
            NativeCall.Downcall counted = ctx -> {
                nativeEntries.incrementAndGet();
                return nativescope_h.nsc_noop_ctx(ctx);
            };
            // The deadline passes while the call waits for the session's busy thread.
            long start = System.nanoTime();
            try (CancellableContext deadline = Context.background().withTimeout(Duration.ofMillis(50))) {
                assertThatThrownBy(() -> NativeCall.invoke(deadline, session, counted)).isInstanceOf(DeadlineExceededException.class);
            }
            assertThat(Duration.ofNanos(System.nanoTime() - start)).isBetween(Duration.ofMillis(45), Duration.ofSeconds(PROMPT_SECONDS));
            // A cancel while waiting.
            try (CancellableContext cancelled = Context.background().withCancel()) {
                AtomicReference<Throwable> seen = new AtomicReference<>();
                Thread waiting = Thread.ofVirtual().start(() -> seen.set(catchThrowable(() -> NativeCall.invoke(cancelled, session, counted))));
                Thread.sleep(30);
                IllegalStateException cause = new IllegalStateException("gave up waiting");
                cancelled.cancel(cause);
                assertThat(waiting.join(Duration.ofSeconds(PROMPT_SECONDS))).isTrue();
                assertThat(seen.get()).isInstanceOf(CancellationException.class).hasCauseReference(cause);
            }
            // An interrupt while waiting.
            AtomicReference<Throwable> seen = new AtomicReference<>();
            AtomicReference<Boolean> interruptedAfter = new AtomicReference<>();
            Thread waiting = Thread.ofVirtual().start(() -> {
                seen.set(catchThrowable(() -> NativeCall.invoke(Context.background(), session, counted)));
                interruptedAfter.set(Thread.currentThread().isInterrupted());
            });
            Thread.sleep(30);
            waiting.interrupt();
            assertThat(waiting.join(Duration.ofSeconds(PROMPT_SECONDS))).isTrue();
            assertThat(seen.get()).isInstanceOf(CancellationException.class).hasCauseInstanceOf(InterruptedException.class);
            assertThat(interruptedAfter.get()).isTrue();
            assertThat(nativeEntries).as("no stopped call entered native code").hasValue(0);
            blocker.cancel();
            assertThat(busy.join(Duration.ofSeconds(PROMPT_SECONDS))).isTrue();
        }
    }

    @Test
    void aFullQueueIsRejectedWithAMessageNamingThePoolSizeProperty() throws Exception {
        NativeThreadPool pool = new NativeThreadPool("nativescope-native-test-", 1, 1, TimeUnit.SECONDS.toNanos(1), "a test pool");
        CountDownLatch release = new CountDownLatch(1);
        NativeThreads.Work<Object, RuntimeException> block = () -> {
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return null;
        };
        try {
            Thread running = Thread.ofVirtual().start(() -> NativeThreads.handOff(pool, Context.background(), () -> false, () -> null, block));
            Thread queued = Thread.ofVirtual().start(() -> NativeThreads.handOff(pool, Context.background(), () -> false, () -> null, block));
            long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(PROMPT_SECONDS);
            while (pool.queued() < 1 && System.nanoTime() < until) {
                Thread.sleep(1);
            }
            assertThatThrownBy(() -> NativeThreads.handOff(pool, Context.background(), () -> false, () -> null, block))
                    .isInstanceOf(RejectedExecutionException.class)
                    .hasMessageContaining("-D" + NativeThreads.POOL_SIZE_PROPERTY)
                    .hasMessageContaining("-D" + NativeThreads.QUEUE_PROPERTY);
            release.countDown();
            assertThat(running.join(Duration.ofSeconds(PROMPT_SECONDS))).isTrue();
            assertThat(queued.join(Duration.ofSeconds(PROMPT_SECONDS))).isTrue();
        } finally {
            release.countDown();
            pool.close();
        }
    }

    @Test
    void everyCallOfASessionRunsOnItsNativeThread() throws Exception {
        try (Affinity session = Affinity.create(); var executor = Executors.newVirtualThreadPerTaskExecutor()) {
            Set<Long> threadIds = ConcurrentHashMap.newKeySet();
            for (int i = 0; i < 200; i++) {
                Thread.Builder builder = i % 2 == 0 ? Thread.ofVirtual() : Thread.ofPlatform();
                executor.submit(() -> NativeCall.invoke(Context.background(), session, ctx -> {
                    threadIds.add(Thread.currentThread().threadId());
                    return nativescope_h.nsc_noop_ctx(ctx);
                }));
                if (i % 50 == 0) {
                    builder.start(() -> NativeCall.invoke(Context.background(), session, ctx -> {
                        threadIds.add(Thread.currentThread().threadId());
                        return 0;
                    })).join();
                }
            }
            executor.close();
            assertThat(threadIds).containsExactly(session.threadId());
        }
    }

    /**
     * 10^4 offloaded calls from virtual threads (more at once than there are native threads, so many
     * wait in the queue), each raced by a cancel at a random moment: every call ends either completed
     * or cancelled (a call cancelled before it was made always cancelled), none hangs, and no native
     * thread, queued call or call frame is left behind.
     */
    @Test
    void cancelRacesTheHandoffWithoutLosingACancelOrLeaking() throws Exception {
        int calls = 10_000;
        int inFlight = 4 * NativeThreads.poolSize();
        Semaphore slots = new Semaphore(inFlight);
        AtomicInteger completed = new AtomicInteger();
        AtomicInteger cancelled = new AtomicInteger();
        AtomicReference<Throwable> unexpected = new AtomicReference<>();
        SplittableRandom seeds = new SplittableRandom(14);
        try (var executor = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < calls; i++) {
                long seed = seeds.nextLong();
                slots.acquire();
                executor.submit(() -> {
                    SplittableRandom random = new SplittableRandom(seed);
                    try (CancellableContext context = Context.background().withCancel()) {
                        boolean cancelFirst = random.nextInt(8) == 0;
                        if (cancelFirst) {
                            context.cancel();
                        } else {
                            long delayNanos = random.nextLong(30_000);
                            Thread.ofVirtual().start(() -> {
                                LockSupport.parkNanos(delayNanos);
                                context.cancel();
                            });
                        }
                        long spinNanos = random.nextLong(20_000);
                        try {
                            NativeCall.invoke(context, CallMode.OFFLOAD, ctx -> nativescope_h.nsc_predict_spin(ctx, spinNanos, MemorySegment.NULL));
                            if (cancelFirst) {
                                unexpected.compareAndSet(null, new AssertionError("a call cancelled before it was made completed"));
                            }
                            completed.incrementAndGet();
                        } catch (CancellationException e) {
                            cancelled.incrementAndGet();
                        }
                    } catch (Throwable t) {
                        unexpected.compareAndSet(null, t);
                    } finally {
                        slots.release();
                    }
                });
            }
        }
        assertThat(unexpected.get()).isNull();
        assertThat(completed.get() + cancelled.get()).isEqualTo(calls);
        assertThat(cancelled.get()).isGreaterThanOrEqualTo(calls / 8 - calls / 40);
        // A native thread unparks its caller before it goes idle: give the last ones a moment.
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(PROMPT_SECONDS);
        while (NativeThreads.busyThreads() != 0 && System.nanoTime() < until) {
            Thread.sleep(1);
        }
        assertThat(NativeThreads.busyThreads()).as("native threads still busy: a lost handoff").isZero();
        assertThat(NativeThreads.queuedCalls()).isZero();
        assertThat(NativeThreads.liveThreads()).isLessThanOrEqualTo(NativeThreads.poolSize());
        NativeThreads.trimIdle();
        assertThat(NativeThreads.liveThreads()).as("native threads after trimIdle").isZero();
    }

    private static void spinUntilStopped(Context context, CallMode mode, CountDownLatch entered, AtomicReference<PredictionStats> returned) {
        if (entered != null) {
            entered.countDown(); // on its way in: the test waits a little more before cancelling
        }
        ReferencePredictors.spin(context, mode, null, returned != null ? returned::set : null);
    }

    private static final class LockSupport {
        static void parkNanos(long nanos) {
            java.util.concurrent.locks.LockSupport.parkNanos(nanos);
        }
    }
}
