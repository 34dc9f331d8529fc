package dev.nativescope;

import java.lang.foreign.MemorySegment;
import java.lang.ref.Reference;
import java.util.Objects;
import java.util.OptionalLong;
import java.util.concurrent.CancellationException;

/**
 * The cancellable call bridge: the one place that knows about interrupts. Every native function
 * that takes an {@code nsc_context *} is called through {@link #invoke(Context, Downcall)}:
 * <ol>
 * <li>the call gets its own native context (a child of {@code context}: same deadline and values,
 *     cancelled when {@code context} is);</li>
 * <li>an interrupt hook is registered for the calling thread, so {@code Thread.interrupt()}
 *     cancels this call's native context from the interrupting thread (no watcher thread, no
 *     polling from Java); a thread already interrupted is cancelled before entering native code;</li>
 * <li>the downcall runs with a pointer to that struct;</li>
 * <li>the hook is removed and the status translated: {@code NSC_CANCELED} becomes a
 *     {@link CancellationException} whose cause is the context's cause (or an
 *     {@link InterruptedException} for an interrupt), {@code NSC_DEADLINE_EXCEEDED} a
 *     {@link DeadlineExceededException}, negative statuses a {@link NativeStatusException}.</li>
 * </ol>
 * The calling thread's interrupt status is left as it was: an interrupt that cancelled the call is
 * still pending afterwards.
 *
 * <p>Downcalls made through the bridge must not use {@code Linker.Option.critical}: they poll and
 * may block. Thread-safe; calls on different threads are independent.
 */
public final class NativeCall {
    private NativeCall() {
    }

    /** A downcall that receives the call's {@code nsc_context *} and returns an {@code nsc_status}. */
    @FunctionalInterface
    public interface Downcall {
        /**
         * @param context the native context of this call; valid only until the downcall returns
         * @return the native status
         * @throws Throwable whatever the method handle throws
         */
        int invoke(MemorySegment context) throws Throwable;
    }

    /**
     * Runs {@code downcall} under {@link Context#current()}.
     *
     * @see #invoke(Context, Downcall)
     */
    public static int invoke(Downcall downcall) {
        return invoke(Context.current(), downcall);
    }

    /**
     * Runs {@code downcall} under {@code context}.
     *
     * @param context the context whose cancellation, deadline and values the native code sees
     * @param downcall the native call
     * @return the status when it is not a cancellation or an error: {@code NSC_OK},
     *         {@code NSC_TIMEOUT}, {@code NSC_NOT_FOUND}, ...
     * @throws DeadlineExceededException when the context's deadline stopped the call (or had passed)
     * @throws CancellationException when the context was cancelled or the thread interrupted
     * @throws NativeStatusException when the native code returned an error status
     * @throws IllegalStateException when the context was closed by its owner
     */
    public static int invoke(Context context, Downcall downcall) {
        Objects.requireNonNull(context, "context");
        Objects.requireNonNull(downcall, "downcall");
        NativeLibrary.load();
        if (context.isDone()) {
            throw alreadyDone(context);
        }
        NativeValues values = NativeValues.holdFor(context);
        if (values == null) {
            throw alreadyDone(context);
        }
        CallFrame frame = null;
        try {
            frame = CallFrame.acquire();
            frame.arm(deadlineOf(context), values);
            int status = callInFrame(context, frame, downcall);
            return translate(status, context, frame);
        } finally {
            if (frame != null) {
                frame.release();
            }
            values.release();
            // The values block is retired by a cleaner when the context becomes unreachable: keep
            // the context reachable until the native code can no longer read the block.
            Reference.reachabilityFence(context);
        }
    }

    private static int callInFrame(Context context, CallFrame frame, Downcall downcall) {
        long generation = frame.generation();
        Registration cancelOnDone = context.onDone(() -> frame.cancel(generation,
                context.isDeadlineExceeded() ? Statuses.DEADLINE_EXCEEDED : Statuses.CANCELED, context.cause()));
        InterruptHook interruptHook = frame.interruptHook(generation);
        try {
            interruptHook.enter();
            try {
                if (frame.isCancelled()) {
                    // Cancelled between the isDone check and here, or interrupted before begin():
                    // don't enter native code at all.
                    return nativeStatusOfCancelledFrame(frame);
                }
                return downcall.invoke(frame.struct);
            } finally {
                interruptHook.exit();
            }
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable e) {
            throw new IllegalStateException("native call failed: " + e, e);
        } finally {
            cancelOnDone.remove();
            frame.endCall();
        }
    }

    private static int nativeStatusOfCancelledFrame(CallFrame frame) {
        return dev.nativescope.bindings.nsc_context.state(frame.struct);
    }

    private static long deadlineOf(Context context) {
        OptionalLong deadline = context.deadlineNanoTime();
        return deadline.isPresent() ? NativeLibrary.toMonotonicNanos(deadline.getAsLong()) : Statuses.NO_DEADLINE;
    }

    private static int translate(int status, Context context, CallFrame frame) {
        if (status == Statuses.CANCELED) {
            Throwable cause = frame.cancelCause();
            if (cause instanceof DeadlineExceededException deadline) {
                throw DeadlineExceededException.forNativeCall(context, deadline);
            }
            CancellationException canceled = new CancellationException(frame.wasInterrupted()
                    ? "native call canceled: the thread was interrupted"
                    : "native call canceled: " + cause);
            canceled.initCause(cause);
            throw canceled;
        }
        if (status == Statuses.DEADLINE_EXCEEDED) {
            // Either the deadline timer cancelled the context, or native code read the clock first.
            Throwable cause = context.cause();
            throw DeadlineExceededException.forNativeCall(context,
                    cause instanceof DeadlineExceededException deadline ? deadline : null);
        }
        if (status < 0) {
            throw Statuses.error(status, "native call");
        }
        return status;
    }

    private static RuntimeException alreadyDone(Context context) {
        if (context instanceof CancellableContext cancellable && cancellable.isClosed()) {
            return new IllegalStateException("the context was closed by its owner; derive a new context"
                    + " (Context.withCancel(), withTimeout(...)) for new native calls");
        }
        Throwable cause = context.cause();
        if (cause instanceof DeadlineExceededException deadline) {
            return DeadlineExceededException.forNativeCall(context, deadline);
        }
        CancellationException canceled = new CancellationException("context already done before the native call: " + cause);
        canceled.initCause(cause);
        return canceled;
    }
}
