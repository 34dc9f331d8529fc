package dev.nativescope.call;

import java.util.concurrent.locks.LockSupport;

/**
 * A native thread: a platform daemon thread of a {@link NativeThreadPool} (the shared pool, or an
 * {@link Affinity}'s pool of one) that runs offloaded handoffs one after another.
 *
 * <p>Threading: the pool hands a worker its next handoff through the volatile {@link #next} slot
 * and then unparks it; the worker reads the slot before every park, so a handoff given just before
 * the park is not missed (the unpark leaves a permit).
 */
final class NativeThread extends Thread {
    /**
     * Given to an idle worker to make it exit. It holds no caller: a terminated virtual thread still
     * references its task, which would keep whatever the task captured (a context) alive for good.
     */
    static final Handoff<Object> EXIT = new Handoff<>(null, () -> null, () -> true, null);

    final NativeThreadPool pool;
    volatile Handoff<?> next;

    NativeThread(NativeThreadPool pool, String name, Handoff<?> first) {
        super(null, null, name, 0, false);
        this.pool = pool;
        this.next = first;
        setDaemon(true);
    }

    @Override
    public void run() {
        Handoff<?> handoff = next;
        next = null;
        try {
            while (handoff != null && handoff != EXIT) {
                handoff.runHere();
                // Not kept while idle: the handoff holds the call's context (and its native values).
                handoff = null;
                handoff = pool.nextFor(this);
            }
        } finally {
            pool.exited(this);
        }
    }

    /** Waits for the next handoff until {@code deadlineNanoTime}; null on timeout. */
    Handoff<?> awaitNext(long deadlineNanoTime, boolean forever) {
        Handoff<?> handoff;
        while ((handoff = next) == null) {
            if (forever) {
                LockSupport.park(this);
            } else {
                long left = deadlineNanoTime - System.nanoTime();
                if (left <= 0) {
                    return null;
                }
                LockSupport.parkNanos(this, left);
            }
        }
        next = null;
        return handoff;
    }
}
