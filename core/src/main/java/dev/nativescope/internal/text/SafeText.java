package dev.nativescope.internal.text;

/**
 * Text of objects that come from users (a context's cause, above all) for messages built on error
 * paths: a {@code toString()} that throws must not replace the exception being reported.
 *
 * <p>Stateless and thread-safe.
 */
public final class SafeText {
    private SafeText() {
    }

    /** {@return {@code String.valueOf(value)}, or its class name when its {@code toString()} throws} */
    public static String of(Object value) {
        try {
            return String.valueOf(value);
        } catch (Throwable broken) {
            return value.getClass().getName() + " (its toString() threw " + broken.getClass().getName() + ")";
        }
    }

    /** {@return {@code cause.getMessage()}, or null when there is none or it throws} */
    public static String messageOf(Throwable cause) {
        if (cause == null) {
            return null;
        }
        try {
            return cause.getMessage();
        } catch (Throwable broken) {
            return null;
        }
    }
}
