package dev.nativescope.tensor.io;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Objects;

/**
 * A tensor file ({@code .npy}, safetensors, ...) is malformed, truncated, hostile or uses a feature
 * this library does not support. The message is {@code "<file>: <problem>"}; the problem says what
 * was wrong and, where it helps, what to do (for example "big-endian data is not supported;
 * convert it with numpy: {@code a.astype('<f4')}").
 *
 * <p>Readers throw it for everything they read from the file; programming errors (a negative
 * shape passed by the caller, a null argument) stay {@code IllegalArgumentException} and
 * {@code NullPointerException}, and failures of the file system itself (missing file, permission
 * denied) stay the plain {@link IOException} subtypes the JDK throws.
 *
 * <p>Immutable; safe to share between threads.
 */
public class TensorFormatException extends IOException {
    private static final long serialVersionUID = 1L;

    /** The file, not serialized: {@link Path} is not serializable. */
    private final transient Path file;

    /**
     * @param file the file that is malformed
     * @param problem what is wrong with it (and what to do), without the file name
     */
    public TensorFormatException(Path file, String problem) {
        super(file + ": " + Objects.requireNonNull(problem, "problem"));
        this.file = Objects.requireNonNull(file, "file");
    }

    /**
     * @param file the file that is malformed
     * @param problem what is wrong with it (and what to do), without the file name
     * @param cause the underlying failure
     */
    public TensorFormatException(Path file, String problem, Throwable cause) {
        super(file + ": " + Objects.requireNonNull(problem, "problem"), cause);
        this.file = Objects.requireNonNull(file, "file");
    }

    /** @return the malformed file ({@code null} after deserialization) */
    public Path file() {
        return file;
    }
}
