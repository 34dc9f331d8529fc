package dev.nativescope.tensor.npy;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A seeded, structure-aware mutator of .npy files: byte-level mutations (bit flips, interesting
 * bytes, insertions, deletions, truncation), field-level ones (version, header length), and
 * header-text ones that rewrite the dict (numbers, descrs, keys, values, tokens) and then re-frame
 * it with a consistent length and padding so that the mutation reaches the parser's deeper checks.
 * Deterministic for a given seed. Not thread-safe.
 */
final class NpyMutator {
    private static final String[] DESCRS = {
            "<f2", "<f4", "<f8", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8", "|b1", "<u1", ">u1", ">f4",
            "=f4", "|f4", "f4", "", "<", "<f", "<f3", "<c8", "<c16", "|V2", "<U3", "|S4", "|O", "<M8[ns]", "<f4'",
            "\u00e9", "<f4\\x00"};
    private static final String[] NUMBERS = {
            "0", "1", "2", "-1", "-0", "01", "3L", "255", "65536", "2147483648", "4294967296", "4611686018427387904",
            "9223372036854775807", "9223372036854775808", "18446744073709551616", "100000000000000000000000000000",
            "1" + "0".repeat(400), "1.5", "1e3", "0x10", "True", "None"};
    private static final String[] TOKENS = {
            "{", "}", "(", ")", "[", "]", ",", ":", "'", "\"", " ", "\n", "\t", "\\", "-", "L", "True", "False",
            "'descr'", "'shape'", "'fortran_order'", "'descr': '<f4', ", "(1,)", "()", "\u0000", "\u00ff"};
    private static final byte[] INTERESTING_BYTES = {0, 1, (byte) 0x7f, (byte) 0x80, (byte) 0xff, (byte) 0x93,
            '{', '}', '(', ')', ',', '\'', ' ', '\n', '-', 'L', '0', '9'};
    private static final Pattern NUMBER = Pattern.compile("-?\\d+L?");
    private static final Pattern STRING = Pattern.compile("'[^']*'");
    private static final Pattern ENTRY = Pattern.compile("'[a-z_]+': (?:'[^']*'|True|False|\\([^)]*\\))");

    private final Random random;
    private final List<byte[]> seeds;

    NpyMutator(long seed, List<byte[]> seeds) {
        this.random = new Random(seed);
        this.seeds = List.copyOf(seeds);
        if (this.seeds.isEmpty()) {
            throw new IllegalArgumentException("no seeds");
        }
    }

    /** @return the next input: a seed with one to four mutations applied */
    byte[] next() {
        byte[] input = seeds.get(random.nextInt(seeds.size()));
        int rounds = 1 + random.nextInt(4);
        for (int i = 0; i < rounds; i++) {
            input = mutate(input);
        }
        return input;
    }

    private byte[] mutate(byte[] input) {
        int choice = random.nextInt(100);
        if (choice < 35) {
            return mutateBytes(input);
        }
        if (choice < 50) {
            return mutateFields(input);
        }
        return mutateText(input);
    }

    // ---------------------------------------------------------------- bytes

    private byte[] mutateBytes(byte[] input) {
        byte[] out = input.clone();
        int op = random.nextInt(7);
        if (out.length == 0 && op < 3) {
            op = 3;
        }
        switch (op) {
            case 0 -> out[random.nextInt(out.length)] ^= (byte) (1 << random.nextInt(8));
            case 1 -> out[random.nextInt(out.length)] = (byte) random.nextInt(256);
            case 2 -> out[headerBiased(out.length)] = INTERESTING_BYTES[random.nextInt(INTERESTING_BYTES.length)];
            case 3 -> {
                byte[] insert = new byte[1 + random.nextInt(8)];
                random.nextBytes(insert);
                out = splice(out, headerBiased(out.length + 1), 0, insert);
            }
            case 4 -> {
                int at = headerBiased(out.length + 1);
                out = splice(out, at, Math.min(out.length - at, 1 + random.nextInt(16)), new byte[0]);
            }
            case 5 -> out = Arrays.copyOf(out, random.nextInt(out.length + 1));
            default -> out = Arrays.copyOf(out, out.length + 1 + random.nextInt(64));
        }
        return out;
    }

