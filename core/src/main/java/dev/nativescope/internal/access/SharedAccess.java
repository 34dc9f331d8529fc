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
 * <p>Getters initialise the owning class if it has not registered yet, so callers may read the
 * accessor into a {@code static final} field (which the JIT then treats as a constant).
 *
 * <p>Thread-safe: the fields are written once, during the owner's class initialisation, and read
 * through volatile loads; class initialisation orders the write before any use.
 */
public final class SharedAccess {
    private static volatile ContextAccess contexts;
    private static volatile MappedFileAccess mappedFiles;
    private static volatile CallAccess calls;
    private static volatile DiagnosticsHooks diagnostics;

    private SharedAccess() {
    }

    /** Registers the context internals; called once, by {@code Context}'s class initialiser. */
    public static void setContexts(ContextAccess access) {
        contexts = access;
    }

    /** {@return the context internals} */
    public static ContextAccess contexts() {
        ContextAccess access = contexts;
        if (access == null) {
            initialise(Context.class);
            access = contexts;
        }
        return access;
    }

    /** Registers the mapped-file plumbing; called once, by {@code MappedFile}'s class initialiser. */
    public static void setMappedFiles(MappedFileAccess access) {
        mappedFiles = access;
    }

    /** {@return the channel plumbing of mapped files, for the file formats} */
    public static MappedFileAccess mappedFiles() {
        MappedFileAccess access = mappedFiles;
        if (access == null) {
            initialise(MappedFile.class);
            access = mappedFiles;
        }
        return access;
    }

    /** Registers the call bridge's in-flight view; called once, by {@code NativeCall}'s class initialiser. */
    public static void setCalls(CallAccess access) {
        calls = access;
    }

    /** {@return the call bridge's in-flight view, for diagnostics} */
    public static CallAccess calls() {
        CallAccess access = calls;
        if (access == null) {
            initialise(NativeCall.class);
            access = calls;
        }
        return access;
    }

    /** Registers the diagnostics hooks; called once, by {@code Diagnostics}' class initialiser. */
    public static void setDiagnostics(DiagnosticsHooks hooks) {
        diagnostics = hooks;
    }

    /** {@return the diagnostics hooks, for the call bridge} */
    public static DiagnosticsHooks diagnostics() {
        DiagnosticsHooks hooks = diagnostics;
        if (hooks == null) {
            initialise(Diagnostics.class);
            hooks = diagnostics;
        }
        return hooks;
    }

    /**
     * The slow path: initialises {@code owner}, whose class initialiser registers; the caller then
     * reads its field again. (Not a Supplier per field: each lambda is a class spun at run time,
     * which a fresh JVM's first call pays for; see the ColdStart benchmark.)
     */
    private static void initialise(Class<?> owner) {
        try {
            MethodHandles.lookup().ensureInitialized(owner);
        } catch (IllegalAccessException e) {
            throw new AssertionError("the core's own classes are accessible to it", e);
        }
    }
}
