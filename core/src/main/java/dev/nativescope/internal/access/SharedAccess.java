package dev.nativescope.internal.access;

import dev.nativescope.Context;
import dev.nativescope.call.NativeCall;
import dev.nativescope.diagnostics.Diagnostics;
import dev.nativescope.tensor.io.MappedFile;

import java.lang.invoke.MethodHandles;

/**
 * The one access point to package-private internals that other packages of the core need, as the
 * JDK's {@code jdk.internal.access.SharedSecrets}: the owning package registers an implementation
 * from its class initialiser, and users in other packages read it here, so those internals need
 * not be public in an exported package. This package is not exported by the module.
 *
 * <p>Each access interface has one {@link Slot}: its {@link Slot#get()} initialises the owning class
 * if it has not registered yet, so callers may read the implementation into a {@code static final}
 * field (which the JIT then treats as a constant).
 *
 * <p>Thread-safe: see {@link Slot}.
 */
public final class SharedAccess {
    /** The context internals; registered by {@code Context}'s class initialiser. */
    public static final Slot<ContextAccess> CONTEXTS = new Slot<>(Context.class);
    /** The channel plumbing of mapped files, for the file formats; registered by {@code MappedFile}'s class initialiser. */
    public static final Slot<MappedFileAccess> MAPPED_FILES = new Slot<>(MappedFile.class);
    /** The call bridge's in-flight view, for diagnostics; registered by {@code NativeCall}'s class initialiser. */
    public static final Slot<CallAccess> CALLS = new Slot<>(NativeCall.class);
    /** The diagnostics hooks, for the call bridge; registered by {@code Diagnostics}' class initialiser. */
    public static final Slot<DiagnosticsHooks> DIAGNOSTICS = new Slot<>(Diagnostics.class);

    private SharedAccess() {
    }

    /**
     * One registered implementation and the class whose initialiser registers it.
     *
     * <p>Thread-safe: written once, during the owner's class initialisation, and read through a
     * volatile load; class initialisation orders the write before any use.
     *
     * @param <T> the access interface
     */
    public static final class Slot<T> {
        private final Class<?> owner;
        private volatile T implementation;

        private Slot(Class<?> owner) {
            this.owner = owner;
        }

        /** Registers the implementation; called once, by the owner's class initialiser. */
        public void register(T implementation) {
            this.implementation = implementation;
        }

        /** {@return the implementation; the slow path initialises the owner, whose class initialiser registers it} */
        public T get() {
            T registered = implementation;
            if (registered != null) {
                return registered;
            }
            try {
                MethodHandles.lookup().ensureInitialized(owner);
            } catch (IllegalAccessException e) {
                throw new AssertionError("the core's own classes are accessible to it", e);
            }
            return implementation;
        }
    }
}
