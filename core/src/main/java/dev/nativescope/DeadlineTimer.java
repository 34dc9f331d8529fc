package dev.nativescope;

import dev.nativescope.internal.time.SaturatingTime;

import java.util.concurrent.locks.LockSupport;

/**
 * The one timer that fires every context deadline: a single daemon thread named
 * {@value #THREAD_NAME}, started when the first deadline is scheduled and kept for the life of the
 * process. Deadlines cost a queue entry each, never a thread.
 *
 * <p>Tasks run on the timer thread, one after the other, so whatever a deadline triggers (the
 * {@link Context#onDone(Runnable)} actions of the expiring context and its descendants) delays
 * every later deadline by its running time. Cancelled tasks leave the queue at once, so contexts
 * that finish before their deadline leave nothing behind. A task never runs before its time
 * ({@link System#nanoTime()} has reached it); delays are clamped to
 * {@link SaturatingTime#HORIZON_NANOS} (about 146 years), so no delay overflows the clock.
 *
 * <p>Not a {@code ScheduledThreadPoolExecutor}: its classes (the executor, its queue, futures,
 * locks and conditions) are not in the JDK's CDS archive, and loading them cost a fresh JVM's first
 * deadline about 3 ms (BENCHMARKS.md "Cold start"). This is what the executor was used for, and no
 * more: an indexed binary heap (removal in O(log n) by the entry's own index), one monitor, and
 * {@link LockSupport#parkNanos} for the wait.
 *
 * <p>Thread-safe: tasks may be scheduled and cancelled from any thread. Every heap field and each
 * entry's {@code index} are guarded by {@link #LOCK}; the timer thread takes the head out under the
 * lock and runs it outside, so a task may schedule and cancel (itself included) freely. The timer
 * thread parks only after it saw, under the lock, a head that is not due (or none); a schedule that
 * makes a new head unparks it, under the lock, after the insertion: the permit is given whether the
 * timer thread is parked already or about to park (an unpark before the park makes the park return
 * at once), and the timer thread then reads the new head.
 */
final class DeadlineTimer {
    static final String THREAD_NAME = "nativescope-deadline-timer";

    private static final Object LOCK = new Object();
    /** The queue: a min-heap on {@link Entry#compareTo}. Guarded by {@link #LOCK}. */
    private static Entry[] heap = new Entry[16];
    private static int size;
    /** Tie-breaker for equal trigger times: first scheduled, first run. Guarded by {@link #LOCK}. */
    private static long sequence;
    /** The timer thread, once started. Guarded by {@link #LOCK}. */
    private static Thread timer;

    private DeadlineTimer() {
    }

    /** A scheduled task; {@link #cancel()} removes it from the queue. */
    static final class Entry {
        private final Runnable task;
        private final long triggerNanoTime;
        private final long order;
        /** The entry's position in the heap, or -1 when it is not queued (run, being run or cancelled). */
        private int index = -1;

        private Entry(Runnable task, long triggerNanoTime, long order) {
            this.task = task;
            this.triggerNanoTime = triggerNanoTime;
            this.order = order;
        }

        /**
         * Removes the task from the queue if the timer thread has not taken it out to run it;
         * harmless when it has run, is running (a task may cancel itself) or was cancelled before.
         *
         * @return true when this call removed it: then it never runs
         */
        boolean cancel() {
            synchronized (LOCK) {
                if (index < 0) {
                    return false;
                }
                removeAt(index);
                return true;
            }
        }

        /** Earlier trigger first (by difference: every trigger lies within the horizon of now), then scheduling order. */
        private boolean before(Entry other) {
            long difference = triggerNanoTime - other.triggerNanoTime;
            return difference < 0 || difference == 0 && order < other.order;
        }
    }

    /** The timer thread's loop; a class, not a lambda, which a fresh JVM would spin at run time. */
    private static final class Loop implements Runnable {
        @Override
        public void run() {
            for (;;) {
                Runnable due = null;
                long waitNanos;
                synchronized (LOCK) {
                    if (size == 0) {
                        waitNanos = -1;
                    } else {
                        Entry head = heap[0];
                        waitNanos = head.triggerNanoTime - System.nanoTime();
                        if (waitNanos <= 0) {
                            removeAt(0);
                            due = head.task;
                        }
                    }
                }
                if (due != null) {
                    runTask(due);
                } else if (waitNanos < 0) {
                    LockSupport.park(this);
                } else {
                    LockSupport.parkNanos(this, waitNanos);
                }
                // Spurious wake-ups and unparks for a new head land here: the head is read again.
            }
        }
    }

