package dev.nativescope.tensor.npy;

import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;
import dev.nativescope.internal.access.SharedAccess;
import dev.nativescope.tensor.io.IfExists;
import dev.nativescope.tensor.io.MappedFile;
import dev.nativescope.tensor.io.TensorFormatException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;

/**
 * Reads and writes NumPy {@code .npy} files without copying the data: the file is mapped and a
 * {@link Tensor} views the elements in place, so opening a 1 GiB array costs the same as opening a
 * 1 KiB one, and pages are read from disk (or the page cache) only when touched.
 *
 * <p>Supported: format versions 1.0, 2.0 and 3.0; C and Fortran order; the little-endian numeric
 * types of {@link DType} (and one-byte types with any byte-order character). Refused with a
 * {@link TensorFormatException} naming the file and the problem: big-endian data, structured,
 * string and object dtypes, and every malformed, truncated or inconsistent file (see
 * {@link NpyHeader} for what is validated). Nothing from the file is used before it is validated,
 * and a file that fails validation is never mapped.
 *
 * <p>NumPy opens the same files with {@code np.load(path, mmap_mode='r')} (or {@code 'r+'} to share
 * writes with a {@link MappedFile.Mode#READ_WRITE} mapping here).
 *
 * <p>Stateless and thread-safe. The tensors returned share memory with the file: see
 * {@link MappedFile} for what happens when the file is truncated while mapped.
 */
public final class Npy {
    private Npy() {
    }

    /**
     * Maps a {@code .npy} file's data.
     *
     * @param mode {@link MappedFile.Mode#READ_ONLY}, {@code READ_WRITE} (writes reach the file) or
     *             {@code PRIVATE} (copy-on-write)
     * @param arena owns the mapping; closing it unmaps the data and invalidates the tensor
     * @param options {@link MappedFile.Option#ALLOW_WRITABLE_BY_OTHERS} to map, read-write, a file
     *        that other users can write
     * @throws TensorFormatException when the file is not a valid, supported {@code .npy} file
     * @throws java.nio.file.NoSuchFileException when it does not exist
     * @throws java.nio.file.AccessDeniedException when it cannot be opened for {@code mode}, or
     *         {@code READ_WRITE} is asked of a file that other users can write
     * @throws java.nio.file.FileSystemException when it is a directory or cannot be mapped
     * @throws IOException when it cannot be read
     */
    public static NpyFile map(Path file, MappedFile.Mode mode, Arena arena, MappedFile.Option... options)
            throws IOException {
        Objects.requireNonNull(arena, "arena");
        return SharedAccess.MAPPED_FILES.get().withChannel(file, mode, List.of(options), channel -> {
            NpyHeader header = readHeader(file, channel);
            MemorySegment data = SharedAccess.MAPPED_FILES.get().mapChannel(file, channel, mode, header.dataOffset(),
                    header.dataByteSize(), arena);
            return new NpyFile(file, header, tensorOf(header, data));
        });
    }

    /**
     * Reads and validates a {@code .npy} file's header without mapping anything.
     *
     * @throws TensorFormatException when the header is invalid or the data does not fit in the file
     */
    public static NpyHeader readHeader(Path file) throws IOException {
        return SharedAccess.MAPPED_FILES.get().withChannel(file, MappedFile.Mode.READ_ONLY, List.of(), channel -> readHeader(file, channel));
    }

    /**
     * Views a {@code .npy} file that is already in memory (a buffer received from elsewhere, an
     * entry of an {@code .npz} read into memory): the tensor is a view of {@code npy}, no copy.
     *
     * @param source names the bytes in messages (need not exist)
     * @throws TensorFormatException when the bytes are not a valid, supported {@code .npy} file
     */
    public static NpyFile view(MemorySegment npy, Path source) throws TensorFormatException {
        Objects.requireNonNull(npy, "npy");
        Objects.requireNonNull(source, "source");
        NpyHeader header = NpyHeader.decode(source, npy, npy.byteSize());
        MemorySegment data = npy.asSlice(header.dataOffset(), header.dataByteSize());
        return new NpyFile(source, header, tensorOf(header, data));
    }

