package dev.nativescope.library;

import dev.nativescope.call.NativeCall;
import dev.nativescope.bindings.nativescope_h;

import java.util.Optional;

/**
 * The statuses of nativescope's C API ({@code enum nsc_status} in {@code nativescope.h}), so that
 * Java code can name them without reading the bindings: {@link NativeCall#invoke} returns
 * {@link #OK}, {@link #TIMEOUT}, {@link #NOT_FOUND} ... as their {@linkplain #code() codes}.
 *
 * <p>The C header lists the statuses once; {@code NativeStatusAbiTest} checks that this enum has
 * exactly the same names and codes, so the two cannot drift. Non-negative codes are outcomes,
 * negative ones ({@code ERR_*}) are errors, which the bridge throws as {@link NativeStatusException}.
 * The first three are also the values of the context's state word.
 *
 * <p>Immutable and thread-safe. Only {@link #description()} and {@link #exception(int, String)}
 * need the native library (they read the shim's own text); everything else is plain Java.
 */
public enum NativeStatus {
    /** Success; for the state word: live. */
    OK(0),
    /** The context was cancelled. */
    CANCELED(1),
    /** The context's deadline passed. */
    DEADLINE_EXCEEDED(2),
    /** A wait's own timeout elapsed; the context is still live. */
    TIMEOUT(3),
    /** No value under that key. */
    NOT_FOUND(4),
    /** The context was already done, or the hook had already run. */
    ALREADY_DONE(5),
    /** An invalid argument: a NULL pointer, a negative size, an unknown status. */
    ERR_INVALID(-1),
    /** A system call failed. */
    ERR_SYSTEM(-2),
    /** Out of memory. */
    ERR_NOMEM(-3),
    /** The struct was initialised by another ABI version, or not at all. */
    ERR_ABI(-4),
    /** Cancel hooks are still registered. */
    ERR_BUSY(-5);

    private static final NativeStatus[] VALUES = values();

    private final int code;
    /** Built once: the call bridge names the status of every call while a JFR recording runs. */
    private final String cName = "NSC_" + name();

    NativeStatus(int code) {
        this.code = code;
    }

    /** {@return the C value of this status, e.g. -1 for {@link #ERR_INVALID}} */
    public int code() {
        return code;
    }

    /** {@return the C name of this status, e.g. {@code NSC_ERR_INVALID}} */
    public String cName() {
        return cName;
    }

    /** {@return true for the {@code ERR_*} statuses, whose codes are negative} */
    public boolean isError() {
        return code < 0;
    }

    /**
     * {@return the shim's description of this status, as {@code nsc_strerror} gives it}
     *
     * @throws dev.nativescope.library.NativeLibraryException when the library cannot be loaded
     */
    public String description() {
        return describe(code);
    }

    /**
     * {@return the status with this code, or empty for a code the C API does not define}
     *
     * @param code a value returned by native code
     */
    public static Optional<NativeStatus> of(int code) {
        for (NativeStatus status : VALUES) {
            if (status.code == code) {
                return Optional.of(status);
            }
        }
        return Optional.empty();
    }

    /**
     * {@return the C name of the status with this code, e.g. {@code NSC_TIMEOUT}, or
     * {@code "unknown status <code>"}}
     *
     * @param code a value returned by native code
     */
    public static String nameOf(int code) {
        // No Optional and no string built for a known code: this runs per call while JFR records.
        for (NativeStatus status : VALUES) {
            if (status.code == code) {
                return status.cName;
            }
        }
        return "unknown status " + code;
    }

    private static String describe(int code) {
        NativeLibrary.load();
        return nativescope_h.nsc_strerror(code).reinterpret(1024).getString(0);
    }

    /**
     * Builds the exception for a status that a call should not have returned, for code that calls
     * the C API directly (through the bindings) rather than through {@link NativeCall}.
     *
     * @param code the status the call returned
     * @param what names the call, e.g. {@code "nsc_context_init"}
     * @return an exception whose message names the call, the status and what it means
     */
    public static NativeStatusException exception(int code, String what) {
        String name = nameOf(code);
        String hint = code == ERR_SYSTEM.code
                ? "; errno does not survive the return to Java, but the usual causes are a process out of file"
                  + " descriptors (raise ulimit -n, or close what leaks) or out of memory"
                : "";
        return new NativeStatusException(code, name, what + " failed with " + name + ": " + describe(code) + hint);
    }
}
