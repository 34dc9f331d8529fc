package dev.nativescope.library;

/**
 * What the bindings' load hook calls: {@code dev.nativescope.bindings.internal.LoadHook}, which the bindings'
 * build weaves into the jextract-generated {@code nativescope_h} (its symbol lookup and its class initialiser), so
 * that a program whose first native call is a binding gets the library loaded, or this package's
 * {@link NativeLibraryException}, instead of an {@code UnsatisfiedLinkError} (see jextract-config/README.md).
 * The bindings cannot depend on the core (the core depends on them), so the hook finds this class by name and
 * calls it by reflection; {@code module-info} opens this package to {@code dev.nativescope.bindings} for it, and
 * no other module can call it. The class name, the method names and their signatures are the hook's contract:
 * {@code NativeAccessEverywhereTest} (its first uses through the bindings) checks them end to end.
 *
 * <p>Thread-safe: stateless; {@link NativeLibrary}'s holder gives the once-only load.
 */
final class LoadHookEntry {
    private LoadHookEntry() {
    }

    /**
     * Loads the library, or throws the {@link NativeLibraryException} that says why not. Links nothing: the
     * caller is inside the initialiser of one function's holder class, and {@link NativeLibrary#load()} links
     * the holders of the bridge's functions, which could be that one (a lock cycle with another thread's load).
     */
    static void load() {
        NativeLibrary.loadWithoutLinking();
    }

    /**
     * The message for a JVM that denies the bindings native access, which the hook found while the bindings'
     * header class initialises: loading is no option there (the load initialises that class), so this only
     * builds the exception, the one {@link NativeLibrary#load()} throws for a denial.
     *
     * @param denied what the JDK threw at the bindings' restricted call
     * @return the exception that names the {@code --enable-native-access} flag to add
     */
    static NativeLibraryException nativeAccessDenied(IllegalCallerException denied) {
        return LibraryLoader.nativeAccessDenied(denied);
    }
}
