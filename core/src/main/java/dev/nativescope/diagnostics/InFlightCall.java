package dev.nativescope.diagnostics;

import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * One cancellable native call in flight, as {@link Diagnostics#inFlight()} saw it.
 *
 * @param label the name the caller gave ({@code NativeCall.invoke(context, "dense", ...)}), or the
 *              class of its {@code Downcall} when it gave none
 * @param thread the calling thread ({@code toString()})
 * @param virtualThread whether the calling thread is virtual
 * @param nativeThread the native thread that runs the call while it is offloaded ({@code toString()}), or null
 * @param contexts the call's context chain, the call's own context first, up to the root
 * @param values the visible values by key name: the value's text when values are shown
 *               ({@value Diagnostics#SHOW_VALUES_PROPERTY}{@code =true}), else {@code null}
 * @param runningFor how long the call has been running, or null when its start time was not
 *                   recorded (no deadline, and {@value Diagnostics#START_TIMES_PROPERTY} not set)
 * @param timeLeft the time left to the deadline (negative once passed), or null without deadline
 * @param cancelRequested whether a cancel (of the context, by a deadline or by an interrupt) reached the call
 * @param sinceCancel how long ago the cancel reached the call, or null
 * @param cancelCause the cause of the cancel ({@code toString()}), or null
 * @param cancelledBy the thread that cancelled the call, or null
 * @param checks how many times native code checked its context in this call (approximately)
 * @param checksSinceCancel checks since the cancel (0 when not cancelled)
 * @param heartbeatAge time since native code last read the clock in a check ({@code nsc_check_clock},
 *                     {@code nsc_checker_poll}), or null when it has not in this call
 * @param state what the dump concludes
 */
public record InFlightCall(String label, String thread, boolean virtualThread, String nativeThread,
        List<ContextInfo> contexts, Map<String, String> values, Duration runningFor, Duration timeLeft,
        boolean cancelRequested, Duration sinceCancel, String cancelCause, String cancelledBy, long checks,
        long checksSinceCancel, Duration heartbeatAge, State state) {

    /** What a dump concludes about a call. */
    public enum State {
        /** Not cancelled: running (computing, or waiting on its context, or blocked: a dump cannot tell). */
        RUNNING,
        /** Cancelled moments ago, or native code has checked its context since the cancel: on its way back. */
        CANCEL_PENDING,
        /**
         * Cancelled longer than the stuck threshold ago and native code has not checked its context
         * since, while the thread that runs its native code uses CPU (or a dump cannot tell: no
         * thread CPU time on this JVM, or a virtual thread whose carrier it cannot find): a section
         * without cancellation points.
         */
        NOT_CHECKING,
        /**
         * Like {@link #NOT_CHECKING}, but the thread that runs its native code (the calling thread,
         * a virtual thread's carrier, or the native thread of an offloaded call) used no CPU while
         * sampled: blocked in a wait that is not a context wait (a context wait would have returned
         * at the cancel).
         */
        BLOCKED_OUTSIDE_CONTEXT_WAIT
    }

    /**
     * One context of a call's chain.
     *
     * @param id the context's diagnostics id (unique in the JVM)
     * @param kind {@code background}, {@code cancellable} or {@code value}
     * @param key the key a value context binds, or null
     * @param done whether the context is done
     * @param cause the cause once done ({@code toString()}), or null
     * @param timeLeft the time left to its deadline, or null without deadline
     */
    public record ContextInfo(long id, String kind, String key, boolean done, String cause, Duration timeLeft) {
    }

    /** {@return whether the call was cancelled and native code has not reacted for too long} */
    public boolean stuck() {
        return state == State.NOT_CHECKING || state == State.BLOCKED_OUTSIDE_CONTEXT_WAIT;
    }
}
