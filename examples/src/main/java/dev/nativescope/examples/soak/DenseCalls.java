package dev.nativescope.examples.soak;

import dev.nativescope.Context;
import dev.nativescope.reference.PredictionStats;
import dev.nativescope.reference.ReferencePredictors;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.ThreadLocalRandom;

/**
 * The reference predictor's {@code dense} calls of the soak: a fixed, seeded {@value #N}x{@value #N}
 * input and weights in a shared arena, and the output computed in Java, which every completed call
 * must reproduce.
 */
final class DenseCalls {
    /** Dense shape of the checked calls: small enough for many calls per second, big enough to tile. */
    static final int N = 48;
    /** Dense repeat count of calls meant to be cancelled: far longer than any cancel delay. */
    static final long LONG_REPEAT = 1_000_000;

    private final Tally tally;
    private final Arena shared = Arena.ofShared();
    final MemorySegment x;
    private final MemorySegment w;
    private final MemorySegment bias;
    private final float[] reference;
    final float[] xValues;

    DenseCalls(Tally tally) {
        this.tally = tally;
        // Fixed input (seeded), so every completed call must reproduce the same output.
        java.util.Random random = new java.util.Random(7);
        xValues = new float[N * N];
        float[] wValues = new float[N * N];
        float[] bValues = new float[N];
        for (int i = 0; i < N * N; i++) {
            xValues[i] = random.nextFloat() - 0.5f;
            wValues[i] = random.nextFloat() - 0.5f;
        }
        for (int i = 0; i < N; i++) {
            bValues[i] = random.nextFloat() - 0.5f;
        }
        x = shared.allocateFrom(ValueLayout.JAVA_FLOAT, xValues);
        w = shared.allocateFrom(ValueLayout.JAVA_FLOAT, wValues);
        bias = shared.allocateFrom(ValueLayout.JAVA_FLOAT, bValues);
        // The reference is computed in Java (double accumulation): independent of the native code.
        reference = new float[N * N];
        for (int r = 0; r < N; r++) {
            for (int c = 0; c < N; c++) {
                double sum = bValues[c];
                for (int k = 0; k < N; k++) {
                    sum += (double) xValues[r * N + k] * wValues[k * N + c];
                }
                reference[r * N + c] = (float) Math.max(0.0, sum);
            }
        }
    }

    PredictionStats dense(Context ctx, long repeat, java.util.function.Consumer<PredictionStats> onReturn) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment y = arena.allocate(ValueLayout.JAVA_FLOAT, (long) N * N);
            return ReferencePredictors.dense(ctx, x, w, bias, y, N, N, N, repeat, onReturn);
        }
    }


    /** Runs a dense call that nothing cancels and checks its output and the trace id it read. */
    void denseChecked(Context ctx, MemorySegment input, String expectedTrace) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment y = arena.allocate(ValueLayout.JAVA_FLOAT, (long) N * N);
            long repeat = ThreadLocalRandom.current().nextLong(1, 4);
            PredictionStats stats = ReferencePredictors.dense(ctx, input, w, bias, y, N, N, N, repeat, null);
            tally.callsDone.increment();
            checkTrace(stats, expectedTrace);
            float[] got = y.toArray(ValueLayout.JAVA_FLOAT);
            for (int i = 0; i < got.length; i++) {
                if (Math.abs(got[i] - reference[i]) > 1e-4f * Math.max(1f, Math.abs(reference[i]))) {
                    throw new Violation("dense output " + i + " = " + got[i] + ", reference " + reference[i]);
                }
            }
        }
    }


    static void checkTrace(PredictionStats stats, String expected) {
        String seen = stats == null ? null : stats.traceId().orElse(null);
        if (!expected.equals(seen)) {
            throw new Violation("native code saw trace id " + seen + ", bound " + expected);
        }
    }
}
