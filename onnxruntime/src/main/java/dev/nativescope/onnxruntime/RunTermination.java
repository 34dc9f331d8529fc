package dev.nativescope.onnxruntime;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;


/**
 * The terminate switch of one run: the run's own {@link OrtSession.RunOptions}, whose terminate
 * flag ONNX Runtime reads between nodes. Core's {@link dev.nativescope.interop.CancellationSignal}
 * flips it, from the thread that stops the run: the context's canceller (possibly the deadline
 * timer), the predictor's close, or the interrupter of the running thread.
 *
 * <p>Thread-safety: {@link #terminate} and {@link #finish} are synchronized, so a terminate
 * either reaches the live RunOptions or sees the run finished and does nothing; it can never touch
 * RunOptions that {@link #finish} handed back for closing (a use after free in native code).
 */
final class RunTermination {
    private final OrtSession.RunOptions options;
    private boolean terminated;
    private boolean finished;

    RunTermination(OrtSession.RunOptions options) {
        this.options = options;
    }

    synchronized void terminate() {
        if (finished || terminated) {
            return;
        }
        try {
            options.setTerminate(true);
            terminated = true;
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

    /** Ends the switch: later terminates do nothing. Returns the options for the caller to close. */
    synchronized OrtSession.RunOptions finish() {
        finished = true;
        return options;
    }
}
