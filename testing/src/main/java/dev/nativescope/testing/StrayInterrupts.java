package dev.nativescope.testing;

import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Harness waits that survive an interrupt nobody meant for the harness, and count it.
 *
 * <p>The hold-family children (core's {@code HoldFamilyChild}, onnxruntime's {@code OrtHoldFamilyChild})
 * saw their main thread interrupted, rarely, while it joined its helper threads after a round, with
 * no interrupt in the test code; its source is not found yet (see the closing note of the session
 * that added this). A harness join that fails on it would fail the family test for a reason outside
 * what it checks, so the waits here clear such an interrupt, count it and wait on; the children print
 * the count, so that a recurrence stays visible while the cause is looked for.
 *
 * <p>Thread-safe: one atomic counter.
 */
public final class StrayInterrupts {
    private static final AtomicInteger SEEN = new AtomicInteger();

    private StrayInterrupts() {
    }

    /** {@return how many interrupts the waits here have cleared in this JVM} */
    public static int seen() {
        return SEEN.get();
    }

    /** Clears the calling thread's interrupt status, counting it if it was set: before a round. */
    public static void clear() {
        if (Thread.interrupted()) {
            SEEN.incrementAndGet();
        }
    }

    /**
     * {@return true, counting it, when {@code failure} is a cancellation caused by an interrupt of the
     * calling thread} (the only interrupts the family children see are stray ones: nothing in them
     * interrupts), and clears the interrupt status the cancellation left pending
     */
    public static boolean isStray(Throwable failure) {
        if (failure instanceof java.util.concurrent.CancellationException
                && failure.getCause() instanceof InterruptedException) {
            Thread.interrupted();
            SEEN.incrementAndGet();
            return true;
        }
        return false;
    }

    /** {@link Thread#join(long)} that clears and counts interrupts instead of throwing. */
    public static void join(Thread thread, long millis) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
        while (true) {
            try {
                thread.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
                return;
            } catch (InterruptedException e) {
                SEEN.incrementAndGet();
                if (System.nanoTime() - deadline >= 0) {
                    return;
                }
            }
        }
    }

    /** {@link Future#get(long, TimeUnit)} that clears and counts interrupts instead of throwing. */
    public static <T> T get(Future<T> future, long timeout, TimeUnit unit) throws ExecutionException, TimeoutException {
        long deadline = System.nanoTime() + unit.toNanos(timeout);
        while (true) {
            try {
                return future.get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            } catch (InterruptedException e) {
                SEEN.incrementAndGet();
            }
        }
    }
}
