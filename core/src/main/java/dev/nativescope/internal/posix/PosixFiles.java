package dev.nativescope.internal.posix;

import dev.nativescope.library.NativeLibrary;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.util.Set;

/**
 * The few POSIX file calls the JDK does not offer, made on Linux x86-64 through libc: open a file
 * by name once, then check what was opened ({@code statx} on the descriptor, so no one can swap
 * the file between the check and the use), reserve its storage ({@code posix_fallocate}) and hand
 * the very same file to a {@link FileChannel} by reopening {@code /proc/self/fd/N}, which names the
 * open file rather than a path.
 *
 * <p>A file only read or mapped is opened once for real: {@link #openRegularChannel} opens the name
 * with {@code O_PATH}, checks its type on that descriptor and lets the {@link FileChannel} itself
 * reopen {@code /proc/self/fd/N}, so a mapping costs one real open, not two (BENCHMARKS.md
 * section 24: each open and close of {@code /proc/self/fd} is 2-3 us of a 4 KiB inference's ~50).
 *
 * <p>Stateless and thread-safe. Every method that opens a descriptor closes it before returning,
 * on every path.
 */
public final class PosixFiles {
    // <fcntl.h> flags, Linux x86-64 (the only platform the shim is built for).
    public static final int O_RDONLY = 0;
    public static final int O_RDWR = 02;
    public static final int O_CREAT = 0100;
    public static final int O_EXCL = 0200;
    public static final int O_NOFOLLOW = 0400000;
    public static final int O_CLOEXEC = 02000000;
    /** Opens a name without opening the file: no blocking on a FIFO, no side effect of a device's open. */
    private static final int O_PATH = 010000000;

    private static final int AT_EMPTY_PATH = 0x1000;
    /** {@code <asm-generic/mman-common.h>}, Linux 5.14+: write-fault every page of a range now. */
    private static final int MADV_POPULATE_WRITE = 23;
    private static final long PAGE_SIZE = 4096;
    private static final int STATX_TYPE = 0x1;
    private static final int STATX_MODE = 0x2;
    private static final int STATX_UID = 0x8;
    private static final int STATX_GID = 0x10;
    private static final int S_IFMT = 0170000;
    private static final int S_IFREG = 0100000;
    private static final int S_IFDIR = 0040000;
    private static final int S_IFIFO = 0010000;
    private static final int S_IFCHR = 0020000;
    private static final int S_IFBLK = 0060000;
    private static final int S_IFSOCK = 0140000;
    private static final int S_IFLNK = 0120000;

    private static final int ENOENT = 2;
    private static final int EACCES = 13;
    private static final int EEXIST = 17;
    private static final int EISDIR = 21;
    private static final int EFBIG = 27;
    private static final int ENOSPC = 28;
    private static final int ELOOP = 40;
    private static final int EDQUOT = 122;

    /** The head of {@code struct statx}: its layout is the same on every Linux architecture. */
    private static final StructLayout STATX_HEAD = MemoryLayout.structLayout(
            ValueLayout.JAVA_INT.withName("stx_mask"),
            ValueLayout.JAVA_INT.withName("stx_blksize"),
            ValueLayout.JAVA_LONG.withName("stx_attributes"),
            ValueLayout.JAVA_INT.withName("stx_nlink"),
            ValueLayout.JAVA_INT.withName("stx_uid"),
            ValueLayout.JAVA_INT.withName("stx_gid"),
            ValueLayout.JAVA_SHORT.withName("stx_mode"));
    /** {@code sizeof(struct statx)}: the kernel writes all of it. */
    private static final long STATX_SIZE = 256;
    private static final VarHandle STX_UID = field("stx_uid");
    private static final VarHandle STX_MODE = field("stx_mode");

    private PosixFiles() {
    }

    private static VarHandle field(String name) {
        return STATX_HEAD.varHandle(MemoryLayout.PathElement.groupElement(name));
    }

    /** What {@code statx} says about an open file. */
    public record FileStatus(int mode, int uid) {
        public boolean isRegularFile() {
            return (mode & S_IFMT) == S_IFREG;
        }

        public boolean isDirectory() {
            return (mode & S_IFMT) == S_IFDIR;
        }

