package dev.nativescope.reference;

import dev.nativescope.library.NativeLibrary;
import dev.nativescope.bindings.nsc_predict_stats;

import java.lang.foreign.MemorySegment;
import java.util.Optional;

/**
 * What a reference predictor reported about one run, read from its {@code nsc_predict_stats}.
 *
 * @param status the native status it returned ({@code 0} is {@code NSC_OK})
 * @param workUnits tiles computed (dense), bytes read (wait) or loop iterations (spin)
 * @param checks context checks it made
 * @param startNanoTime when native code started, on the {@link System#nanoTime()} clock
 * @param endNanoTime when native code returned, on the {@link System#nanoTime()} clock
 * @param traceId the {@code trace-id} value native code read from its context, if any
 */
public record PredictionStats(int status, long workUnits, long checks, long startNanoTime, long endNanoTime,
                              Optional<String> traceId) {

    static PredictionStats read(MemorySegment stats) {
        long offset = NativeLibrary.toMonotonicNanos(0);
        String traceId = nsc_predict_stats.trace_id_len(stats) == 0
                ? null
                : nsc_predict_stats.trace_id(stats).getString(0);
        return new PredictionStats(nsc_predict_stats.status(stats), nsc_predict_stats.work_units(stats),
                nsc_predict_stats.checks(stats), nsc_predict_stats.start_ns(stats) - offset,
                nsc_predict_stats.end_ns(stats) - offset, Optional.ofNullable(traceId));
    }

    /** @return how long native code ran, in nanoseconds */
    public long nativeNanos() {
        return endNanoTime - startNanoTime;
    }
}
