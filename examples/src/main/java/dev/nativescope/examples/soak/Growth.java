package dev.nativescope.examples.soak;

import java.util.List;
import java.util.Locale;

/** Compares the median of the last third of the samples against the middle third, per column. */
final class Growth {
    private Growth() {
    }

    /** Column index, name, absolute tolerance, relative tolerance (0 = none); -1 absolute = report only. */
    record Check(int column, long absolute, double relative) {
    }

    static final Check[] CHECKS = {
        new Check(Sampler.FDS, 8, 0),
        new Check(Sampler.THREADS, 4, 0),
        new Check(Sampler.JAVA_NATIVE_BYTES, 256 * 1024, 0),
        new Check(Sampler.LIVE_CALL_FRAMES, 8, 0),
        new Check(Sampler.LIVE_VALUE_BLOCKS, 64, 0),     // cleaners retire them after GC
        new Check(Sampler.SHIM_LIVE_FDS, 8, 0),
        new Check(Sampler.SHIM_LIVE_HOOKS, 8, 0),
        new Check(Sampler.ORT_OPEN_RUN_OBJECTS, 8, 0),   // 3 per run in flight (RunOptions, input and output views)
        new Check(Sampler.ORT_OPEN_PREDICTORS, 2, 0),    // the 2 shared ones plus churned sessions in their operation
        new Check(Sampler.RSS_KIB, 64 * 1024, 0.20),     // the larger of +64 MiB and +20 %
        new Check(Sampler.MALLOC_IN_USE_KIB, 32 * 1024, 0.10), // the larger of +32 MiB and +10 %
        new Check(Sampler.MALLOC_FREE_KIB, -1, 0),       // allocator retention, reported only
        new Check(Sampler.HEAP_USED_KIB, -1, 0),         // GC-driven, reported only
        new Check(Sampler.HEAP_COMMITTED_KIB, -1, 0),    // the heap's share of RSS growth, reported only
    };

    static boolean report(List<long[]> samples) {
        if (samples.size() < 6) {
            System.out.println("[soak] too few samples (" + samples.size() + ") for growth verdicts");
            return false;
        }
        int third = samples.size() / 3;
        List<long[]> middle = samples.subList(third, 2 * third);
        List<long[]> last = samples.subList(samples.size() - third, samples.size());
        boolean grew = false;
        System.out.println("[soak] growth, median of the last third vs the middle third (first third is warm-up):");
        for (Check check : CHECKS) {
            long mid = median(middle, check.column());
            long end = median(last, check.column());
            long max = samples.stream().mapToLong(r -> r[check.column()]).max().orElse(0);
            String verdict;
            long allowed;
            if (check.absolute() < 0) {
                verdict = "info";
                allowed = 0;
            } else {
                allowed = Math.max(check.absolute(), (long) (mid * check.relative()));
                boolean ok = end - mid <= allowed;
                verdict = ok ? "ok" : "GROWTH";
                grew |= !ok;
            }
            System.out.printf(Locale.ROOT, "[soak]   %-20s middle %12d  last %12d  delta %+11d  max %12d  %s%s%n",
                    Sampler.COLUMNS[check.column()], mid, end, end - mid, max, verdict,
                    check.absolute() < 0 ? "" : " (allowed +" + allowed + ")");
        }
        return grew;
    }

    static long median(List<long[]> rows, int column) {
        long[] values = rows.stream().mapToLong(r -> r[column]).sorted().toArray();
        return values[values.length / 2];
    }
}
