package dev.nativescope;

import java.util.Objects;

/**
 * A typed key for a request value carried by a {@link Context}, such as a request id or a tenant
 * name, that Java code and native code both read.
 *
 * <p>On the Java side keys have identity semantics, like {@link ThreadLocal} or
 * {@code ScopedValue}: two keys created with the same name are different keys, and
 * {@link Context#value(ContextKey)} finds only values bound with the very same key object. Keep
 * a key in a {@code static final} field and share it.
 *
 * <p>On the native side a value is found by {@linkplain #name() name}, as the UTF-8 encoding of
 * the name, and its value is the UTF-8 encoding of {@link #nativeValue(Object)}. When a context
 * chain binds several keys with the same name, native code sees only the binding nearest to the
 * context it was given, exactly as it would if they were the same key.
 *
 * <p>Instances are immutable and safe to share between threads.
 *
 * @param <T> the type of the values bound with this key
 */
public final class ContextKey<T> {
    private final String name;
    private final Class<T> type;

    private ContextKey(String name, Class<T> type) {
        this.name = name;
        this.type = type;
    }

    /**
     * Creates a key for values of {@code type}.
     *
     * @param name the name native code looks the value up by: not blank and without NUL
     *             characters (native code may treat the name as a NUL-terminated C string)
     * @param type the class of the values; a primitive type is rejected, use its wrapper class
     * @param <T> the type of the values
     * @return a new key, distinct from every other key
     * @throws NullPointerException if {@code name} or {@code type} is null
     * @throws IllegalArgumentException if {@code name} is blank or contains a NUL character, or
     *         {@code type} is primitive
     */
    public static <T> ContextKey<T> of(String name, Class<T> type) {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(type, "type");
        if (name.isBlank()) {
            throw new IllegalArgumentException("context key name must not be blank: \"" + name + "\"");
        }
        if (name.indexOf('\0') >= 0) {
            throw new IllegalArgumentException("context key name must not contain NUL characters,"
                    + " native code may read it as a C string: \"" + name.replace("\0", "\\0") + "\"");
        }
        if (type.isPrimitive()) {
            // A primitive Class never matches a value (values are boxed), so every withValue would fail.
            throw new IllegalArgumentException("context key type must not be primitive (" + type.getName()
                    + "): values are objects, use the wrapper class instead");
        }
        return new ContextKey<>(name, type);
    }

    /**
     * Creates a key for string values; shorthand for {@code of(name, String.class)}.
     *
     * @param name the name native code looks the value up by, see {@link #of(String, Class)}
     * @return a new key, distinct from every other key
     * @throws NullPointerException if {@code name} is null
     * @throws IllegalArgumentException if {@code name} is blank or contains a NUL character
     */
    public static ContextKey<String> ofString(String name) {
        return of(name, String.class);
    }

    /**
     * {@return the name of this key; native code finds the value by the UTF-8 encoding of it}
     */
    public String name() {
        return name;
    }

    /**
     * {@return the class of the values bound with this key}
     */
    public Class<T> type() {
        return type;
    }

    /**
     * Returns the text native code sees for a value of this key: {@code String.valueOf(value)},
     * encoded as UTF-8 when it is copied to native memory. Values should therefore be of a type
     * whose {@code toString()} is meaningful and stable (strings, numbers, UUIDs, enums, records
     * of those); an array, for instance, would show up as its identity string.
     *
     * <p>The text is taken when a context is first handed to native code, so the value must not
     * change afterwards; immutable values are the natural choice anyway, since a context is shared
     * by every thread that runs under it.
     *
     * @param value a value of this key
     * @return the text native code sees for it
     * @throws NullPointerException if {@code value} is null
     */
    public String nativeValue(T value) {
        Objects.requireNonNull(value, "value");
        return String.valueOf(value);
    }

    /**
     * Checks that {@code value} may be bound with this key.
     *
     * @throws ClassCastException naming the key and both types when it may not
     */
    T checkedValue(Object value) {
        if (!type.isInstance(value)) {
            throw new ClassCastException("value of context key \"" + name + "\" must be a " + type.getName()
                    + ", not a " + value.getClass().getName());
        }
        return type.cast(value);
    }

    /**
     * {@return a string naming this key and its value type, for diagnostics}
     */
    @Override
    public String toString() {
        return "ContextKey[" + name + ": " + type.getName() + "]";
    }
}
