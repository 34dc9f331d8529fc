package dev.nativescope.internal.posix;

import dev.nativescope.library.NativeLibraryException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.util.Optional;

/**
 * Every libc function the core calls, looked up once in the native linker's default lookup (glibc
 * on Linux x86-64, the only platform the shim is built for), each behind a typed method. Calls
 * that report failure through {@code errno} take a call-state segment ({@link #callState}) in which
 * the linker captures it right after the call ({@code Linker.Option.captureCallState}), before the
 * JVM can overwrite it; read it with {@link #errno}.
 *
 * <p>A symbol libc lacks fails the first use of its group (malloc; free; the rest) with one {@link NativeLibraryException}
 * naming the symbol. A method whose downcall itself throws (it does not for these signatures) wraps
 * that in an {@link IllegalStateException} "name call failed".
 *
 * <p>Stateless and thread-safe, like the functions it calls.
 */
public final class Libc {
    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    /**
     * malloc, which the call bridge's first call needs, in a holder of its own, and free in another:
     * linking a downcall handle of a new shape costs a fresh JVM milliseconds, the first call frees
     * nothing, and the other functions are not needed until files or eventfds are used (the
     * cold-start benchmark, ColdStart).
     */
    private static final class Malloc {
        static final MethodHandle HANDLE = find("malloc", FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
    }

    private static final class Free {
        static final MethodHandle HANDLE = find("free", FunctionDescriptor.ofVoid(ValueLayout.ADDRESS));
    }

    /**
     * madvise in a holder of its own: only {@code MappedFile.create} uses it, to populate a new
     * output's pages, and a process that never creates a mapped file should not link it.
     */
    private static final class Madvise {
        static final MethodHandle HANDLE = find("madvise", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
    }

    /**
     * The other functions, linked together on the first use of any of them, so that the error paths
     * (strerror_r) are linked by then: a class loaded only when the process is out of descriptors
     * may fail to load for good (see FaultInjectionTest).
     */
    private static final class Linked {
        static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
        static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
        static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");
        static final int EFD_CLOEXEC = 0x80000;

