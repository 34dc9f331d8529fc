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

    /** Busy polls of the slot before parking (about 10 us); none on a single CPU, where spinning only delays the caller. */
    static final int SPINS_BEFORE_PARK = Runtime.getRuntime().availableProcessors() > 1 ? 2_000 : 0;

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
                // Queued work, or this thread on the idle list, before the caller learns it is done:
                // its next call then finds an idle thread instead of racing this one for the pool's lock.
                Handoff<?> queued = pool.takeQueuedOrIdle(this);
                handoff.complete();
                // Not kept while idle: the handoff holds the call's context (and its native values).
                handoff = queued != null ? queued : pool.awaitNextFor(this);
            }
        } finally {
            pool.exited(this);
        }
    }

    /** Waits for the next handoff until {@code deadlineNanoTime}; null on timeout. */
    Handoff<?> awaitNext(long deadlineNanoTime, boolean forever) {
        Handoff<?> handoff;
        // A caller that makes calls back to back hands the next one within microseconds: spin a
        // little before parking, which saves the wake-up (the floor of a handoff, several us).
        for (int spins = 0; spins < SPINS_BEFORE_PARK; spins++) {
            if ((handoff = next) != null) {
                next = null;
                return handoff;
            }
            Thread.onSpinWait();
        }
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
