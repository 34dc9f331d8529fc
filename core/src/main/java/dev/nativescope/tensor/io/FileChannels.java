package dev.nativescope.tensor.io;

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
import dev.nativescope.internal.access.MappedFileAccess;
import dev.nativescope.tensor.io.MappedFile.Mode;
import dev.nativescope.tensor.io.MappedFile.Option;

/**
 * The channel plumbing behind {@link MappedFile}: opening files as checked there, creating them
 * exclusively or by atomic replacement with their storage reserved, sizing and mapping channels.
 * The file formats reach it through {@code SharedAccess.MAPPED_FILES.get()}, to validate a header
 * through the channel before mapping what it describes.
 *
 * <p>Stateless and thread-safe.
 */
final class FileChannels implements MappedFileAccess {
    static final FileChannels INSTANCE = new FileChannels();

    /** Mode of created files before the umask: rw-r--r--. */
    private static final String CREATED_FILE_PERMISSIONS = "rw-r--r--";
    private static final int CREATED_FILE_MODE = 0644;
    /**
     * The largest created file whose pages {@link #create} populates up front: beyond it, making
     * that much page cache resident and dirty before the writer starts (and for a writer that may
     * fill only part of it) costs more than the faults it saves, which are then a small share of
     * writing the file.
     */
    static final long POPULATE_LIMIT = 64L << 20;
    /**
     * The smallest created file {@link #create} populates: below 16 pages the {@code madvise} call
     * costs about what the few faults it saves do (C floor, BENCHMARKS.md section 24: 4 KiB 20.8 ->
     * 20.7-25.0 us; 64 KiB 55.9-63.5 -> 51.9-56.9 us).
     */
    static final long POPULATE_MINIMUM = 64L << 10;

    private FileChannels() {
    }

    /**
     * Like {@link #create(Path, long, IfExists, Arena, Option...)}, with {@code initializer} writing
     * into the file (a header, say) through its channel before it becomes visible under its name
     * (for {@link IfExists#REPLACE}) and before it is mapped.
     */
    @Override
    public MappedFile create(Path file, long size, IfExists ifExists, Arena arena, List<Option> options,
                             ChannelWriter initializer) throws IOException {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(ifExists, "ifExists");
        Objects.requireNonNull(arena, "arena");
        if (size < 0) {
            throw new IllegalArgumentException("cannot create " + file + " with a negative size " + size);
        }
        Path absolute = file.toAbsolutePath();
        Path building = ifExists == IfExists.FAIL ? file
                : Files.createTempFile(absolute.getParent(), "." + absolute.getFileName(), ".partial", permissions());
        boolean success = false;
        try {
            MappedFile mapped;
            try (FileChannel channel = openForCreate(file, building, ifExists, size, options)) {
                initializer.write(channel);
                if (building != file) {
                    Files.move(building, file, StandardCopyOption.ATOMIC_MOVE,
                            StandardCopyOption.REPLACE_EXISTING);
                    building = file;
                }
                mapped = new MappedFile(file, Mode.READ_WRITE, 0,
                        mapChannel(file, channel, Mode.READ_WRITE, 0, size, arena));
            }
            if (size >= POPULATE_MINIMUM && size <= POPULATE_LIMIT && !options.contains(Option.SPARSE)) {
                // A new file's pages are all zero and its storage reserved: faulting them in now, in
                // one call, is cheaper than a fault per page at the writer's first stores. A failure
                // (an old kernel) leaves those faults to the writer, as before.
                PosixFiles.populateForWrite(mapped.segment());
            }
            success = true;
            return mapped;
        } catch (FileAlreadyExistsException exists) {
            building = null; // not ours: never delete a file we did not create
            throw exists;
        } finally {
            if (!success && building != null) {
                Files.deleteIfExists(building);
            }
        }
    }

    private static FileChannel openForCreate(Path file, Path building, IfExists ifExists, long size,
                                             List<Option> options) throws IOException {
        PosixFiles.OpenFile opened;
        if (ifExists == IfExists.REPLACE) {
            // A FIFO, device, socket or directory under the name is refused, not replaced.
            PosixFiles.requireReplaceable(file);
            // Our own temporary name, created exclusively: follow no link planted since.
            opened = PosixFiles.open(building, PosixFiles.O_RDWR | PosixFiles.O_NOFOLLOW, 0);
        } else {
            try {
                opened = PosixFiles.open(file, PosixFiles.O_RDWR | PosixFiles.O_CREAT | PosixFiles.O_EXCL,
                        CREATED_FILE_MODE);
            } catch (FileAlreadyExistsException exists) {
                FileAlreadyExistsException named = new FileAlreadyExistsException(file.toString(), null,
                        "already exists; delete it or create with IfExists.REPLACE");
                named.initCause(exists);
                throw named;
            }
        }
        try (opened) {
            if (options.contains(Option.SPARSE)) {
                FileChannel channel = opened.channel(Mode.READ_WRITE.openOptions());
                boolean success = false;
                try {
                    setSize(file, channel, size);
                    success = true;
                    return channel;
                } finally {
                    if (!success) {
                        channel.close();
                    }
                }
            }
            opened.reserve(size);
            return opened.channel(Mode.READ_WRITE.openOptions());
        }
    }

