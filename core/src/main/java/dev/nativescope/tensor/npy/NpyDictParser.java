package dev.nativescope.tensor.npy;

import dev.nativescope.tensor.io.TensorFormatException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A strict parser for the Python literal NumPy writes as a {@code .npy} header:
 * <pre>
 * {'descr': '&lt;f4', 'fortran_order': False, 'shape': (3, 4), }      followed by spaces and '\n'
 * </pre>
 * Grammar (spaces only as separators, as NumPy writes them):
 * <pre>
 * header  = ' '* '{' ' '* [ entry ( ' '* ',' ' '* entry )* [ ' '* ',' ] ] ' '* '}' ' '* [ '\n' ]
 * entry   = string ' '* ':' ' '* value
 * value   = string | 'True' | 'False' | tuple | list
 * tuple   = '(' ' '* ')' | '(' ' '* int ' '* ',' ' '* ')' | '(' ' '* int ( ' '* ',' ' '* int )+ [ ' '* ',' ] ' '* ')'
 * int     = [ '-' ] ( '0' | [1-9][0-9]* ) [ 'L' ]         (the 'L' of Python 2 longs)
 * string  = "'" [^'\\]* "'" | '"' [^"\\]* '"'            (no escapes: no valid header needs one)
 * </pre>
 * Lists are recognised only to refuse them by name (a list {@code descr} is a structured dtype).
 * Duplicate keys are refused (Python would silently keep the last). Values are typed:
 * {@link String}, {@link Boolean}, {@code long[]} (a tuple) or {@link ListValue}.
 *
 * <p>Not thread-safe; one instance parses one header.
 */
final class NpyDictParser {
    /** A Python list, kept only so the caller can say "structured dtypes are not supported". */
    record ListValue(String text) {
    }

    private static final int MAX_QUOTED = 200;

    private final Path file;
    private final String text;
    private int pos;

    private NpyDictParser(Path file, String text) {
        this.file = file;
        this.text = text;
    }

    /**
     * @param file names the file in messages
     * @param text the decoded header text, padding included
     * @return the dict's entries in file order
     * @throws TensorFormatException on anything outside the grammar
     */
    static Map<String, Object> parse(Path file, String text) throws TensorFormatException {
        return new NpyDictParser(file, text).dict();
    }

    private Map<String, Object> dict() throws TensorFormatException {
        Map<String, Object> entries = new LinkedHashMap<>();
        skipSpaces();
        expect('{');
        skipSpaces();
        while (peek() != '}') {
            int keyAt = pos;
            String key = string();
            skipSpaces();
            expect(':');
            skipSpaces();
            Object value = value();
            if (entries.putIfAbsent(key, value) != null) {
                throw error("duplicate key '" + key + "' at character " + keyAt);
            }
            skipSpaces();
            if (peek() == ',') {
                pos++;
                skipSpaces();
            } else if (peek() != '}') {
                throw unexpected("',' or '}'");
            }
        }
        pos++;
        skipSpaces();
        if (pos < text.length() && text.charAt(pos) == '\n') {
            pos++;
        }
        if (pos != text.length()) {
            throw unexpected("only spaces and a final newline after the dict");
        }
        return entries;
    }

    private Object value() throws TensorFormatException {
        char c = peek();
        return switch (c) {
            case '\'', '"' -> string();
            case '(' -> tuple();
            case '[' -> list();
            case 'T' -> word("True", Boolean.TRUE);
            case 'F' -> word("False", Boolean.FALSE);
            default -> throw unexpected("a string, True, False or a tuple");
        };
    }

    private String string() throws TensorFormatException {
        char quote = peek();
        if (quote != '\'' && quote != '"') {
            throw unexpected("a quoted string");
        }
        int start = ++pos;
        while (pos < text.length() && text.charAt(pos) != quote) {
            char c = text.charAt(pos);
            if (c == '\\' || c == '\n') {
                throw error("unsupported character " + describe(c) + " inside a string at character " + pos);
            }
            pos++;
        }
        if (pos >= text.length()) {
            throw error("unterminated string starting at character " + (start - 1));
        }
        return text.substring(start, pos++);
    }

    private Object word(String word, Object value) throws TensorFormatException {
        if (!text.startsWith(word, pos)) {
            throw unexpected(word);
        }
        pos += word.length();
        return value;
    }

    private long[] tuple() throws TensorFormatException {
        expect('(');
        skipSpaces();
        List<Long> values = new ArrayList<>();
        boolean trailingComma = false;
        while (peek() != ')') {
            values.add(integer());
            skipSpaces();
            trailingComma = false;
            if (peek() == ',') {
                pos++;
                trailingComma = true;
                skipSpaces();
            } else if (peek() != ')') {
                throw unexpected("',' or ')' in the tuple");
            }
        }
        pos++;
        if (values.size() == 1 && !trailingComma) {
            throw error("'(" + values.get(0) + ")' is a parenthesised integer, not a tuple: a 1-d shape is written ("
                    + values.get(0) + ",)");
        }
        long[] result = new long[values.size()];
        for (int i = 0; i < result.length; i++) {
            result[i] = values.get(i);
        }
        return result;
    }

    private long integer() throws TensorFormatException {
        int start = pos;
        boolean negative = false;
        if (peek() == '-') {
            negative = true;
            pos++;
        }
        int digitsStart = pos;
        while (pos < text.length() && text.charAt(pos) >= '0' && text.charAt(pos) <= '9') {
            pos++;
        }
        if (pos == digitsStart) {
            throw unexpected("an integer");
        }
        String digits = text.substring(digitsStart, pos);
        if (digits.length() > 1 && digits.charAt(0) == '0') {
            throw error("integer '" + digits + "' at character " + start + " has a leading zero (not a Python literal)");
        }
        if (pos < text.length() && text.charAt(pos) == 'L') {
            pos++;
        }
        long magnitude;
        try {
            magnitude = Long.parseLong(digits);
        } catch (NumberFormatException tooLarge) {
            throw error("integer " + (negative ? "-" : "") + abbreviate(digits) + " at character " + start
                    + " does not fit in 64 bits");
        }
        return negative ? -magnitude : magnitude;
    }

    private ListValue list() throws TensorFormatException {
        int start = pos;
        int depth = 0;
        while (pos < text.length()) {
            char c = text.charAt(pos++);
            if (c == '[') {
                depth++;
            } else if (c == ']' && --depth == 0) {
                return new ListValue(text.substring(start, pos));
            }
        }
        throw error("unterminated list starting at character " + start);
    }

    private void skipSpaces() {
        while (pos < text.length() && text.charAt(pos) == ' ') {
            pos++;
        }
    }

    private char peek() throws TensorFormatException {
        if (pos >= text.length()) {
            throw error("the header ends at character " + pos + " inside the dict");
        }
        return text.charAt(pos);
    }

    private void expect(char c) throws TensorFormatException {
        if (peek() != c) {
            throw unexpected("'" + c + "'");
        }
        pos++;
    }

    private TensorFormatException unexpected(String expected) {
        String found = pos < text.length() ? describe(text.charAt(pos)) : "the end of the header";
        return error("expected " + expected + " at character " + pos + ", found " + found);
    }

    private TensorFormatException error(String problem) {
        return new TensorFormatException(file, "malformed .npy header: " + problem + "; header: " + quote(text));
    }

    private static String describe(char c) {
        return c >= 0x20 && c < 0x7f ? "'" + c + "'" : String.format("U+%04X", (int) c);
    }

    private static String abbreviate(String digits) {
        return digits.length() <= 40 ? digits : digits.substring(0, 20) + "...(" + digits.length() + " digits)";
    }

    /** The header as a Java-escaped string, cut after {@value #MAX_QUOTED} characters. */
    static String quote(String text) {
        StringBuilder out = new StringBuilder("\"");
        int shown = Math.min(text.length(), MAX_QUOTED);
        for (int i = 0; i < shown; i++) {
            char c = text.charAt(i);
            switch (c) {
                case '\n' -> out.append("\\n");
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                default -> {
                    if (c >= 0x20 && c < 0x7f) {
                        out.append(c);
                    } else {
                        out.append(String.format("\\u%04x", (int) c));
                    }
                }
            }
        }
        out.append('"');
        if (text.length() > shown) {
            out.append("... (").append(text.length()).append(" characters)");
        }
        return out.toString();
    }
}
