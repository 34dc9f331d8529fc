package dev.nativescope.internal.json;

import dev.nativescope.tensor.io.TensorFormatException;

/**
 * A JSON text broke RFC 8259 or one of {@link JsonParser}'s limits. The message says what was
 * wrong and where; callers that read a file wrap it in a {@link TensorFormatException} naming the
 * file.
 *
 * <p>Immutable; safe to share between threads.
 */
public final class JsonException extends Exception {
    private static final long serialVersionUID = 1L;

    /**
     * @param message what was wrong, with the position ("at character 17: ...")
     */
    JsonException(String message) {
        super(message);
    }
}
