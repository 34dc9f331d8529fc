package dev.nativescope.testing;

import java.lang.management.ManagementFactory;

/**
 * Heap bytes allocated by the calling thread, for tests that assert a path allocates nothing
 * (HotSpot's {@code com.sun.management.ThreadMXBean}; here so that modular tests need not read
 * {@code jdk.management}). Thread-safe.
 */
public final class Allocations {
    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    private Allocations() {
    }

    /** {@return the bytes the calling thread has allocated so far (TLAB-precise, monotonic)} */
    public static long currentThread() {
        return THREADS.getCurrentThreadAllocatedBytes();
    }

    /**
     * Runs {@code call} in rounds of {@code calls} on the calling thread until a round averages under
     * one byte per call, or {@code rounds} rounds have run (the first ones warm the JIT up).
     *
     * @return the lowest bytes per call of any round
     */
    public static double bestBytesPerCall(Runnable call, int calls, int rounds) {
        double best = Double.MAX_VALUE;
        for (int round = 0; round < rounds && best >= 1.0; round++) {
            long before = currentThread();
            for (int i = 0; i < calls; i++) {
                call.run();
            }
            best = Math.min(best, (currentThread() - before) / (double) calls);
        }
        return best;
    }
}
