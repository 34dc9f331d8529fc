package dev.nativescope.library;

import dev.nativescope.DeadlineExceededException;

/**
 * A native call returned an error status (a negative {@code NSC_ERR_*} value): invalid arguments,
 * a failed system call, no memory, or an ABI mismatch. Cancellation and deadlines are not errors:
 * they surface as {@link java.util.concurrent.CancellationException} and {@link DeadlineExceededException}.
 */
public class NativeStatusException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final int status;
    private final String statusName;

    /**
     * @param status the native status
     * @param statusName its symbolic name, e.g. {@code NSC_ERR_INVALID}
     * @param message what the call was and what the status means
     */
    public NativeStatusException(int status, String statusName, String message) {
        super(message);
        this.status = status;
        this.statusName = statusName;
    }

    /** @return the native status, e.g. -1 for {@code NSC_ERR_INVALID} */
    public int status() {
        return status;
    }

    /** @return the symbolic name of the status, e.g. {@code NSC_ERR_INVALID} */
    public String statusName() {
        return statusName;
    }
}
