package dev.nativescope;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The shared deadline timer on its own: no task runs before its time, none is lost, a cancel that
 * returns before the task started means it never runs, delays saturate, and the timer survives
 * tasks that throw or interrupt its thread. Randomized schedule/cancel races from several threads;
 * time bounds are generous (the timer is late under load, never early).
 */
class DeadlineTimerTest {
    private static final long GENEROUS_NANOS = TimeUnit.SECONDS.toNanos(20);

    /** One scheduled task of the stress test and what happened to it. */
    private static final class Probe implements Runnable {
        final long earliest; // a clock reading before schedule(): the task may not start before earliest + delay
        final long delay;
        final AtomicInteger runs = new AtomicInteger();
        final AtomicLong startedAt = new AtomicLong();
        final CountDownLatch done;
        /** Whether a cancel removed it from the queue (written by its scheduling thread, read after the join). */
        boolean cancelledBeforeStart;
        DeadlineTimer.Entry entry;

        Probe(long earliest, long delay, CountDownLatch done) {
            this.earliest = earliest;
            this.delay = delay;
            this.done = done;
        }

        @Override
        public void run() {
            startedAt.set(System.nanoTime());
            runs.incrementAndGet();
            done.countDown();
        }
    }

    @Test
    void randomSchedulesAndCancelsFromManyThreadsLoseNothingAndFireNothingEarly() throws InterruptedException {
        int threads = 4;
        int perThread = 2_000;
        List<Probe> all = new ArrayList<>();
        List<Thread> workers = new ArrayList<>();
        CountDownLatch scheduled = new CountDownLatch(threads);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        List<List<Probe>> byThread = new ArrayList<>();
        // Every task counts down once, when it runs; those cancelled in time count down here instead.
        CountDownLatch done = new CountDownLatch(threads * perThread);
        for (int t = 0; t < threads; t++) {
            List<Probe> mine = new ArrayList<>();
            byThread.add(mine);
            long seed = 0x5EED + t;
            Thread worker = new Thread(() -> {
                try {
                    SplittableRandom random = new SplittableRandom(seed);
                    List<Probe> pending = new ArrayList<>();
                    for (int i = 0; i < perThread; i++) {
                        // Mostly near delays (races with the firing), some far ones (cancelled from the queue),
                        // some zero or negative (due at once).
                        long delay = switch (random.nextInt(8)) {
                            case 0 -> -random.nextLong(1, Long.MAX_VALUE);
                            case 1 -> 0;
                            case 2 -> TimeUnit.HOURS.toNanos(1) + random.nextLong(1_000_000);
                            default -> random.nextLong(TimeUnit.MILLISECONDS.toNanos(20));
                        };
                        Probe probe = new Probe(System.nanoTime(), Math.max(0, delay), done);
                        probe.entry = DeadlineTimer.schedule(probe, delay);
                        mine.add(probe);
                        pending.add(probe);
                        if (random.nextInt(3) == 0 && !pending.isEmpty()) {
                            cancel(pending.remove(random.nextInt(pending.size())));
                        }
                        if (random.nextInt(64) == 0) {
                            Thread.sleep(0, random.nextInt(200_000));
                        }
                    }
                    // The far ones are cancelled, as a context's close would: nothing may stay queued.
                    for (Probe probe : pending) {
                        if (probe.delay >= TimeUnit.HOURS.toNanos(1)) {
                            cancel(probe);
                        }
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                } finally {
                    scheduled.countDown();
                }
            }, "timer-stress-" + t);
            workers.add(worker);
            worker.start();
        }
        assertThat(scheduled.await(GENEROUS_NANOS, TimeUnit.NANOSECONDS)).as("scheduling finished").isTrue();
        for (Thread worker : workers) {
            worker.join();
        }
        assertThat(failure.get()).isNull();
        byThread.forEach(all::addAll);

        assertThat(done.await(GENEROUS_NANOS, TimeUnit.NANOSECONDS)).as("every task not cancelled in time ran").isTrue();
        // A task removed by a cancel that then ran anyway would show below, after a moment to run in.
        Thread.sleep(50);
        for (Probe probe : all) {
            if (probe.cancelledBeforeStart) {
                assertThat(probe.runs).as("a task its cancel removed from the queue never runs").hasValue(0);
            } else {
                assertThat(probe.runs).as("a task not removed by a cancel runs exactly once").hasValue(1);
            }
            if (probe.runs.get() > 0) {
                assertThat(probe.startedAt.get() - (probe.earliest + probe.delay))
                        .as("never before its time (delay %d ns)", probe.delay).isNotNegative();
            }
        }
    }

    /** Cancels and records whether the cancel took the task out of the queue: then it must never run. */
    private static void cancel(Probe probe) {
        if (probe.entry.cancel()) {
            probe.cancelledBeforeStart = true;
            probe.done.countDown();
        }
    }

    @Test
    void tasksRunInDeadlineOrderOnTheTimerThread() throws InterruptedException {
        int count = 50;
        List<Integer> order = java.util.Collections.synchronizedList(new ArrayList<>());
        AtomicReference<String> thread = new AtomicReference<>();
        CountDownLatch done = new CountDownLatch(count);
        // Absolute times 1 ms apart from one start, scheduled in reverse: the queue, not the
        // scheduling order, decides (each delay is taken from the clock just before its schedule).
        long start = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(30);
        for (int i = count - 1; i >= 0; i--) {
            int index = i;
            Runnable task = () -> {
                order.add(index);
                thread.set(Thread.currentThread().getName());
                done.countDown();
            };
            DeadlineTimer.schedule(task, start + i * 1_000_000L - System.nanoTime());
        }
        assertThat(done.await(GENEROUS_NANOS, TimeUnit.NANOSECONDS)).isTrue();
        List<Integer> expected = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            expected.add(i);
        }
        assertThat(order).isEqualTo(expected);
        assertThat(thread).hasValue(DeadlineTimer.THREAD_NAME);
    }