    /** An index into the first 160 bytes (the header) most of the time. */
    private int headerBiased(int bound) {
        return random.nextInt(4) == 0 ? random.nextInt(bound) : random.nextInt(Math.min(bound, 160));
    }

    private static byte[] splice(byte[] in, int at, int remove, byte[] insert) {
        byte[] out = new byte[in.length - remove + insert.length];
        System.arraycopy(in, 0, out, 0, at);
        System.arraycopy(insert, 0, out, at, insert.length);
        System.arraycopy(in, at + remove, out, at + insert.length, in.length - at - remove);
        return out;
    }

    // ---------------------------------------------------------------- fixed fields

    private byte[] mutateFields(byte[] input) {
        if (input.length < 12) {
            return mutateBytes(input);
        }
        byte[] out = input.clone();
        ByteBuffer buffer = ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN);
        switch (random.nextInt(4)) {
            case 0 -> out[6] = (byte) random.nextInt(5);
            case 1 -> out[7] = (byte) (random.nextBoolean() ? 0 : random.nextInt(256));
            case 2 -> {
                int length = switch (random.nextInt(5)) {
                    case 0 -> 0;
                    case 1 -> 0xffff;
                    case 2 -> (buffer.getShort(8) & 0xffff) + random.nextInt(33) - 16;
                    case 3 -> out.length - 10 + random.nextInt(3) - 1;
                    default -> random.nextInt(1 << 16);
                };
                buffer.putShort(8, (short) length);
            }
            default -> buffer.putInt(8, switch (random.nextInt(4)) {
                case 0 -> -1;
                case 1 -> (1 << 20) + random.nextInt(32) - 16;
                case 2 -> random.nextInt();
                default -> out.length - 12 + random.nextInt(33) - 16;
            });
        }
        return out;
    }

    // ---------------------------------------------------------------- header text

    private byte[] mutateText(byte[] input) {
        Framed framed = Framed.parse(input);
        if (framed == null) {
            return mutateBytes(input);
        }
        String text = framed.text;
        String mutated = switch (random.nextInt(10)) {
            case 0, 1 -> replaceRandom(text, NUMBER, NUMBERS[random.nextInt(NUMBERS.length)]);
            case 2 -> replaceRandom(text, STRING, "'" + DESCRS[random.nextInt(DESCRS.length)] + "'");
            case 3 -> duplicateOrDropEntry(text);
            case 4 -> swapValues(text);
            case 5 -> insert(text, TOKENS[random.nextInt(TOKENS.length)]);
            case 6 -> delete(text);
            case 7 -> changeRank(text);
            case 8 -> text.replace(random.nextBoolean() ? "False" : "True", random.nextBoolean() ? "True" : "1");
            default -> text.replace('\'', random.nextBoolean() ? '"' : '`');
        };
        return framed.reframe(mutated, random);
    }

    private String replaceRandom(String text, Pattern pattern, String replacement) {
        List<int[]> spans = new ArrayList<>();
        Matcher matcher = pattern.matcher(text);
        while (matcher.find()) {
            spans.add(new int[] {matcher.start(), matcher.end()});
        }
        if (spans.isEmpty()) {
            return insert(text, replacement);
        }
        int[] span = spans.get(random.nextInt(spans.size()));
        return text.substring(0, span[0]) + replacement + text.substring(span[1]);
    }

    private String duplicateOrDropEntry(String text) {
        Matcher matcher = ENTRY.matcher(text);
        List<String> entries = new ArrayList<>();
        while (matcher.find()) {
            entries.add(matcher.group());
        }
        if (entries.isEmpty()) {
            return delete(text);
        }
        String entry = entries.get(random.nextInt(entries.size()));
        return switch (random.nextInt(3)) {
            case 0 -> text.replace(entry + ", ", "");
            case 1 -> text.replace(entry, entry + ", " + entry);
            default -> text.replace(entry, entry.replaceFirst("'[a-z_]+'", "'extra'"));
        };
    }

    private String swapValues(String text) {
        Matcher matcher = ENTRY.matcher(text);
        List<String[]> entries = new ArrayList<>();
        while (matcher.find()) {
            String entry = matcher.group();
            int colon = entry.indexOf(": ");
            entries.add(new String[] {entry, entry.substring(0, colon), entry.substring(colon + 2)});
        }
        if (entries.size() < 2) {
            return delete(text);
        }
        String[] a = entries.get(random.nextInt(entries.size()));
        String[] b = entries.get(random.nextInt(entries.size()));
        return text.replace(a[0], "\u0001").replace(b[0], a[1] + ": " + b[2] + "\u0002")
                .replace("\u0001", b[1] + ": " + a[2]).replace("\u0002", "");
    }

    private String insert(String text, String token) {
        int at = random.nextInt(text.length() + 1);
        return text.substring(0, at) + token + text.substring(at);
    }

    private String delete(String text) {
        if (text.isEmpty()) {
            return text;
        }
        int at = random.nextInt(text.length());
        int end = Math.min(text.length(), at + 1 + random.nextInt(random.nextBoolean() ? 2 : 12));
        return text.substring(0, at) + text.substring(end);
    }

    private String changeRank(String text) {
        int open = text.indexOf("'shape': (");
        int close = open < 0 ? -1 : text.indexOf(')', open);
        if (close < 0) {
            return insert(text, "(1,)");
        }
        int rank = random.nextInt(4) == 0 ? 60 + random.nextInt(10) : random.nextInt(5);
        StringBuilder shape = new StringBuilder();
        for (int i = 0; i < rank; i++) {
            shape.append(i == 0 ? "" : ", ").append(random.nextInt(3) == 0 ? NUMBERS[random.nextInt(NUMBERS.length)]
                    : Integer.toString(random.nextInt(4)));
        }
        if (rank == 1) {
            shape.append(',');
        }
        return text.substring(0, open + "'shape': (".length()) + shape + text.substring(close);
    }

    /** A well-framed input split into version, dict text (padding stripped) and data. */
    private record Framed(int major, String text, byte[] data) {
        static Framed parse(byte[] input) {
            if (input.length < 12 || (input[0] & 0xff) != 0x93 || input[1] != 'N') {
                return null;
            }
            int major = input[6] == 2 || input[6] == 3 ? input[6] : 1;
            int prefix = major == 1 ? 10 : 12;
            ByteBuffer buffer = ByteBuffer.wrap(input).order(ByteOrder.LITTLE_ENDIAN);
            long length = major == 1 ? buffer.getShort(8) & 0xffff : buffer.getInt(8) & 0xffff_ffffL;
            if (prefix + length > input.length) {
                return null;
            }
            String text = new String(input, prefix, (int) length, major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
            byte[] data = Arrays.copyOfRange(input, prefix + (int) length, input.length);
            return new Framed(major, text.stripTrailing(), data);
        }

        /** Frames {@code text} with a consistent length: padded to 64 mostly, else 16 or not at all. */
        byte[] reframe(String text, Random random) {
            byte[] dict = text.getBytes(major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
            int prefix = major == 1 ? 10 : 12;
            int alignment = switch (random.nextInt(8)) {
                case 0 -> 16;
                case 1 -> 1;
                default -> 64;
            };
            int total = (prefix + dict.length + 1 + alignment - 1) / alignment * alignment;
            int headerLength = total - prefix;
            if (major == 1 && headerLength > 0xffff) {
                return Arrays.copyOf(dict, dict.length);
            }
            ByteBuffer out = ByteBuffer.allocate(total + data.length).order(ByteOrder.LITTLE_ENDIAN);
            out.put(NpyHeader.MAGIC).put((byte) major).put((byte) 0);
            if (major == 1) {
                out.putShort((short) headerLength);
            } else {
                out.putInt(headerLength);
            }
            out.put(dict);
            while (out.position() < total - 1) {
                out.put((byte) ' ');
            }
            out.put((byte) '\n').put(data);
            return out.array();
        }
    }
}