    /**
     * Opens {@code file} for {@code mode}, passes the channel to {@code action} and closes it: for
     * readers that validate a header through the channel before mapping (with
     * {@link #mapChannel}) what it describes.
     */
    @Override
    public <T> T withChannel(Path file, Mode mode, List<Option> options, ChannelFunction<T> action)
            throws IOException {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(mode, "mode");
        // One real open, the channel's: no descriptor of our own is needed to read and map.
        PosixFiles.CheckedChannel opened = open(file, () -> PosixFiles.openRegularChannel(file, mode.openOptions()));
        try (FileChannel channel = opened.channel()) {
            check(file, mode, options, opened.status());
            return action.apply(channel);
        }
    }

    /**
     * Opens an existing file for {@code mode} and checks what was opened: not a directory, and for
     * {@link Mode#READ_WRITE} not writable by other users unless allowed. For {@link MappedFile#grow},
     * which needs the descriptor to reserve storage.
     */
    static PosixFiles.OpenFile openChecked(Path file, Mode mode, List<Option> options) throws IOException {
        PosixFiles.OpenFile opened = open(file,
                () -> PosixFiles.openRegularFile(file, mode == Mode.READ_ONLY ? PosixFiles.O_RDONLY : PosixFiles.O_RDWR));
        boolean success = false;
        try {
            check(file, mode, options, opened.checkedStatus());
            success = true;
            return opened;
        } finally {
            if (!success) {
                opened.close();
            }
        }
    }

    /** An open of an existing regular file (never of a FIFO, device or socket: refused by type first). */
    @FunctionalInterface
    private interface Opener<T> {
        T open() throws IOException;
    }

    /** Runs {@code opener}, naming the file and the working directory when it does not exist. */
    private static <T> T open(Path file, Opener<T> opener) throws IOException {
        try {
            return opener.open();
        } catch (NoSuchFileException missing) {
            if (Files.isSymbolicLink(file)) {
                throw missing; // a dangling link: its message says so
            }
            NoSuchFileException named = new NoSuchFileException(file.toString(), null,
                    "no such file; check the path (relative paths resolve against " + Path.of("").toAbsolutePath() + ")");
            named.initCause(missing);
            throw named;
        }
    }

    /**
     * Checks what {@code statx} said about the opened file: not a directory, and for
     * {@link Mode#READ_WRITE} not writable by other users unless allowed.
     */
    private static void check(Path file, Mode mode, List<Option> options, PosixFiles.FileStatus status)
            throws IOException {
        if (status.isDirectory()) {
            throw new FileSystemException(file.toString(), null, "is a directory; expected a regular file");
        }
        if (mode == Mode.READ_WRITE && !options.contains(Option.ALLOW_WRITABLE_BY_OTHERS)
                && status.writableByOtherUsers(PosixFiles.effectiveUid())) {
            throw new AccessDeniedException(file.toString(), null, "refusing a shared read-write mapping of a file"
                    + " that other users can write (" + status.describe() + ", this process runs as uid "
                    + Integer.toUnsignedLong(PosixFiles.effectiveUid()) + "): they could change it or"
                    + " truncate it under the native code using the mapping, and a truncation kills the process"
                    + " with SIGBUS. Make it this user's and writable by its owner only (chown, chmod go-w),"
                    + " map a private copy, or pass MappedFile.Option.ALLOW_WRITABLE_BY_OTHERS if every"
                    + " writer is trusted");
        }
    }

    /** Extends or truncates to {@code size} by writing its last byte: sparse on file systems that allow it. */
    static void setSize(Path file, FileChannel channel, long size) throws IOException {
        try {
            channel.truncate(size);
            if (channel.size() < size) {
                channel.write(ByteBuffer.allocate(1), size - 1);
            }
        } catch (IOException failure) {
            throw (FileSystemException) new FileSystemException(file.toString(), null, "cannot size the file to "
                    + size + " bytes (" + failure.getMessage() + "); check free space and quotas").initCause(failure);
        }
    }

    /**
     * Maps a region of an open channel into {@code arena}, translating failures into a
     * {@link FileSystemException} naming the file.
     */
    @Override
    public MemorySegment mapChannel(Path file, FileChannel channel, Mode mode, long offset, long size,
                                            Arena arena) throws IOException {
        // Checked again here because the file may have shrunk since the caller looked: the JDK would
        // silently extend it back for READ_WRITE.
        long fileSize = channel.size();
        if (offset > fileSize || size > fileSize - offset) {
            throw new FileSystemException(file.toString(), null, "cannot map " + size + " bytes at offset " + offset
                    + ": the file has only " + fileSize + " bytes (was it truncated while being opened?)");
        }
        try {
            return channel.map(mode.mapMode(), offset, size, arena);
        } catch (IOException | UnsupportedOperationException failure) {
            // "Map failed" (ENOMEM: address space, vm.max_map_count) or a file system without mmap.
            Throwable reason = failure.getCause() != null ? failure.getCause() : failure;
            throw (FileSystemException) new FileSystemException(file.toString(), null, "cannot map " + size
                    + " bytes at offset " + offset + " (" + mode + "): " + reason
                    + "; check the address space limit (ulimit -v), vm.max_map_count and that the file system supports mmap")
                    .initCause(failure);
        }
    }

    private static FileAttribute<?> permissions() {
        return PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString(CREATED_FILE_PERMISSIONS));
    }
}
