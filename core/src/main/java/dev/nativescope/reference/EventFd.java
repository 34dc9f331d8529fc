package dev.nativescope.reference;

import dev.nativescope.library.NativeLibraryException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A Linux eventfd: a file descriptor that a native predictor can wait on and Java can signal. Used
 * to feed {@link ReferencePredictors#awaitFd} in tests, the demo and the benchmarks.
 *
 * <p>Thread-safe: {@link #signal} may be called from any thread; {@link #close} once, after which
 * {@link #fd()} must no longer be used (the number may be reused by the process).
 */
public final class EventFd implements AutoCloseable {
    private static final int EFD_CLOEXEC = 0x80000;
    private static final Linker LINKER = Linker.nativeLinker();
    private static final MethodHandle EVENTFD = libc("eventfd",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final MethodHandle WRITE = libc("write",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
    private static final MethodHandle CLOSE = libc("close",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));

    private final int fd;
    private final AtomicBoolean closed = new AtomicBoolean();

    private EventFd(int fd) {
        this.fd = fd;
    }

    private static MethodHandle libc(String name, FunctionDescriptor descriptor) {
        MemorySegment symbol = LINKER.defaultLookup().find(name)
                .orElseThrow(() -> new NativeLibraryException("libc does not export " + name));
        return LINKER.downcallHandle(symbol, descriptor);
    }

    /**
     * @return a new eventfd with counter 0
     * @throws UncheckedIOException when the process is out of file descriptors
     */
    public static EventFd create() {
        int fd;
        try {
            fd = (int) EVENTFD.invokeExact(0, EFD_CLOEXEC);
        } catch (Throwable e) {
            throw new IllegalStateException("eventfd call failed", e);
        }
        if (fd < 0) {
            throw new UncheckedIOException(new IOException("eventfd() failed: out of file descriptors?"));
        }
        return new EventFd(fd);
    }

    /** @return the file descriptor number */
    public int fd() {
        if (closed.get()) {
            throw new IllegalStateException("eventfd " + fd + " is closed");
        }
        return fd;
    }

    /**
     * Adds {@code value} (at least 1) to the counter, making the fd readable.
     *
     * @param value the amount to add
     */
    public void signal(long value) {
        if (value < 1) {
            throw new IllegalArgumentException("eventfd value must be >= 1, got " + value);
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buffer = arena.allocateFrom(ValueLayout.JAVA_LONG, value);
            long written = (long) WRITE.invokeExact(fd(), buffer, 8L);
            if (written != 8) {
                throw new UncheckedIOException(new IOException("write to eventfd " + fd + " failed"));
            }
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable e) {
            throw new IllegalStateException("write call failed", e);
        }
    }

    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            try {
                int ignored = (int) CLOSE.invokeExact(fd);
            } catch (Throwable e) {
                throw new IllegalStateException("close call failed", e);
            }
        }
    }
}
