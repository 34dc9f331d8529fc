package dev.nativescope;

import java.time.Instant;
import java.util.Locale;
import java.util.concurrent.CancellationException;
import java.util.concurrent.TimeoutException;

/**
 * Thrown, or found as a context's {@linkplain Context#cause() cause}, when work stopped because a
 * context's deadline passed.
 *
 * <p>It is a {@link CancellationException}, so code that handles cancellation in general handles
 * it too, and it is recognisable as a timeout: it is its own type, and its
 * {@linkplain #getCause() cause} is always a {@link TimeoutException} whose message states the
 * deadline and how long after it the expiry was noticed.
 *
 * <p>When a context's deadline fires, the context is cancelled with one instance of this class,
 * and all its descendants share that same instance as their cause. Instances are immutable apart
 * from what {@link Throwable} itself allows (stack trace, suppressed exceptions); since one
 * instance may be seen by many threads, code that rethrows a context's cause should wrap it
 * rather than add suppressed exceptions to it.
 */
public class DeadlineExceededException extends CancellationException {
    private static final long serialVersionUID = 1L;

    /** The message of every instance: the same words as Go's {@code context.DeadlineExceeded}. */
    private static final String MESSAGE = "context deadline exceeded";

    /** The deadline that passed, {@link System#nanoTime()} base. */
    private final long deadlineNanoTime;
    /** When the expiry was noticed, {@link System#nanoTime()} base. */
    private final long detectedNanoTime;

    /**
     * Creates an exception for a deadline that was noticed to have passed.
     *
     * @param deadlineNanoTime the deadline, in the time base of {@link System#nanoTime()}
     * @param detectedNanoTime when the expiry was noticed, in the same time base; normally
     *                         {@code System.nanoTime()} at the moment of the check, at or after
     *                         the deadline
     */
    @SuppressWarnings("this-escape") // initCause(), see below
    public DeadlineExceededException(long deadlineNanoTime, long detectedNanoTime) {
        this(MESSAGE, deadlineNanoTime, detectedNanoTime, null);
    }

    // CancellationException has no constructor taking a cause, so initCause() it is; a subclass that
    // overrides initCause() would see a partly built object, which is its own business.
    @SuppressWarnings("this-escape")
    private DeadlineExceededException(String message, long deadlineNanoTime, long detectedNanoTime,
                                      Throwable timeoutCause) {
        super(message);
        this.deadlineNanoTime = deadlineNanoTime;
        this.detectedNanoTime = detectedNanoTime;
        // The message is formatted when first read, not here: the deadline timer and the native
        // entry check build this exception right after stopping native calls, on the cancel path.
        TimeoutException timeout = new LazyTimeout(deadlineNanoTime, detectedNanoTime);
        if (timeoutCause != null) {
            timeout.initCause(timeoutCause);
        }
        initCause(timeout);
    }

    /**
     * Creates the exception the call bridge throws in the calling thread when a native call
     * returned because of {@code context}'s deadline, so that the stack trace shows the call and
     * not the timer thread.
     *
     * @param context the context the native call ran under
     * @param contextCause the context's own cause when it is a deadline expiry (it becomes the cause
     *                     of the new exception's {@link TimeoutException}), or null when native code
     *                     noticed the deadline before the context did
     */
    static DeadlineExceededException forNativeCall(Context context, DeadlineExceededException contextCause) {
        long now = System.nanoTime();
        long deadline;
        long detected;
        if (contextCause != null) {
            deadline = contextCause.deadlineNanoTime;
            detected = contextCause.detectedNanoTime;
        } else {
            deadline = context.deadlineNanoTime().orElse(now);
            detected = now;
        }
        return new DeadlineExceededException("native call stopped: " + MESSAGE, deadline, detected, contextCause);
    }

    /**
     * {@return the deadline that passed, in the time base of {@link System#nanoTime()}}
     */
    public long deadlineNanoTime() {
        return deadlineNanoTime;
    }

    /**
     * {@return when the expiry was noticed, in the time base of {@link System#nanoTime()}; the
     * difference to {@link #deadlineNanoTime()} is how late the deadline fired}
     */
    public long detectedNanoTime() {
        return detectedNanoTime;
    }

    /**
     * The cause: a {@link TimeoutException} whose message ({@link #describe}) is formatted on first
     * read. Thread-safe: racing readers format the same text, and a String is safely published.
     */
    private static final class LazyTimeout extends TimeoutException {
        private static final long serialVersionUID = 1L;
        private final long deadlineNanoTime;
        private final long detectedNanoTime;
        private transient volatile String message;

        LazyTimeout(long deadlineNanoTime, long detectedNanoTime) {
            this.deadlineNanoTime = deadlineNanoTime;
            this.detectedNanoTime = detectedNanoTime;
        }

        @Override
        public String getMessage() {
            String text = message;
            if (text == null) {
                text = describe(deadlineNanoTime, detectedNanoTime);
                message = text;
            }
            return text;
        }
    }

    private static String describe(long deadlineNanoTime, long detectedNanoTime) {
        // The wall-clock time is for the reader of a log; it is derived from the monotonic clock at
        // the time of writing, so it is exact to within the clocks' disagreement.
        Instant wallClockDeadline = Instant.now().plusNanos(deadlineNanoTime - System.nanoTime());
        long lateNanos = detectedNanoTime - deadlineNanoTime;
        return String.format(Locale.ROOT, "the deadline %s (System.nanoTime() %d) passed; noticed %.3f ms %s it",
                wallClockDeadline, deadlineNanoTime, Math.abs(lateNanos) / 1e6, lateNanos >= 0 ? "after" : "before");
    }
}
