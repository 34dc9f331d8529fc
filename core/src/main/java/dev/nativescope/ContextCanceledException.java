package dev.nativescope;

import java.io.Serial;
import java.util.concurrent.CancellationException;

/**
 * The default cause of {@link CancellableContext#cancel()} and {@link CancellableContext#close()}: a
 * {@link CancellationException} that names the thread that cancelled ("context canceled (by thread
 * "main" #1)") instead of carrying that thread's stack trace.
 *
 * <p>Why no stack trace: the cancelling thread builds the cause after it has written the state word
 * of the call in flight, but before {@code cancel()} returns, and a spinning call that shares the
 * canceller's CPU runs only once the canceller gives the CPU up. Filling a stack trace cost 2.4-4.4 us
 * p50 there, which that call waited for (BENCHMARKS.md section 18); capturing the thread's name and id
 * costs two field reads. A caller that wants the stack trace passes its own cause to
 * {@link CancellableContext#cancel(Throwable)}.
 *
 * <p>Threading: immutable once built; the message is formatted on demand, in the reader's thread.
 */
final class ContextCanceledException extends CancellationException {
    @Serial
    private static final long serialVersionUID = 1L;

    /** "context canceled" or "context closed". */
    private final String what;
    private final String cancellerName;
    private final long cancellerId;

    ContextCanceledException(String what) {
        super(what);
        this.what = what;
        Thread canceller = Thread.currentThread();
        this.cancellerName = canceller.getName();
        this.cancellerId = canceller.threadId();
    }

    /** {@return "context canceled (by thread "name" #id)", or "context closed (...)"} */
    @Override
    public String getMessage() {
        return what + " (by thread \"" + cancellerName + "\" #" + cancellerId + ")";
    }

    /** No stack walk: see the class documentation. */
    @Override
    public synchronized Throwable fillInStackTrace() {
        return this;
    }
}
