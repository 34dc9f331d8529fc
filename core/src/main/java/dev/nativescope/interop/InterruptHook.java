package dev.nativescope.interop;

import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.spi.AbstractInterruptibleChannel;
import java.util.Objects;

/**
 * Runs an action when the thread that entered the hook is interrupted, for code the JDK cannot
 * interrupt (a downcall, a JNI call such as ONNX Runtime's {@code run}). It is the one public JDK
 * mechanism for this: between {@link #enter()} and {@link #exit()} the JDK records this channel as
 * the thread's blocker, and {@code Thread.interrupt()} closes it, calling the action synchronously
 * in the interrupting thread, for platform and virtual threads alike. A thread that is already
 * interrupted when it enters closes the channel at once, so an interrupt that comes before the call
 * is not lost. The thread's interrupt status is left set either way.
 *
 * <p>A hook fires at most once: once closed (by an interrupt) it cannot be entered again, so make a
 * new one (see {@link #isOpen()}). Threading: {@link #enter()} and {@link #exit()} are called by
 * the thread making the call; the action runs in the interrupting thread and must be short and must
 * not block (the JDK holds the interrupted thread's interrupt lock while it runs).
 */
public final class InterruptHook extends AbstractInterruptibleChannel {
    private final Runnable onInterrupt;

    /**
     * @param onInterrupt what an interrupt of the entered thread does, e.g. cancel its native call
     */
    public InterruptHook(Runnable onInterrupt) {
        this.onInterrupt = Objects.requireNonNull(onInterrupt, "onInterrupt");
    }

    /** Registers the hook for the calling thread; an interrupt already pending fires it at once. */
    public void enter() {
        begin();
    }

    /** Unregisters the hook. The JDK's interrupt lock makes this wait for an action in progress. */
    public void exit() {
        try {
            end(true);
        } catch (AsynchronousCloseException closedByInterrupt) {
            // ClosedByInterruptException: the interrupt already ran the action; the thread's
            // interrupt status stays set, which is all the caller needs.
        }
    }

    @Override
    protected void implCloseChannel() {
        onInterrupt.run();
    }
}
