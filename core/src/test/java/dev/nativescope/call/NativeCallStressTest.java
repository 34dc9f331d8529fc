package dev.nativescope.call;

import dev.nativescope.ContextProbe;
import dev.nativescope.library.NativeStatus;
import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.ContextKey;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.reference.ReferencePredictors;
import java.time.Duration;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Randomized races between calls and cancels or interrupts, and churn that must leave nothing
 * behind. Each race iteration lines both threads up on a barrier and then lets one of them wait a
 * random number of spins, so the cancel lands before, during and after the call in turn.
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
@OffloadMode
class NativeCallStressTest {
    private static final int RACES = 100_000;
    private static final long BARRIER_SECONDS = 30;

    @BeforeAll
    static void load() {
        NativeLibrary.load();
    }

    @Test
    void cancelRacingCallEntryAndExitNeverHangsAndNeverMissesAnEarlierCancel() throws Exception {
        CyclicBarrier start = new CyclicBarrier(2);
        CyclicBarrier end = new CyclicBarrier(2);
        AtomicReference<CancellableContext> current = new AtomicReference<>();
        long[] cancelledBeforeEntry = new long[1];
        long[] outcomes = new long[2]; // completed, cancelled
        Thread canceller = Thread.ofPlatform().name("race-canceller").start(() -> {
            try {
                for (int i = 0; i < RACES; i++) {
                    start.await(BARRIER_SECONDS, TimeUnit.SECONDS);
                    spin(ThreadLocalRandom.current().nextInt(200));
                    current.get().cancel();
                    end.await(BARRIER_SECONDS, TimeUnit.SECONDS);
                }
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
        for (int i = 0; i < RACES; i++) {
            CancellableContext context = Context.background().withCancel();
            current.set(context);
            start.await(BARRIER_SECONDS, TimeUnit.SECONDS);
            spin(ThreadLocalRandom.current().nextInt(200));
            boolean doneBeforeEntry = context.isDone();
            try {
                // Spins 0-5 us natively: long enough for the cancel to land inside it sometimes.
                ReferencePredictors.spin(context, Duration.ofNanos(ThreadLocalRandom.current().nextInt(5_000)), null);
                assertThat(doneBeforeEntry).as("iteration %d: completed although cancelled before entry", i).isFalse();
                outcomes[0]++;
            } catch (CancellationException e) {
                outcomes[1]++;
                if (doneBeforeEntry) {
                    cancelledBeforeEntry[0]++;
                }
            }
            end.await(BARRIER_SECONDS, TimeUnit.SECONDS);
        }
        canceller.join();
        assertThat(outcomes[0] + outcomes[1]).isEqualTo(RACES);
        assertThat(outcomes[0]).as("some calls completed").isPositive();
        assertThat(outcomes[1]).as("some calls were cancelled").isPositive();
        assertThat(cancelledBeforeEntry[0]).as("some cancels came before entry").isPositive();
    }

    @Test
    void interruptRacingACallEndsItOrLetsItCompleteAndAlwaysKeepsTheInterruptStatus() throws Exception {
        // A CyclicBarrier breaks when a waiter is interrupted, so the two threads hand over with
        // volatile counters instead: the caller publishes "iteration i may start", the interrupter
        // publishes "iteration i's interrupt has been sent".
        AtomicLong started = new AtomicLong(-1);
        AtomicLong interruptSent = new AtomicLong(-1);
        Thread caller = Thread.currentThread();
        long[] outcomes = new long[2];
        Thread interrupter = Thread.ofPlatform().name("race-interrupter").start(() -> {
            for (int i = 0; i < RACES; i++) {
                awaitValue(started, i);
                spin(ThreadLocalRandom.current().nextInt(200));
                caller.interrupt();
                interruptSent.set(i);
            }
        });
        Context context = Context.background();
        for (int i = 0; i < RACES; i++) {
            started.set(i);
            spin(ThreadLocalRandom.current().nextInt(200));
            try {
                ReferencePredictors.spin(context, Duration.ofNanos(ThreadLocalRandom.current().nextInt(5_000)), null);
                outcomes[0]++;
            } catch (CancellationException e) {
                assertThat(e).hasCauseInstanceOf(InterruptedException.class);
                outcomes[1]++;
            }
            // The interrupt may land after the call: wait for it, then the status must be set.
            awaitValue(interruptSent, i);
            assertThat(Thread.interrupted()).as("iteration %d: interrupt status lost", i).isTrue();
        }
        interrupter.join();
        assertThat(outcomes[0]).as("some calls completed").isPositive();
        assertThat(outcomes[1]).as("some calls were interrupted").isPositive();
        assertThat(context.isDone()).as("an interrupt never cancels the shared context").isFalse();
    }

    private static void awaitValue(AtomicLong counter, long value) {
        long giveUp = System.nanoTime() + TimeUnit.SECONDS.toNanos(BARRIER_SECONDS);
        for (int polls = 1; counter.get() < value; polls++) {
            if (System.nanoTime() > giveUp) {
                throw new AssertionError("the other thread did not reach iteration " + value);
            }
            // Spinning on with the other thread descheduled (a loaded 2-CPU machine) burns the rest
            // of this thread's slice every iteration: the suite then ran past its timeout at load 17.
            if ((polls & 1023) == 0) {
                Thread.yield();
            } else {
                Thread.onSpinWait();
            }
        }
    }

    @Test
    void childrenComingAndGoingUnderALongLivedParentLeaveNothingBehind() {
        NativeResources.trimIdle();
        NativeResources before = NativeResources.snapshot();
        ContextKey<String> request = ContextKey.ofString("request");
        try (CancellableContext parent = Context.background().withCancel()) {
            for (int i = 0; i < 100_000; i++) {
                CancellableContext child = parent.withTimeout(Duration.ofMinutes(5));
                Context withValue = child.withValue(request, "r-" + i);
                ReferencePredictors.noop(withValue);
                if ((i & 1) == 0) {
                    child.cancel();
                } else {
                    child.close();
                }
            }
            assertThat(ContextProbe.childCount(parent)).isZero();
            assertThat(ContextProbe.queuedDeadlineCount()).isZero();
        }
        NativeResources.trimIdle();
        NativeResources after = NativeResources.snapshot();
        assertThat(after.liveValueBlocks()).isEqualTo(before.liveValueBlocks());
        assertThat(after.javaNativeBytes()).isEqualTo(before.javaNativeBytes());
        assertThat(after.liveCallFrames()).isEqualTo(before.liveCallFrames());
        assertThat(after.shimLiveContexts()).isEqualTo(before.shimLiveContexts());
        assertThat(after.shimLiveFds()).isEqualTo(before.shimLiveFds());
        assertThat(after.shimLiveHooks()).isEqualTo(before.shimLiveHooks());
    }

    @Test
    void valueContextsThatAreNeverDoneAreFreedWhenUnreachable() throws Exception {
        NativeResources.trimIdle();
        long before = NativeResources.snapshot().liveValueBlocks();
        ContextKey<String> request = ContextKey.ofString("request");
        for (int i = 0; i < 1000; i++) {
            ReferencePredictors.noop(Context.background().withValue(request, "r-" + i));
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (NativeResources.snapshot().liveValueBlocks() > before && System.nanoTime() < deadline) {
            System.gc();
            Thread.sleep(20);
        }
        // Blocks of earlier tests may be collected meanwhile too: at most the baseline is left.
        assertThat(NativeResources.snapshot().liveValueBlocks()).isLessThanOrEqualTo(before);
    }

    @Test
    void aContextCollectedWhileItsCallIsInFlightKeepsItsValuesUntilTheCallReturns() throws Exception {
        ContextKey<String> request = ContextKey.ofString("request");
        AtomicReference<String> readLate = new AtomicReference<>();
        NativeCall.invoke(Context.background().withValue(request, "kept"), struct -> {
            // No Java reference to the context is left but the bridge's own: collect hard.
            for (int i = 0; i < 5; i++) {
                System.gc();
                Thread.sleep(10);
            }
            readLate.set(NativeCallTest.nativeValue(struct, "request"));
            return NativeStatus.OK.code();
        });
        assertThat(readLate.get()).isEqualTo("kept");
    }

    private static void spin(int iterations) {
        for (int i = 0; i < iterations; i++) {
            Thread.onSpinWait();
        }
    }
}
