package dev.nativescope.interop;

import dev.nativescope.Context;
import dev.nativescope.DeadlineExceededException;
import dev.nativescope.Registration;
import dev.nativescope.internal.access.ContextAccess;
import dev.nativescope.internal.access.FieldHandles;
import dev.nativescope.internal.access.SharedAccess;
import dev.nativescope.internal.text.SafeText;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Objects;
import java.util.concurrent.CancellationException;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The cancellation protocol for one stretch of native work that Java cannot interrupt: a downcall,
 * a JNI call into a third-party runtime (ONNX Runtime's {@code run}), a CUDA stream, a socket read in
 * native code. Opened by the thread about to do the work, it turns every way the work should stop
 * into one call of a {@link StopAction} that stops the native side (set a terminate flag, cancel a
 * struct, close a socket):
 * <ul>
 * <li>the {@link Context}'s cancellation or deadline ({@link Reason#CONTEXT});</li>
 * <li>an interrupt of the calling thread, also one that came before {@code open}
 *     ({@link Reason#INTERRUPT}), through an {@link InterruptHook};</li>
 * <li>optionally an owner's lifetime, e.g. the adapter's own {@code close()} ({@link Reason#OWNER}).</li>
 * </ul>
 * {@snippet :
 * try (CancellationSignal signal = CancellationSignal.open(context, reason -> runtime.abort(handle))) {
 *     if (!signal.isStopped()) {          // stopped before entry: do not start the work
 *         status = runtime.run(handle);
 *     }
 *     if (signal.isStopped()) {
 *         throw signal.stoppedException("llama.cpp decode");
 *     }
 * }
 * }
 * The first reason wins; the action runs at most once per signal, in the thread that caused the stop
 * (the canceller, the interrupter, the deadline timer) or at once in {@code open} when the context
 * is already done or the thread already interrupted. {@link #stoppedException(String)} is the one
 * translation of the outcome: a {@link DeadlineExceededException} linked to the context's expiry, or a
 * {@link CancellationException} whose cause is the context's cause or an {@link InterruptedException}.
 * The calling thread's interrupt status is left as it was.
 *
 * <p>Threading: {@code open} and {@link #close()} are called by the thread doing the work, and the
 * work must run between them on that thread. Nested signals and {@link InterruptHook}s are fine (an
 * inner one hands the thread's interrupt blocker back to the outer one when it ends), but Java code
 * between {@code open} and {@code close} must not use interruptible NIO channels: their {@code end()}
 * clears the blocker for good, so a later interrupt is not heard. That is detected: {@code close()}
 * finds the thread interrupted with no stop, logs a {@code WARNING} naming the fix (once per process) and records it
 * ({@link #missedInterrupt()}), so the caller does not report the work as completed normally. The action
 * must be short and must not block: it may run under the JDK's interrupt lock or on the shared
 * deadline timer. It may also still be running, or start, while {@code close()} returns: code whose
 * stop action touches memory freed after the work (a struct, run options) must make a late action
 * harmless, as {@code RunTermination} and the call bridge's frames do.
 */
public final class CancellationSignal implements AutoCloseable {
    /** What stopped the work. */
    public enum Reason {
        /** The context was cancelled or its deadline passed. */
        CONTEXT,
        /** The calling thread was interrupted. */
        INTERRUPT,
        /** The owner given to {@link #open(Context, Context, StopAction)} became done (closed). */
        OWNER
    }

    /** Stops the native side of the work; see the class documentation for where it runs. */
    @FunctionalInterface
    public interface StopAction {
        /**
         * @param reason why the work is to stop
         */
        void stop(Reason reason);
    }

    private static final ContextAccess CONTEXTS = SharedAccess.contexts();
    private static final AtomicBoolean MISSED_REPORTED = new AtomicBoolean();
    /** Looked up on first use only: finding the logging backend costs milliseconds at startup. */
    private static final class Log {
        static final System.Logger LOGGER = System.getLogger(CancellationSignal.class.getName());
    }
    private static final VarHandle REASON = FieldHandles.of(MethodHandles.lookup(), "reason", Reason.class);

    private final Context context;
    private final Context owner;
    private final StopAction action;
    private volatile Reason reason;
    private Registration onContextDone;
    private Registration onOwnerDone;
    private InterruptHook interruptHook;
    /** Set by {@link #close()}; read by the opening thread after it. */
    private boolean missedInterrupt;

    private CancellationSignal(Context context, Context owner, StopAction action) {
        this.context = context;
        this.owner = owner;
        this.action = action;
    }

    /**
     * Opens the signal for work under {@code context} on the calling thread.
     *
     * @param context whose cancellation and deadline stop the work
     * @param action what stops the native side
     * @return the open signal; close it when the native work has returned
     */
    public static CancellationSignal open(Context context, StopAction action) {
        return open(context, null, action);
    }

    /**
     * Opens the signal for work under {@code context} that also stops when {@code owner} is done:
     * an adapter cancels its own lifetime context in {@code close()} to stop the work in flight.
     *
     * @param owner the owner's lifetime, or null for none
     * @return the open signal; close it when the native work has returned
     */
    public static CancellationSignal open(Context context, Context owner, StopAction action) {
        Objects.requireNonNull(context, "context");
        Objects.requireNonNull(action, "action");
        CancellationSignal signal = new CancellationSignal(context, owner, action);
        // Registered before the hook is entered and before the caller's check: a cancel or close that
        // came before now stops at once, here, so the check after open() sees it.
        signal.onContextDone = context.onDone(() -> signal.stop(Reason.CONTEXT));
        // The clock, not only isDone(): an expired deadline the timer has not fired yet fires now,
        // through the action just registered, so work is never started after its deadline.
        CONTEXTS.expireIfDue(context);
        if (owner != null) {
            signal.onOwnerDone = owner.onDone(() -> signal.stop(Reason.OWNER));
        }
        InterruptHook hook = new InterruptHook(() -> signal.stop(Reason.INTERRUPT));
        hook.enter();
        signal.interruptHook = hook;
        return signal;
    }

    private void stop(Reason why) {
        if (REASON.compareAndSet(this, (Reason) null, why)) {
            action.stop(why);
        }
    }

    /** {@return true once a stop was requested, for whatever reason} */
    public boolean isStopped() {
        return reason != null;
    }

    /** {@return why the work was told to stop, or null if it was not} */
    public Reason reason() {
        return reason;
    }

    /**
     * Builds the exception for work that stopped, to throw in the calling thread.
     *
     * @param what names the work in the message, e.g. {@code "ONNX Runtime run"}
     * @return for {@link Reason#CONTEXT}, a {@link DeadlineExceededException} linked to the
     *         context's expiry when its deadline passed, else a {@link CancellationException} caused by
     *         the context's cause; for {@link Reason#INTERRUPT} one caused by an
     *         {@link InterruptedException}; for {@link Reason#OWNER} one caused by the owner's cause
     * @throws IllegalStateException if the work was not told to stop
     */
    public RuntimeException stoppedException(String what) {
        Reason why = reason;
        if (why == null) {
            throw new IllegalStateException(what + " was not stopped");
        }
        return switch (why) {
            case CONTEXT -> contextStopped(context, what);
            case INTERRUPT -> interrupted(what);
            case OWNER -> {
                Throwable cause = owner.cause();
                String message = SafeText.messageOf(cause);
                yield canceled(what, message != null ? message : "its owner closed", cause);
            }
        };
    }

    /**
     * {@return the exception for work under {@code context} that stopped because the context is
     * done}: the same translation as {@link #stoppedException(String)} for {@link Reason#CONTEXT},
     * for callers that found the context done without opening a signal (a check before entry)
     */
    public static RuntimeException contextStopped(Context context, String what) {
        Throwable cause = context.cause();
        if (cause instanceof DeadlineExceededException deadline) {
            return CONTEXTS.deadlineExceeded(context, deadline);
        }
        return canceled(what, cause);
    }

    /** {@return the exception for work that stopped because the calling thread was interrupted} */
    public static CancellationException interrupted(String what) {
        CancellationException canceled = new CancellationException(what + " canceled: the thread was interrupted");
        canceled.initCause(new InterruptedException("thread interrupted during " + what));
        return canceled;
    }

    /** {@return the exception for work that stopped because of {@code cause}, a context's cause} */
    public static CancellationException canceled(String what, Throwable cause) {
        // SafeText: a cause whose toString() throws must still give the CancellationException.
        return canceled(what, SafeText.of(cause), cause);
    }

    private static CancellationException canceled(String what, String detail, Throwable cause) {
        CancellationException canceled = new CancellationException(what + " canceled: " + detail);
        canceled.initCause(cause);
        return canceled;
    }

    /**
     * Ends the stretch: unregisters the interrupt hook (waiting for an interrupt's action in
     * progress) and withdraws the done actions. Later cancels and interrupts no longer reach the
     * action, except one already running (see the class documentation).
     *
     * <p>If the thread is interrupted and nothing stopped the work, the interrupt came while the
     * hook was not installed (Java code in the stretch used an interruptible NIO channel, or the
     * thread interrupted itself): that is logged and recorded, see {@link #missedInterrupt()}.
     */
    @Override
    public void close() {
        // Read before exit(): an interrupt that comes after the stretch is not a missed one. An
        // interrupt whose action is in flight is seen as a stop once exit() returns (the JDK runs
        // or finishes the close in end()), so only an interrupt the hook never saw is left over.
        // A platform-thread interrupt sets the status before it reads the blocker (under the JDK's
        // interrupt lock): one that lands just as the work ends, between those two steps, looks the
        // same as a missed one. Treating it as an interrupt of the work is right either way; only the
        // WARNING would mislead, which is why it is logged once per process (and says so).
        boolean interruptedAtEnd = Thread.currentThread().isInterrupted();
        try {
            interruptHook.exit();
        } finally {
            onContextDone.remove();
            if (onOwnerDone != null) {
                onOwnerDone.remove();
            }
        }
        if (interruptedAtEnd && reason == null) {
            missedInterrupt = true;
            if (MISSED_REPORTED.compareAndSet(false, true)) {
                Log.LOGGER.log(System.Logger.Level.WARNING, "the thread was interrupted during native work while its"
                    + " interrupt hook was not installed, so the interrupt did not stop the work: Java code inside"
                    + " the work (e.g. in a NativeCall.invoke Downcall) used an interruptible NIO channel or"
                    + " interrupted its own thread. Do such I/O before NativeCall.invoke or after it, not inside"
                    + " the Downcall. (Rarely, an interrupt that lands just as native work ends is reported too.) Logged"
                    + " once per process");
            }
        }
    }

    /**
     * {@return true when {@link #close()} found the thread interrupted although no stop was
     * requested}: the interrupt came while the hook was not installed, so the work was not told to
     * stop. Callers should treat the work as interrupted rather than report its result as normal.
     */
    public boolean missedInterrupt() {
        return missedInterrupt;
    }
}
