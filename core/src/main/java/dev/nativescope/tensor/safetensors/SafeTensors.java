package dev.nativescope.tensor.safetensors;

import dev.nativescope.internal.access.SharedAccess;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;
import dev.nativescope.tensor.TensorSpec;
import dev.nativescope.tensor.io.IfExists;
import dev.nativescope.tensor.io.MappedFile;
import dev.nativescope.tensor.io.TensorFormatException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SequencedMap;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Reads and writes <a href="https://github.com/huggingface/safetensors">safetensors</a> files
 * without copying tensor data: a file is mapped once, and every tensor is a {@link Tensor} view
 * into that mapping.
 *
 * <h2>Format</h2>
 * An 8-byte little-endian unsigned header length {@code N}; {@code N} bytes of UTF-8 JSON, an
 * object that maps each tensor name to {@code {"dtype": "F32", "shape": [2, 3], "data_offsets":
 * [begin, end]}} and may hold {@code "__metadata__"}, a string-to-string map; then the data
 * section, to the end of the file. Offsets are relative to the data section; elements are
 * little-endian, row-major. Every dtype of {@link DType} is supported (F16, BF16, F32, F64, I8-I64,
 * U8-U64, BOOL); others (F8_E4M3, ...) are rejected with a message listing the supported ones.
 *
 * <h2>Validation</h2>
 * {@link #map} reads and checks the whole header before it maps anything, so a malformed file
 * never leaves a mapping behind: {@code N} between 2 and 100,000,000 (the reference
 * implementation's limit) and within the file; strict RFC 8259 JSON in valid UTF-8, without
 * duplicate keys, nested at most 64 deep; each entry has exactly the three keys with the right
 * types, a known dtype, non-negative 64-bit dimensions, {@code end - begin} equal to the packed
 * byte size (computed without overflow); and the tensors tile the data section exactly: no
 * overlap, no hole, no trailing bytes. Every problem is a {@link TensorFormatException} naming the
 * file and what was wrong.
 *
 * <h2>Alignment</h2>
 * The format does not align tensors: a tensor may start at any byte (the data section itself
 * starts at {@code 8 + N}, and writers pad {@code N} to a multiple of 8). {@link Tensor} reads and
 * writes unaligned, so every valid file works, but a view handed to native code that expects
 * aligned data should be checked ({@code tensor.data().address() % dtype.byteSize()}).
 * {@link #write} and {@link #create} lay tensors out largest element size first, so the files they
 * write are naturally aligned.
 *
 * <h2>Files that change while mapped</h2>
 * Mapping a file that another process truncates is undefined in POSIX terms: touching a page past
 * the new end raises {@code SIGBUS}. The JDK turns that into an {@link InternalError} ("a fault
 * occurred in an unsafe memory access operation") thrown from the access (checked on JDK 25 by
 * {@code SafeTensorsBadInputTest}); the JVM keeps running. Replace files by writing a new one and
 * renaming it over the old ({@link IfExists#REPLACE} does), never by rewriting them in place.
 *
 * <p>Thread-safe: every method works on its own file and channel; the returned views follow the
 * thread rules of the arena they were mapped into.
 */
public final class SafeTensors {
    private static final ValueLayout.OfLong LENGTH_FIELD = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int MIN_HEADER_BYTES = 2; // "{}"


    private SafeTensors() {
    }

    /**
     * Maps {@code file} read-only, whole, into {@code arena} and returns its tensors as views of
     * that one mapping. The header is validated before the file is mapped; the mapping lives until
     * {@code arena} closes.
     *
     * @throws TensorFormatException when the file is not a valid safetensors file (see the class
     *         documentation for what is checked); nothing is mapped then
     * @throws IOException when the file cannot be read or mapped ({@code NoSuchFileException},
     *         {@code AccessDeniedException}, ...)
     * @throws IllegalStateException when {@code arena} is closed or not accessible from this thread
     */
    public static SafeTensorsFile map(Path file, Arena arena) throws IOException {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(arena, "arena");
        // Opened as MappedFile opens files: a FIFO, device, socket or directory is refused by type, never opened.
        return SharedAccess.MAPPED_FILES.get().withChannel(file, MappedFile.Mode.READ_ONLY, List.of(), channel -> {
            long fileSize = channel.size();
            if (fileSize < Long.BYTES) {
                throw new TensorFormatException(file, "the file has " + fileSize + " bytes, fewer than the 8-byte "
                        + "header length every safetensors file starts with (empty or truncated file?)");
            }
            byte[] lengthField = readFully(file, channel, 0, Long.BYTES);
            long headerLength = MemorySegment.ofArray(lengthField).get(LENGTH_FIELD, 0);
            checkHeaderLength(file, headerLength, fileSize);
            byte[] header = readFully(file, channel, Long.BYTES, (int) headerLength);
            long dataStart = Long.BYTES + headerLength;
            SafeTensorsHeader parsed = SafeTensorsHeader.parse(file, ByteBuffer.wrap(header), fileSize - dataStart);
            MemorySegment mapping = channel.map(FileChannel.MapMode.READ_ONLY, 0, fileSize, arena);
            checkMappedHeader(file, mapping, lengthField, header);
            return SafeTensorsFile.of(file, mapping, dataStart, parsed.entries(), parsed.metadata());
        });
    }

    private static void checkHeaderLength(Path file, long headerLength, long fileSize) throws TensorFormatException {
        String length = Long.toUnsignedString(headerLength);
        if (Long.compareUnsigned(headerLength, MIN_HEADER_BYTES) < 0) {
            throw new TensorFormatException(file, "the header length is " + length + " bytes, too short for a JSON "
                    + "object (corrupt file, or not a safetensors file?)");
        }
        if (Long.compareUnsigned(headerLength, SafeTensorsHeader.MAX_HEADER_BYTES) > 0) {
            throw new TensorFormatException(file, "the header length is " + length + " bytes, above the limit of "
                    + SafeTensorsHeader.MAX_HEADER_BYTES + " (corrupt file, or not a safetensors file?)");
        }
        if (headerLength > fileSize - Long.BYTES) {
            throw new TensorFormatException(file, "the header length is " + length + " bytes, but only "
                    + (fileSize - Long.BYTES) + " bytes follow the length field (truncated file?)");
        }
    }

    private static byte[] readFully(Path file, FileChannel channel, long position, int length) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(length);
        while (buffer.hasRemaining()) {
            if (channel.read(buffer, position + buffer.position()) < 0) {
                throw new TensorFormatException(file, "the file ended at byte " + (position + buffer.position())
                        + " while its header was read; it shrank while being opened");
            }
        }
        return buffer.array();
    }

    /** The header was validated from reads; the mapping must hold the same bytes, or the file changed since. */
    private static void checkMappedHeader(Path file, MemorySegment mapping, byte[] lengthField, byte[] header)
            throws TensorFormatException {
        try {
            if (MemorySegment.mismatch(mapping, 0, Long.BYTES, MemorySegment.ofArray(lengthField), 0, Long.BYTES) != -1
                    || MemorySegment.mismatch(mapping, Long.BYTES, Long.BYTES + header.length,
                            MemorySegment.ofArray(header), 0, header.length) != -1) {
                throw new TensorFormatException(file, "the header changed while the file was being opened; "
                        + "replace files by renaming a new file over them, not by rewriting them in place");
            }
        } catch (InternalError fault) {
            throw new TensorFormatException(file, "the file shrank while it was being opened; replace files by "
                    + "renaming a new file over them, not by rewriting them in place", fault);
        }
    }

    /**
     * Creates {@code file} (it must not exist), lays out the tensors of {@code specs} and maps the
     * whole file read-write into {@code arena}; the returned tensors are writable views, zero
     * until written, in the order of {@code specs}. Call {@link SafeTensorsFile#force()} to flush
     * them before handing the file to another process.
     *
     * <p>The file is created with mode 0644 (less the umask) and its storage is reserved: a file
     * system without room for it is a {@link java.nio.file.FileSystemException} here (see
     * {@link MappedFile#create(Path, long, IfExists, Arena, MappedFile.Option...)}).
     *
     * @param metadata the {@code __metadata__} map (empty for none), written in its iteration order
     * @throws FileAlreadyExistsException when {@code file} exists
     * @throws IllegalArgumentException when a tensor is named {@code "__metadata__"}, a string has
     *         an unpaired surrogate, or the header would exceed 100,000,000 bytes
     * @throws java.nio.file.FileSystemException when the file system has no room for the file
     * @throws IOException when the file cannot be created or mapped; it is deleted again then
     */
    public static SafeTensorsFile create(Path file, SequencedMap<String, TensorSpec> specs, Map<String, String> metadata,
            Arena arena) throws IOException {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(arena, "arena");
        SafeTensorsLayout layout = SafeTensorsLayout.of(specs, metadata);
        MappedFile created = MappedFile.create(file, layout.fileSize(), IfExists.FAIL, arena);
        MemorySegment mapping = created.segment();
        mapping.set(LENGTH_FIELD, 0, layout.header().length);
        MemorySegment.copy(MemorySegment.ofArray(layout.header()), 0, mapping, Long.BYTES, layout.header().length);
        return SafeTensorsFile.of(file, mapping, layout.dataStart(), layout.entries(), metadata);
    }


    /** {@link #write(Path, SequencedMap, Map, IfExists)} with {@link IfExists#FAIL}. */
    public static void write(Path file, SequencedMap<String, Tensor> tensors, Map<String, String> metadata)
            throws IOException {
        write(file, tensors, metadata, IfExists.FAIL);
    }

    /**
     * Writes {@code tensors} (in this order in the header) and {@code metadata} as a safetensors
     * file. Each tensor, contiguous or not, is copied in row-major order with
     * {@link Tensor#copyTo} straight into a read-write mapping of the new file (no copy on the
     * heap), and the mapping is forced to the storage device before this method returns.
     *
     * <p>With {@link IfExists#REPLACE} the file is written under a temporary name in the same
     * directory and renamed over {@code file} at the end, atomically; a reader never sees a
     * partial file, and the tensors written may be views of the file being replaced. The new file
     * has mode 0644 (less the umask). On failure nothing is left behind.
     *
     * @throws FileAlreadyExistsException when {@code file} exists and {@code ifExists} is {@code FAIL}
     * @throws IllegalArgumentException as for {@link #create}
     * @throws IOException when writing fails, including a memory fault while copying (a file
     *         system that ran out of space, or a mapped source file that shrank)
     */
    public static void write(Path file, SequencedMap<String, Tensor> tensors, Map<String, String> metadata,
            IfExists ifExists) throws IOException {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(tensors, "tensors");
        Objects.requireNonNull(ifExists, "ifExists");
        SequencedMap<String, TensorSpec> specs = new LinkedHashMap<>();
        tensors.forEach((name, tensor) -> specs.put(name, TensorSpec.of(Objects.requireNonNull(tensor,
                () -> "tensor " + name))));
        Path target = ifExists == IfExists.REPLACE ? temporarySibling(file) : file;
        try (Arena arena = Arena.ofConfined()) {
            SafeTensorsFile created = create(target, specs, metadata, arena);
            boolean success = false;
            try {
                copyAll(target, tensors, created);
                if (ifExists == IfExists.REPLACE) {
                    Files.move(target, file, StandardCopyOption.ATOMIC_MOVE);
                }
                success = true;
            } finally {
                if (!success) {
                    deleteAfterFailure(target);
                }
            }
        }
    }

    private static void copyAll(Path target, SequencedMap<String, Tensor> tensors, SafeTensorsFile created)
            throws IOException {
        try {
            for (Map.Entry<String, Tensor> source : tensors.entrySet()) {
                source.getValue().copyTo(created.tensor(source.getKey()).data());
            }
            created.force();
        } catch (InternalError fault) {
            throw new IOException(target + ": a memory fault occurred while copying tensors into the mapped file "
                    + "(the file system is full, or a mapped source file shrank)", fault);
        }
    }

    private static Path temporarySibling(Path file) {
        Path name = Objects.requireNonNull(file.getFileName(), () -> file + " has no file name");
        return file.resolveSibling("." + name + "." + Long.toHexString(ThreadLocalRandom.current().nextLong()) + ".tmp");
    }

    /** Best effort: the failure that got us here is what the caller needs to see. */
    private static void deleteAfterFailure(Path file) {
        try {
            Files.deleteIfExists(file);
        } catch (IOException ignored) {
            // the original exception propagates; a leftover file is the lesser problem
        }
    }
}
