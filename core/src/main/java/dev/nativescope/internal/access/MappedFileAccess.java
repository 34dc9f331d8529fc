package dev.nativescope.internal.access;

import dev.nativescope.tensor.io.IfExists;
import dev.nativescope.tensor.io.MappedFile;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.List;

/**
 * The channel plumbing of {@link MappedFile} that the file formats ({@code .npy}, safetensors) use to
 * validate a header through the channel before mapping what it describes. Implemented in
 * {@code dev.nativescope.tensor.io}, reached through {@link SharedAccess#MAPPED_FILES}.
 *
 * <p>Thread-safe: stateless.
 */
public interface MappedFileAccess {
    /**
     * Opens {@code file} for {@code mode} (checked as {@link MappedFile#map} checks it), passes the
     * channel to {@code action} and closes it.
     */
    <T> T withChannel(Path file, MappedFile.Mode mode, List<MappedFile.Option> options, ChannelFunction<T> action)
            throws IOException;

    /** Maps a region of an open channel into {@code arena}; failures name the file. */
    MemorySegment mapChannel(Path file, FileChannel channel, MappedFile.Mode mode, long offset, long size, Arena arena)
            throws IOException;

    /**
     * {@link MappedFile#create(Path, long, IfExists, Arena, MappedFile.Option...)}, with
     * {@code initializer} writing into the file (a header, say) through its channel before it
     * becomes visible under its name and before it is mapped.
     */
    MappedFile create(Path file, long size, IfExists ifExists, Arena arena, List<MappedFile.Option> options,
                      ChannelWriter initializer) throws IOException;

    /** Reads an open file and maps what it finds. */
    @FunctionalInterface
    interface ChannelFunction<T> {
        T apply(FileChannel channel) throws IOException;
    }

    /** Writes into a freshly created file through its channel. */
    @FunctionalInterface
    interface ChannelWriter {
        void write(FileChannel channel) throws IOException;
    }
}
