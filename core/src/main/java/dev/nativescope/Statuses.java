package dev.nativescope;

import dev.nativescope.bindings.nativescope_h;

/** Names and descriptions of native statuses, read from the shim so that they never drift from the C side. */
final class Statuses {
    static final int OK = nativescope_h.NSC_OK();
    static final int CANCELED = nativescope_h.NSC_CANCELED();
    static final int DEADLINE_EXCEEDED = nativescope_h.NSC_DEADLINE_EXCEEDED();
    static final int TIMEOUT = nativescope_h.NSC_TIMEOUT();
    static final long NO_DEADLINE = nativescope_h.NSC_NO_DEADLINE();
    static final int SYSTEM_ERROR = nativescope_h.NSC_ERR_SYSTEM();

    private Statuses() {
    }

    static String name(int status) {
        NativeLibrary.load();
        return nativescope_h.nsc_status_name(status).reinterpret(256).getString(0);
    }

    static String describe(int status) {
        NativeLibrary.load();
        return nativescope_h.nsc_strerror(status).reinterpret(1024).getString(0);
    }

    /** @return an exception for a negative status; {@code what} names the call */
    static NativeStatusException error(int status, String what) {
        String name = name(status);
        String hint = status == SYSTEM_ERROR
                ? "; errno does not survive the return to Java, but the usual causes are a process out of file"
                  + " descriptors (raise ulimit -n, or close what leaks) or out of memory"
                : "";
        return new NativeStatusException(status, name, what + " failed with " + name + ": " + describe(status) + hint);
    }
}
