package dev.nativescope.call;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A bounded pool of {@link NativeThread}s with a bounded queue: the shared pool of
 * {@link NativeThreads}, or the single thread of an {@link Affinity}. Threads start on demand, up to
 * {@code maxThreads}; a handoff that finds none idle and the pool full waits in the queue, up to
 * {@code queueCapacity}; beyond that it is rejected with a message naming the properties to raise.
 * Idle threads end after {@code keepAliveNanos} (never, for an affinity) or on {@link #trimIdle()}.
 *
 * <p>Threading: all state is guarded by one {@link ReentrantLock} (held for a few field updates,
 * never while work runs; a virtual thread that waits for it parks, it does not pin). A handoff is
 * given to an idle thread under the lock, through its volatile slot, then the thread is unparked
 * outside the lock. A worker that finds the queue empty puts itself on the idle list under the same
 * lock, so a handoff queued concurrently is either seen by the worker's poll or given to it from the
 * idle list: none is stranded in the queue while a thread idles.
 */
final class NativeThreadPool {
    private final String namePrefix;
    private final String sizeHint;
    final int maxThreads;
    final int queueCapacity;
    /** How long an idle thread lives; negative: until the pool is closed. */
    private final long keepAliveNanos;
    private final ReentrantLock lock = new ReentrantLock();
    private final ArrayDeque<NativeThread> idle = new ArrayDeque<>();
    private final ArrayDeque<Handoff<?>> queue = new ArrayDeque<>();
    private final Set<NativeThread> threads = new LinkedHashSet<>();
    private int created;
    private boolean closed;

    NativeThreadPool(String namePrefix, int maxThreads, int queueCapacity, long keepAliveNanos, String sizeHint) {
        this.namePrefix = namePrefix;
        this.maxThreads = maxThreads;
        this.queueCapacity = queueCapacity;
        this.keepAliveNanos = keepAliveNanos;
        this.sizeHint = sizeHint;
    }

    /**
     * Hands {@code handoff} to an idle thread, a new one, or the queue.
     *
     * @return true when it was queued (no thread was free)
     * @throws RejectedExecutionException when the queue is full
     * @throws IllegalStateException when the pool is closed
     */
    boolean submit(Handoff<?> handoff) {
        NativeThread worker;
        lock.lock();
        try {
            if (closed) {
                throw new IllegalStateException(sizeHint + " is closed: no more calls can run on its native thread");
            }
            worker = idle.pollFirst(); // LIFO: the most recently idle thread is the warmest
            if (worker != null) {
                worker.next = handoff;
            } else if (threads.size() < maxThreads) {
                worker = new NativeThread(this, namePrefix + (++created), handoff);
                threads.add(worker);
                worker.start();
                return false;
            } else if (queue.size() < queueCapacity) {
                queue.addLast(handoff);
                return true;
            } else {
                throw new RejectedExecutionException("offloaded native call rejected: all " + maxThreads + " native threads of "
                        + sizeHint + " are busy and " + queueCapacity + " calls already wait for one. Raise -D"
                        + NativeThreads.POOL_SIZE_PROPERTY + " (now " + NativeThreads.poolSize() + ") or -D"
                        + NativeThreads.QUEUE_PROPERTY + " (now " + NativeThreads.queueCapacity()
                        + "), or bound the number of long native calls in flight (a Semaphore around them)");
            }
        } finally {
            lock.unlock();
        }
        LockSupport.unpark(worker);
        return false;
    }

    /** Removes a handoff its caller abandoned while it was queued. */
    void remove(Handoff<?> handoff) {
        lock.lock();
        try {
            queue.remove(handoff);
        } finally {
            lock.unlock();
        }
    }

    /**
     * Called by {@code worker} after a handoff: a queued handoff to run next, or null after putting
     * the worker on the idle list (then it waits in {@link #awaitNextFor}). On a closed pool with an
     * empty queue it returns null without going idle and the worker's wait returns null at once.
     */
    Handoff<?> takeQueuedOrIdle(NativeThread worker) {
        lock.lock();
        try {
            Handoff<?> queued = pollLive();
            if (queued != null || closed) {
                return queued;
            }
            idle.addFirst(worker);
            return null;
        } finally {
            lock.unlock();
        }
    }

    /** Called by an idle {@code worker}: its next handoff, or null when it is to end (timed out, closed). */
    Handoff<?> awaitNextFor(NativeThread worker) {
        boolean idleNow;
        lock.lock();
        try {
            idleNow = idle.contains(worker) || worker.next != null;
        } finally {
            lock.unlock();
        }
        if (!idleNow) {
            return null; // closed: takeQueuedOrIdle did not make it idle
        }
        Handoff<?> handoff = worker.awaitNext(System.nanoTime() + keepAliveNanos, keepAliveNanos < 0);
        if (handoff != null) {
            return handoff;
        }
        lock.lock();
        try {
            // Timed out. Under the lock, either we are still idle (then leave) or a submitter took us
            // off the idle list and set our slot in the same critical section (then run it).
            if (idle.remove(worker)) {
                return null;
            }
            handoff = worker.next;
            worker.next = null;
            return handoff;
        } finally {
            lock.unlock();
        }
    }

    private Handoff<?> pollLive() {
        Handoff<?> queued;
        while ((queued = queue.pollFirst()) != null) {
            if (queued.state() == Handoff.QUEUED) {
                return queued;
            }
        }
        return null;
    }

    void exited(NativeThread worker) {
        lock.lock();
        try {
            threads.remove(worker);
            idle.remove(worker);
        } finally {
            lock.unlock();
        }
    }

    /** Ends the idle threads and waits (up to a second each) until they have ended. */
    void trimIdle() {
        List<NativeThread> ending = new ArrayList<>();
        lock.lock();
        try {
            NativeThread worker;
            while ((worker = idle.pollFirst()) != null) {
                worker.next = NativeThread.EXIT;
                ending.add(worker);
            }
        } finally {
            lock.unlock();
        }
        for (NativeThread worker : ending) {
            LockSupport.unpark(worker);
        }
        for (NativeThread worker : ending) {
            try {
                worker.join(1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    /** Refuses new handoffs; queued ones still run, then the threads end. */
    void close() {
        lock.lock();
        try {
            closed = true;
        } finally {
            lock.unlock();
        }
        trimIdle();
    }

    /** {@return the threads alive} */
    List<NativeThread> threads() {
        lock.lock();
        try {
            return List.copyOf(threads);
        } finally {
            lock.unlock();
        }
    }

    int live() {
        lock.lock();
        try {
            return threads.size();
        } finally {
            lock.unlock();
        }
    }

    int busy() {
        lock.lock();
        try {
            return threads.size() - idle.size();
        } finally {
            lock.unlock();
        }
    }

    int queued() {
        lock.lock();
        try {
            return queue.size();
        } finally {
            lock.unlock();
        }
    }
}
