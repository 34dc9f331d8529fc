package dev.nativescope.internal.access;

import dev.nativescope.Context;

/**
 * What the call bridge tells diagnostics (JFR events), implemented in
 * {@code dev.nativescope.diagnostics}, reached through {@link SharedAccess#DIAGNOSTICS}. Every
 * method is cheap when its event is off: the bridge calls {@link #callStarted} on every call.
 *
 * <p>Thread-safe.
 */
public interface DiagnosticsHooks {
    /** {@return whether the in-flight registry is on (system property {@code nativescope.diagnostics})} */
    boolean registryEnabled();

    /** {@return whether every tracked call records its start time (system property {@code nativescope.diagnostics.startTimes})} */
    boolean startTimesEnabled();

    /**
     * Starts the call's native-call event when JFR records it.
     *
     * @param reusable the event this method returned for an earlier call of the same call frame, or
     *                 null: it is begun again rather than a new one allocated (one per frame, so a
     *                 recording costs the per-call path two clock reads, no allocation)
     * @return the started event, to keep with the frame and end with {@link #callEnded}; null when JFR
     *         does not record it (the fast path)
     */
    Object callStarted(Object reusable);

    /**
     * Ends the event {@link #callStarted} returned (non-null) and commits it when above its threshold.
     *
     * @param outcome the status name, or what the call threw
     */
    void callEnded(Object event, Context context, String label, Class<?> downcallClass, String outcome);

    /** Called once, from the call bridge's class initialiser: the place to set up lazily (the MBean). */
    void bridgeLoaded();

    /**
     * A cancel reached a call in flight: runs in the cancelling thread, after the state word was
     * written, before the cause may exist. The context, label and class are null when the registry
     * is off; {@code reason} is {@code interrupt}, {@code deadline} or {@code cancel}.
     */
    void cancelRequested(Context context, String label, Class<?> downcallClass, String reason);

    /** A cancelled call returned from native code {@code latencyNanos} after its cancel. */
    void cancelObserved(Context context, String label, Class<?> downcallClass, long latencyNanos, String outcome,
            boolean interrupted);

    /** A call ended by its deadline, {@code latenessNanos} after the deadline (negative: unknown). */
    void deadlineExceeded(Context context, String label, Class<?> downcallClass, long latenessNanos);

    /** Native code that does not check its context returned {@code lateNanos} after the cancel, with a normal status. */
    void lateReturn(Context context, String label, Class<?> downcallClass, long lateNanos, String outcome);
}
