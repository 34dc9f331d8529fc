package dev.nativescope.onnxruntime;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;


/**
 * The terminate switch of one run: the run's own {@link OrtSession.RunOptions}, whose terminate
 * flag ONNX Runtime reads between nodes, and why it was set. Three parties may flip it from their
 * own threads: the run's context ({@code onDone}, possibly on the deadline timer thread), the
 * predictor's close, and an interrupt of the running thread (through core's {@link dev.nativescope.InterruptHook}).
 *
 * <p>Thread-safety: {@link #terminate} and {@link #finish} are synchronized, so a terminate
 * either reaches the live RunOptions or sees the run finished and does nothing; it can never touch
 * RunOptions that {@link #finish} handed back for closing (a use after free in native code).
 * The first reason wins.
 */
final class RunTermination {
    /** Why a run was told to stop. */
    enum Reason {
        /** The run's context was cancelled or expired. */
        CONTEXT,
        /** The running thread was interrupted. */
        INTERRUPT,
        /** The predictor was closed. */
        CLOSE
    }

    private final OrtSession.RunOptions options;
    private Reason reason;
    private boolean finished;

    RunTermination(OrtSession.RunOptions options) {
        this.options = options;
    }

    synchronized void terminate(Reason why) {
        if (finished || reason != null) {
            return;
        }
        try {
            options.setTerminate(true);
            reason = why;
        } catch (OrtException e) {
            // Setting a flag on live RunOptions does not fail in practice (it is one store); if it
            // did, the run would complete and return its outputs. Not thrown: this runs inside
            // Thread.interrupt() and context cancellation, whose callers must not see it.
        }
    }

    /** {@return the options to pass to the run; valid until {@link #finish()}} */
    OrtSession.RunOptions optionsForRun() {
        return options;
    }

    /** {@return why the run was told to stop, or null if it was not} */
    synchronized Reason reason() {
        return reason;
    }

    /** Ends the switch: later terminates do nothing. Returns the options for the caller to close. */
    synchronized OrtSession.RunOptions finish() {
        finished = true;
        return options;
    }
}
