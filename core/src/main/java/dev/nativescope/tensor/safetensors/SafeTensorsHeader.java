package dev.nativescope.tensor.safetensors;

import dev.nativescope.internal.shape.Shapes;
import dev.nativescope.internal.json.JsonException;
import dev.nativescope.internal.json.JsonParser;
import dev.nativescope.internal.json.JsonWriter;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.io.TensorFormatException;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * The validated JSON header of a safetensors file: its tensor entries in header order and its
 * {@code __metadata__}. {@link #parse} checks everything a reader relies on before any tensor is
 * made: the JSON grammar, the entry keys and their types, known dtypes, non-negative shapes whose
 * byte size fits in 64 bits and equals {@code end - begin}, and offsets that tile the data section
 * exactly (no overlap, no hole, nothing left over), as the format requires.
 *
 * <p>Immutable and thread-safe.
 */
final class SafeTensorsHeader {
    /** The reference implementation's limit on the header length, in bytes. */
    static final long MAX_HEADER_BYTES = 100_000_000L;
    /** The reserved key of the string-to-string metadata map. */
    static final String METADATA_KEY = "__metadata__";

    private static final List<String> ENTRY_KEYS = List.of("dtype", "shape", "data_offsets");
    private static final int MAX_NAME_IN_MESSAGE = 80;

    private final List<TensorEntry> entries;
    private final Map<String, String> metadata;

    private SafeTensorsHeader(List<TensorEntry> entries, Map<String, String> metadata) {
        this.entries = Collections.unmodifiableList(entries);
        this.metadata = Collections.unmodifiableMap(metadata);
    }

    /** @return the tensor entries in header order */
    List<TensorEntry> entries() {
        return entries;
    }

    /** @return {@code __metadata__}, in header order; empty when the header has none */
    Map<String, String> metadata() {
        return metadata;
    }

    /**
     * Parses and validates a header.
     *
     * @param file the file, for messages
     * @param json the header bytes (UTF-8 JSON, possibly padded with trailing spaces); consumed
     * @param dataSize the size of the data section that follows the header
     * @throws TensorFormatException naming the file and the first problem found
     */
    static SafeTensorsHeader parse(Path file, ByteBuffer json, long dataSize) throws TensorFormatException {
        if (!json.hasRemaining() || json.get(json.position()) != '{') {
            throw new TensorFormatException(file, "the header does not start with '{'; a safetensors header is a JSON "
                    + "object starting right after the 8-byte length (is this a safetensors file?)");
        }
        Object root;
        try {
            root = JsonParser.parse(json, JsonParser.Limits.DEFAULT);
        } catch (JsonException bad) {
            throw new TensorFormatException(file, "the header is not valid JSON: " + bad.getMessage(), bad);
        }
        if (!(root instanceof Map<?, ?> object)) {
            throw new TensorFormatException(file, "the header is " + describe(root) + ", not a JSON object");
        }
        List<TensorEntry> entries = new ArrayList<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Map.Entry<?, ?> member : object.entrySet()) {
            String name = (String) member.getKey();
            if (name.equals(METADATA_KEY)) {
                metadata = parseMetadata(file, member.getValue());
            } else {
                entries.add(parseEntry(file, name, member.getValue(), dataSize));
            }
        }
        checkTiling(file, entries, dataSize);
        return new SafeTensorsHeader(entries, metadata);
    }

    private static Map<String, String> parseMetadata(Path file, Object value) throws TensorFormatException {
        if (!(value instanceof Map<?, ?> map)) {
            throw new TensorFormatException(file, "\"" + METADATA_KEY + "\" is " + describe(value)
                    + "; it must be an object mapping strings to strings");
        }
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Map.Entry<?, ?> entry : map.entrySet()) {
            if (!(entry.getValue() instanceof String text)) {
                throw new TensorFormatException(file, "\"" + METADATA_KEY + "\" maps " + quote((String) entry.getKey())
                        + " to " + describe(entry.getValue()) + "; safetensors metadata values must be strings");
            }
            metadata.put((String) entry.getKey(), text);
        }
        return metadata;
    }

    private static TensorEntry parseEntry(Path file, String name, Object value, long dataSize)
            throws TensorFormatException {
        String what = "tensor " + quote(name);
        if (!(value instanceof Map<?, ?> fields)) {
            throw new TensorFormatException(file, what + " is " + describe(value)
                    + "; a tensor entry is an object with \"dtype\", \"shape\" and \"data_offsets\"");
        }
        for (String key : ENTRY_KEYS) {
            if (!fields.containsKey(key)) {
                throw new TensorFormatException(file, what + " has no \"" + key + "\"; a tensor entry needs \"dtype\", "
                        + "\"shape\" and \"data_offsets\"");
            }
        }
        for (Object key : fields.keySet()) {
            if (!ENTRY_KEYS.contains(key)) {
                throw new TensorFormatException(file, what + " has the unknown key " + quote((String) key)
                        + "; a tensor entry has exactly \"dtype\", \"shape\" and \"data_offsets\"");
            }
        }
        DType dtype = parseDtype(file, what, fields.get("dtype"));
        long[] shape = parseShape(file, what, fields.get("shape"));
        long byteSize = byteSize(file, what, dtype, shape);
        long[] offsets = parseOffsets(file, what, fields.get("data_offsets"));
        long begin = offsets[0];
        long end = offsets[1];
        if (begin > end) {
            throw new TensorFormatException(file, what + " has reversed data_offsets [" + begin + ", " + end
                    + "]; the begin offset must not exceed the end offset");
        }
        if (end > dataSize) {
            throw new TensorFormatException(file, what + " has data_offsets [" + begin + ", " + end
                    + "] beyond the data section of " + dataSize + " bytes (truncated file?)");
        }
        if (end - begin != byteSize) {
            throw new TensorFormatException(file, what + " has data_offsets [" + begin + ", " + end + "] holding "
                    + (end - begin) + " bytes, but dtype " + dtype.safetensorsName() + " with shape "
                    + Arrays.toString(shape) + " needs " + byteSize + " bytes");
        }
        return new TensorEntry(name, dtype, shape, begin, end);
    }

    private static DType parseDtype(Path file, String what, Object value) throws TensorFormatException {
        if (!(value instanceof String name)) {
            throw new TensorFormatException(file, what + " has a dtype that is " + describe(value)
                    + "; it must be a string such as \"F32\"");
        }
        return DType.ofSafetensorsName(name).orElseThrow(() -> new TensorFormatException(file, what
                + " has the unsupported dtype " + quote(name) + "; supported dtypes: " + supportedDtypes()));
    }

    private static String supportedDtypes() {
        return Arrays.stream(DType.values()).map(DType::safetensorsName).collect(Collectors.joining(", "));
    }

    private static long[] parseShape(Path file, String what, Object value) throws TensorFormatException {
        if (!(value instanceof List<?> dims)) {
            throw new TensorFormatException(file, what + " has a shape that is " + describe(value)
                    + "; it must be an array of non-negative integers ([] for a scalar)");
        }
        long[] shape = new long[dims.size()];
        for (int i = 0; i < shape.length; i++) {
            shape[i] = nonNegativeLong(file, what + " has a shape whose dimension " + i, dims.get(i));
        }
        return shape;
    }

    private static long byteSize(Path file, String what, DType dtype, long[] shape) throws TensorFormatException {
        try {
            return Shapes.byteSize(shape, dtype.byteSize(), dtype.safetensorsName());
        } catch (IllegalArgumentException overflow) {
            throw new TensorFormatException(file, what + ": " + overflow.getMessage(), overflow);
        }
    }

    private static long[] parseOffsets(Path file, String what, Object value) throws TensorFormatException {
        if (!(value instanceof List<?> pair) || pair.size() != 2) {
            throw new TensorFormatException(file, what + " has data_offsets that are " + describe(value)
                    + "; they must be an array [begin, end] of two non-negative integers");
        }
        return new long[] {
            nonNegativeLong(file, what + " has a data_offsets begin that", pair.get(0)),
            nonNegativeLong(file, what + " has a data_offsets end that", pair.get(1))
        };
    }

    private static long nonNegativeLong(Path file, String subject, Object value) throws TensorFormatException {
        if (value instanceof Long number) {
            if (number < 0) {
                throw new TensorFormatException(file, subject + " is " + number + "; it must not be negative");
            }
            return number;
        }
        if (value instanceof BigInteger number) {
            throw new TensorFormatException(file, subject + " is " + number + ", beyond the 64-bit range");
        }
        throw new TensorFormatException(file, subject + " is " + describe(value)
                + "; it must be a non-negative integer literal (no fraction, no exponent)");
    }

    /** The format requires the tensors' byte ranges to cover the data section exactly once. */
    private static void checkTiling(Path file, List<TensorEntry> entries, long dataSize) throws TensorFormatException {
        List<TensorEntry> byOffset = new ArrayList<>(entries);
        byOffset.sort(Comparator.comparingLong(TensorEntry::begin).thenComparingLong(TensorEntry::end));
        long covered = 0;
        TensorEntry previous = null;
        for (TensorEntry entry : byOffset) {
            if (entry.begin() < covered) {
                throw new TensorFormatException(file, "tensor " + quote(entry.name()) + " at data_offsets ["
                        + entry.begin() + ", " + entry.end() + "] overlaps tensor " + quote(previous.name()) + " at ["
                        + previous.begin() + ", " + previous.end() + "]; tensors must not share bytes");
            }
            if (entry.begin() > covered) {
                throw new TensorFormatException(file, "bytes [" + covered + ", " + entry.begin()
                        + ") of the data section belong to no tensor; the format requires the data section to be "
                        + "fully indexed, without holes");
            }
            covered = entry.end();
            previous = entry;
        }
        if (covered != dataSize) {
            throw new TensorFormatException(file, "bytes [" + covered + ", " + dataSize
                    + ") at the end of the data section belong to no tensor; the format requires the data section "
                    + "to be fully indexed (trailing bytes after the last tensor)");
        }
    }

    private static String describe(Object value) {
        return switch (value) {
            case null -> "null";
            case String s -> "the string " + quote(s);
            case Long l -> "the number " + l;
            case BigInteger i -> "the number " + i;
            case BigDecimal d -> "the number " + d;
            case Boolean b -> "the boolean " + b;
            case List<?> list -> "an array of " + list.size() + " elements";
            case Map<?, ?> map -> "an object";
            default -> value.getClass().getSimpleName();
        };
    }

    /** @return {@code s} as a JSON string literal, cut to a readable length */
    static String quote(String s) {
        if (s.length() <= MAX_NAME_IN_MESSAGE) {
            return JsonWriter.write(s);
        }
        int cut = Character.isHighSurrogate(s.charAt(MAX_NAME_IN_MESSAGE - 1)) ? MAX_NAME_IN_MESSAGE - 1 : MAX_NAME_IN_MESSAGE;
        String quoted = JsonWriter.write(s.substring(0, cut));
        return quoted.substring(0, quoted.length() - 1) + "...\"";
    }
}
