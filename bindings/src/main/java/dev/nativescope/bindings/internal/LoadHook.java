package dev.nativescope.bindings.internal;

import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.reflect.InaccessibleObjectException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;

/**
 * Hand-written, not generated: the hook that the bindings' build weaves into jextract's {@code nativescope_h}
 * (after javac, before the jar; the committed sources stay jextract's output, see jextract-config/README.md), so
 * that a program whose first native call is a binding ({@code nativescope_h.nsc_noop()}, say) gets the library
 * loaded rather than an {@code UnsatisfiedLinkError} that leaves that function unusable for the JVM's life.
 * Two calls are woven in, each the first instruction of its method:
 * <ul>
 * <li>{@link #ensureLoaded(String)} in {@code nativescope_h.findOrThrow(String)}, which every function's holder
 * class calls from its initialiser to resolve its symbol: it loads the library through the core's
 * {@code NativeLibrary} before the symbol is looked up;
 * <li>{@link #checkNativeAccess()} in {@code nativescope_h}'s class initialiser, whose restricted calls a JVM that
 * denies native access refuses: it names the flag to add before they run.
 * </ul>
 * The core depends on the bindings, so they cannot depend on it: the hook finds the core's package-private
 * {@code dev.nativescope.library.LoadHookEntry} by name, in its own class loader, and calls it by reflection (the
 * core's module opens that package to this one alone; reflection needs no readability). Without the core, the
 * hook loads nothing and a missing symbol's error says what to put on the path.
 *
 * <p>A failure still fails the holder class for good: the JVM marks a class whose initialiser threw as erroneous
 * (JLS 12.4.2), and no later load can change that. It fails only when the load fails, and the core's load that
 * failed fails for the JVM's life too (its failure is kept), so nothing is lost; the second use's
 * {@code NoClassDefFoundError} has the first failure's message in its cause (the JDK keeps it since JDK 18).
 *
 * <p>Thread-safe: {@link #loaded} is written only after a load succeeded (or the symbol was found loaded) and read
 * with a volatile load; threads
 * that race on the slow path each call the core, whose class initialisation loads once and makes the others
 * wait for it. The core's load initialises no function holder (the callers here are inside one), so a thread
 * waiting for the load here while it holds a holder's initialisation lock is never waited for by the loader.
 */
public final class LoadHook {
    /** The core's class that loads the library: package-private, opened to this module alone. */
    private static final String ENTRY_CLASS = "dev.nativescope.library.LoadHookEntry";

    /** True once the library is loaded: from then on {@link #ensureLoaded} is this one volatile read. */
    private static volatile boolean loaded;

    private LoadHook() {
    }

    /**
     * Woven in as the first call of {@code nativescope_h.findOrThrow(String)}: loads {@code libnativescope.so}
     * through the core, unless loaded already.
     *
     * @param symbol the symbol that {@code findOrThrow} is about to look up, for the message when there is no core
     * @throws RuntimeException the core's {@code NativeLibraryException}, whose message says what to do, when the
     *         load fails (for the JVM's life, as the core's load does)
     * @throws UnsatisfiedLinkError without the core on the path, when the symbol is not loaded either
     */
    public static void ensureLoaded(String symbol) {
        if (loaded) {
            return;
        }
        // Loaded already, by the core's loader (whose own load links functions through here) or by hand: no
        // reflection, which would cost a fresh JVM's first load more than this look-up in the loaded libraries.
        if (SymbolLookup.loaderLookup().find(symbol).isPresent()) {
            loaded = true;
            return;
        }
        Method load = entry("load");
        if (load == null) {
            // No core: the rest of the generated lookup (the default libraries) is all there is.
            if (Linker.nativeLinker().defaultLookup().find(symbol).isEmpty()) {
                throw new UnsatisfiedLinkError("unresolved symbol: " + symbol + ": libnativescope.so is not loaded, and"
                        + " the nativescope core, whose first use loads it, is not on the path of the bindings' class loader:"
                        + " add the dev.nativescope:nativescope-core jar (on the module path, a module that requires"
                        + " dev.nativescope.core, or --add-modules dev.nativescope.core), or System.load the library"
                        + " before the first call");
            }
            return;
        }
        invoke(load);
        loaded = true;
    }

    /**
     * Woven in as the first call of {@code nativescope_h}'s class initialiser: when this JVM denies the bindings
     * native access, throws the core's {@code NativeLibraryException} that names the {@code --enable-native-access}
     * flag, rather than letting the initialiser's first restricted call throw a bare {@code IllegalCallerException}.
     * Loads nothing: the core's load initialises {@code nativescope_h}, which is what is initialising here.
     *
     * @throws RuntimeException the core's {@code NativeLibraryException} (without the core, the JDK's
     *         {@code IllegalCallerException}) when native access is denied
     */
    public static void checkNativeAccess() {
        if (LoadHook.class.getModule().isNativeAccessEnabled()) {
            return;
        }
        try {
            // Harmless and links nothing (the core's check is the same call); where access is only warned about,
            // this prints the JDK's warning that the initialiser's own restricted calls would print.
            MemorySegment.NULL.reinterpret(0);
        } catch (IllegalCallerException denied) {
            Method message = entry("nativeAccessDenied", IllegalCallerException.class);
            if (message == null) {
                throw denied;
            }
            throw (RuntimeException) invoke(message, denied);
        }
    }

    /** @return the core's entry method, accessible, or null when the core is not in this class loader */
    private static Method entry(String name, Class<?>... parameters) {
        Class<?> entry;
        try {
            entry = Class.forName(ENTRY_CLASS, true, LoadHook.class.getClassLoader());
        } catch (ClassNotFoundException absent) {
            return null;
        }
        try {
            Method method = entry.getDeclaredMethod(name, parameters);
            method.setAccessible(true);
            return method;
        } catch (NoSuchMethodException | InaccessibleObjectException e) {
            throw new IllegalStateException("the nativescope core on the path does not match these bindings (" + e
                    + "): use the dev.nativescope:nativescope-bindings jar of the same release as nativescope-core", e);
        }
    }

    /** Calls a static entry method and returns its result, rethrowing what it threw as it was thrown. */
    private static Object invoke(Method method, Object... arguments) {
        try {
            return method.invoke(null, arguments);
        } catch (InvocationTargetException e) {
            Throwable thrown = e.getCause();
            if (thrown instanceof RuntimeException runtime) {
                throw runtime;
            }
            if (thrown instanceof Error error) {
                throw error;
            }
            throw new IllegalStateException(ENTRY_CLASS + "." + method.getName() + " threw " + thrown, thrown);
        } catch (IllegalAccessException e) {
            throw new AssertionError("setAccessible succeeded on " + method, e);
        }
    }
}
