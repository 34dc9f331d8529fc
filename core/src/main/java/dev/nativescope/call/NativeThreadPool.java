package dev.nativescope.call;

import dev.nativescope.Context;
import dev.nativescope.internal.posix.Scheduling;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

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
    /** Handoffs accepted by any pool (a thread or the queue), for tests that must prove they offloaded. */
    private static final LongAdder ACCEPTED = new LongAdder();

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

    /** {@return how many calls were handed to native threads (queued ones included) since the JVM started} */
    static long handoffsAccepted() {
        return ACCEPTED.sum();
    }

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
            ACCEPTED.increment(); // undone for a rejection
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
                ACCEPTED.decrement(); // not a handoff: undoes the count above
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
        return read(() -> List.copyOf(threads));
    }

    int live() {
        return read(threads::size);
    }

    int busy() {
        return read(() -> threads.size() - idle.size());
    }

    int queued() {
        return read(queue::size);
    }

    /** {@return what {@code reader} computes from the pool's state, under the lock} */
    private <T> T read(Supplier<T> reader) {
        lock.lock();
        try {
            return reader.get();
        } finally {
            lock.unlock();
        }
    }

    /**
     * A native thread: a platform daemon thread of a {@link NativeThreadPool} (the shared pool, or an
     * {@link Affinity}'s pool of one) that runs offloaded handoffs one after another.
     *
     * <p>Threading: the pool hands a worker its next handoff through the volatile {@link #next} slot
     * and then unparks it; the worker reads the slot before every park, so a handoff given just before
     * the park is not missed (the unpark leaves a permit).
     */
    static final class NativeThread extends Thread {
        /**
         * Given to an idle worker to make it exit. It holds no caller: a terminated virtual thread still
         * references its task, which would keep whatever the task captured (a context) alive for good.
         */
        static final Handoff<Object> EXIT = new Handoff<>(null, () -> null, () -> true, null);

        /** How long an idle native thread polls its slot before parking; none on a single CPU, where spinning only delays the caller. */
        static final long IDLE_SPIN_NANOS = Runtime.getRuntime().availableProcessors() > 1 ? 20_000 : 0;

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
            if (NativeThreads.SLICE_NANOS > 0) {
                Scheduling.setSliceOfCurrentThread(NativeThreads.SLICE_NANOS); // a hint: a refusal leaves the default
            }
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
            if ((handoff = spinFor(() -> next, IDLE_SPIN_NANOS)) != null) {
                next = null;
                return handoff;
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

    /**
     * Polls {@code poll} for up to {@code nanos}; its first non-null value, or null. Yields the CPU
     * every few polls on a platform thread: the thread we wait for is often runnable on this very
     * CPU (the scheduler wakes a thread where its waker runs), and a plain spin would keep it off
     * until the spin ends (seen: an offloaded no-op took the native thread's whole idle spin, 24 us,
     * per call). A virtual thread's yield goes to its scheduler, not the OS, so it only pauses.
     */
    static <T> T spinFor(java.util.function.Supplier<T> poll, long nanos) {
        if (nanos <= 0) {
            return null;
        }
        boolean yields = !Thread.currentThread().isVirtual();
        long start = System.nanoTime();
        for (int spins = 1; ; spins++) {
            T value = poll.get();
            if (value != null) {
                return value;
            }
            if ((spins & 7) == 0) {
                if (System.nanoTime() - start >= nanos) {
                    return null;
                }
                if (yields) {
                    Thread.yield();
                    continue;
                }
            }
            Thread.onSpinWait();
        }
    }

    /**
     * One offloaded piece of work: handed from the parked caller to a native thread and back.
     *
     * <p>States: {@code QUEUED} (submitted, no native thread has taken it), then either
     * {@code RUNNING} (a native thread won the CAS and runs it) and {@code DONE}, or {@code ABANDONED}
     * (the caller won the CAS: the wait for a native thread was cancelled, the work never runs). The
     * one CAS out of {@code QUEUED} decides between the native thread and the caller, so the work runs
     * at most once and a caller that abandoned it never waits for it.
     *
     * <p>Threading: the caller writes the fields before submitting (the pool's lock or the worker's
     * volatile slot publishes them); the native thread writes {@link #result} and {@link #failure}
     * before the volatile {@code DONE}, which the caller reads before them.
     */
    static final class Handoff<T> {
        static final int QUEUED = 0;
        static final int RUNNING = 1;
        static final int DONE = 2;
        static final int ABANDONED = 3;

        private final AtomicInteger state = new AtomicInteger(QUEUED);
        final Thread caller;
        private final NativeThreads.Work<? extends T, ?> work;
        /** True once the work must not start (its context or signal is stopped); checked before running it. */
        private final BooleanSupplier stopped;
        /** Bound as {@link Context#current()} on the native thread while the work runs, or null. */
        private final Context binding;
        T result;
        Throwable failure;
        /** Set by the native thread when it found the work stopped before it started. */
        boolean notStarted;
        /** The native thread while it runs the work, else null; guarded by this handoff's monitor. */
        private Thread runner;
        /** The caller was interrupted: the runner is to be interrupted too; guarded by this handoff's monitor. */
        private boolean interruptForwarded;

        Handoff(NativeThreads.Work<? extends T, ?> work, BooleanSupplier stopped, Context binding) {
            this(Thread.currentThread(), work, stopped, binding);
        }

        /** @param caller the thread to unpark when done; null for the exit marker, which must hold no thread */
        Handoff(Thread caller, NativeThreads.Work<? extends T, ?> work, BooleanSupplier stopped, Context binding) {
            this.caller = caller;
            this.work = work;
            this.stopped = stopped;
            this.binding = binding;
        }

        int state() {
            return state.get();
        }

        /** The caller gives up a queued handoff; false when a native thread took it first. */
        boolean abandon() {
            return state.compareAndSet(QUEUED, ABANDONED);
        }

        /** Runs the work on the current (native) thread, unless the caller abandoned it. */
        void runHere() {
            if (!state.compareAndSet(QUEUED, RUNNING)) {
                return;
            }
            // Only forwardInterrupt() interrupts a native thread, but a Downcall could interrupt its
            // own thread: never carry that into this call.
            Thread.interrupted();
            synchronized (this) {
                runner = Thread.currentThread();
                if (interruptForwarded) {
                    runner.interrupt(); // forwarded between our CAS and here
                }
            }
            try {
                if (stopped.getAsBoolean()) {
                    // Stopped while it waited for this thread: like inline, native code is not entered.
                    notStarted = true;
                } else if (binding != null) {
                    result = binding.call(work::run);
                } else {
                    result = work.run();
                }
            } catch (Throwable thrown) {
                failure = thrown;
            } finally {
                // Once runner is null under the monitor, no forwardInterrupt() of this handoff can reach
                // this thread any more; the clear below then drops any it delivered before.
                synchronized (this) {
                    runner = null;
                }
                Thread.interrupted();
            }
        }

        /**
         * Interrupts the native thread running the work, if it still is, on behalf of the caller, whose
         * own interrupt hook stops the offloaded call's struct: Java code of the work (a nested bridged
         * call, an interruptible wait) then hears the interrupt as it would inline. A forward that comes
         * before the native thread has taken the work is delivered when it starts it; the monitor orders
         * every forward with {@link #runHere()}'s end, so none reaches the thread's next work.
         */
        void forwardInterrupt() {
            synchronized (this) {
                interruptForwarded = true;
                if (runner != null) {
                    runner.interrupt();
                }
            }
        }

        /**
         * Hands the outcome back: called by the native thread after {@link #runHere()}, once it has
         * made itself available for the next handoff (so the caller's next call finds it idle). Volatile
         * write after the result: the caller reads DONE, then the result. Only a handoff that ran is
         * completed; an abandoned one has no waiting caller.
         */
        void complete() {
            if (state.get() == RUNNING) {
                state.set(DONE);
                LockSupport.unpark(caller);
            }
        }
    }
}
