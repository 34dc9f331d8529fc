package dev.nativescope.tensor.safetensors;

import dev.nativescope.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
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
 */
public final class SafeTensorsFile {
    private static final int NAMES_IN_MESSAGE = 10;

    private final Path file;
    private final MemorySegment mapping;
    private final long dataStart;
    private final SequencedMap<String, Tensor> tensors;
    private final Map<String, String> metadata;

    SafeTensorsFile(Path file, MemorySegment mapping, long dataStart, List<TensorEntry> entries,
            Map<String, String> metadata) {
        this.file = file;
        this.mapping = mapping;
        this.dataStart = dataStart;
        SequencedMap<String, Tensor> views = new LinkedHashMap<>();
        for (TensorEntry entry : entries) {
            views.put(entry.name(), entry.view(mapping, dataStart));
        }
        this.tensors = Collections.unmodifiableSequencedMap(views);
        this.metadata = Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
    }

    /** @return the path the file was opened or created with */
    public Path file() {
        return file;
    }

    /** @return the mapping of the whole file: length field, header and data section */
    public MemorySegment segment() {
        return mapping;
    }

    /** @return the file offset of the data section (8 + the header length) */
    public long dataStart() {
        return dataStart;
    }

    /** @return every tensor, in header order (unmodifiable) */
    public SequencedMap<String, Tensor> tensors() {
        return tensors;
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

    /** @return the {@code __metadata__} map, in header order; empty when the file has none (unmodifiable) */
    public Map<String, String> metadata() {
        return metadata;
    }

    /**
     * @return true for a file opened with {@link SafeTensors#map} (a store into one of its tensors
     *         throws {@code IllegalArgumentException}), false for one made by {@link SafeTensors#create}
     */
    public boolean isReadOnly() {
        return mapping.isReadOnly();
    }

    /**
     * Writes changes made through the tensors of a {@link SafeTensors#create}d file to the storage
     * device ({@code msync}); does nothing for a read-only mapping.
     */
    public void force() {
        if (!mapping.isReadOnly()) {
            mapping.force();
        }
    }

    @Override
    public String toString() {
        return "SafeTensorsFile[" + file + ", " + tensors.size() + " tensors, " + metadata.size() + " metadata entries]";
    }
}
