package dev.nativescope.call;

import dev.nativescope.Context;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;

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
final class Handoff<T> {
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
        try {
            // Nobody interrupts native threads, but a Downcall could interrupt its own thread: never
            // carry that into the next call.
            Thread.interrupted();
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
            Thread.interrupted();
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
