package dev.nativescope.internal.access;

import dev.nativescope.Context;
import dev.nativescope.ContextKey;
import dev.nativescope.DeadlineExceededException;

import java.util.List;
import java.util.Map;

/**
 * What the call bridge and the adapters need of a {@link Context} beyond its public API. Implemented
 * in {@code dev.nativescope}, reached through {@link SharedAccess#CONTEXTS}; see there why.
 *
 * <p>Thread-safe, as the context methods it forwards to.
 */
public interface ContextAccess {
    /** {@return the call bridge's native copy of the context's values, or null before its first native call} */
    Object nativeValues(Context context);

    /** Installs the native copy of the context's values if it is still {@code expected}; see {@code NativeValues}. */
    boolean casNativeValues(Context context, Object expected, Object replacement);

    /**
     * {@return the values native code sees: each key name at most once, nearest binding first}
     */
    List<Map.Entry<ContextKey<?>, Object>> visibleValues(Context context);

    /** {@return true when {@code context} is a cancellable context its owner has closed} */
    boolean isClosed(Context context);

    /**
     * {@return the exception to throw in the calling thread when native work under {@code context}
     * stopped at its deadline, linked to the context's own expiry when there is one}
     *
     * @param contextCause the context's cause when it is a deadline expiry, or null when native
     *                     code noticed the deadline before the context did
     */
    DeadlineExceededException deadlineExceeded(Context context, DeadlineExceededException contextCause);

    /**
     * {@return true when {@code context} is done after checking its deadline against the clock}: an
     * expired deadline the timer has not fired yet is fired now, so that the context's state agrees
     * with what native code sees. Every entry into native code calls this instead of only {@code isDone()}.
     */
    boolean expireIfDue(Context context);

    /**
     * Attaches {@code link} to the slot of {@code context}'s state owner, so that a cancel of the
     * context runs it first ({@link StopLink}). The caller must check {@code isDone()} after
     * attaching: a cancel that read the slot before the attach stops nothing, but its cause is then
     * already visible (the slot is written and the cause read, both volatile, in the opposite order
     * to the canceller).
     *
     * @return true when attached, or when the context can never be done (nothing to attach to);
     *         false when the slot holds another link (another call under the same context): the
     *         caller registers an {@code onDone} action instead
     */
    boolean attachStop(Context context, StopLink link);

    /** Detaches a link that {@link #attachStop} attached; only its attacher calls this. */
    void detachStop(Context context, StopLink link);

    /** {@return the cancellable context whose state {@code context} shows, or null when it can never be done} */
    Context stateOwner(Context context);

    /**
     * {@return the effective deadline in the {@link System#nanoTime()} base, or {@code none} when
     * there is none}: {@link Context#deadlineNanoTime()} without its {@code OptionalLong}, for the
     * bridge's allocation-free path
     */
    long deadlineNanoTimeOr(Context context, long none);

    /** {@return whether {@code context} has an effective deadline; see {@link #deadlineNanoTimeOr}} */
    boolean hasDeadline(Context context);

    /** {@return the context {@code context} was derived from, or null for background} */
    Context parent(Context context);

    /** {@return the diagnostics id of {@code context}: unique in the JVM, drawn on first use} */
    long id(Context context);

    /** {@return the key {@code context} binds, or null when it binds none (background, cancellable contexts)} */
    ContextKey<?> boundKey(Context context);
}
