package dev.nativescope.tensor.safetensors;

import dev.nativescope.tensor.DType;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.Set;

/**
 * Builds safetensors files byte by byte for tests, independently of {@link SafeTensorsLayout}:
 * raw files from a header text and data, and random valid files whose headers vary in everything
 * the format leaves open (key order, whitespace, escapes, padding, data order, alignment).
 */
public final class SafeTensorsBytes {
    private static final String[] NAMES = {
        "w", "bias", "layer.0/weight", "na\u00efve", "\u20ac", "\ud83d\ude00", "quote\"d", "back\\slash", "tab\t", "",
        "__metadata", "dtype", "shape", "data_offsets"
    };

    private SafeTensorsBytes() {
    }

    /** @return an 8-byte little-endian length followed by {@code header} and {@code data} */
    public static byte[] file(long headerLength, byte[] header, byte[] data) {
        ByteBuffer out = ByteBuffer.allocate(Long.BYTES + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        return out.putLong(headerLength).put(header).put(data).array();
    }

    /** @return a file with this header (its UTF-8 length as the length field) and data */
    public static byte[] file(String header, byte[] data) {
        byte[] bytes = header.getBytes(StandardCharsets.UTF_8);
        return file(bytes.length, bytes, data);
    }

    /** @return a file with this header and {@code dataSize} zero bytes of data */
    public static byte[] file(String header, int dataSize) {
        return file(header, new byte[dataSize]);
    }

    /** A random valid file: 0 to 4 tensors of every dtype, shapes of rank 0 to 3, optional metadata. */
    public static byte[] randomValid(Random random) {
        int count = random.nextInt(5);
        List<String> names = new ArrayList<>();
        Set<String> used = new HashSet<>();
        while (names.size() < count) {
            String name = NAMES[random.nextInt(NAMES.length)] + (random.nextInt(3) == 0 ? "" : random.nextInt(100));
            if (used.add(name)) {
                names.add(name);
            }
        }
        DType[] dtypes = new DType[count];
        long[][] shapes = new long[count][];
        long[] sizes = new long[count];
        for (int i = 0; i < count; i++) {
            dtypes[i] = DType.values()[random.nextInt(DType.values().length)];
            shapes[i] = new long[random.nextInt(4)];
            long elements = 1;
            for (int d = 0; d < shapes[i].length; d++) {
                shapes[i][d] = random.nextInt(10) == 0 ? 0 : 1 + random.nextInt(4);
                elements *= shapes[i][d];
            }
            sizes[i] = elements * dtypes[i].byteSize();
        }
        List<Integer> dataOrder = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            dataOrder.add(i);
        }
        Collections.shuffle(dataOrder, random);
        long[] begins = new long[count];
        long dataSize = 0;
        for (int i : dataOrder) {
            begins[i] = dataSize;
            dataSize += sizes[i];
        }

        List<String> members = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            List<String> fields = new ArrayList<>(List.of(
                    str(random, "dtype") + ws(random) + ":" + ws(random) + str(random, dtypes[i].safetensorsName()),
                    str(random, "shape") + ":" + array(random, shapes[i]),
                    str(random, "data_offsets") + ":" + array(random, begins[i], begins[i] + sizes[i])));
            Collections.shuffle(fields, random);
            members.add(str(random, names.get(i)) + ws(random) + ":" + ws(random) + "{" + String.join("," + ws(random), fields) + "}");
        }
        if (random.nextBoolean()) {
            List<String> entries = new ArrayList<>();
            for (int m = random.nextInt(3); m > 0; m--) {
                entries.add(str(random, "key" + m) + ":" + str(random, NAMES[random.nextInt(NAMES.length)]));
            }
            members.add(random.nextInt(members.size() + 1), str(random, "__metadata__") + ":{" + String.join(",", entries) + "}");
        }
        String header = "{" + ws(random) + String.join("," + ws(random), members) + ws(random) + "}";
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        int padding = random.nextBoolean() ? (8 - json.length % 8) % 8 : random.nextInt(3);
        byte[] padded = new byte[json.length + padding];
        System.arraycopy(json, 0, padded, 0, json.length);
        Arrays.fill(padded, json.length, padded.length, (byte) ' ');
        byte[] data = new byte[(int) dataSize];
        random.nextBytes(data);
        return file(padded.length, padded, data);
    }

    private static String ws(Random random) {
        return switch (random.nextInt(6)) {
            case 0 -> " ";
            case 1 -> "\n  ";
            case 2 -> "\t\r\n";
            default -> "";
        };
    }

    private static String array(Random random, long... values) {
        List<String> items = new ArrayList<>();
        for (long value : values) {
            items.add(Long.toString(value));
        }
        return "[" + ws(random) + String.join("," + ws(random), items) + "]";
    }

    /** A JSON string literal, escaping some characters at random the long way ({@code \\uHHHH}). */
    public static String str(Random random, String value) {
        StringBuilder out = new StringBuilder("\"");
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            boolean pair = Character.isHighSurrogate(c) && i + 1 < value.length();
            boolean mustEscape = c == '"' || c == '\\' || c < 0x20;
            if (mustEscape || random.nextInt(8) == 0) {
                out.append(c == '"' && random.nextBoolean() ? "\\\"" : String.format(Locale.ROOT, "\\u%04x", (int) c));
                if (pair) { // a surrogate pair is escaped whole or not at all
                    out.append(String.format(Locale.ROOT, "\\u%04x", (int) value.charAt(++i)));
                }
            } else {
                out.append(c);
                if (pair) {
                    out.append(value.charAt(++i));
                }
            }
        }
        return out.append('"').toString();
    }

    /** @return all of {@code parts} concatenated */
    public static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] part : parts) {
            out.writeBytes(part);
        }
        return out.toByteArray();
    }
}
