package dev.nativescope.examples.userpredictor;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * A POSIX pipe whose read end native code waits on ({@code user_read_frame}) and whose write end
 * Java feeds: the stand-in for a socket or a device in the examples.
 *
 * <p>Thread-safe: {@link #write} and {@link #closeWriteEnd} may be called from any thread, but not
 * concurrently with {@link #close}.
 */
public final class Pipe implements AutoCloseable {
    private static final int O_CLOEXEC = 0x80000;
    private static final Linker LINKER = Linker.nativeLinker();
    private static final MethodHandle PIPE2 = libc("pipe2",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    private static final MethodHandle WRITE = libc("write",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
    private static final MethodHandle CLOSE = libc("close", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));

    private final int readFd;
    private int writeFd;

    private Pipe(int readFd, int writeFd) {
        this.readFd = readFd;
        this.writeFd = writeFd;
    }

    private static MethodHandle libc(String name, FunctionDescriptor descriptor) {
        return LINKER.downcallHandle(LINKER.defaultLookup().find(name).orElseThrow(), descriptor);
    }

    /** @return a new pipe (both ends close-on-exec, blocking) */
    public static Pipe open() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment fds = arena.allocate(ValueLayout.JAVA_INT, 2);
            int rc = (int) PIPE2.invokeExact(fds, O_CLOEXEC);
            if (rc != 0) {
                throw new UncheckedIOException(new IOException("pipe2() failed: out of file descriptors?"));
            }
            return new Pipe(fds.getAtIndex(ValueLayout.JAVA_INT, 0), fds.getAtIndex(ValueLayout.JAVA_INT, 1));
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable e) {
            throw new IllegalStateException("pipe2 call failed", e);
        }
    }

    /** @return the read end, for native code */
    public int readFd() {
        return readFd;
    }

    /** Writes all of {@code bytes} to the write end (blocks while the pipe is full). */
    public synchronized void write(MemorySegment bytes) {
        long offset = 0;
        while (offset < bytes.byteSize()) {
            long n;
            try {
                n = (long) WRITE.invokeExact(writeFd, bytes.asSlice(offset), bytes.byteSize() - offset);
            } catch (Throwable e) {
                throw new IllegalStateException("write call failed", e);
            }
            if (n <= 0) {
                throw new UncheckedIOException(new IOException("write to pipe fd " + writeFd + " failed"));
            }
            offset += n;
        }
    }

    /** Closes the write end: a reader that has read everything then sees end of file. */
    public synchronized void closeWriteEnd() {
        if (writeFd >= 0) {
            closeFd(writeFd);
            writeFd = -1;
        }
    }

    @Override
    public void close() {
        closeWriteEnd();
        closeFd(readFd);
    }

    private static void closeFd(int fd) {
        try {
            int ignored = (int) CLOSE.invokeExact(fd);
        } catch (Throwable e) {
            throw new IllegalStateException("close call failed", e);
        }
    }
}
