package dev.nativescope.call;

/**
 * Where a bridged call's downcall runs: on the calling thread, or on a native thread (a platform
 * thread of {@link NativeThreads}' bounded pool) while the caller parks.
 *
 * <p><b>Why.</b> A virtual thread inside a downcall (or a JNI call) pins its carrier: no JDK up to
 * 25 frees the carrier while native code runs, so a few long native calls on virtual threads starve
 * every other virtual thread of the process (on 2 cores, two calls hold both carriers). An
 * offloaded call parks the virtual thread instead, which frees its carrier; the handoff costs a
 * few microseconds (see {@code BENCHMARKS.md}, "Offloaded calls"), so it is for long calls only.
 *
 * <p>Whatever the mode, a call keeps its semantics: its context, values and deadline; an interrupt
 * of the caller or a cancel of its context stops the native code; results and exceptions are
 * those of an inline call. See {@link NativeThreads} for the pool, its bounds and what differs on a
 * native thread (thread locals, confined arenas).
 */
public enum CallMode {
    /** The downcall runs on the calling thread. The mode of {@link NativeCall#invoke(dev.nativescope.Context, NativeCall.Downcall)}. */
    INLINE,
    /** The downcall runs on a native thread, whatever the calling thread (also a platform thread). */
    OFFLOAD,
    /**
     * Offloaded when the caller is a virtual thread, inline otherwise (a platform thread gains
     * nothing from a handoff). The mode of {@link NativeCall#invokeLong(dev.nativescope.Context, NativeCall.Downcall)}:
     * the safe default for calls that may run longer than about 20 microseconds.
     */
    AUTO;

    /**
     * System property: the mode of every bridged call that leaves the choice to nativescope (those
     * made with {@code invoke(context, downcall)}, {@code invokeLong} or {@link #AUTO}); explicit
     * {@link #INLINE} and {@link #OFFLOAD} are honoured, and so are affinities. {@code INLINE} disables
     * offloading, {@code OFFLOAD} offloads all those calls, also short ones and platform-thread ones
     * (to run a test suite under offloading). Unset (the default): {@code invoke} is {@link #INLINE},
     * {@code invokeLong} {@link #AUTO}. Read once, at class initialisation.
     */
    public static final String PROPERTY = "nativescope.callMode";

    /** The mode forced for calls that do not name one, or null. */
    static final CallMode FORCED = parse(System.getProperty(PROPERTY));

    private static CallMode parse(String value) {
        if (value == null || value.isBlank()) {
            return null;
        }
        try {
            return valueOf(value.trim().toUpperCase(java.util.Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("system property " + PROPERTY + "=" + value
                    + " is not a call mode: use INLINE, OFFLOAD or AUTO, or leave it unset", e);
        }
    }

    /** {@return the mode a call in this mode runs in: {@link #AUTO} becomes the forced mode, if any} */
    CallMode resolved() {
        CallMode forced = FORCED;
        return this == AUTO && forced != null ? forced : this;
    }
}