    /**
     * Creates a {@code .npy} file for an array of {@code dtype} and {@code shape}, fails if the file
     * exists, and maps it read-write: the caller fills the returned tensor in place. See
     * {@link #create(Path, DType, long[], boolean, IfExists, Arena, MappedFile.Option...)}.
     *
     * @throws FileAlreadyExistsException when the file exists
     */
    public static Tensor create(Path file, DType dtype, long[] shape, boolean fortranOrder, Arena arena)
            throws IOException {
        return create(file, dtype, shape, fortranOrder, IfExists.FAIL, arena);
    }

    /**
     * Creates a {@code .npy} file and maps its data read-write. The header is the one NumPy writes
     * (version 1.0 when it fits, else 2.0; data at a multiple of 64 bytes); the data is zero until
     * the caller writes the returned tensor, whose writes reach the file directly. The file is
     * created with mode {@code 0644} less the umask; with {@link IfExists#FAIL} creation
     * is exclusive ({@code O_CREAT|O_EXCL}), with {@code REPLACE} an existing file is replaced
     * atomically.
     *
     * @param fortranOrder true to lay the data out in Fortran (column-major) order
     * @param arena owns the mapping
     * @return the data, with C or Fortran strides
     * @throws IllegalArgumentException for bfloat16 (NumPy has no such type), a negative dimension
     *         or more than 2^63 bytes
     * @param options {@link MappedFile.Option#SPARSE} to leave the data as holes instead of
     *        reserving its storage (see {@link MappedFile})
     * @throws FileAlreadyExistsException when the file exists and {@code ifExists} is {@code FAIL}
     * @throws java.nio.file.FileSystemException when the file system has no room for the file
     * @throws IOException when the file cannot be created, sized or mapped; a file this call
     *         created is then deleted
     */
    public static Tensor create(Path file, DType dtype, long[] shape, boolean fortranOrder,
                                IfExists ifExists, Arena arena, MappedFile.Option... options)
            throws IOException {
        NpyHeader header = NpyHeader.of(dtype, shape, fortranOrder);
        byte[] encoded = header.encode();
        long size = Math.addExact(header.dataOffset(), header.dataByteSize());
        MappedFile mapped = SharedAccess.MAPPED_FILES.get().create(file, size, ifExists, arena, List.of(options),
                channel -> writeFully(channel, ByteBuffer.wrap(encoded)));
        return tensorOf(header, mapped.segment().asSlice(header.dataOffset(), header.dataByteSize()));
    }

    private static Tensor tensorOf(NpyHeader header, MemorySegment data) {
        return Tensor.of(data, 0, header.dtype(), header.shape(), header.strides());
    }

    private static NpyHeader readHeader(Path file, FileChannel channel) throws IOException {
        long fileSize = channel.size();
        MemorySegment probe = MemorySegment.ofArray(read(file, channel, (int) Math.min(fileSize, NpyHeader.PREFIX_PROBE_BYTES)));
        long dataOffset = NpyHeader.dataOffset(file, probe, fileSize); // <= MAX_HEADER_BYTES + 12
        MemorySegment header = MemorySegment.ofArray(read(file, channel, (int) dataOffset));
        return NpyHeader.decode(file, header, fileSize);
    }

    private static byte[] read(Path file, FileChannel channel, int length) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(length);
        while (buffer.hasRemaining()) {
            if (channel.read(buffer, buffer.position()) < 0) {
                throw new TensorFormatException(file, "the file ended after " + buffer.position()
                        + " bytes while reading its header (truncated while being read?)");
            }
        }
        return buffer.array();
    }

    private static void writeFully(FileChannel channel, ByteBuffer bytes) throws IOException {
        while (bytes.hasRemaining()) {
            channel.write(bytes, bytes.position());
        }
    }
}
