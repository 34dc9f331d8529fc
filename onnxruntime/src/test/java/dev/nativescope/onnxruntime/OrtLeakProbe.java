package dev.nativescope.onnxruntime;

import dev.nativescope.testing.LeakProbe;

import java.util.Map;

/**
 * The per-run ORT objects (RunOptions, tensor views) open now and the views predictors keep for reuse, for the leak check
 * ({@code dev.nativescope.testing.LeakCheckExtension}). Thread-safe: {@link OrtObjects} counts atomically.
 */
// The test classes are compiled into the named module of the code under test, and LeakProbe comes from the
// class path (the testing jar has no module descriptor): javac warns that an exported type implements it.
@SuppressWarnings("exports")
public final class OrtLeakProbe implements LeakProbe {
    /** Called by the {@link java.util.ServiceLoader}. */
    public OrtLeakProbe() {
    }

    @Override
    public Map<String, Long> counters() {
        return Map.of("ortOpenObjects", OrtObjects.open(), "ortCachedViews", OrtObjects.cached());
    }
}
