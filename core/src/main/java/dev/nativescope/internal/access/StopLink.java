package dev.nativescope.internal.access;

import dev.nativescope.Context;

/**
 * What a {@code CancellableContext} runs first when it is cancelled: before it builds its cause,
 * before it walks its subtree, before its done actions. Each cancellable context has one slot for a
 * link ({@link ContextAccess#attachStop}); the call bridge's per-frame signal attaches its link
 * there for the extent of a native call, so a cancel writes that call's native state word first,
 * and a call pays one compare-and-set on the context instead of a done-action registration.
 *
 * <p>Threading: {@link #contextStopping} runs in the cancelling thread (the owner, a parent's
 * canceller, the deadline timer, a thread whose native entry found the deadline passed), possibly
 * twice for one cancellation (before and after the context is marked done: see
 * {@code CancellableContext.cancelTree}) and possibly after the link was detached: implementations
 * must be idempotent, short, non-blocking, must not throw, and must ignore a call for a context
 * they are no longer attached to.
 */
public abstract class StopLink {
    /**
     * The context this link is attached to is being cancelled.
     *
     * @param context the cancellable context being cancelled (the state owner of the one attached to)
     * @param deadline whether a deadline is what cancels it
     */
    public abstract void contextStopping(Context context, boolean deadline);
}
