package dev.nativescope.tensor.npy;

import dev.nativescope.tensor.Tensor;
import dev.nativescope.tensor.io.MappedFile;
import java.nio.file.Path;
import java.util.Objects;

/**
 * A {@code .npy} file opened by {@link Npy}: its validated header and the tensor viewing its data
 * in place. The tensor's segment is the data region only (the header is not part of it); it lives
 * as long as the arena passed to {@link Npy#map}.
 *
 * @param file the file, as given (for {@link Npy#view}: the name given for messages)
 * @param header the parsed header: version, descr, fortran_order, shape, data offset
 * @param tensor the data, with C or Fortran strides as the header says; writable when mapped
 *               {@link MappedFile.Mode#READ_WRITE} or {@link MappedFile.Mode#PRIVATE}
 *
 * <p>Immutable; thread-safe as far as its tensor is.
 */
public record NpyFile(Path file, NpyHeader header, Tensor tensor) {
    public NpyFile {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(header, "header");
        Objects.requireNonNull(tensor, "tensor");
    }
}
