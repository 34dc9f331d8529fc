package dev.nativescope.tensor.safetensors;

import dev.nativescope.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Objects;
import java.util.SequencedMap;
import java.util.stream.Collectors;

/**
 * A safetensors file mapped into memory by {@link SafeTensors#map} (read-only) or
 * {@link SafeTensors#create} (read-write): its tensors, in header order, each a {@link Tensor} view
 * into the one mapping of the whole file, and its {@code __metadata__}.
 *
 * <p>It owns nothing: the mapping belongs to the {@code Arena} passed to {@code map} or
 * {@code create}, and every tensor becomes inaccessible when that arena closes.
 *
 * <p>Immutable and thread-safe as an object; access to the tensors follows the arena's thread
 * rules (a confined arena's mapping is readable from its owner thread only).
 *
 * @param file the path the file was opened or created with
 * @param segment the mapping of the whole file: length field, header and data section
 * @param dataStart the file offset of the data section (8 + the header length)
 * @param tensors every tensor, in header order (unmodifiable)
 * @param metadata the {@code __metadata__} map, in header order; empty when the file has none (unmodifiable)
 */
public record SafeTensorsFile(Path file, MemorySegment segment, long dataStart, SequencedMap<String, Tensor> tensors,
        Map<String, String> metadata) {
    private static final int NAMES_IN_MESSAGE = 10;

    /** Keeps unmodifiable copies of the maps, in their order. */
    public SafeTensorsFile {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(segment, "segment");
        tensors = Collections.unmodifiableSequencedMap(new LinkedHashMap<>(tensors));
        metadata = Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
    }

    /** The file whose tensors are {@code entries}' views into {@code mapping}. */
    static SafeTensorsFile of(Path file, MemorySegment mapping, long dataStart, List<TensorEntry> entries,
            Map<String, String> metadata) {
        SequencedMap<String, Tensor> views = new LinkedHashMap<>();
        for (TensorEntry entry : entries) {
            views.put(entry.name(), entry.view(mapping, dataStart));
        }
        return new SafeTensorsFile(file, mapping, dataStart, views, metadata);
    }

    /**
     * @return the tensor called {@code name}
     * @throws NoSuchElementException when the file has no such tensor (the message lists some it has)
     */
    public Tensor tensor(String name) {
        Tensor tensor = tensors.get(name);
        if (tensor == null) {
            String some = tensors.keySet().stream().limit(NAMES_IN_MESSAGE).map(SafeTensorsHeader::quote)
                    .collect(Collectors.joining(", "));
            String more = tensors.size() > NAMES_IN_MESSAGE ? ", ... (" + tensors.size() + " in all)" : "";
            throw new NoSuchElementException(file + " has no tensor named " + SafeTensorsHeader.quote(name)
                    + (tensors.isEmpty() ? "; it has no tensors" : "; it has " + some + more));
        }
        return tensor;
    }

    /**
     * @return true for a file opened with {@link SafeTensors#map} (a store into one of its tensors
     *         throws {@code IllegalArgumentException}), false for one made by {@link SafeTensors#create}
     */
    public boolean isReadOnly() {
        return segment.isReadOnly();
    }

    /**
     * Writes changes made through the tensors of a {@link SafeTensors#create}d file to the storage
     * device ({@code msync}); does nothing for a read-only mapping.
     */
    public void force() {
        if (!segment.isReadOnly()) {
            segment.force();
        }
    }

    @Override
    public String toString() {
        return "SafeTensorsFile[" + file + ", " + tensors.size() + " tensors, " + metadata.size() + " metadata entries]";
    }
}
