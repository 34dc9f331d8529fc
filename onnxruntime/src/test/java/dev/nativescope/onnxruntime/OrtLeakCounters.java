package dev.nativescope.onnxruntime;

import dev.nativescope.testing.LeakCounters;

import java.util.Map;

/** The per-run ORT objects (RunOptions, tensor views) open now, for core's leak-check extension. */
public final class OrtLeakCounters implements LeakCounters {
    @Override
    public Map<String, Long> read() {
        return Map.of("ortOpenObjects", OrtObjects.open());
    }
}
