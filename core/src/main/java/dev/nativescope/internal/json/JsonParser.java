package dev.nativescope.internal.json;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A strict RFC 8259 JSON parser for small untrusted documents such as the safetensors header.
 *
 * <p>It accepts exactly the RFC's grammar: no comments, no trailing commas, no single quotes, no
 * {@code NaN}, no leading zeros, no byte-order mark, whitespace only from {@code [ \t\n\r]}, and
 * nothing after the value. On top of the grammar it rejects what the RFC leaves to the
 * implementation: duplicate object keys (compared after unescaping), unpaired surrogates (escaped
 * or raw), bytes that are not UTF-8, nesting deeper than {@link Limits#maxDepth()}, more values
 * than {@link Limits#maxValues()} (a small text must not become a large heap) and number literals
 * longer than {@link Limits#maxNumberLength()} characters (so no quadratic big-number parsing).
 *
 * <p>Values become {@code Map<String, Object>} (a {@link LinkedHashMap} in document order),
 * {@code List<Object>}, {@link String}, {@link Long} (integer literals, without fraction or
 * exponent, that fit), {@link BigInteger} (integer literals that do not), {@link BigDecimal}
 * (literals with a fraction or an exponent), {@link Boolean} and {@code null}.
 *
 * <p>Thread-safe: each {@code parse} call uses its own parser state.
 */
public final class JsonParser {
    /**
     * Limits beyond the grammar.
     *
     * @param maxDepth the deepest nesting of arrays and objects (the top-level value is depth 1)
     * @param maxValues the most values (of any kind, containers included) in one document
     * @param maxNumberLength the longest number literal, in characters
     */
    public record Limits(int maxDepth, int maxValues, int maxNumberLength) {
        /** 64 levels, 4 million values, 400-character numbers. */
        public static final Limits DEFAULT = new Limits(64, 4_000_000, 400);
    }

    private static final int SNIPPET_CHARS = 24;

    private final String text;
    private final Limits limits;
    private int pos;
    private int values;

    private JsonParser(CharSequence text, Limits limits) {
        this.text = text.toString();
        this.limits = limits;
    }

    /**
     * Decodes {@code utf8} strictly (malformed or truncated sequences, encoded surrogates and
     * overlong forms are errors) and parses it. Consumes the buffer.
     */
    public static Object parse(ByteBuffer utf8, Limits limits) throws JsonException {
        return parse(decodeUtf8(utf8), limits);
    }

    /** Parses one JSON text. */
    public static Object parse(CharSequence text, Limits limits) throws JsonException {
        return new JsonParser(text, limits).document();
    }

    /** The one value of the text, with nothing but whitespace around it. */
    private Object document() throws JsonException {
        skipWhitespace();
        Object value = parseValue(0);
        skipWhitespace();
        if (pos < text.length()) {
            throw error("unexpected " + describeCurrent() + " after the JSON value (trailing garbage)");
        }
        return value;
    }

    private static String decodeUtf8(ByteBuffer utf8) throws JsonException {
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        int start = utf8.position();
        // UTF-8 never decodes to more UTF-16 chars than it has bytes.
        CharBuffer chars = CharBuffer.allocate(utf8.remaining());
        CoderResult result = decoder.decode(utf8, chars, true);
        if (!result.isError()) {
            result = decoder.flush(chars);
        }
        if (result.isError()) {
            throw new JsonException("not valid UTF-8: " + (result.isMalformed() ? "malformed" : "unmappable")
                    + " sequence of " + result.length() + " byte(s) at byte " + (utf8.position() - start)
                    + "; the text must be UTF-8 encoded");
        }
        return chars.flip().toString();
    }

    private Object parseValue(int depth) throws JsonException {
        if (++values > limits.maxValues()) {
            throw error("more than " + limits.maxValues() + " values in one document (limit)");
        }
        if (pos >= text.length()) {
            throw error("unexpected end of input; expected a value");
        }
        char c = text.charAt(pos);
        return switch (c) {
            case '{' -> parseObject(enter(depth));
            case '[' -> parseArray(enter(depth));
            case '"' -> parseString();
            case 't' -> parseLiteral("true", Boolean.TRUE);
            case 'f' -> parseLiteral("false", Boolean.FALSE);
            case 'n' -> parseLiteral("null", null);
            default -> {
                if (c == '-' || isDigit(c)) {
                    yield parseNumber();
                }
                throw error("unexpected " + describeCurrent() + "; expected a value (object, array, string, number, "
                        + "true, false or null)");
            }
        };
    }

    private int enter(int depth) throws JsonException {
        if (depth + 1 > limits.maxDepth()) {
            throw error("arrays and objects nested deeper than " + limits.maxDepth() + " levels (limit)");
        }
        return depth + 1;
    }

    private Map<String, Object> parseObject(int depth) throws JsonException {
        Map<String, Object> object = new LinkedHashMap<>();
        if (openedEmpty('}')) {
            return object;
        }
        while (true) {
            skipWhitespace();
            if (peek() != '"') {
                throw error("unexpected " + describeCurrent() + "; expected a string key");
            }
            int keyStart = pos;
            String key = parseString();
            if (object.containsKey(key)) {
                pos = keyStart;
                throw error("duplicate key \"" + printable(key) + "\"; every key in an object must be unique");
            }
            skipWhitespace();
            expect(':', "after an object key");
            skipWhitespace();
            object.put(key, parseValue(depth));
            if (closedAfterMember('}', "',' or '}' in an object")) {
                return object;
            }
        }
    }

    private List<Object> parseArray(int depth) throws JsonException {
        List<Object> array = new ArrayList<>();
        if (openedEmpty(']')) {
            return array;
        }
        while (true) {
            skipWhitespace();
            array.add(parseValue(depth));
            if (closedAfterMember(']', "',' or ']' in an array")) {
                return array;
            }
        }
    }

    /** Steps over the opening '{' or '['. @return whether {@code close} follows at once (consumed then) */
    private boolean openedEmpty(char close) {
        pos++;
        skipWhitespace();
        if (peek() == close) {
            pos++;
            return true;
        }
        return false;
    }

    /**
     * After a member of an object or array: consumes the ',' or {@code close} that must follow.
     *
     * @return true at {@code close}, false after a ','
     */
    private boolean closedAfterMember(char close, String expected) throws JsonException {
        skipWhitespace();
        char next = peek();
        pos++;
        if (next == close) {
            return true;
        }
        if (next != ',') {
            pos--;
            throw error("unexpected " + describeCurrent() + "; expected " + expected);
        }
        return false;
    }

    private String parseString() throws JsonException {
        int start = pos;
        pos++; // opening quote
        StringBuilder out = new StringBuilder();
        while (true) {
            if (pos >= text.length()) {
                pos = start;
                throw error("unterminated string");
            }
            char c = text.charAt(pos);
            if (c == '"') {
                pos++;
                return out.toString();
            }
            if (c == '\\') {
                parseEscape(out);
            } else if (c < 0x20) {
                throw error(String.format(Locale.ROOT, "unescaped control character U+%04X in a string; write it as "
                        + "\\u%04X", (int) c, (int) c));
            } else if (Character.isHighSurrogate(c) && pos + 1 < text.length()
                    && Character.isLowSurrogate(text.charAt(pos + 1))) {
                out.append(c).append(text.charAt(pos + 1));
                pos += 2;
            } else if (Character.isSurrogate(c)) {
                throw error(String.format(Locale.ROOT, "unpaired surrogate U+%04X in a string", (int) c));
            } else {
                out.append(c);
                pos++;
            }
        }
    }

    private void parseEscape(StringBuilder out) throws JsonException {
        int escapeStart = pos;
        pos++; // backslash
        if (pos >= text.length()) {
            pos = escapeStart;
            throw error("unterminated escape sequence");
        }
        char c = text.charAt(pos++);
        switch (c) {
            case '"' -> out.append('"');
            case '\\' -> out.append('\\');
            case '/' -> out.append('/');
            case 'b' -> out.append('\b');
            case 'f' -> out.append('\f');
            case 'n' -> out.append('\n');
            case 'r' -> out.append('\r');
            case 't' -> out.append('\t');
            case 'u' -> {
                char unit = parseHex4(escapeStart);
                if (Character.isHighSurrogate(unit)) {
                    int lowStart = pos;
                    if (text.startsWith("\\u", pos)) {
                        pos += 2;
                        char low = parseHex4(lowStart);
                        if (Character.isLowSurrogate(low)) {
                            out.append(unit).append(low);
                            return;
                        }
                    }
                    pos = escapeStart;
                    throw error(String.format(Locale.ROOT, "high surrogate \\u%04X is not followed by a low surrogate "
                            + "escape (\\uDC00-\\uDFFF)", (int) unit));
                }
                if (Character.isLowSurrogate(unit)) {
                    pos = escapeStart;
                    throw error(String.format(Locale.ROOT, "low surrogate \\u%04X without a preceding high surrogate",
                            (int) unit));
                }
                out.append(unit);
            }
            default -> {
                pos = escapeStart;
                throw error("invalid escape sequence \\" + printable(String.valueOf(c))
                        + "; JSON allows \\\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uHHHH (four hex digits)");
            }
        }
    }

    private char parseHex4(int escapeStart) throws JsonException {
        if (pos + 4 > text.length()) {
            pos = escapeStart;
            throw error("truncated \\u escape; it needs four hex digits");
        }
        int value = 0;
        for (int i = 0; i < 4; i++) {
            int digit = hexValue(text.charAt(pos + i));
            if (digit < 0) {
                pos = escapeStart;
                throw error("\\u escape needs four hex digits");
            }
            value = value * 16 + digit;
        }
        pos += 4;
        return (char) value;
    }

    private Object parseNumber() throws JsonException {
        int start = pos;
        if (peek() == '-') {
            pos++;
        }
        if (peek() == '0') {
            pos++;
            if (isDigit(peek())) {
                throw error("number with a leading zero; JSON does not allow them");
            }
        } else if (isDigit(peek())) {
            skipDigits();
        } else {
            throw error("unexpected " + describeCurrent() + "; expected a digit in a number");
        }
        boolean integer = true;
        if (peek() == '.') {
            pos++;
            integer = false;
            requireDigits("after the decimal point");
        }
        if (peek() == 'e' || peek() == 'E') {
            pos++;
            integer = false;
            if (peek() == '+' || peek() == '-') {
                pos++;
            }
            requireDigits("in the exponent");
        }
        if (pos - start > limits.maxNumberLength()) {
            pos = start;
            throw error("number literal longer than " + limits.maxNumberLength() + " characters (limit)");
        }
        String literal = text.substring(start, pos);
        if (integer) {
            try {
                return Long.parseLong(literal);
            } catch (NumberFormatException beyondLong) {
                return new BigInteger(literal);
            }
        }
        try {
            return new BigDecimal(literal);
        } catch (NumberFormatException exponentOutOfRange) {
            pos = start;
            throw error("number " + literal + " is out of range (its exponent does not fit in 32 bits)");
        }
    }

    private void requireDigits(String where) throws JsonException {
        if (!isDigit(peek())) {
            throw error("unexpected " + describeCurrent() + "; expected a digit " + where);
        }
        skipDigits();
    }

    private void skipDigits() {
        while (isDigit(peek())) {
            pos++;
        }
    }

    private Object parseLiteral(String literal, Object value) throws JsonException {
        if (!text.startsWith(literal, pos)) {
            throw error("unexpected " + describeCurrent() + "; expected a value (did you mean " + literal + "?)");
        }
        pos += literal.length();
        return value;
    }

    private void expect(char expected, String where) throws JsonException {
        if (peek() != expected) {
            throw error("unexpected " + describeCurrent() + "; expected '" + expected + "' " + where);
        }
        pos++;
    }

    private void skipWhitespace() {
        while (pos < text.length()) {
            char c = text.charAt(pos);
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
                return;
            }
            pos++;
        }
    }

    /** @return the current char, or NUL at the end (NUL never matches what callers look for) */
    private char peek() {
        return pos < text.length() ? text.charAt(pos) : '\0';
    }

    /** @return the value of an ASCII hex digit, or -1 ({@code Character.digit} would accept non-ASCII digits) */
    private static int hexValue(char c) {
        if (c >= '0' && c <= '9') {
            return c - '0';
        }
        if (c >= 'a' && c <= 'f') {
            return c - 'a' + 10;
        }
        if (c >= 'A' && c <= 'F') {
            return c - 'A' + 10;
        }
        return -1;
    }

    private static boolean isDigit(char c) {
        return c >= '0' && c <= '9';
    }

    private String describeCurrent() {
        if (pos >= text.length()) {
            return "end of input";
        }
        char c = text.charAt(pos);
        return c >= 0x20 && c < 0x7f ? "'" + c + "'" : String.format(Locale.ROOT, "character U+%04X", (int) c);
    }

    private JsonException error(String problem) {
        int from = Math.max(0, pos - SNIPPET_CHARS);
        int to = Math.min(text.length(), pos + SNIPPET_CHARS);
        return new JsonException("at character " + pos + ": " + problem + " (near \"" + printable(text.substring(from, to))
                + "\")");
    }

    /** Escapes control characters and surrogates so a message stays one readable line. */
    private static String printable(String s) {
        StringBuilder out = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < 0x20 || c == 0x7f || Character.isSurrogate(c)) {
                out.append(String.format(Locale.ROOT, "\\u%04X", (int) c));
            } else {
                out.append(c);
            }
        }
        return out.toString();
    }
}
