package dev.nativescope.internal.json;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Serialises the values {@link JsonParser} produces ({@code Map} with string keys, {@code List},
 * {@code String}, {@code Long}/{@code Integer}, {@code BigInteger}, {@code BigDecimal}, {@code Boolean}, {@code null})
 * as compact RFC 8259 JSON: no whitespace, maps in their iteration order, {@code "} {@code \} and
 * control characters escaped, everything else (non-ASCII included) written as is, so that the
 * UTF-8 encoding of the result is what goes into a file.
 *
 * <p>Thread-safe: stateless.
 */
public final class JsonWriter {
    private JsonWriter() {
    }

    /**
     * @return the JSON text of {@code value}
     * @throws IllegalArgumentException for a value of another type, a non-string key, or a string
     *         with an unpaired surrogate (it has no UTF-8 encoding)
     */
    public static String write(Object value) {
        StringBuilder out = new StringBuilder();
        append(out, value);
        return out.toString();
    }

    private static void append(StringBuilder out, Object value) {
        switch (value) {
            case null -> out.append("null");
            case String s -> appendString(out, s);
            case Boolean b -> out.append(b.booleanValue());
            case Long l -> out.append(l.longValue());
            case Integer i -> out.append(i.intValue());
            case BigInteger i -> out.append(i.toString());
            case BigDecimal d -> appendDecimal(out, d);
            case Map<?, ?> map -> appendObject(out, map);
            case List<?> list -> appendArray(out, list);
            default -> throw new IllegalArgumentException("cannot write a " + value.getClass().getName() + " as JSON");
        }
    }

    /** Keeps a decimal a decimal: {@code 1e0} is written {@code 1E0}, since {@code 1} would read back as a Long. */
    private static void appendDecimal(StringBuilder out, BigDecimal decimal) {
        String text = decimal.toString();
        out.append(text);
        if (text.indexOf('.') < 0 && text.indexOf('E') < 0) {
            out.append("E0");
        }
    }

    private static void appendObject(StringBuilder out, Map<?, ?> map) {
        out.append('{');
        boolean first = true;
        for (Map.Entry<?, ?> entry : map.entrySet()) {
            if (!(entry.getKey() instanceof String key)) {
                throw new IllegalArgumentException("JSON object keys must be strings, got " + entry.getKey());
            }
            if (!first) {
                out.append(',');
            }
            first = false;
            appendString(out, key);
            out.append(':');
            append(out, entry.getValue());
        }
        out.append('}');
    }

    private static void appendArray(StringBuilder out, List<?> list) {
        out.append('[');
        for (int i = 0; i < list.size(); i++) {
            if (i > 0) {
                out.append(',');
            }
            append(out, list.get(i));
        }
        out.append(']');
    }

    private static void appendString(StringBuilder out, String s) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                case '\b' -> out.append("\\b");
                case '\f' -> out.append("\\f");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
                    } else if (Character.isHighSurrogate(c) && i + 1 < s.length()
                            && Character.isLowSurrogate(s.charAt(i + 1))) {
                        out.append(c).append(s.charAt(++i));
                    } else if (Character.isSurrogate(c)) {
                        throw new IllegalArgumentException(String.format(Locale.ROOT,
                                "string has an unpaired surrogate U+%04X at index %d; it cannot be encoded as UTF-8",
                                (int) c, i));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        out.append('"');
    }
}
