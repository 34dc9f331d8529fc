package dev.nativescope.fuzz;

import dev.nativescope.tensor.safetensors.SafeTensorsBytes;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * Structure-aware mutations for the seeded fuzzers: JSON token edits (delete, duplicate, swap,
 * splice, dictionary tokens, number nudges) and byte edits (bit flips, interesting bytes, invalid
 * UTF-8, deletions, truncation). Deterministic for a given {@link Random}.
 */
public final class FuzzMutator {
    /** Tokens that matter to JSON and to safetensors headers. */
    private static final String[] DICTIONARY = {
        "{", "}", "[", "]", ",", ":", " ", "\n", "true", "false", "null", "NaN", "'", "/*", "\\", "\u00a0", "\ufeff",
        "0", "-1", "1", "2", "3", "7", "8", "16", "255", "256", "65535", "4294967296", "9223372036854775807",
        "9223372036854775808", "-9223372036854775808", "18446744073709551616", "1e3", "1.5", "-0", "0.0", "1e999999999",
        "1E-7", "00", "01", "1e99999999999",
        "\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"__metadata__\"", "\"F32\"", "\"F16\"", "\"BF16\"", "\"F64\"",
        "\"BOOL\"", "\"U64\"", "\"I8\"", "\"F8_E4M3\"", "\"\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud83d\\ude00\"",
        "\"\\u0000\"", "\"\\x\"", "\"a\"", "\"\u20ac\"", "\"unterminated",
    };
    private static final byte[][] BAD_UTF8 = {
        {(byte) 0xff}, {(byte) 0xc0, (byte) 0xaf}, {(byte) 0xed, (byte) 0xa0, (byte) 0x80}, {(byte) 0xe2, (byte) 0x82},
        {(byte) 0xf4, (byte) 0x90, (byte) 0x80, (byte) 0x80}, {(byte) 0x80}, {0},
    };
    private static final byte[] INTERESTING_BYTES = {0, 1, 0x7f, (byte) 0x80, (byte) 0xff, '"', '\\', '{', '}', '[', ']',
        ',', ':', '-', '0', '9', 'e', ' ', '\n'};

    private final Random random;

    public FuzzMutator(Random random) {
        this.random = random;
    }

    /** Splits JSON-like text into tokens: strings, numbers, words, whitespace runs, single characters. */
    public static List<String> tokens(String text) {
        List<String> tokens = new ArrayList<>();
        int i = 0;
        while (i < text.length()) {
            int start = i;
            char c = text.charAt(i);
            if (c == '"') {
                i++;
                while (i < text.length() && text.charAt(i) != '"') {
                    i += text.charAt(i) == '\\' ? 2 : 1;
                }
                i = Math.min(i + 1, text.length());
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                while (i < text.length() && "-+.eE0123456789".indexOf(text.charAt(i)) >= 0) {
                    i++;
                }
            } else if (Character.isLetter(c)) {
                while (i < text.length() && Character.isLetter(text.charAt(i))) {
                    i++;
                }
            } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                while (i < text.length() && " \t\n\r".indexOf(text.charAt(i)) >= 0) {
                    i++;
                }
            } else {
                i++;
            }
            tokens.add(text.substring(start, i));
        }
        return tokens;
    }

    /** @return {@code text} after one token-level edit */
    public String mutateTokens(String text) {
        List<String> tokens = new ArrayList<>(tokens(text));
        if (tokens.isEmpty()) {
            tokens.add(pick(DICTIONARY));
            return String.join("", tokens);
        }
        int at = random.nextInt(tokens.size());
        switch (random.nextInt(8)) {
            case 0 -> tokens.remove(at);
            case 1 -> tokens.add(at, tokens.get(at));
            case 2 -> {
                int other = random.nextInt(tokens.size());
                String swapped = tokens.get(at);
                tokens.set(at, tokens.get(other));
                tokens.set(other, swapped);
            }
            case 3 -> tokens.set(at, pick(DICTIONARY));
            case 4 -> tokens.add(at, pick(DICTIONARY));
            case 5 -> {
                int from = random.nextInt(tokens.size());
                int to = Math.min(tokens.size(), from + 1 + random.nextInt(8));
                tokens.addAll(at, new ArrayList<>(tokens.subList(from, to)));
            }
            default -> nudgeNumber(tokens);
        }
        return String.join("", tokens);
    }

    /** Changes one integer token a little (offsets and dimensions off by one, doubled, negated, zero). */
    private void nudgeNumber(List<String> tokens) {
        List<Integer> numbers = new ArrayList<>();
        for (int i = 0; i < tokens.size(); i++) {
            if (tokens.get(i).matches("-?[0-9]+")) {
                numbers.add(i);
            }
        }
        if (numbers.isEmpty()) {
            return;
        }
        int at = numbers.get(random.nextInt(numbers.size()));
        BigInteger value = new BigInteger(tokens.get(at));
        BigInteger nudged = switch (random.nextInt(7)) {
            case 0 -> value.add(BigInteger.ONE);
            case 1 -> value.subtract(BigInteger.ONE);
            case 2 -> value.add(BigInteger.valueOf(8));
            case 3 -> value.shiftLeft(1 + random.nextInt(62));
            case 4 -> value.negate();
            case 5 -> BigInteger.ZERO;
            default -> BigInteger.valueOf(random.nextInt(64));
        };
        tokens.set(at, nudged.toString());
    }

    /** @return {@code bytes} after one byte-level edit */
    public byte[] mutateBytes(byte[] bytes) {
        if (bytes.length == 0) {
            return new byte[] {INTERESTING_BYTES[random.nextInt(INTERESTING_BYTES.length)]};
        }
        int at = random.nextInt(bytes.length);
        return switch (random.nextInt(6)) {
            case 0 -> {
                byte[] out = bytes.clone();
                out[at] ^= (byte) (1 << random.nextInt(8));
                yield out;
            }
            case 1 -> {
                byte[] out = bytes.clone();
                out[at] = INTERESTING_BYTES[random.nextInt(INTERESTING_BYTES.length)];
                yield out;
            }
            case 2 -> insert(bytes, at, BAD_UTF8[random.nextInt(BAD_UTF8.length)]);
            case 3 -> {
                int end = Math.min(bytes.length, at + 1 + random.nextInt(16));
                yield SafeTensorsBytes.concat(Arrays.copyOfRange(bytes, 0, at), Arrays.copyOfRange(bytes, end, bytes.length));
            }
            case 4 -> Arrays.copyOf(bytes, at);
            default -> insert(bytes, at, pick(DICTIONARY).getBytes(StandardCharsets.UTF_8));
        };
    }

    public static byte[] insert(byte[] bytes, int at, byte[] inserted) {
        return SafeTensorsBytes.concat(Arrays.copyOfRange(bytes, 0, at), inserted, Arrays.copyOfRange(bytes, at, bytes.length));
    }

    private String pick(String[] choices) {
        return choices[random.nextInt(choices.length)];
    }
}