        /** @return "a directory", "a FIFO (named pipe)", "a character device", ... */
        public String typeName() {
            return PosixFiles.typeName(mode);
        }

        /**
         * @return true when a user other than this process's effective user can write the file:
         *         it belongs to someone else (who may chmod it at will), or its group or others
         *         have write permission
         */
        public boolean writableByOtherUsers(int effectiveUid) {
            return uid != effectiveUid || (mode & 0022) != 0;
        }

        public String describe() {
            return String.format("mode %04o, owner uid %d", mode & 07777, Integer.toUnsignedLong(uid));
        }
    }

    /**
     * An open descriptor for one file. Closing it closes the descriptor; channels opened from it
     * stay open.
     */
    public static final class OpenFile implements AutoCloseable {
        private final Path path;
        private final int fd;
        /** What {@link #openRegularFile} read on the {@code O_PATH} descriptor of the same inode; null otherwise. */
        private final FileStatus checked;

        private OpenFile(Path path, int fd, FileStatus checked) {
            this.path = path;
            this.fd = fd;
            this.checked = checked;
        }

        /**
         * @return the status read when the file was checked by {@link #openRegularFile} (the same
         *         inode: {@code /proc/self/fd} reopens the checked file, not the name), without a
         *         second {@code statx}; otherwise {@link #status()}. Permissions may change at any
         *         time after either read, so reading them again would guarantee nothing more.
         */
        public FileStatus checkedStatus() throws IOException {
            return checked != null ? checked : status();
        }

        /** @return the file's type, permissions and owner, read from the descriptor */
        public FileStatus status() throws IOException {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment buffer = arena.allocate(STATX_SIZE, 8);
                MemorySegment state = Libc.callState(arena);
                int result = Libc.statx(state, fd, arena.allocateFrom(""), AT_EMPTY_PATH,
                        STATX_TYPE | STATX_MODE | STATX_UID | STATX_GID, buffer);
                if (result != 0) {
                    throw failure(path, "cannot read the attributes of", Libc.errno(state));
                }
                return new FileStatus(Short.toUnsignedInt((short) STX_MODE.get(buffer, 0L)), (int) STX_UID.get(buffer, 0L));
            }
        }

        /**
         * Gives the file blocks for its first {@code size} bytes (and makes it at least that long),
         * so that writes through a mapping can no longer fail for lack of space: a full file
         * system is reported here, as an exception, instead of as {@code SIGBUS} inside a store.
         *
         * @throws FileSystemException naming the file and the reason (no space, quota, file size limit)
         */
        public void reserve(long size) throws IOException {
            if (size == 0) {
                return;
            }
            int error = Libc.posixFallocate(fd, 0L, size);
            if (error != 0) {
                String hint = switch (error) {
                    case ENOSPC, EDQUOT -> "; free space on that file system, raise the quota, or write elsewhere";
                    case EFBIG -> "; the file size limit (ulimit -f) or the file system's maximum file size is lower";
                    default -> "";
                };
                throw failure(path, "cannot reserve " + size + " bytes of storage for", error, hint);
            }
        }

        /**
         * @return a channel on the same open file (not on whatever {@code path} names by now), with
         *         {@code options} (only {@code READ} and {@code WRITE} make sense)
         */
        public FileChannel channel(Set<? extends OpenOption> options) throws IOException {
            try {
                return FileChannel.open(Path.of("/proc/self/fd/" + fd), options);
            } catch (AccessDeniedException denied) {
                // The first real open of a file checked through O_PATH (openRegularChannel): the mode
                // does not allow this access. Named, and still an AccessDeniedException.
                // The JDK's exception for EACCES carries no reason.
                AccessDeniedException named = new AccessDeniedException(path.toString(), null,
                        "cannot open the file for " + options + ": permission denied; check its mode and owner");
                named.initCause(denied);
                throw named;
            } catch (FileSystemException failure) {
                // Name the user's file, not the /proc link (typically: out of file descriptors).
                FileSystemException named = new FileSystemException(path.toString(), null,
                        "cannot open a channel on the file: " + failure.getReason());
                named.initCause(failure);
                throw named;
            }
        }

