package dev.nativescope.library;

import dev.nativescope.internal.time.SaturatingTime;

import dev.nativescope.bindings.nativescope_h;

import java.nio.file.Path;

/**
 * The process-wide {@code libnativescope.so}: loaded once, on first use, from the native-shim jar
 * (extracted into a private temporary directory and deleted once mapped) or from the file named by
 * {@code -Dnativescope.library.path}. {@code -Dnativescope.extract.dir=DIR} extracts into DIR and
 * keeps the file there.
 *
 * <p>Thread-safe: the first caller loads, concurrent callers wait for it; a failed load fails every
 * later call with the same {@link NativeLibraryException}.
 */
public final class NativeLibrary {
    private NativeLibrary() {
    }

    /**
     * Initialization-on-demand holder of the load: the JVM's class initialisation gives once-only and safe
     * publication. Its initialiser touches no holder class of the bindings' functions: the bindings' load hook
     * ({@link LoadHookEntry}) waits here from inside such a holder's initialiser, so a holder initialised under
     * this lock could deadlock with a thread whose first call is that binding.
     */
    private static final class Holder {
        static final LibraryLoader.Loaded LOADED;
        static final NativeLibraryException FAILURE;

        static {
            LibraryLoader.Loaded loaded = null;
            NativeLibraryException failure = null;
            try {
                LibraryLoader.checkNativeAccess();
                loaded = LibraryLoader.loadConfigured(expectedAbiVersion());
            } catch (NativeLibraryException e) {
                failure = e;
            }
            LOADED = loaded;
            FAILURE = failure;
        }
    }

    /**
     * The bridge's functions linked once the library is loaded ({@link #linkBridgeFunctions()}), in a holder of
     * their own, initialised after {@link Holder} and outside its lock. A thread whose first use is the binding
     * of {@code nsc_context_init} holds that function's holder while its load hook waits for {@link Holder},
     * never for this class, so the thread linking here waits for it without a cycle.
     */
    private static final class Linked {
        static final NativeLibraryException FAILURE;

        static {
            NativeLibraryException failure = null;
            try {
                linkBridgeFunctions();
            } catch (NativeLibraryException e) {
                failure = e;
            }
            FAILURE = failure;
        }
    }

    /**
     * Links the downcall handle that cancellation uses now rather than on first use: linking one
     * takes milliseconds, and the first cancel of a process must not pay that while a native
     * predictor is waiting to be stopped. The bridge initialises its frames through the shim's
     * {@code nsc_context_init_idle}, which has the same shape, so that link serves it too (it binds
     * the symbol on first use, which costs no link of its own). The functions that name error statuses and the destroy of a used frame are loaded but not
     * linked: errors come when the process is short of resources, and loading a class then can fail
     * for good (from a class-path directory, each class load needs a free file descriptor, and the JVM
     * remembers a failed resolution; the fault-injection test met exactly this), while linking them
     * later needs no descriptor (it defines hidden classes in memory), and linking costs a fresh JVM
     * about 4 ms per function (the ColdStart benchmark).
     */
    private static void linkBridgeFunctions() {
        nativescope_h.nsc_context_cancel$handle();
        ClassLoader loader = nativescope_h.class.getClassLoader();
        for (String holder : new String[] {"nsc_context_destroy", "nsc_status_name", "nsc_strerror"}) {
            try {
                // Loaded, not initialised: the holder's initialiser is what links.
                // String.concat, not +: a + site's first run spins a class (StringConcatFactory), ~2 ms here.
                Class.forName(nativescope_h.class.getName().concat("$").concat(holder), false, loader);
            } catch (ClassNotFoundException e) {
                throw new NativeLibraryException("the bindings jar lacks " + nativescope_h.class.getName() + "$" + holder
                        + ": use the nativescope-bindings jar of the same release as core", e);
            }
        }
    }

    /**
     * The bindings' header class makes a restricted call while it initialises, so touching it is
     * where a JVM that denies the bindings module native access first says so.
     */
    private static int expectedAbiVersion() {
        try {
            return nativescope_h.NSC_ABI_VERSION();
        } catch (ExceptionInInitializerError e) {
            if (e.getCause() instanceof IllegalCallerException denied) {
                throw LibraryLoader.nativeAccessDenied(denied);
            }
            if (e.getCause() instanceof NativeLibraryException named) {
                // The bindings' load hook, woven into the header class's initialiser, already named the flag.
                throw again(named);
            }
            throw e;
        } catch (NoClassDefFoundError e) {
            // The header class failed to initialise before (touched directly, ahead of this loader).
            Module bindings = nativescope_h.class.getModule();
            if (!bindings.isNativeAccessEnabled()) {
                throw LibraryLoader.nativeAccessDenied(e);
            }
            throw e;
        }
    }

    /**
     * Loads the library if it is not loaded yet.
     *
     * @throws NativeLibraryException when it cannot be loaded; the message says what to do
     */
    public static void load() {
        loaded();
        NativeLibraryException linkFailure = Linked.FAILURE;
        if (linkFailure != null) {
            throw again(linkFailure);
        }
    }

    /**
     * The load alone, without linking the bridge's functions: what the bindings' load hook needs ({@link
     * LoadHookEntry}), from inside a function's holder initialiser.
     */
    static void loadWithoutLinking() {
        loaded();
    }

    /** @return the file the library was loaded from (already deleted when it was extracted to a temp directory) */
    public static Path path() {
        return loaded().path();
    }

    /** @return the ABI version of the loaded library */
    public static int abiVersion() {
        return loaded().abiVersion();
    }

    /**
     * Converts a {@link System#nanoTime()} value to the library's {@code CLOCK_MONOTONIC} nanoseconds
     * (the identity on Linux, where both are the same clock, for values within about 146 years of
     * now). The value is read as {@code System.nanoTime()} values are, relative to the clock now:
     * {@code System.nanoTime() + Long.MAX_VALUE} is far in the future and converts to a far-future
     * monotonic time, never to one in the past. Saturates; never throws for any {@code long}.
     */
    public static long toMonotonicNanos(long nanoTime) {
        return toMonotonicNanos(nanoTime, System.nanoTime());
    }

    /**
     * Like {@link #toMonotonicNanos(long)}, with {@code now}, a {@link System#nanoTime()} reading the
     * caller has just taken (the call bridge reads the clock once per call).
     */
    public static long toMonotonicNanos(long nanoTime, long now) {
        long offset = loaded().nanoTimeToMonotonicOffset();
        return SaturatingTime.toOtherClock(nanoTime, now, SaturatingTime.saturatedAdd(now, offset));
    }

    private static LibraryLoader.Loaded loaded() {
        if (Holder.FAILURE != null) {
            throw again(Holder.FAILURE);
        }
        return Holder.LOADED;
    }

    /** A kept failure thrown again: its message, this caller's stack trace, the first failure as the cause. */
    private static NativeLibraryException again(NativeLibraryException kept) {
        return new NativeLibraryException(kept.getMessage(), kept);
    }
}
