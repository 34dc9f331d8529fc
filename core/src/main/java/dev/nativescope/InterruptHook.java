package dev.nativescope;

import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.spi.AbstractInterruptibleChannel;

/**
 * The one public JDK hook that runs our code when a thread is interrupted while it is in native
 * code: between {@link #begin()} and {@link #end(boolean)} the JDK records this channel as the
 * thread's blocker, and {@code Thread.interrupt()} closes it, calling {@link #implCloseChannel()}
 * synchronously in the interrupting thread, for platform and virtual threads alike. A thread that
 * is already interrupted when it calls {@code begin()} closes the channel at once, so an interrupt
 * that comes before the call is not lost.
 *
 * <p>A channel is closed at most once; the owning {@link CallFrame} replaces a closed one. Not
 * thread-safe beyond what {@link AbstractInterruptibleChannel} guarantees: {@link #enter} and
 * {@link #exit} are called by the thread making the call.
 */
final class InterruptHook extends AbstractInterruptibleChannel {
    private final CallFrame frame;
    // Written by the calling thread before begin(); read by the interrupter after it has seen the
    // blocker that begin() published under the JDK's interrupt lock, so it sees this write too.
    private long generation;

    InterruptHook(CallFrame frame) {
        this.frame = frame;
    }

    void enter(long callGeneration) {
        this.generation = callGeneration;
        begin();
    }

    /** Unregisters the hook. The JDK's interrupt lock makes this wait for a close in progress. */
    void exit() {
        try {
            end(true);
        } catch (AsynchronousCloseException closedByInterrupt) {
            // ClosedByInterruptException: the interrupt already cancelled the call; the thread's
            // interrupt status stays set, which is all the caller needs.
        }
    }

    @Override
    protected void implCloseChannel() {
        frame.cancelByInterrupt(generation);
    }
}
