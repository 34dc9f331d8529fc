package dev.nativescope.internal.json;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** RFC 8259, exactly: what the parser accepts, what it rejects, and the messages. */
class JsonParserTest {

    private static Object parse(String text) throws JsonException {
        return JsonParser.parse(ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8)), JsonParser.Limits.DEFAULT);
    }

    private static Object parseBytes(int... bytes) throws JsonException {
        byte[] raw = new byte[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            raw[i] = (byte) bytes[i];
        }
        return JsonParser.parse(ByteBuffer.wrap(raw), JsonParser.Limits.DEFAULT);
    }

    @Test
    void parsesEveryKindOfValue() throws JsonException {
        Object value = parse(" {\"a\" : [1, -2, 3.5, -0.25e2, 1E+2, 0, true, false, null, \"s\"],\t\"b\":{}, \"c\":[]}\r\n");
        Map<String, Object> expected = new LinkedHashMap<>();
        expected.put("a", java.util.Arrays.asList(1L, -2L, new BigDecimal("3.5"), new BigDecimal("-0.25e2"),
                new BigDecimal("1E+2"), 0L, true, false, null, "s"));
        expected.put("b", Map.of());
        expected.put("c", List.of());
        assertThat(value).isEqualTo(expected);
    }

    @Test
    void objectsKeepDocumentOrder() throws JsonException {
        @SuppressWarnings("unchecked")
        Map<String, Object> object = (Map<String, Object>) parse("{\"z\":1,\"a\":2,\"m\":3}");
        assertThat(object.keySet()).containsExactly("z", "a", "m");
    }

    @Test
    void scalarsAtTopLevel() throws JsonException {
        assertThat(parse("42")).isEqualTo(42L);
        assertThat(parse("\"x\"")).isEqualTo("x");
        assertThat(parse(" null ")).isNull();
        assertThat(parse("true")).isEqualTo(true);
    }

    @Test
    void integersBeyondLongBecomeBigIntegerAndOtherNumbersBigDecimal() throws JsonException {
        assertThat(parse("9223372036854775807")).isEqualTo(Long.MAX_VALUE);
        assertThat(parse("-9223372036854775808")).isEqualTo(Long.MIN_VALUE);
        assertThat(parse("9223372036854775808")).isEqualTo(new BigInteger("9223372036854775808"));
        assertThat(parse("-99999999999999999999")).isEqualTo(new BigInteger("-99999999999999999999"));
        assertThat(parse("2e0")).isEqualTo(new BigDecimal("2e0"));
        assertThat(parse("-0")).isEqualTo(0L);
    }

    @Test
    void decodesEveryEscape() throws JsonException {
        assertThat(parse("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0041 \\u00e9 \\u20AC \\ud83d\\ude00\""))
                .isEqualTo("\" \\ / \b \f \n \r \t A \u00e9 \u20ac \ud83d\ude00");
    }

    @Test
    void decodesRawUtf8IncludingFourByteSequences() throws JsonException {
        assertThat(parse("\"na\u00efve \u20ac \ud83d\ude00\"")).isEqualTo("na\u00efve \u20ac \ud83d\ude00");
    }

    @Test
    void keysAreComparedAfterUnescaping() {
        assertThatThrownBy(() -> parse("{\"a\":1,\"\\u0061\":2}"))
                .isInstanceOf(JsonException.class).hasMessageContaining("duplicate key \"a\"");
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "", " ", "{", "}", "[", "[1,]", "[,1]", "{\"a\":1,}", "{,}", "{\"a\" 1}", "{\"a\":}", "{1:2}", "{'a':1}",
        "[1 2]", "01", "-01", "1.", ".5", "1.e3", "1e", "1e+", "+1", "-", "--1", "0x10", "NaN", "Infinity", "-Infinity",
        "tru", "truee", "nul", "True", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"", "\"\\U0041\"", "\"\\\"",
        "[1]]", "{}}", "{} {}", "1 2", "[1] x", "// c\n1", "/* c */1", "\"a\tb\"", "\"a\nb\"", "\"\u0000\"",
        "\u00a01", "\ufeff{}", "[\"\\ud800\"]", "[\"\\udc00\"]", "\"\\ud800\\u0041\"", "\"\\ud800\\ud800\"",
        "\"\\ud83d\"", "{\"a\":1,\"a\":2}", "\"\\u٣٣٣٣\""
    })
    void rejectsWhatRfc8259Rejects(String text) {
        assertThatThrownBy(() -> parse(text)).isInstanceOf(JsonException.class).hasMessageStartingWith("at character");
    }

    @Test
    void rejectsInvalidUtf8WithTheBytePosition() {
        assertThatThrownBy(() -> parseBytes('"', 'a', 0xff, '"'))
                .isInstanceOf(JsonException.class).hasMessageContaining("not valid UTF-8").hasMessageContaining("byte 2");
        // overlong '/', an encoded surrogate, a truncated 3-byte sequence, a code point above U+10FFFF
        assertThatThrownBy(() -> parseBytes('"', 0xc0, 0xaf, '"')).hasMessageContaining("not valid UTF-8");
        assertThatThrownBy(() -> parseBytes('"', 0xed, 0xa0, 0x80, '"')).hasMessageContaining("not valid UTF-8");
        assertThatThrownBy(() -> parseBytes('"', 0xe2, 0x82)).hasMessageContaining("not valid UTF-8");
        assertThatThrownBy(() -> parseBytes('"', 0xf4, 0x90, 0x80, 0x80, '"')).hasMessageContaining("not valid UTF-8");
    }

    @Test
    void rejectsRawUnpairedSurrogatesFromCharSequences() {
        assertThatThrownBy(() -> JsonParser.parse("\"\ud800\"", JsonParser.Limits.DEFAULT))
                .isInstanceOf(JsonException.class).hasMessageContaining("unpaired surrogate U+D800");
    }

    @Test
    void messagesSayWhatAndWhere() {
        assertThatThrownBy(() -> parse("{\"a\":1} x")).hasMessageStartingWith("at character 8: unexpected 'x' after "
                + "the JSON value (trailing garbage)");
        assertThatThrownBy(() -> parse("[1,]")).hasMessageContaining("unexpected ']'; expected a value");
        assertThatThrownBy(() -> parse("012")).hasMessageContaining("leading zero");
        assertThatThrownBy(() -> parse("\"a\u0001\"")).hasMessageContaining("unescaped control character U+0001");
        assertThatThrownBy(() -> parse("\"\\ud800x\"")).hasMessageContaining("high surrogate \\uD800 is not followed");
        assertThatThrownBy(() -> parse("\"\\udc00\"")).hasMessageContaining("low surrogate \\uDC00 without");
        assertThatThrownBy(() -> parse("{\"k\":1,\"k\":2}")).hasMessageStartingWith("at character 7: duplicate key");
    }

    @Test
    void nestingDepthIsLimited() throws JsonException {
        assertThat(parse("[".repeat(64) + "]".repeat(64))).isNotNull();
        assertThatThrownBy(() -> parse("[".repeat(65) + "]".repeat(65)))
                .isInstanceOf(JsonException.class).hasMessageContaining("nested deeper than 64 levels");
        // far beyond any stack: still a JsonException, not a StackOverflowError
        assertThatThrownBy(() -> parse("{\"a\":".repeat(100_000)))
                .isInstanceOf(JsonException.class).hasMessageContaining("nested deeper");
    }

    @Test
    void valueCountAndNumberLengthAreLimited() throws JsonException {
        JsonParser.Limits small = new JsonParser.Limits(64, 5, 10);
        assertThat(JsonParser.parse("[1,2,3,4]", small)).isEqualTo(List.of(1L, 2L, 3L, 4L));
        assertThatThrownBy(() -> JsonParser.parse("[1,2,3,4,5]", small)).hasMessageContaining("more than 5 values");
        assertThat(JsonParser.parse("1234567890", small)).isEqualTo(1234567890L);
        assertThatThrownBy(() -> JsonParser.parse("12345678901", small)).hasMessageContaining("longer than 10");
    }

    @Test
    void hugeExponentsAreErrorsNotExceptions() throws JsonException {
        assertThat(parse("1e999999999")).isEqualTo(new BigDecimal("1e999999999"));
        assertThatThrownBy(() -> parse("1e99999999999")).isInstanceOf(JsonException.class)
                .hasMessageContaining("out of range");
    }

    @Test
    void writerOutputParsesBackToTheSameValue() throws JsonException {
        Map<String, Object> value = new LinkedHashMap<>();
        value.put("control \u0001\u001f \b\f\n\r\t", List.of("\"quoted\" \\ /", 1L, -7L, new BigDecimal("2.50"),
                new BigInteger("123456789012345678901234567890")));
        value.put("unicode \u00e9 \ud83d\ude00", java.util.Arrays.asList(true, false, null, Map.of()));
        String text = JsonWriter.write(value);
        assertThat(parse(text)).isEqualTo(value);
        assertThatThrownBy(() -> JsonWriter.write("lone \ud800")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("unpaired surrogate U+D800 at index 5");
    }
}