    /**
     * Runs one task. What it throws is dropped, as the executor this replaces kept it in a future
     * nobody read: an expiry's own failures (its done actions') are the context's to report, and the
     * timer must go on for every other deadline. An interrupt the task left on the timer thread is
     * cleared, as the executor did between tasks, so that the next park is not cut short for ever.
     */
    private static void runTask(Runnable task) {
        try {
            task.run();
        } catch (Throwable ignored) {
            // See above: the thread keeps serving every other deadline.
        }
        Thread.interrupted();
    }

    /** Creates the timer thread; whichever thread schedules the first deadline creates it. */
    static Thread newTimerThread(Runnable work) {
        // It must not inherit the creating thread's inheritable thread locals: it would report that
        // thread's Context.current() to every action it runs, and keep that context, and its whole
        // chain, reachable forever.
        // The constructor, not Thread.ofPlatform(): the builder's classes are not in the JDK's CDS
        // archive, a cost the first deadline of a fresh JVM need not pay.
        Thread thread = new Thread(null, work, THREAD_NAME, 0, false);
        thread.setDaemon(true);
        // Nor should it pin the class loader of whoever happened to schedule first.
        thread.setContextClassLoader(ClassLoader.getSystemClassLoader());
        return thread;
    }

    /**
     * Runs {@code task} on the timer thread once {@link System#nanoTime()} has reached
     * {@code now + delayNanos}, where {@code now} is read inside this method, so never earlier. A
     * delay beyond {@link SaturatingTime#HORIZON_NANOS} is taken as that horizon (it never comes).
     *
     * @return the handle with which to cancel the task; cancelling removes it from the queue
     */
    static Entry schedule(Runnable task, long delayNanos) {
        long trigger = System.nanoTime() + SaturatingTime.clampToHorizon(Math.max(0, delayNanos));
        synchronized (LOCK) {
            if (timer == null) {
                Thread thread = newTimerThread(new Loop());
                thread.start(); // before the field: a start that fails leaves the next schedule to retry
                timer = thread;
            }
            Entry entry = new Entry(task, trigger, sequence++);
            add(entry);
            if (entry.index == 0) {
                // A new head: the timer thread may be parked until a later trigger, or for good.
                LockSupport.unpark(timer);
            }
            return entry;
        }
    }

    /**
     * {@return how many deadline tasks are waiting, for tests that check nothing piles up}
     */
    static int queuedTaskCount() {
        synchronized (LOCK) {
            return size;
        }
    }

    // ---- The heap, under LOCK. ----

    private static void add(Entry entry) {
        if (size == heap.length) {
            Entry[] grown = new Entry[heap.length * 2];
            System.arraycopy(heap, 0, grown, 0, size);
            heap = grown;
        }
        siftUp(size++, entry);
    }

    private static void removeAt(int index) {
        Entry removed = heap[index];
        removed.index = -1;
        int last = --size;
        Entry moved = heap[last];
        heap[last] = null; // the queue keeps no task (and no context) reachable once it is out
        if (index != last) {
            siftDown(index, moved);
            if (heap[index] == moved) {
                siftUp(index, moved);
            }
        }
    }

    private static void siftUp(int index, Entry entry) {
        while (index > 0) {
            int parent = (index - 1) >>> 1;
            Entry above = heap[parent];
            if (!entry.before(above)) {
                break;
            }
            place(index, above);
            index = parent;
        }
        place(index, entry);
    }

    private static void siftDown(int index, Entry entry) {
        int half = size >>> 1;
        while (index < half) {
            int child = 2 * index + 1;
            int right = child + 1;
            if (right < size && heap[right].before(heap[child])) {
                child = right;
            }
            if (!heap[child].before(entry)) {
                break;
            }
            place(index, heap[child]);
            index = child;
        }
        place(index, entry);
    }

    private static void place(int index, Entry entry) {
        heap[index] = entry;
        entry.index = index;
    }
}
