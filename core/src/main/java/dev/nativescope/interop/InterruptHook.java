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
 * <p><b>Nesting.</b> The JDK keeps one blocker per thread, and every {@code end()} (of a hook or
 * of any NIO channel) clears it. Hooks therefore keep a per-thread stack: {@link #exit()} of an inner
 * hook re-enters the innermost hook still active on the thread, so a nested hook (a nested bridged
 * call, a quick check before the real one) never leaves the outer call deaf to interrupts. An
 * interrupt that came in the gap between the inner exit and the re-entry fires the outer hook at
 * once, because entering checks the interrupt status. An NIO channel used between {@code enter()}
 * and {@code exit()} cannot be repaired this way (its {@code end()} is not ours): that is
 * unsupported, and {@link CancellationSignal} reports the interrupts it swallows.
 *
 * <p>A hook fires at most once: once closed (by an interrupt) it cannot fire again, so make a
 * new one per stretch of work (see {@link #isOpen()}). Threading: {@link #enter()} and
 * {@link #exit()} are called by the thread making the call, in LIFO order with other hooks (a hook
 * may be entered by another thread later, after its exit, when something that orders the two hands
 * it over, such as a pool); the
 * action runs in the interrupting thread (or in this one, when entering finds the thread
 * interrupted) and must be short and must not block.
 */
public final class InterruptHook extends AbstractInterruptibleChannel {
    /** Each thread's stack of hooks entered and not yet exited, made on its first entry. */
    private static final ThreadLocal<Stack> STACKS = new Stacks();

    /**
     * Makes a thread's stack on its first entry. A class, not {@code ThreadLocal.withInitial(Stack::new)}:
     * a method reference is a class spun at run time, which a fresh JVM's first call pays for (BENCHMARKS.md
     * "Cold start").
     */
    private static final class Stacks extends ThreadLocal<Stack> {
        @Override
        protected Stack initialValue() {
            return new Stack();
        }
    }

    /** One thread's stack: its innermost hook, linked to the outer ones by {@link #outer}; only that thread touches it. */
    private static final class Stack {
        InterruptHook top;
    }

    private final Runnable onInterrupt;
    /** The hook that was active on the entering thread when this one entered; only that thread touches it. */
    private InterruptHook outer;
    /**
     * The stack of the thread that entered this hook last, and that thread's id: a hook entered
     * again by the same thread (a call frame's, once per call) finds its stack without a thread-local
     * look-up (four per enter/exit before). The id, not the thread: a pooled hook must not keep an
     * ended thread reachable. Thread ids are never reused, so an id match is the same thread.
     * Written by the entering thread; a hook passes between threads only through whatever hands its
     * owner over (a pool's atomic), which orders these plain fields.
     */
    private Stack stack;
    private long stackThreadId = -1;

    /**
     * @param onInterrupt what an interrupt of the entered thread does, e.g. cancel its native call
     */
    public InterruptHook(Runnable onInterrupt) {
        this.onInterrupt = Objects.requireNonNull(onInterrupt, "onInterrupt");
    }

    /** Registers the hook for the calling thread; an interrupt already pending fires it at once. */
    public void enter() {
        Stack mine = stack;
        long self = Thread.currentThread().threadId();
        if (mine == null || stackThreadId != self) {
            mine = STACKS.get();
            stack = mine;
            stackThreadId = self;
        }
        outer = mine.top;
        mine.top = this;
        begin();
    }

    /**
     * Unregisters the hook and hands the thread's blocker back to the hook that was active before
     * it (re-entering that one, which fires it at once if the thread was interrupted meanwhile). When
     * an interrupt has fired this hook, its action has completed when this returns.
     */
    public void exit() {
        try {
            end(true);
        } catch (AsynchronousCloseException closedByInterrupt) {
            // ClosedByInterruptException: the interrupt already ran the action; the thread's
            // interrupt status stays set, which is all the caller needs.
        } finally {
            InterruptHook top = unlink();
            if (top != null) {
                // Our end() cleared the single blocker slot: give it back to the innermost hook
                // still active. begin() checks the interrupt status after installing the blocker,
                // so an interrupt that came between our end() and here is not lost either: it
                // fires that hook now, in this thread.
                top.begin();
            }
        }
    }

    /** Removes this hook from the thread's stack; returns the innermost hook still active, or null. */
    private InterruptHook unlink() {
        Stack mine = stack; // the stack enter() pushed this hook on: exit() runs on the same thread
        if (mine == null) {
            return null; // never entered
        }
        InterruptHook top = mine.top;
        if (top == this) {
            top = outer;
            mine.top = top;
        } else {
            // Exited out of order: drop this hook from the middle of the stack, keep the top.
            for (InterruptHook hook = top; hook != null; hook = hook.outer) {
                if (hook.outer == this) {
                    hook.outer = outer;
                    break;
                }
            }
        }
        outer = null;
        return top;
    }

    @Override
    protected void implCloseChannel() {
        onInterrupt.run();
    }
}