        static final MethodHandle OPEN = find("open", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT), CAPTURE_ERRNO, Linker.Option.firstVariadicArg(2));
        static final MethodHandle STATX = find("statx", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS),
                CAPTURE_ERRNO);
        /** Returns the error number instead of setting errno. */
        static final MethodHandle POSIX_FALLOCATE = find("posix_fallocate", FunctionDescriptor.of(
                ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
        /** Called with one (ignored) variadic int: F_GETFD takes no third argument. */
        static final MethodHandle FCNTL = find("fcntl", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT), Linker.Option.firstVariadicArg(2));
        static final int F_GETFD = 1;
        static final MethodHandle CLOSE = find("close", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
        static final MethodHandle GETEUID = find("geteuid", FunctionDescriptor.of(ValueLayout.JAVA_INT));
        static final MethodHandle EVENTFD = find("eventfd",
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
        static final MethodHandle WRITE = find("write",
                FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
        /** The GNU variant: returns a pointer to the message, which may or may not be the buffer. */
        static final MethodHandle STRERROR_R = find("strerror_r", FunctionDescriptor.of(ValueLayout.ADDRESS,
                ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
    }

    private Libc() {
    }

    private static MethodHandle find(String name, FunctionDescriptor descriptor, Linker.Option... options) {
        Optional<MemorySegment> symbol = LIBC.find(name);
        if (symbol.isEmpty()) {
            throw new NativeLibraryException("the C library (libc) does not export " + name
                    + "; nativescope needs Linux x86-64 with glibc 2.28 or newer");
        }
        return LINKER.downcallHandle(symbol.get(), descriptor, options);
    }

    private static IllegalStateException failed(String name, Throwable e) {
        return new IllegalStateException(name + " call failed", e);
    }

    /** @return a segment for the {@code errno} an errno-capturing call leaves, in {@code arena} */
    public static MemorySegment callState(Arena arena) {
        return arena.allocate(Linked.CALL_STATE);
    }

    /** @return the {@code errno} the last call given {@code state} captured */
    public static int errno(MemorySegment state) {
        return (int) Linked.ERRNO.get(state, 0L);
    }

    /** @return {@code malloc(bytes)}: a zero-length segment, {@code NULL} when memory is exhausted */
    public static MemorySegment malloc(long bytes) {
        try {
            return (MemorySegment) Malloc.HANDLE.invokeExact(bytes);
        } catch (Throwable e) {
            throw failed("malloc", e);
        }
    }

    public static void free(MemorySegment block) {
        try {
            Free.HANDLE.invokeExact(block);
        } catch (Throwable e) {
            throw failed("free", e);
        }
    }

    /** @return {@code open(path, flags, mode)}: a descriptor, or -1 with errno in {@code state} */
    public static int open(MemorySegment state, MemorySegment path, int flags, int mode) {
        try {
            return (int) Linked.OPEN.invokeExact(state, path, flags, mode);
        } catch (Throwable e) {
            throw failed("open", e);
        }
    }

    /** @return {@code statx(dirfd, path, flags, mask, buffer)}: 0, or -1 with errno in {@code state} */
    public static int statx(MemorySegment state, int dirfd, MemorySegment path, int flags, int mask, MemorySegment buffer) {
        try {
            return (int) Linked.STATX.invokeExact(state, dirfd, path, flags, mask, buffer);
        } catch (Throwable e) {
            throw failed("statx", e);
        }
    }

    /** @return {@code posix_fallocate(fd, offset, length)}: 0 or the error number (errno is not set) */
    public static int posixFallocate(int fd, long offset, long length) {
        try {
            return (int) Linked.POSIX_FALLOCATE.invokeExact(fd, offset, length);
        } catch (Throwable e) {
            throw failed("posix_fallocate", e);
        }
    }

    /**
     * @return whether {@code madvise(address, length, advice)} succeeded; errno is not captured, as
     *         its one caller falls back the same way whatever the reason
     */
    public static boolean madvise(MemorySegment address, long length, int advice) {
        try {
            return (int) Madvise.HANDLE.invokeExact(address, length, advice) == 0;
        } catch (Throwable e) {
            throw failed("madvise", e);
        }
    }

    /**
     * {@return whether {@code fd} is an open descriptor of this process}: {@code fcntl(fd, F_GETFD)},
     * which fails only with {@code EBADF}. A check, not a guarantee: another thread may close it next.
     */
    public static boolean isOpenFd(int fd) {
        if (fd < 0) {
            return false;
        }
        try {
            return (int) Linked.FCNTL.invokeExact(fd, Linked.F_GETFD, 0) != -1;
        } catch (Throwable e) {
            throw failed("fcntl", e);
        }
    }

    /** @return {@code close(fd)}: 0 or -1 */
    public static int close(int fd) {
        try {
            return (int) Linked.CLOSE.invokeExact(fd);
        } catch (Throwable e) {
            throw failed("close", e);
        }
    }

    /** @return the effective user id of this process */
    public static int geteuid() {
        try {
            return (int) Linked.GETEUID.invokeExact();
        } catch (Throwable e) {
            throw failed("geteuid", e);
        }
    }

    /**
     * @return a new close-on-exec eventfd with counter 0
     * @throws UncheckedIOException when the process is out of file descriptors
     */
    public static int eventfd() {
        int fd;
        try {
            fd = (int) Linked.EVENTFD.invokeExact(0, Linked.EFD_CLOEXEC);
        } catch (Throwable e) {
            throw failed("eventfd", e);
        }
        if (fd < 0) {
            throw new UncheckedIOException(new IOException("eventfd() failed: out of file descriptors?"));
        }
        return fd;
    }

    /**
     * Adds {@code value} to eventfd {@code fd}'s counter (one 8-byte {@code write}), making it readable.
     *
     * @throws UncheckedIOException when the write does not take all 8 bytes
     */
    public static void signalEventfd(int fd, long value) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buffer = arena.allocateFrom(ValueLayout.JAVA_LONG, value);
            long written;
            try {
                written = (long) Linked.WRITE.invokeExact(fd, buffer, 8L);
            } catch (Throwable e) {
                throw failed("write", e);
            }
            if (written != 8) {
                throw new UncheckedIOException(new IOException("write to eventfd " + fd + " failed"));
            }
        }
    }

    /** @return the C library's message for {@code error}, e.g. "No space left on device (errno 28)" */
    public static String strerror(int error) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buffer = arena.allocate(256);
            MemorySegment message = (MemorySegment) Linked.STRERROR_R.invokeExact(error, buffer, buffer.byteSize());
            return message.reinterpret(1024).getString(0) + " (errno " + error + ")";
        } catch (Throwable e) {
            return "errno " + error;
        }
    }
}
