package dev.nativescope.onnxruntime;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * The terminate switch of one run: the run's own {@link OrtSession.RunOptions}, whose terminate
 * flag ONNX Runtime reads between nodes. Core's {@link dev.nativescope.interop.CancellationSignal}
 * flips it, from the thread that stops the run: the context's canceller (possibly the deadline
 * timer), the predictor's close, or the interrupter of the running thread.
 *
 * <p>Thread-safety: one state word. {@link #terminate} claims it ({@code LIVE -> TERMINATING}) before
 * it touches the options and releases it after; {@link #finish} moves it to {@code FINISHED} only
 * from {@code LIVE} or {@code TERMINATED}, waiting out a terminate in progress. So a terminate either
 * reaches the live RunOptions or sees the run finished and does nothing; it can never touch
 * RunOptions that {@link #finish} handed back for closing (a use after free in native code). The
 * common case, no terminate, costs {@link #finish} one compare-and-set (a monitor cost two).
 */
final class RunTermination {
    private static final int LIVE = 0;
    private static final int TERMINATING = 1;
    private static final int TERMINATED = 2;
    private static final int FINISHED = 3;
    /** Busy polls before {@link #finish} yields to a terminate in progress (one JNI store). */
    private static final int SPINS = 100;
    private static final VarHandle STATE = OrtObjects.field(MethodHandles.lookup(), "state", int.class);

    private final OrtSession.RunOptions options;
    @SuppressWarnings("unused") // through STATE
    private volatile int state;

    RunTermination(OrtSession.RunOptions options) {
        this.options = options;
    }

    void terminate() {
        if (!STATE.compareAndSet(this, LIVE, TERMINATING)) {
            return; // finished, or terminated already
        }
        try {
            options.setTerminate(true);
        } catch (OrtException e) {
            // Setting a flag on live RunOptions does not fail in practice (it is one store); if it
            // did, the run would complete and return its outputs. Not thrown: this runs inside
            // Thread.interrupt() and context cancellation, whose callers must not see it.
        } finally {
            STATE.setVolatile(this, TERMINATED);
        }
    }

    /** {@return the options to pass to the run; valid until {@link #finish()}} */
    OrtSession.RunOptions optionsForRun() {
        return options;
    }

    /** Ends the switch: later terminates do nothing. Returns the options for the caller to close. */
    OrtSession.RunOptions finish() {
        for (int spins = 0; ; spins++) {
            int current = (int) STATE.getVolatile(this);
            if (current == FINISHED) {
                return options;
            }
            if (current != TERMINATING) {
                if (STATE.compareAndSet(this, current, FINISHED)) {
                    return options;
                }
            } else if (spins < SPINS) {
                Thread.onSpinWait();
            } else {
                Thread.yield(); // the terminating thread may be descheduled mid-store
            }
        }
    }
}
