package dev.nativescope.reference;

import dev.nativescope.library.NativeLibrary;
import dev.nativescope.internal.posix.Libc;
import java.io.UncheckedIOException;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A Linux eventfd: a file descriptor that a native predictor can wait on and Java can signal. Used
 * to feed {@link ReferencePredictors#awaitFd} in tests, the demo and the benchmarks.
 *
 * <p>Thread-safe: {@link #signal} may be called from any thread; {@link #close} once, after which
 * {@link #fd()} must no longer be used (the number may be reused by the process).
 */
public final class EventFd implements AutoCloseable {
    private final int fd;
    private final AtomicBoolean closed = new AtomicBoolean();

    private EventFd(int fd) {
        this.fd = fd;
    }

    /**
     * @return a new eventfd with counter 0
     * @throws UncheckedIOException when the process is out of file descriptors
     */
    public static EventFd create() {
        NativeLibrary.load(); // a denied native access is its message, not an ExceptionInInitializerError
        return new EventFd(Libc.eventfd());
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
        Libc.signalEventfd(fd(), value);
    }

    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            Libc.close(fd);
        }
    }
}
