package dev.nativescope.internal.access;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * {@link VarHandle}s for a class's own fields, for the static initialisers of classes that
 * compare-and-set a field in place (the context's native values, a cancellation signal's reason, a
 * done action's state) without an atomic wrapper object per instance.
 *
 * <p>Stateless and thread-safe.
 */
public final class FieldHandles {
    private FieldHandles() {
    }

    /**
     * @param lookup the caller's {@code MethodHandles.lookup()}: the field is looked up in its class
     * @return the handle of field {@code name} of type {@code type}
     * @throws ExceptionInInitializerError when there is no such field: a programming error, found when the class loads
     */
    public static VarHandle of(MethodHandles.Lookup lookup, String name, Class<?> type) {
        try {
            return lookup.findVarHandle(lookup.lookupClass(), name, type);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }
}
