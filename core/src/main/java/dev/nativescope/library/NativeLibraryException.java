package dev.nativescope.library;

/**
 * The native library could not be loaded or used: unsupported platform, missing library, ABI
 * mismatch, native access not enabled, or a clock that cannot be reconciled. The message says what
 * was wrong and what to do about it.
 */
public class NativeLibraryException extends IllegalStateException {
    private static final long serialVersionUID = 1L;

    /**
     * @param message what was wrong and how to fix it
     */
    public NativeLibraryException(String message) {
        super(message);
    }

    /**
     * @param message what was wrong and how to fix it
     * @param cause the underlying failure
     */
    public NativeLibraryException(String message, Throwable cause) {
        super(message, cause);
    }
}
