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
}
