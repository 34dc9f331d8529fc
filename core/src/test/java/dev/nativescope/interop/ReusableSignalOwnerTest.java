package dev.nativescope.interop;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@link CancellationSignal#reusable(Context, CancellationSignal.StopAction)}: the owner's cancel
 * stops an open stretch ({@link CancellationSignal.Reason#OWNER}, translated with the owner's cause),
 * an owner done before a stretch stops it at once, a cancel between stretches reaches no action, the
 * context still stops it, two signals of one owner open at once (the second falls back to a done
 * action) are both stopped and neither hears a cancel after its close; randomized: the action never
 * runs outside a stretch, and every stretch opened after the owner's cancel returned is stopped.
 */
class ReusableSignalOwnerTest {

    /**
     * A cancel runs the stop slot before it publishes its cause; work that ends in that window and asks
     * for its exception at once still gets the cancel's cause (OrtRaceTest once saw a
     * CancellationException without it). The stop action holds the canceller inside the window.
     */
    @Test
    void theExceptionCarriesTheCancelsCauseEvenWhenAskedForBeforeTheCauseIsPublished() throws Exception {
        java.util.concurrent.CountDownLatch stopping = new java.util.concurrent.CountDownLatch(1);
        CancellationSignal signal = CancellationSignal.reusable(reason -> {
            stopping.countDown();
            java.util.concurrent.locks.LockSupport.parkNanos(100_000_000L); // the cause comes after this
        });
        try (CancellableContext context = Context.background().withCancel()) {
            signal.reopen(context);
            IllegalStateException why = new IllegalStateException("client went away");
            Thread canceller = Thread.ofPlatform().start(() -> context.cancel(why));
            assertThat(stopping.await(30, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
            assertThat(context.cause()).as("the window: stopped, cause not yet published").isNull();
            RuntimeException stopped = signal.stoppedException("work");
            signal.close();
            canceller.join();
            assertThat(stopped).isInstanceOf(CancellationException.class).hasCause(why);
        }
    }

    @Test
    void ownerCancelStopsAnOpenStretch() {
        CancellableContext owner = Context.background().withCancel();
        List<CancellationSignal.Reason> stops = new ArrayList<>();
        CancellationSignal signal = CancellationSignal.reusable(owner, stops::add);
        for (int stretch = 0; stretch < 3; stretch++) {
            signal.reopen(Context.background()).close();
        }
        assertThat(stops).isEmpty();
        signal.reopen(Context.background());
        IllegalStateException cause = new IllegalStateException("adapter closed");
        owner.cancel(cause);
        assertThat(signal.isStopped()).isTrue();
        assertThat(signal.reason()).isEqualTo(CancellationSignal.Reason.OWNER);
        assertThat(signal.isDeadlineStop()).isFalse();
        assertThat(signal.stoppedException("work")).isInstanceOf(CancellationException.class)
                .hasMessageContaining("adapter closed").hasCause(cause);
        signal.close();
        assertThat(stops).containsExactly(CancellationSignal.Reason.OWNER);
    }

    @Test
    void anOwnerDoneBetweenStretchesReachesNoActionAndStopsTheNextAtOnce() {
        CancellableContext owner = Context.background().withCancel();
        AtomicInteger stops = new AtomicInteger();
        CancellationSignal signal = CancellationSignal.reusable(owner, reason -> stops.incrementAndGet());
        signal.reopen(Context.background()).close();
        owner.cancel();
        assertThat(stops).as("cancelled between stretches").hasValue(0);
        signal.reopen(Context.background());
        assertThat(signal.reason()).isEqualTo(CancellationSignal.Reason.OWNER);
        signal.close();
        assertThat(stops).hasValue(1);
    }

    @Test
    void theContextStillStopsAStretchWithAnOwner() {
        CancellableContext owner = Context.background().withCancel();
        AtomicReference<CancellationSignal.Reason> stop = new AtomicReference<>();
        CancellationSignal signal = CancellationSignal.reusable(owner, stop::set);
        try (CancellableContext context = Context.background().withCancel()) {
            signal.reopen(context);
            context.cancel(new IllegalStateException("caller gave up"));
            assertThat(stop.get()).isEqualTo(CancellationSignal.Reason.CONTEXT);
            assertThat(signal.stoppedException("work")).hasMessageContaining("caller gave up");
            signal.close();
        }
        signal.reopen(Context.background());
        assertThat(signal.isStopped()).as("a new stretch starts unstopped").isFalse();
        signal.close();
        owner.cancel();
    }

    @Test
    void twoSignalsOfOneOwnerOpenAtOnceAreBothStopped() {
        CancellableContext owner = Context.background().withCancel();
        AtomicInteger first = new AtomicInteger();
        AtomicInteger second = new AtomicInteger();
        CancellationSignal a = CancellationSignal.reusable(owner, reason -> first.incrementAndGet());
        CancellationSignal b = CancellationSignal.reusable(owner, reason -> second.incrementAndGet());
        a.reopen(Context.background());
        b.reopen(Context.background()); // the owner's slot is a's: b registers a done action
        b.close();
        b.reopen(Context.background());
        owner.cancel();
        assertThat(a.reason()).isEqualTo(CancellationSignal.Reason.OWNER);
        assertThat(b.reason()).isEqualTo(CancellationSignal.Reason.OWNER);
        a.close();
        b.close();
        assertThat(first).hasValue(1);
        assertThat(second).hasValue(1);
    }

    @Test
    void aClosedFallbackStretchHearsNoLaterCancel() {
        CancellableContext owner = Context.background().withCancel();
        AtomicInteger stops = new AtomicInteger();
        CancellationSignal a = CancellationSignal.reusable(owner, reason -> { });
        CancellationSignal b = CancellationSignal.reusable(owner, reason -> stops.incrementAndGet());
        a.reopen(Context.background());
        b.reopen(Context.background());
        b.close();
        owner.cancel();
        a.close();
        assertThat(stops).hasValue(0);
    }

    /**
     * Threads run stretches on their own reusable signals of one owner (so some hold its slot and some
     * fall back) while the owner is cancelled at a random moment: an action runs only inside an open
     * stretch, and a stretch opened after the cancel returned is stopped from its start.
     */
    @Test
    void randomizedStretchesAgainstTheOwnersCancel() throws Exception {
        Random random = new Random(41);
        for (int round = 0; round < 100; round++) {
            CancellableContext owner = Context.background().withCancel();
            int threads = 2 + random.nextInt(3);
            AtomicInteger outside = new AtomicInteger();
            AtomicInteger unstopped = new AtomicInteger();
            AtomicInteger doubled = new AtomicInteger();
            CountDownLatch cancelled = new CountDownLatch(1);
            CyclicBarrier start = new CyclicBarrier(threads + 1);
            List<Thread> workers = new ArrayList<>();
            long seed = random.nextLong();
            for (int t = 0; t < threads; t++) {
                long workerSeed = seed + t;
                workers.add(Thread.ofPlatform().start(() -> {
                    Random local = new Random(workerSeed);
                    boolean[] open = new boolean[1];
                    int[] actions = new int[1];
                    CancellationSignal signal = CancellationSignal.reusable(owner, reason -> {
                        synchronized (open) {
                            if (!open[0]) {
                                outside.incrementAndGet();
                            }
                            actions[0]++;
                        }
                    });
                    try {
                        start.await(30, TimeUnit.SECONDS);
                        for (int stretch = 0; stretch < 400; stretch++) {
                            boolean after = cancelled.getCount() == 0;
                            synchronized (open) {
                                open[0] = true;
                                actions[0] = 0;
                            }
                            signal.reopen(Context.background());
                            if (after && !signal.isStopped()) {
                                unstopped.incrementAndGet();
                            }
                            for (int spin = local.nextInt(50); spin > 0; spin--) {
                                Thread.onSpinWait();
                            }
                            signal.close();
                            synchronized (open) {
                                open[0] = false;
                                if (actions[0] > 1) {
                                    doubled.incrementAndGet();
                                }
                            }
                        }
                    } catch (Exception e) {
                        throw new AssertionError(e);
                    }
                }));
            }
            start.await(30, TimeUnit.SECONDS);
            for (int spin = random.nextInt(20_000); spin > 0; spin--) {
                Thread.onSpinWait();
            }
            owner.cancel();
            cancelled.countDown();
            for (Thread worker : workers) {
                worker.join(TimeUnit.SECONDS.toMillis(60));
                assertThat(worker.isAlive()).isFalse();
            }
            assertThat(outside).as("actions outside a stretch, round " + round).hasValue(0);
            assertThat(unstopped).as("stretches opened after the cancel and not stopped, round " + round).hasValue(0);
            assertThat(doubled).as("stretches stopped twice, round " + round).hasValue(0);
        }
    }
}
