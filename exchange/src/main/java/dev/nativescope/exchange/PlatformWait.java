package dev.nativescope.exchange;

import dev.nativescope.Context;
import dev.nativescope.Registration;
import dev.nativescope.interop.CancellationSignal;
import dev.nativescope.interop.InterruptHook;
import dev.nativescope.library.NativeStatus;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;

/**
 * A platform thread's blocked wait for a publication, without the call bridge: one downcall into
 * {@code nsc_exchange_wait_stoppable}, whose {@code futex_waitv} watches the notify word, the shim's
 * producer-death word and this object's private stop word. A cancel of the waiter's context (an
 * {@link Context#onDone} action) and an interrupt of the thread (an {@link InterruptHook}) call
 * {@code nsc_exchange_stop_wait} on that word, so either ends the wait at once, as through the
 * bridge.
 *
 * <p><b>Why not the bridge.</b> Measured on the wake path (publish, then the consumer's return
 * with the tensor, BENCHMARKS.md section 19): after a 100 us sleep the bridge's exit path
 * ({@code NativeCall.invoke} after the downcall returned: the signal's close, the frame's release,
 * the diagnostics entry) took 3.4-6.7 us at p50, the interrupt hook's exit alone 0.5-0.8 us. The
 * bridge stays for waits with a deadline (its timer and expiry rules) and for virtual threads (the
 * offload that keeps carriers free). Not being a bridged call, such a wait is not listed in the
 * bridge's in-flight registry ({@code Diagnostics.inFlight()}).
 *
 * <p>Threading: one waiting thread at a time (the {@link Consumer}'s); the stop action runs in a
 * cancelling or interrupting thread. The stop word lives in an automatic arena, so an action that
 * runs late (after {@link Registration#remove()} lost to it) still writes valid memory; it then
 * only ends the next wait early, which reads as "look again".
 */
final class PlatformWait {
    private static final String WHAT = "exchange wait";
    private static final VarHandle INT = ValueLayout.JAVA_INT.varHandle();

    private final MemorySegment stopWord = Arena.ofAuto().allocate(ValueLayout.JAVA_INT);
    private final Runnable stop = () -> ExchangeNative.stopWait(stopWord);
    /** Reused while open; an interrupt closes it for good (a hook fires once). */
    private InterruptHook hook;

    /** @return whether a wait under {@code context} on this thread can take this path */
    static boolean applies(Context context) {
        return !Thread.currentThread().isVirtual() && context.deadlineNanoTime().isEmpty();
    }

    /**
     * @return {@code NSC_OK} (notify moved, or a late stop: look again), {@code NSC_TIMEOUT} or a
     *         producer outcome; other statuses as the shim returned them
     * @throws java.util.concurrent.CancellationException when the context was cancelled or the
     *         thread interrupted (its interrupt status stays set)
     */
    int await(Context context, MemorySegment header, int seen, long timeoutNanos, long livenessNanos) {
        if (context.isDone()) {
            throw CancellationSignal.contextStopped(context, WHAT);
        }
        // Read before the stop can be arranged: a stop from here on moves the word past it.
        int stopSeen = (int) INT.getVolatile(stopWord, 0L);
        Registration onCancel = context.onDone(stop);
        InterruptHook interrupts = hook;
        if (interrupts == null || !interrupts.isOpen()) {
            interrupts = new InterruptHook(stop);
            hook = interrupts;
        }
        int status;
        interrupts.enter(); // fires at once when the thread is interrupted already
        try {
            status = ExchangeNative.awaitStoppable(header, seen, stopWord, stopSeen, timeoutNanos, livenessNanos);
        } finally {
            interrupts.exit();
            onCancel.remove();
        }
        if (status != NativeStatus.CANCELED.code()) {
            return status;
        }
        if (context.isDone()) {
            throw CancellationSignal.contextStopped(context, WHAT);
        }
        if (!interrupts.isOpen()) { // the interrupt closed the hook: its action moved the word
            throw CancellationSignal.interrupted(WHAT);
        }
        return NativeStatus.OK.code(); // an earlier wait's stop that ran late
    }
}
