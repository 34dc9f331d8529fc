package dev.nativescope.call;

import dev.nativescope.library.NativeStatus;
import dev.nativescope.Context;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.bindings.nsc_context;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * The native context of one cancellable call: an {@code nsc_context} that is a child of the
 * caller's {@link Context} (it shares the context's deadline and values and is cancelled when the
 * context is) and that an interrupt of the calling thread cancels on its own, so interrupting one
 * thread never cancels its siblings' calls. Frames are pooled: a call takes one, the struct is
 * re-armed, and it goes back when the call returns.
 *
 * <p>Each call has a generation number. Cancellers (the context's done action, the interrupt
 * hook) carry the generation they were registered for and do nothing once the call has ended,
 * so a late cancel never leaks into the frame's next call. The struct, its arena and its done fd
 * are owned by the frame; the arena is shared because cancellers run in other threads.
 *
 * <p><b>Healing.</b> Only healthy frames go back into the pool: {@link #release()} re-initialises
 * a struct that was cancelled or that native code left hooks on, and a frame whose struct cannot be
 * destroyed (hooks still registered: {@code NSC_ERR_BUSY}) or re-initialised is retired for good:
 * counted in {@link NativeResources#retiredCallFrames()}, its memory kept (a leaked hook points into
 * it), never reused. The first retirement is logged once as a {@code WARNING} naming the fix; later
 * calls on any thread are unaffected.
 *
 * <p>Threading: one calling thread at a time owns a frame; {@link #cancel} may run concurrently
 * from any thread. {@link #release()} runs after {@link #endCall()}, when no canceller can touch the
 * struct any more, so the re-initialisation it does races with nothing of ours.
 */
final class CallFrame {
    private static final int MAX_IDLE = Math.max(8, 4 * Runtime.getRuntime().availableProcessors());
    private static final ConcurrentLinkedQueue<CallFrame> IDLE = new ConcurrentLinkedQueue<>();
    private static final AtomicInteger IDLE_COUNT = new AtomicInteger();
    static final long NO_DEADLINE = nativescope_h.NSC_NO_DEADLINE();
    private static final long STATE_OFFSET = nsc_context.state$offset();
    /** Only the first retirement is logged: a predictor that leaks hooks would otherwise log per call. */
    private static final AtomicBoolean RETIREMENT_REPORTED = new AtomicBoolean();
    /** {@link #endCall()}: busy polls before parking (a running canceller needs about a microsecond). */
    private static final int END_CALL_SPINS = 100;

    private final Arena arena;
    final MemorySegment struct;
    private volatile long generation;
    private final AtomicInteger cancelsInFlight = new AtomicInteger();
    private volatile Throwable cancelCause;
    /** {@link System#nanoTime()} when this call was cancelled; meaningful once {@link #cancelCause} is set. */
    private volatile long cancelNanoTime;
    private volatile boolean interrupted;
    /** The caller parked in {@link #endCall()} until the cancels in flight are over, or null. */
    private volatile Thread endingCaller;

    private CallFrame() {
        Arena owned = Arena.ofShared();
        boolean success = false;
        try {
            // 64-byte aligned so that the struct's two halves sit on their own cache lines.
            this.struct = owned.allocate(nsc_context.sizeof(), 64);
            int status = nativescope_h.nsc_context_init(struct, NO_DEADLINE, MemorySegment.NULL, 0);
            if (status != NativeStatus.OK.code()) {
                throw NativeStatus.exception(status, "nsc_context_init");
            }
            this.arena = owned;
            success = true;
        } finally {
            if (!success) {
                owned.close();
            }
        }
        NativeResources.JAVA_NATIVE_BYTES.addAndGet(nsc_context.sizeof());
        NativeResources.LIVE_CALL_FRAMES.incrementAndGet();
        LeakSites.created(this, "call frame (nsc_context and its done fd)");
    }

    static CallFrame acquire() {
        CallFrame frame = IDLE.poll();
        if (frame == null) {
            return new CallFrame();
        }
        IDLE_COUNT.decrementAndGet();
        return frame;
    }

    /**
     * Arms the struct for a call with this deadline ({@code CLOCK_MONOTONIC}) and values. The struct
     * is live and hook-free: {@link #release()} puts only such frames back into the pool.
     */
    void arm(long deadlineMonotonicNanos, NativeValues values) {
        cancelCause = null;
        interrupted = false;
        nsc_context.deadline_ns(struct, deadlineMonotonicNanos);
        nsc_context.values(struct, values.array);
        nsc_context.value_count(struct, values.count);
    }

    /**
     * Makes the struct fit for the next call: a cancelled struct keeps its done fd readable for good,
     * so it gets a fresh one rather than being drained (a late reader could then miss the cancel); a
     * struct that native code left hooks on must not carry them into another call.
     *
     * @return false when the frame was retired instead (see the class documentation)
     */
    private boolean reinitialiseIfUsed() {
        if (!isCancelled() && MemorySegment.NULL.equals(nsc_context.hooks(struct))) {
            return true;
        }
        int status = nativescope_h.nsc_context_destroy(struct);
        if (status != NativeStatus.OK.code()) {
            retire(false, "nsc_context_destroy returned " + NativeStatus.nameOf(status)
                    + ": native code called nsc_hook_register on its call context and returned without"
                    + " nsc_hook_deregister. Deregister every hook before the native function returns (also on"
                    + " its error and cancel paths); see docs/predictor-sdk.md");
            return false;
        }
        status = nativescope_h.nsc_context_init(struct, NO_DEADLINE, MemorySegment.NULL, 0);
        if (status != NativeStatus.OK.code()) {
            retire(true, "nsc_context_init returned " + NativeStatus.nameOf(status) + " ("
                    + NativeStatus.exception(status, "nsc_context_init").getMessage()
                    + "): the shim could not re-create the call context's resources; check the process's fd limit");
            return false;
        }
        return true;
    }

    /**
     * Takes this frame out of use for good.
     *
     * @param destroyed whether the struct was destroyed (then its memory is freed); otherwise native
     *                  hooks may still point into it and the memory is kept for the life of the process
     */
    private void retire(boolean destroyed, String why) {
        if (destroyed) {
            arena.close();
            NativeResources.JAVA_NATIVE_BYTES.addAndGet(-nsc_context.sizeof());
        }
        NativeResources.LIVE_CALL_FRAMES.decrementAndGet();
        NativeResources.RETIRED_CALL_FRAMES.incrementAndGet();
        LeakSites.freed(this);
        if (RETIREMENT_REPORTED.compareAndSet(false, true)) {
            System.getLogger(NativeCall.class.getName()).log(System.Logger.Level.WARNING,
                    "a call frame was retired (not reused; later calls are unaffected): " + why
                    + ". Further retirements are counted in NativeResources.retiredCallFrames() without logging");
        }
    }

    long generation() {
        return generation;
    }

    /** @return true when the struct was cancelled (by the context or an interrupt) */
    boolean isCancelled() {
        return struct.get(ValueLayout.JAVA_INT, STATE_OFFSET) != NativeStatus.OK.code();
    }

    /**
     * Cancels the call of {@code callGeneration} with this status; a no-op once that call has ended.
     *
     * <p>Race with {@link #endCall()}: we increment {@code cancelsInFlight} and then read
     * {@code generation}; endCall writes {@code generation} and then reads {@code cancelsInFlight}.
     * All four are volatile accesses, totally ordered, so either we see the new generation (and
     * touch nothing) or endCall sees our increment (and waits for us). Hence no canceller ever
     * writes the struct, or its done fd, after the call that registered it has ended.
     */
    void cancel(long callGeneration, int status, Throwable cause) {
        cancel(callGeneration, status, cause, false);
    }

    private void cancel(long callGeneration, int status, Throwable cause, boolean byInterrupt) {
        cancelsInFlight.incrementAndGet();
        try {
            if (generation != callGeneration) {
                return;
            }
            // The state word first: it is what stops native code, so nothing else goes before it.
            // Only the canceller whose nsc_context_cancel won records why; the caller reads it after
            // endCall(), which waits for us, so it never sees the status without its cause.
            if (nativescope_h.nsc_context_cancel(struct, status) == NativeStatus.OK.code()) {
                cancelNanoTime = System.nanoTime();
                interrupted = byInterrupt;
                cancelCause = byInterrupt ? new InterruptedException("thread interrupted during a native call") : cause;
            }
        } finally {
            // Hand-off with endCall(): it publishes endingCaller, then reads cancelsInFlight; we
            // decrement, then read endingCaller (all volatile): either it sees zero and does not
            // park, or we see it and unpark it. A late unpark is a spurious wake-up, which every
            // park caller tolerates.
            if (cancelsInFlight.decrementAndGet() == 0) {
                Thread waiting = endingCaller;
                if (waiting != null) {
                    LockSupport.unpark(waiting);
                }
            }
        }
    }

    void cancelByInterrupt(long callGeneration) {
        cancel(callGeneration, NativeStatus.CANCELED.code(), null, true);
    }

    /**
     * Ends the current call: later cancels of it do nothing; waits for one that is running.
     *
     * <p>The wait must not be a pure spin. The canceller still in flight is typically inside
     * {@code nsc_context_cancel}, right after the eventfd write that woke this thread, and the
     * kernel likes to wake us on the canceller's CPU and let us preempt it: a spin then holds that
     * CPU for a whole scheduler slice (about 3 ms on Linux 6.x) before the canceller can finish
     * (measured: {@code CancelLatencyBenchmark.cancelFd} "caught" p50 3.6 ms, native return 8 us).
     * So spin briefly, then park until the last canceller unparks us (see {@link #cancel}). Park
     * returns at once for an interrupted thread: that thread yields instead.
     */
    void endCall() {
        generation = generation + 1;
        for (int spins = 0; spins < END_CALL_SPINS; spins++) {
            if (cancelsInFlight.get() == 0) {
                return;
            }
            Thread.onSpinWait();
        }
        Thread self = Thread.currentThread();
        endingCaller = self;
        try {
            while (cancelsInFlight.get() != 0) {
                if (self.isInterrupted()) {
                    Thread.yield();
                } else {
                    LockSupport.park(this);
                }
            }
        } finally {
            endingCaller = null;
        }
    }

    /** @return what cancelled the call: the context's cause, or an InterruptedException */
    Throwable cancelCause() {
        Throwable cause = cancelCause;
        return cause != null ? cause : new CancellationException("canceled");
    }

    boolean wasInterrupted() {
        return interrupted;
    }

    /**
     * @return when one of this frame's cancellers cancelled the current call ({@link System#nanoTime()}),
     *         or -1 when none did (it was not cancelled, or native code set the state itself);
     *         exact after {@link #endCall()}
     */
    long cancelNanoTime() {
        return cancelCause != null ? cancelNanoTime : -1;
    }

    /** Returns the frame to the pool once its call has ended ({@link #endCall()}), healed or retired. */
    void release() {
        if (!reinitialiseIfUsed()) {
            return;
        }
        if (IDLE_COUNT.incrementAndGet() <= MAX_IDLE) {
            IDLE.offer(this);
        } else {
            IDLE_COUNT.decrementAndGet();
            free();
        }
    }

    static void trimIdle() {
        CallFrame frame;
        while ((frame = IDLE.poll()) != null) {
            IDLE_COUNT.decrementAndGet();
            frame.free();
        }
    }

    private void free() {
        int status = nativescope_h.nsc_context_destroy(struct);
        if (status != NativeStatus.OK.code()) {
            // Pooled frames are hook-free (release() heals or retires), so this is native code that
            // registered a hook after its call returned: freeing the struct would let a later cancel
            // write freed memory.
            retire(false, "nsc_context_destroy returned " + NativeStatus.nameOf(status)
                    + ": a cancel hook was registered on an idle call context; deregister hooks before the native"
                    + " function returns");
            return;
        }
        arena.close();
        NativeResources.JAVA_NATIVE_BYTES.addAndGet(-nsc_context.sizeof());
        NativeResources.LIVE_CALL_FRAMES.decrementAndGet();
        LeakSites.freed(this);
    }
}
