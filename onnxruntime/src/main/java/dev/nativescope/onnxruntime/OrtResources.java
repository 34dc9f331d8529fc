package dev.nativescope.onnxruntime;

/**
 * What this module holds in ONNX Runtime, for leak checks and long-running monitors (the soak run
 * samples it once a second): the per-run ORT objects ({@code RunOptions}, the tensor views of
 * inputs and outputs, and the output values ORT allocated for an {@link OrtResult} not yet closed) and the predictors, each of which owns a session.
 *
 * <p>Thread-safe; the counters are read one after the other, not as one snapshot, so a reading
 * taken while runs are in flight is approximate. When no run is in flight, {@code openRunObjects}
 * is exactly zero once every {@link OrtResult} is closed (views kept for reuse are counted in
 * {@code cachedViews}, not here): every run closes what it created, whether it
 * completed, failed or was stopped.
 *
 * @param openRunObjects per-run ORT objects created and not yet closed, in all predictors
 * @param createdRunObjects per-run ORT objects created since the JVM started
 * @param openPredictors {@link OrtPredictor}s opened (or wrapping a session) and not yet closed
 * @param cachedViews tensor views the open predictors keep for reuse by later runs over the same
 *                    tensors (see {@link OrtPredictor}, "Reuse"); a predictor closes its own when it
 *                    closes, so this is zero once every predictor is closed
 */
public record OrtResources(long openRunObjects, long createdRunObjects, long openPredictors, long cachedViews) {
    /** {@return the counters now} */
    public static OrtResources snapshot() {
        return new OrtResources(OrtObjects.open(), OrtObjects.created(), OrtObjects.openPredictors(),
                OrtObjects.cached());
    }
}