    @Test
    void delaysSaturateAndFarTasksLeaveTheQueueWhenCancelled() throws InterruptedException {
        int baseline = DeadlineTimer.queuedTaskCount();
        AtomicInteger ran = new AtomicInteger();
        DeadlineTimer.Entry far = DeadlineTimer.schedule(ran::incrementAndGet, Long.MAX_VALUE);
        DeadlineTimer.Entry alsoFar = DeadlineTimer.schedule(ran::incrementAndGet, Long.MAX_VALUE - 1);
        CountDownLatch now = new CountDownLatch(2);
        DeadlineTimer.schedule(now::countDown, Long.MIN_VALUE);
        DeadlineTimer.schedule(now::countDown, -1);
        // Due at once although scheduled after two that would have wrapped into the past.
        assertThat(now.await(GENEROUS_NANOS, TimeUnit.NANOSECONDS)).isTrue();
        Thread.sleep(20);
        assertThat(ran).hasValue(0);
        assertThat(DeadlineTimer.queuedTaskCount()).isGreaterThanOrEqualTo(baseline + 2);
        far.cancel();
        alsoFar.cancel();
        far.cancel(); // twice: harmless
        assertThat(DeadlineTimer.queuedTaskCount()).isLessThanOrEqualTo(baseline);
    }

    @Test
    void aTaskThatThrowsOrInterruptsTheTimerThreadDoesNotStopLaterOnes() throws InterruptedException {
        DeadlineTimer.schedule(() -> {
            throw new IllegalStateException("a failing expiry");
        }, 0);
        DeadlineTimer.schedule(() -> Thread.currentThread().interrupt(), 0);
        CountDownLatch later = new CountDownLatch(1);
        long before = System.nanoTime();
        long delay = TimeUnit.MILLISECONDS.toNanos(30);
        AtomicLong ranAt = new AtomicLong();
        DeadlineTimer.schedule(() -> {
            ranAt.set(System.nanoTime());
            later.countDown();
        }, delay);
        assertThat(later.await(GENEROUS_NANOS, TimeUnit.NANOSECONDS)).isTrue();
        // An interrupt left on the thread would end every park at once: the task would still not be
        // early (the loop re-reads the clock), so this checks the interrupt did not break ordering.
        assertThat(ranAt.get() - before).isGreaterThanOrEqualTo(delay);
    }

    @Test
    void tasksMayScheduleAndCancelFromTheTimerThread() throws InterruptedException {
        CountDownLatch chained = new CountDownLatch(1);
        AtomicInteger cancelledRan = new AtomicInteger();
        AtomicReference<DeadlineTimer.Entry> victim = new AtomicReference<>(
                DeadlineTimer.schedule(cancelledRan::incrementAndGet, TimeUnit.MILLISECONDS.toNanos(200)));
        AtomicReference<DeadlineTimer.Entry> self = new AtomicReference<>();
        CountDownLatch selfSet = new CountDownLatch(1);
        self.set(DeadlineTimer.schedule(() -> {
            try {
                selfSet.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            self.get().cancel(); // itself, while it runs: harmless
            victim.get().cancel();
            DeadlineTimer.schedule(chained::countDown, TimeUnit.MILLISECONDS.toNanos(5));
        }, TimeUnit.MILLISECONDS.toNanos(5)));
        selfSet.countDown();
        assertThat(chained.await(GENEROUS_NANOS, TimeUnit.NANOSECONDS)).isTrue();
        Thread.sleep(300);
        assertThat(cancelledRan).hasValue(0);
    }
}
