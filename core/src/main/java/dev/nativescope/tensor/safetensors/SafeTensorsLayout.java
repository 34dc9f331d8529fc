package dev.nativescope.tensor.safetensors;

import dev.nativescope.internal.json.JsonWriter;
import dev.nativescope.tensor.TensorSpec;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SequencedMap;

/**
 * Where each tensor of a new safetensors file goes, and the header bytes that say so.
 *
 * <p>The header lists the tensors in the caller's order, after {@code __metadata__} (omitted when
 * empty), and is padded with spaces so that its length, and so the data section's start, is a
 * multiple of 8, as the reference implementation does. The data section holds the tensors packed
 * back to back, ordered by element size, largest first (stable otherwise): every tensor then
 * starts at a multiple of its element size, so aligned access works, without the holes the format
 * forbids.
 *
 * <p>Immutable and thread-safe.
 */
final class SafeTensorsLayout {
    private static final int HEADER_ALIGNMENT = 8;

    private final byte[] header;
    private final List<TensorEntry> entries;
    private final long dataSize;

    private SafeTensorsLayout(byte[] header, List<TensorEntry> entries, long dataSize) {
        this.header = header;
        this.entries = entries;
        this.dataSize = dataSize;
    }

    /**
     * @throws IllegalArgumentException when a name is {@code "__metadata__"} or has an unpaired
     *         surrogate, the sizes overflow, or the header exceeds
     *         {@link SafeTensorsHeader#MAX_HEADER_BYTES}
     */
    static SafeTensorsLayout of(SequencedMap<String, TensorSpec> specs, Map<String, String> metadata) {
        Objects.requireNonNull(specs, "specs");
        Objects.requireNonNull(metadata, "metadata");
        List<String> dataOrder = new ArrayList<>();
        for (Map.Entry<String, TensorSpec> spec : specs.entrySet()) {
            String name = Objects.requireNonNull(spec.getKey(), "tensor name");
            Objects.requireNonNull(spec.getValue(), () -> "spec of tensor " + name);
            if (name.equals(SafeTensorsHeader.METADATA_KEY)) {
                throw new IllegalArgumentException("a tensor cannot be named \"" + SafeTensorsHeader.METADATA_KEY
                        + "\": the format reserves it for the metadata map; rename the tensor");
            }
            dataOrder.add(name);
        }
        dataOrder.sort(Comparator.comparingInt((String name) -> specs.get(name).dtype().byteSize()).reversed());

        Map<String, long[]> offsets = new LinkedHashMap<>();
        long dataSize = 0;
        for (String name : dataOrder) {
            long end;
            try {
                end = Math.addExact(dataSize, specs.get(name).byteSize());
            } catch (ArithmeticException overflow) {
                throw new IllegalArgumentException("the tensors together need more than 2^63-1 bytes");
            }
            offsets.put(name, new long[] {dataSize, end});
            dataSize = end;
        }

        Map<String, Object> json = new LinkedHashMap<>();
        if (!metadata.isEmpty()) {
            Map<String, Object> meta = new LinkedHashMap<>();
            metadata.forEach((key, value) -> meta.put(Objects.requireNonNull(key, "metadata key"),
                    Objects.requireNonNull(value, () -> "metadata value of " + key)));
            json.put(SafeTensorsHeader.METADATA_KEY, meta);
        }
        List<TensorEntry> entries = new ArrayList<>();
        for (Map.Entry<String, TensorSpec> spec : specs.entrySet()) {
            long[] range = offsets.get(spec.getKey());
            long[] shape = spec.getValue().shape();
            entries.add(new TensorEntry(spec.getKey(), spec.getValue().dtype(), shape, range[0], range[1]));
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("dtype", spec.getValue().dtype().safetensorsName());
            entry.put("shape", Arrays.stream(shape).boxed().toList());
            entry.put("data_offsets", List.of(range[0], range[1]));
            json.put(spec.getKey(), entry);
        }
        byte[] header = padded(JsonWriter.write(json).getBytes(StandardCharsets.UTF_8));
        if (header.length > SafeTensorsHeader.MAX_HEADER_BYTES) {
            throw new IllegalArgumentException("the header would have " + header.length + " bytes, more than the "
                    + SafeTensorsHeader.MAX_HEADER_BYTES + " readers accept; use fewer tensors or less metadata");
        }
        if (dataSize > Long.MAX_VALUE - Long.BYTES - header.length) {
            throw new IllegalArgumentException("the file would need more than 2^63-1 bytes");
        }
        return new SafeTensorsLayout(header, Collections.unmodifiableList(entries), dataSize);
    }

    private static byte[] padded(byte[] json) {
        int length = (json.length + HEADER_ALIGNMENT - 1) / HEADER_ALIGNMENT * HEADER_ALIGNMENT;
        byte[] header = Arrays.copyOf(json, length);
        Arrays.fill(header, json.length, length, (byte) ' ');
        return header;
    }

    /** @return the JSON header, padded; the file stores its length before it */
    byte[] header() {
        return header;
    }

    /** @return the tensors in header (the caller's) order, with offsets relative to the data section */
    List<TensorEntry> entries() {
        return entries;
    }

    /** @return the file offset of the data section */
    long dataStart() {
        return Long.BYTES + header.length;
    }

    /** @return the size of the whole file */
    long fileSize() {
        return dataStart() + dataSize;
    }
}
