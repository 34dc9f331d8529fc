package dev.nativescope.internal.access;

import dev.nativescope.Context;

/**
 * What a diagnostics dump read of one cancellable call in flight, as the call bridge recorded it;
 * {@code dev.nativescope.diagnostics} turns it into its public records. Raw values, no formatting.
 *
 * @param thread the calling thread
 * @param nativeThread the native thread running the call while it is offloaded, or null
 * @param label the label the caller gave, or null (then {@code downcallClass} names the call)
 * @param downcallClass the class of the caller's {@code Downcall}
 * @param context the context the call runs under
 * @param startNanoTime {@link System#nanoTime()} when the call started, or 0 when not recorded
 * @param cancelNanoTime {@link System#nanoTime()} when the call was cancelled, or -1 when it was not
 * @param cancelledBy the thread that cancelled the call (its {@code toString()}), or null
 * @param interrupted whether the cancel was an interrupt of the calling thread
 * @param checks native checks counted in this call ({@code heartbeat_count} since the call started)
 * @param checksAtCancel {@code checks} when the call was cancelled (meaningful once cancelled)
 * @param heartbeatNanoTime the last clock check of native code, {@link System#nanoTime()} base, or 0 when none in this call
 */
public record CallSnapshot(Thread thread, Thread nativeThread, String label, Class<?> downcallClass, Context context,
        long startNanoTime, long cancelNanoTime, String cancelledBy, boolean interrupted, long checks,
        long checksAtCancel, long heartbeatNanoTime) {
}
