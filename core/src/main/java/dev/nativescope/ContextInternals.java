package dev.nativescope;

import dev.nativescope.internal.access.ContextAccess;
import dev.nativescope.internal.access.StopLink;

import java.util.List;
import java.util.Map;

/**
 * The context internals that the call bridge and the adapters use, registered with
 * {@code SharedAccess} by {@link Context}'s class initialiser. Each method forwards to a
 * package-private member; see those for the contracts. Stateless and thread-safe.
 */
final class ContextInternals implements ContextAccess {
    @Override
    public Object nativeValues(Context context) {
        return context.nativeValues();
    }

    @Override
    public boolean casNativeValues(Context context, Object expected, Object replacement) {
        return context.casNativeValues(expected, replacement);
    }

    @Override
    public List<Map.Entry<ContextKey<?>, Object>> visibleValues(Context context) {
        return context.visibleValues();
    }

    @Override
    public boolean isClosed(Context context) {
        return context instanceof CancellableContext cancellable && cancellable.isClosed();
    }

    @Override
    public DeadlineExceededException deadlineExceeded(Context context, DeadlineExceededException contextCause) {
        return DeadlineExceededException.forNativeCall(context, contextCause);
    }

    @Override
    public boolean expireIfDue(Context context) {
        return context.expireIfDue();
    }

    @Override
    public boolean attachStop(Context context, StopLink link) {
        CancellableContext owner = context.stateOwner;
        return owner == null || owner.attachStop(link);
    }

    @Override
    public void detachStop(Context context, StopLink link) {
        CancellableContext owner = context.stateOwner;
        if (owner != null) {
            owner.detachStop(link);
        }
    }

    @Override
    public Context stateOwner(Context context) {
        return context.stateOwner;
    }

    @Override
    public long deadlineNanoTimeOr(Context context, long none) {
        return context.deadline == null ? none : context.deadlineNanoTime;
    }

    @Override
    public boolean hasDeadline(Context context) {
        return context.deadline != null;
    }

    @Override
    public Context parent(Context context) {
        return context.parent;
    }

    @Override
    public long id(Context context) {
        return context.id();
    }

    @Override
    public ContextKey<?> boundKey(Context context) {
        return context.boundKey();
    }
}