        @Override
        public void close() {
            Libc.close(fd);
        }
    }

    /**
     * Opens {@code path} with {@code flags} ({@code O_CLOEXEC} is added) and, for {@code O_CREAT},
     * {@code mode}.
     *
     * @throws NoSuchFileException, FileAlreadyExistsException, AccessDeniedException or
     *         FileSystemException, each naming the file and the reason
     */
    public static OpenFile open(Path path, int flags, int mode) throws IOException {
        // Every tensor file (Npy, SafeTensors, MappedFile) is opened here first: a denied native access is then
        // the loader's message naming the flag, not an ExceptionInInitializerError from Libc.
        NativeLibrary.load();
        return open(path, path, flags, mode, null);
    }

    /** Opens {@code opened}, naming {@code named} in errors and in the result. */
    private static OpenFile open(Path opened, Path named, int flags, int mode, FileStatus checked) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = Libc.callState(arena);
            int fd = Libc.open(state, arena.allocateFrom(opened.toString()), flags | O_CLOEXEC, mode);
            if (fd < 0) {
                throw failure(named, "cannot open", Libc.errno(state));
            }
            return new OpenFile(named, fd, checked);
        }
    }

    /**
     * Opens {@code path} with {@code flags} only if it is a regular file, without ever blocking or
     * touching anything else: the name is first opened with {@code O_PATH} (which opens no FIFO,
     * device or socket, so it cannot block or have side effects), its type is read from that
     * descriptor, and only a regular file is then reopened through {@code /proc/self/fd}, which
     * reaches the same inode whatever the name points to by then (no check-then-use race).
     *
     * @throws FileSystemException naming the file and what it is ("is a FIFO (named pipe)", "is a
     *         symbolic link to a character device (/dev/null)", ...); NoSuchFileException also for
     *         a dangling symbolic link, saying so
     */
    public static OpenFile openRegularFile(Path path, int flags) throws IOException {
        CheckedName checked = openRegularName(path);
        try (OpenFile name = checked.name()) {
            return open(Path.of("/proc/self/fd/" + name.fd), path, flags, 0, checked.status());
        }
    }

    /** A regular file opened as a channel, and what {@code statx} said about it before it was opened. */
    public record CheckedChannel(FileChannel channel, FileStatus status) {
    }

    /**
     * Opens {@code path} as a {@link FileChannel} with {@code options} only if it is a regular file,
     * as {@link #openRegularFile} checks it, with one real open: the channel's own, of
     * {@code /proc/self/fd/N} of the checked {@code O_PATH} descriptor (the same inode, whatever the
     * name points to by then). For files only read and mapped; a file whose storage is reserved
     * needs a descriptor of its own ({@link #openRegularFile} and {@link OpenFile#reserve}).
     *
     * @throws FileSystemException as {@link #openRegularFile}; AccessDeniedException naming the
     *         file when its mode does not allow {@code options}
     */
    public static CheckedChannel openRegularChannel(Path path, Set<? extends OpenOption> options) throws IOException {
        CheckedName checked = openRegularName(path);
        try (OpenFile name = checked.name()) {
            return new CheckedChannel(name.channel(options), checked.status());
        }
    }

    /** An {@code O_PATH} descriptor of a regular file, and its status read on that descriptor. */
    private record CheckedName(OpenFile name, FileStatus status) {
    }

    /**
     * Opens {@code path} with {@code O_PATH} and checks that it is a regular file: the first half of
     * {@link #openRegularFile}. The caller closes the descriptor.
     */
    private static CheckedName openRegularName(Path path) throws IOException {
        NativeLibrary.load();
        OpenFile name;
        try {
            name = open(path, path, O_PATH, 0, null);
        } catch (NoSuchFileException missing) {
            if (Files.isSymbolicLink(path)) {
                NoSuchFileException dangling = new NoSuchFileException(path.toString(), null,
                        "is a symbolic link to " + linkTarget(path) + ", which does not exist");
                dangling.initCause(missing);
                throw dangling;
            }
            throw missing;
        }
        boolean success = false;
        try {
            FileStatus status = name.status();
            if (!status.isRegularFile()) {
                String what = Files.isSymbolicLink(path)
                        ? "is a symbolic link to " + status.typeName() + " (" + linkTarget(path) + ")"
                        : "is " + status.typeName();
                throw new FileSystemException(path.toString(), null, what + "; expected a regular file");
            }
            success = true;
            return new CheckedName(name, status);
        } finally {
            if (!success) {
                name.close();
            }
        }
    }

    /**
     * Checks without opening anything that {@code path}, if it exists, is a regular file or a
     * symbolic link to one: a replace swaps the name for a new regular file, and swapping out a
     * FIFO, device, socket or directory (or a link to one) is almost certainly a wrong path.
     *
     * @throws FileSystemException naming the file and what it is otherwise
     */
    public static void requireReplaceable(Path path) throws IOException {
        int mode;
        try {
            mode = (Integer) Files.getAttribute(path, "unix:mode", java.nio.file.LinkOption.NOFOLLOW_LINKS);
        } catch (NoSuchFileException absent) {
            return;
        }
        String what;
        if ((mode & S_IFMT) == S_IFLNK) {
            try {
                int target = (Integer) Files.getAttribute(path, "unix:mode");
                if ((target & S_IFMT) == S_IFREG) {
                    return;
                }
                what = "is a symbolic link to " + typeName(target) + " (" + linkTarget(path) + ")";
            } catch (NoSuchFileException dangling) {
                what = "is a symbolic link to " + linkTarget(path) + ", which does not exist";
            }
        } else if ((mode & S_IFMT) == S_IFREG) {
            return;
        } else {
            what = "is " + typeName(mode);
        }
        throw new FileSystemException(path.toString(), null, what
                + "; only a regular file can be replaced (remove it first if that is really meant)");
    }

    private static String linkTarget(Path path) {
        try {
            return Files.readSymbolicLink(path).toString();
        } catch (IOException e) {
            return "an unreadable target";
        }
    }

    static String typeName(int mode) {
        return switch (mode & S_IFMT) {
            case S_IFREG -> "a regular file";
            case S_IFDIR -> "a directory";
            case S_IFIFO -> "a FIFO (named pipe)";
            case S_IFCHR -> "a character device";
            case S_IFBLK -> "a block device";
            case S_IFSOCK -> "a socket";
            case S_IFLNK -> "a symbolic link";
            default -> String.format("a file of unknown type (mode %06o)", mode);
        };
    }

    /**
     * Write-faults every page of a new shared mapping in one call
     * ({@code madvise(MADV_POPULATE_WRITE)}), instead of one fault per 4 KiB page at the writer's
     * first store into it: about a quarter less kernel time for a file that is then written whole
     * (BENCHMARKS.md section 24: 396 -> 281-297 us for 1 MiB of a new file). Every page becomes
     * resident and dirty, so only for a mapping its writer fills.
     *
     * @return true when the pages are populated; false when the kernel lacks the advice
     *         ({@code EINVAL} before Linux 5.14) or could not populate (the writer then takes the
     *         faults as it would have, with the same outcome)
     */
    public static boolean populateForWrite(MemorySegment mapping) {
        if (mapping.byteSize() == 0) {
            return true;
        }
        // madvise wants a page-aligned start; the bytes before it in that page are the same mapping.
        long start = mapping.address() & -PAGE_SIZE;
        long length = mapping.address() + mapping.byteSize() - start;
        return Libc.madvise(MemorySegment.ofAddress(start), length, MADV_POPULATE_WRITE);
    }

    /** @return the effective user id of this process */
    public static int effectiveUid() {
        return Libc.geteuid();
    }

    private static FileSystemException failure(Path path, String what, int error) {
        return failure(path, what, error, "");
    }

    private static FileSystemException failure(Path path, String what, int error, String hint) {
        String reason = what + " the file: " + Libc.strerror(error) + hint;
        String file = path.toString();
        return switch (error) {
            case ENOENT -> new NoSuchFileException(file, null, reason
                    + " (relative paths resolve against " + Path.of("").toAbsolutePath() + ")");
            case EEXIST -> new FileAlreadyExistsException(file, null, reason);
            case EACCES -> new AccessDeniedException(file, null, reason);
            case EISDIR -> new FileSystemException(file, null, "is a directory; expected a regular file");
            case ELOOP -> new FileSystemException(file, null, reason + " (a symbolic link where none is followed)");
            default -> new FileSystemException(file, null, reason);
        };
    }
}
