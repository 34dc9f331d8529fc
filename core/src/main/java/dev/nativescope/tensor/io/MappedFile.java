package dev.nativescope.tensor.io;

import dev.nativescope.internal.access.SharedAccess;
import dev.nativescope.internal.posix.PosixFiles;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.OpenOption;
import java.nio.file.StandardCopyOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * A region of a file mapped into memory with {@link FileChannel#map(FileChannel.MapMode, long, long, Arena)}:
 * the mapping belongs to the caller's {@link Arena} and is unmapped when that arena closes. The
 * channel used to map is closed before any method here returns; the mapping does not need it.
 *
 * <p>The static methods open, create or grow files and map them:
 * <ul>
 * <li>{@link #map(Path, Mode, Arena, Option...)} and {@link #map(Path, Mode, long, long, Arena, Option...)} map an existing
 *     file, or a region that must lie inside it: they never change the file.</li>
 * <li>{@link #create(Path, long, IfExists, Arena, Option...)} creates a file of a given size
 *     (zero-filled, its storage reserved) with mode {@code 0644} (less whatever the umask removes)
 *     and maps it read-write.</li>
 * <li>{@link #grow(Path, long, Arena, Option...)} makes an existing file at least a given size and
 *     maps that much read-write.</li>
 * </ul>
 *
 * <p><b>Storage is reserved up front.</b> {@code create} and {@code grow} allocate the file's blocks
 * ({@code posix_fallocate}) before mapping, so a full file system, an exhausted quota or a file size
 * limit is a {@link FileSystemException} from the call, not a {@code SIGBUS} at the first store into
 * a page that has no block (which the JVM reports as an {@link InternalError}, and which kills the
 * process when native code does the store). {@link Option#SPARSE} skips the reservation for files
 * that are meant to stay mostly holes.
 *
 * <p><b>Created files are made resident.</b> A file {@code create} reserved (not {@link Option#SPARSE})
 * of 64 KiB to 64 MiB also has every page faulted in for writing before {@code create} returns, in one
 * {@code madvise(MADV_POPULATE_WRITE)} (Linux 5.14+; silently skipped otherwise): a new output is
 * written whole, and one call costs about a quarter less than a fault per 4 KiB page at the first
 * stores. Those pages are then resident and dirty: a file to be filled only in part is better
 * created {@link Option#SPARSE}.
 *
 * <p><b>What mapping saves.</b> Mapping saves the copies of {@code read(2)} and {@code write(2)},
 * not time at every size: mapping a new file costs {@code mmap}, {@code munmap} and a page fault per
 * page where {@code write(2)} fills the page cache in bulk, so for a new file per inference of up to
 * a few MiB reading and writing is faster (BENCHMARKS.md section 24). Mapping wins when the data is
 * large, or when its consumer reads the mapping itself (another process, or the same mapping reused).
 *
 * <p><b>Files other users can write.</b> A {@link Mode#READ_WRITE} mapping shares every store with
 * the file, and whoever can write the file can also truncate it under the native code that reads
 * the mapping. So a shared read-write mapping of a file that a user other than this process's
 * effective user can write (it belongs to another user, or is group- or world-writable) is refused
 * with an {@link AccessDeniedException}, unless {@link Option#ALLOW_WRITABLE_BY_OTHERS} says every
 * such writer is trusted. The check reads the attributes of the file actually opened (through its
 * descriptor), so renaming another file into its place after the check changes nothing.
 *
 * <p><b>A file that shrinks under a mapping.</b> When another process (or this one) truncates the
 * file, pages beyond the new end no longer have backing storage and the kernel answers an access to
 * them with {@code SIGBUS}. The JVM does not crash: it turns the fault inside a memory-segment
 * access (element reads and writes, bulk copies) into {@link InternalError}
 * ("a fault occurred in an unsafe memory access operation"), thrown by that access. Native code
 * that touches such a page gets the signal itself, and that does crash the process; guard against
 * truncation by owning the file (create it with {@link #create}, keep it in a private directory)
 * before handing mapped memory to native code.
 *
 * <p>{@link Mode#PRIVATE} mappings need a file that is open for writing, because the JDK refuses a
 * copy-on-write mapping of a channel opened read-only; the file itself is never written.
 *
 * <p>Instances are immutable and thread-safe; the memory they map is shared between threads (and,
 * for {@link Mode#READ_ONLY} and {@link Mode#READ_WRITE}, processes) without any coordination.
 *
 * @param file the mapped file, as given
 * @param mode how it is mapped
 * @param offset the file offset of the segment's first byte
 * @param segment the mapped bytes; valid until the arena closes
 */
public record MappedFile(Path file, Mode mode, long offset, MemorySegment segment) {

    /** How a file is mapped. */
    public enum Mode {
        /** Read-only, shared: writes through the segment throw; others' writes to the file are seen. */
        READ_ONLY(FileChannel.MapMode.READ_ONLY, Set.of(StandardOpenOption.READ)),
        /** Read-write, shared: writes go to the file and are seen by every process that maps it. */
        READ_WRITE(FileChannel.MapMode.READ_WRITE, Set.of(StandardOpenOption.READ, StandardOpenOption.WRITE)),
        /** Copy-on-write: writes stay private to this mapping; the file is never changed. */
        PRIVATE(FileChannel.MapMode.PRIVATE, Set.of(StandardOpenOption.READ, StandardOpenOption.WRITE));

        private final FileChannel.MapMode mapMode;
        private final Set<OpenOption> openOptions;

        Mode(FileChannel.MapMode mapMode, Set<OpenOption> openOptions) {
            this.mapMode = mapMode;
            this.openOptions = openOptions;
        }

        /** @return the options to open the channel with */
        Set<OpenOption> openOptions() {
            return openOptions;
        }

        FileChannel.MapMode mapMode() {
            return mapMode;
        }
    }

    /** Options of the open, create and grow methods. */
    public enum Option {
        /**
         * {@link #create} and {@link #grow}: do not reserve storage; new bytes are holes that take
         * blocks only when written. A store into a hole on a full file system then faults (see the
         * class documentation). Ignored by {@link #map}.
         */
        SPARSE,
        /**
         * {@link Mode#READ_WRITE} mappings (and {@link #grow}): accept a file that users other than
         * this process's effective user can write. Ignored for the other modes.
         */
        ALLOW_WRITABLE_BY_OTHERS
    }

    static {
        SharedAccess.MAPPED_FILES.register(FileChannels.INSTANCE);
    }

    /** Checks that every component is there. */
    public MappedFile {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(mode, "mode");
        Objects.requireNonNull(segment, "segment");
    }

    /**
     * Maps a whole existing file.
     *
     * @param arena owns the mapping: closing it unmaps the file
     * @param options {@link Option#ALLOW_WRITABLE_BY_OTHERS} to accept, for {@link Mode#READ_WRITE},
     *        a file that other users can write
     * @throws NoSuchFileException when the file does not exist
     * @throws AccessDeniedException when it cannot be opened for {@code mode}, or when a
     *         {@link Mode#READ_WRITE} mapping is asked of a file other users can write
     * @throws FileSystemException when it is a directory or cannot be mapped (the message names the file)
     * @throws IOException when it cannot be opened (I/O errors, out of file descriptors)
     */
    public static MappedFile map(Path file, Mode mode, Arena arena, Option... options) throws IOException {
        return map(file, mode, 0, -1, arena, options);
    }

    /**
     * Maps {@code size} bytes of an existing file starting at {@code offset}. The region must lie
     * inside the file: this never extends the file (use {@link #grow} for that).
     *
     * @param offset the first byte to map, any value (need not be page-aligned)
     * @param size how many bytes to map; -1 for everything from {@code offset} to the end of the file
     * @throws FileSystemException when the file is too small for the region, is a directory, or
     *         cannot be mapped
     * @throws NoSuchFileException when the file does not exist
     * @throws AccessDeniedException as for {@link #map(Path, Mode, Arena, Option...)}
     * @throws IllegalArgumentException when {@code offset} is negative or {@code size} below -1
     */
    public static MappedFile map(Path file, Mode mode, long offset, long size, Arena arena, Option... options)
            throws IOException {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(mode, "mode");
        Objects.requireNonNull(arena, "arena");
        if (offset < 0 || size < -1) {
            throw new IllegalArgumentException("cannot map " + size + " bytes at offset " + offset + " of " + file
                    + ": offset must be >= 0 and size >= 0 (or -1 for the rest of the file)");
        }
        return FileChannels.INSTANCE.withChannel(file, mode, List.of(options), channel -> {
            long fileSize = channel.size();
            long length = size == -1 ? Math.max(0, fileSize - offset) : size;
            if (offset > fileSize || length > fileSize - offset) {
                throw new FileSystemException(file.toString(), null, "the file has " + fileSize
                        + " bytes, too small to map " + length + " bytes at offset " + offset
                        + "; grow it first (MappedFile.grow) or map a smaller region");
            }
            return new MappedFile(file, mode, offset, FileChannels.INSTANCE.mapChannel(file, channel, mode, offset, length, arena));
        });
    }

    /**
     * Creates a file of {@code size} zero bytes, with its storage reserved (unless
     * {@link Option#SPARSE}), and maps all of it read-write. The file gets mode {@code 0644}, less
     * what the process umask removes. With {@link IfExists#FAIL} it is created with
     * {@code O_CREAT|O_EXCL}, which also refuses a symbolic link planted under its name.
     *
     * @param ifExists whether an existing file is an error or is replaced
     * @param options {@link Option#SPARSE} to leave the new bytes as holes
     * @throws FileAlreadyExistsException when the file exists and {@code ifExists} is {@link IfExists#FAIL}
     * @throws NoSuchFileException when the parent directory does not exist
     * @throws FileSystemException when the file system has no room for {@code size} bytes (or a
     *         quota or {@code ulimit -f} forbids them); the file is then removed
     * @throws IOException when the file cannot be created, sized or mapped; the file is then removed
     */
    public static MappedFile create(Path file, long size, IfExists ifExists, Arena arena, Option... options)
            throws IOException {
        return FileChannels.INSTANCE.create(file, size, ifExists, arena, List.of(options), channel -> { });
    }

    /**
     * Makes an existing file at least {@code size} bytes long (new bytes read as zeros; the file never
     * shrinks), reserves storage for its first {@code size} bytes (unless {@link Option#SPARSE}) and
     * maps them read-write.
     *
     * @throws NoSuchFileException when the file does not exist
     * @throws AccessDeniedException when other users can write the file (see
     *         {@link Option#ALLOW_WRITABLE_BY_OTHERS}) or it cannot be opened for writing
     * @throws FileSystemException when it is a directory, cannot be mapped, or the file system has
     *         no room for {@code size} bytes
     */
    public static MappedFile grow(Path file, long size, Arena arena, Option... options) throws IOException {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(arena, "arena");
        if (size < 0) {
            throw new IllegalArgumentException("cannot grow " + file + " to a negative size " + size);
        }
        List<Option> optionList = List.of(options);
        try (PosixFiles.OpenFile opened = FileChannels.openChecked(file, Mode.READ_WRITE, optionList)) {
            if (!optionList.contains(Option.SPARSE)) {
                opened.reserve(size);
            }
            try (FileChannel channel = opened.channel(Mode.READ_WRITE.openOptions())) {
                if (channel.size() < size) {
                    FileChannels.setSize(file, channel, size);
                }
                return new MappedFile(file, Mode.READ_WRITE, 0,
                        FileChannels.INSTANCE.mapChannel(file, channel, Mode.READ_WRITE, 0, size, arena));
            }
        }
    }

    /** @return the number of mapped bytes */
    public long byteSize() {
        return segment.byteSize();
    }

    /**
     * Writes changes of a {@link Mode#READ_WRITE} mapping to the storage device ({@code msync}); other
     * processes see the changes without it. Does nothing for the other modes.
     */
    public void force() {
        if (mode == Mode.READ_WRITE && segment.byteSize() > 0) {
            segment.force();
        }
    }

    @Override
    public String toString() {
        return "MappedFile[" + file + ", " + mode + ", offset=" + offset + ", bytes=" + segment.byteSize() + "]";
    }
}
