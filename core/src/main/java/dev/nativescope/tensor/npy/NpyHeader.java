package dev.nativescope.tensor.npy;

import dev.nativescope.internal.shape.Shapes;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.TensorSpec;
import dev.nativescope.tensor.io.TensorFormatException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * The header of a {@code .npy} file (NumPy's format, versions 1.0, 2.0 and 3.0):
 * <pre>
 * offset 0  6 bytes  magic "\x93NUMPY"
 *        6  1 byte   major version (1, 2 or 3)
 *        7  1 byte   minor version (0)
 *        8  2 bytes  header length, little-endian (version 1.0)
 *        8  4 bytes  header length, little-endian (versions 2.0 and 3.0)
 *    10/12  n bytes  a Python dict literal (latin-1; UTF-8 in 3.0), padded with spaces and '\n'
 *                    so that the data starts at a multiple of 64 (16 before NumPy 1.14)
 * </pre>
 * followed by the elements in C or Fortran order.
 *
 * <p>{@link #decode} validates everything it reads before anything uses it: magic, version, header
 * length against the file size and a 1 MiB limit, the dict (via {@link NpyDictParser}), the dtype,
 * each dimension, the element count and byte size against 2^63, the data offset's alignment and
 * the data's extent against the file size. Every violation is a {@link TensorFormatException}.
 *
 * <p>Immutable and thread-safe.
 */
public final class NpyHeader {
    /** The six magic bytes every {@code .npy} file starts with. */
    static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    /** Bytes to read to know the header length, whatever the version. */
    static final int PREFIX_PROBE_BYTES = 12;
    /** Largest header accepted: NumPy's own default limit is 10000 bytes. */
    static final int MAX_HEADER_BYTES = 1 << 20;
    /** Most dimensions accepted: NumPy 2's limit. */
    static final int MAX_RANK = 64;
    /** Data offset alignment of every NumPy version (64 since 1.14, 16 before). */
    static final int READ_ALIGNMENT = 16;
    /** Data offset alignment of written files, as NumPy >= 1.14 writes them. */
    static final int WRITE_ALIGNMENT = 64;

    private static final Set<String> KEYS = Set.of("descr", "fortran_order", "shape");
    private static final int V1_PREFIX = 10;
    private static final int V2_PREFIX = 12;
    private static final int V1_MAX_HEADER = 0xffff;

    private final int majorVersion;
    private final String descr;
    /** The dtype (of {@code descr}) and the shape, validated; its element count and byte size are the data's. */
    private final TensorSpec spec;
    private final boolean fortranOrder;
    private final long dataOffset;

    private NpyHeader(int majorVersion, String descr, TensorSpec spec, boolean fortranOrder, long dataOffset) {
        this.majorVersion = majorVersion;
        this.descr = descr;
        this.spec = spec;
        this.fortranOrder = fortranOrder;
        this.dataOffset = dataOffset;
    }

    /**
     * The header NumPy would write for an array: version 1.0 when the header fits in 65535 bytes,
     * else 2.0; the data offset padded to a multiple of 64.
     *
     * @throws IllegalArgumentException when {@code dtype} has no NumPy equivalent (bfloat16), a
     *         dimension is negative, the byte size overflows 2^63 or the rank exceeds 64
     */
    public static NpyHeader of(DType dtype, long[] shape, boolean fortranOrder) {
        Objects.requireNonNull(dtype, "dtype");
        String descr = NpyDescr.of(dtype);
        long[] dims = shape.clone();
        if (dims.length > MAX_RANK) {
            throw new IllegalArgumentException("shape " + Arrays.toString(dims) + " has " + dims.length
                    + " dimensions; .npy readers accept at most " + MAX_RANK);
        }
        Shapes.checkStridable(dims, dtype.byteSize(), dtype.displayName());
        TensorSpec spec = TensorSpec.of(dtype, dims);
        int dictLength = dictText(descr, fortranOrder, dims).length() + 1; // + the final '\n'
        long v1Offset = roundUp(V1_PREFIX + dictLength, WRITE_ALIGNMENT);
        if (v1Offset - V1_PREFIX <= V1_MAX_HEADER) {
            return new NpyHeader(1, descr, spec, fortranOrder, v1Offset);
        }
        return new NpyHeader(2, descr, spec, fortranOrder, roundUp(V2_PREFIX + dictLength, WRITE_ALIGNMENT));
    }

    /**
     * Validates the fixed prefix (magic, version, header length) and returns where the data starts.
     *
     * @param start at least the first {@code min(fileSize, 12)} bytes of the file
     * @param fileSize the file's size in bytes
     * @return the data offset: how many bytes {@link #decode} needs
     */
    static long dataOffset(Path file, MemorySegment start, long fileSize) throws TensorFormatException {
        long available = Math.min(start.byteSize(), fileSize);
        for (int i = 0; i < MAGIC.length; i++) {
            if (i >= available) {
                throw new TensorFormatException(file, "truncated .npy file: " + fileSize
                        + " bytes, shorter than the 10-byte fixed header");
            }
            if (start.get(ValueLayout.JAVA_BYTE, i) != MAGIC[i]) {
                throw new TensorFormatException(file, "not a .npy file: it starts with "
                        + hex(start, Math.min(available, MAGIC.length)) + ", a .npy file starts with 934e554d5059 (\"\\x93NUMPY\")");
            }
        }
        if (available < V1_PREFIX) {
            throw new TensorFormatException(file, "truncated .npy file: " + fileSize
                    + " bytes, shorter than the 10-byte fixed header");
        }
        int major = start.get(ValueLayout.JAVA_BYTE, 6) & 0xff;
        int minor = start.get(ValueLayout.JAVA_BYTE, 7) & 0xff;
        if (major < 1 || major > 3 || minor != 0) {
            throw new TensorFormatException(file, "unsupported .npy format version " + major + "." + minor
                    + "; supported: 1.0, 2.0, 3.0");
        }
        long headerLength;
        int prefix;
        if (major == 1) {
            prefix = V1_PREFIX;
            headerLength = start.get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 8) & 0xffffL;
        } else {
            prefix = V2_PREFIX;
            if (available < V2_PREFIX) {
                throw new TensorFormatException(file, "truncated .npy file: " + fileSize + " bytes, shorter than the "
                        + "12-byte fixed header of version " + major + ".0");
            }
            headerLength = start.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 8) & 0xffff_ffffL;
        }
        if (headerLength > MAX_HEADER_BYTES) {
            throw new TensorFormatException(file, "header length " + headerLength + " exceeds the limit of "
                    + MAX_HEADER_BYTES + " bytes (NumPy writes a few hundred); the file is corrupt or hostile");
        }
        long offset = prefix + headerLength;
        if (offset > fileSize) {
            throw new TensorFormatException(file, "header length " + headerLength + " reaches byte " + offset
                    + " but the file has only " + fileSize + " bytes (truncated?)");
        }
        if (offset % READ_ALIGNMENT != 0) {
            throw new TensorFormatException(file, "data offset " + offset + " (header length " + headerLength
                    + ") is not a multiple of " + READ_ALIGNMENT + ", as every NumPy version pads it; the header length is corrupt");
        }
        return offset;
    }

    /**
     * Decodes and validates a whole header.
     *
     * @param bytes at least the first {@link #dataOffset} bytes of the file
     * @param fileSize the file's size: the data must fit in it
     */
    static NpyHeader decode(Path file, MemorySegment bytes, long fileSize) throws TensorFormatException {
        long offset = dataOffset(file, bytes, fileSize);
        if (bytes.byteSize() < offset) {
            throw new IllegalArgumentException("decode needs the first " + offset + " bytes, got " + bytes.byteSize());
        }
        int major = bytes.get(ValueLayout.JAVA_BYTE, 6);
        int prefix = major == 1 ? V1_PREFIX : V2_PREFIX;
        byte[] raw = bytes.asSlice(prefix, offset - prefix).toArray(ValueLayout.JAVA_BYTE);
        String text = major == 3 ? decodeUtf8(file, raw) : new String(raw, StandardCharsets.ISO_8859_1);
        Map<String, Object> dict = NpyDictParser.parse(file, text);
        if (!dict.keySet().equals(KEYS)) {
            throw new TensorFormatException(file, "the header dict has keys " + dict.keySet()
                    + "; a .npy header has exactly 'descr', 'fortran_order' and 'shape'");
        }
        String descr = typed(file, dict, "descr", String.class, "a type string such as '<f4'");
        boolean fortranOrder = typed(file, dict, "fortran_order", Boolean.class, "True or False");
        long[] shape = typed(file, dict, "shape", long[].class, "a tuple of integers");
        DType dtype = NpyDescr.parse(file, descr);
        long count = validateShape(file, shape, dtype);
        long byteSize = count * dtype.byteSize();
        if (byteSize > fileSize - offset) {
            throw new TensorFormatException(file, "shape " + shapeText(shape) + " of " + dtype.displayName() + " needs "
                    + byteSize + " data bytes at offset " + offset + " but the file has only " + (fileSize - offset)
                    + " (truncated?)");
        }
        return new NpyHeader(major, descr, TensorSpec.of(dtype, shape), fortranOrder, offset);
    }

    private static long validateShape(Path file, long[] shape, DType dtype) throws TensorFormatException {
        if (shape.length > MAX_RANK) {
            throw new TensorFormatException(file, "shape has " + shape.length + " dimensions; at most " + MAX_RANK
                    + " are supported");
        }
        try {
            // Stridable, not just a byte size that fits: the strides are computed from the shape.
            Shapes.checkStridable(shape, dtype.byteSize(), dtype.displayName());
            return Shapes.elementCount(shape);
        } catch (IllegalArgumentException invalid) {
            throw new TensorFormatException(file, invalid.getMessage(), invalid);
        }
    }

    private static <T> T typed(Path file, Map<String, Object> dict, String key, Class<T> type, String expected)
            throws TensorFormatException {
        Object value = dict.get(key);
        if (type.isInstance(value)) {
            return type.cast(value);
        }
        if (key.equals("descr") && value instanceof NpyDictParser.ListValue list) {
            throw new TensorFormatException(file, "structured dtypes are not supported (descr is the list "
                    + NpyDictParser.quote(list.text()) + "); save each field as its own array");
        }
        String found = value instanceof long[] tuple ? "the tuple " + shapeText(tuple)
                : value instanceof String s ? "the string " + NpyDictParser.quote(s)
                : value instanceof NpyDictParser.ListValue l ? "the list " + NpyDictParser.quote(l.text())
                : String.valueOf(value);
        throw new TensorFormatException(file, "'" + key + "' must be " + expected + ", found " + found);
    }

    private static String decodeUtf8(Path file, byte[] raw) throws TensorFormatException {
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(raw))
                    .toString();
        } catch (CharacterCodingException invalid) {
            throw new TensorFormatException(file, "the version 3.0 header is not valid UTF-8", invalid);
        }
    }

    /** @return the complete header: magic, version, length and padded dict, {@link #dataOffset()} bytes */
    byte[] encode() {
        String dict = dictText(descr, fortranOrder, spec.shape());
        int prefix = majorVersion == 1 ? V1_PREFIX : V2_PREFIX;
        int headerLength = (int) (dataOffset - prefix);
        ByteBuffer out = ByteBuffer.allocate((int) dataOffset).order(ByteOrder.LITTLE_ENDIAN);
        out.put(MAGIC).put((byte) majorVersion).put((byte) 0);
        if (majorVersion == 1) {
            out.putShort((short) headerLength);
        } else {
            out.putInt(headerLength);
        }
        out.put(dict.getBytes(StandardCharsets.ISO_8859_1));
        while (out.remaining() > 1) {
            out.put((byte) ' ');
        }
        out.put((byte) '\n');
        return out.array();
    }

    private static String dictText(String descr, boolean fortranOrder, long[] shape) {
        return "{'descr': '" + descr + "', 'fortran_order': " + (fortranOrder ? "True" : "False")
                + ", 'shape': " + shapeText(shape) + ", }";
    }

    /** @return the shape as Python writes a tuple: {@code ()}, {@code (3,)}, {@code (3, 4)} */
    static String shapeText(long[] shape) {
        StringBuilder out = new StringBuilder("(");
        for (int i = 0; i < shape.length; i++) {
            out.append(i == 0 ? "" : ", ").append(shape[i]);
        }
        return out.append(shape.length == 1 ? ",)" : ")").toString();
    }

    private static long roundUp(long value, int alignment) {
        return (value + alignment - 1) / alignment * alignment;
    }

    private static String hex(MemorySegment bytes, long count) {
        return HexFormat.of().formatHex(bytes.asSlice(0, count).toArray(ValueLayout.JAVA_BYTE));
    }

    /** @return the format version: "1.0", "2.0" or "3.0" */
    public String version() {
        return majorVersion + ".0";
    }

    /** @return the major format version: 1, 2 or 3 */
    public int majorVersion() {
        return majorVersion;
    }

    /** @return the type string as written in the file ({@code "<f4"}, {@code "|u1"}) */
    public String descr() {
        return descr;
    }

    /** @return the element type */
    public DType dtype() {
        return spec.dtype();
    }

    /** @return true when the data is in Fortran (column-major) order */
    public boolean fortranOrder() {
        return fortranOrder;
    }

    /** @return a copy of the shape */
    public long[] shape() {
        return spec.shape();
    }

    /** @return the element strides of the data's order */
    public long[] strides() {
        long[] shape = spec.shape();
        return fortranOrder ? Shapes.fortranStrides(shape) : Shapes.cStrides(shape);
    }

    /** @return the number of elements */
    public long elementCount() {
        return spec.elementCount();
    }

    /** @return where the data starts in the file */
    public long dataOffset() {
        return dataOffset;
    }

    /** @return the data's size in bytes */
    public long dataByteSize() {
        return spec.byteSize();
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof NpyHeader that && majorVersion == that.majorVersion && descr.equals(that.descr)
                && fortranOrder == that.fortranOrder && spec.equals(that.spec) && dataOffset == that.dataOffset;
    }

    @Override
    public int hashCode() {
        return Objects.hash(majorVersion, descr, fortranOrder, spec, dataOffset);
    }

    @Override
    public String toString() {
        return "NpyHeader[version " + version() + ", descr '" + descr + "', fortran_order " + fortranOrder
                + ", shape " + shapeText(spec.shape()) + ", data at " + dataOffset + "]";
    }
}
