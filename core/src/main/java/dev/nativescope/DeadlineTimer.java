package dev.nativescope;

import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;

/**
 * The one timer that fires every context deadline: a single daemon thread named
 * {@value #THREAD_NAME}, started when the first deadline is scheduled. Deadlines cost a queue
 * entry each, never a thread.
 *
 * <p>Tasks run on the timer thread, one after the other, so whatever a deadline triggers (the
 * {@link Context#onDone(Runnable)} actions of the expiring context and its descendants) delays
 * every later deadline by its running time. Cancelled tasks leave the queue at once, so contexts
 * that finish before their deadline leave nothing behind.
 *
 * <p>Thread-safe: tasks may be scheduled and cancelled from any thread.
 */
final class DeadlineTimer {
    static final String THREAD_NAME = "nativescope-deadline-timer";

    private DeadlineTimer() {
    }

    /** Holds the executor, so that nothing is created before the first deadline is scheduled. */
    private static final class Lazy {
        static final ScheduledThreadPoolExecutor EXECUTOR = createExecutor();
    }

    private static ScheduledThreadPoolExecutor createExecutor() {
        ScheduledThreadPoolExecutor executor = new ScheduledThreadPoolExecutor(1, new TimerThreads());
        // Without this, a cancelled task stays queued until its (possibly distant) deadline, and
        // contexts that come and go with long deadlines would pile up in the queue.
        executor.setRemoveOnCancelPolicy(true);
        return executor;
    }

    /** The executor's thread factory; a class, not a method reference, which a fresh JVM would spin at run time. */
    private static final class TimerThreads implements ThreadFactory {
        @Override
        public Thread newThread(Runnable work) {
            return newTimerThread(work);
        }
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
     * {@code now + delayNanos}, where {@code now} is read inside this method, so never earlier.
     *
     * @return the handle with which to cancel the task; cancelling removes it from the queue
     */
    static ScheduledFuture<?> schedule(Runnable task, long delayNanos) {
        return Lazy.EXECUTOR.schedule(task, delayNanos, TimeUnit.NANOSECONDS);
    }

    /**
     * {@return how many deadline tasks are waiting, for tests that check nothing piles up}
     */
    static int queuedTaskCount() {
        return Lazy.EXECUTOR.getQueue().size();
    }
}
