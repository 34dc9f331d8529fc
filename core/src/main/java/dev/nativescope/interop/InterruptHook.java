package dev.nativescope.interop;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.spi.AbstractInterruptibleChannel;
import java.util.Objects;

/**
 * Runs an action when the thread that entered the hook is interrupted, for code the JDK cannot
 * interrupt (a downcall, a JNI call such as ONNX Runtime's {@code run}). It rests on the one public JDK
 * mechanism for this: an {@link AbstractInterruptibleChannel} recorded as the thread's blocker, which
 * {@code Thread.interrupt()} closes, calling its close synchronously in the interrupting thread, for
 * platform and virtual threads alike. Between {@link #enter()} and {@link #exit()} an interrupt of the
 * thread closes this hook, which runs the action. A thread that is already interrupted when it enters
 * fires the hook at once, so an interrupt that comes before the call is not lost. The thread's
 * interrupt status is left set either way.
 *
 * <p><b>One blocker per thread, left installed.</b> The hooks of a thread share one blocker channel
 * (package-private {@code Blocker}) that forwards a close to the thread's innermost hook. {@code enter()}
 * installs it ({@code begin()}: one of the JDK's two {@code synchronized (interruptLock)} blocks);
 * {@code exit()} leaves it installed, because an uninstall ({@code end()}) costs the second block, and a
 * blocker with no hook on top does nothing when an interrupt comes. So a hook costs one JDK lock per call,
 * not two (BENCHMARKS.md, "The sticky blocker"). The only exit that uninstalls is one that finds the
 * thread interrupted: it uses {@code end()}, which finishes an interrupt that has picked the blocker but
 * not closed it yet, so that interrupt fires this hook, not the next one.
 *
 * <p><b>Nesting.</b> The JDK keeps one blocker per thread, and every {@code end()} (of any NIO channel)
 * clears it. Hooks therefore keep a per-thread stack: the blocker fires the innermost hook, and
 * {@link #exit()} of an inner hook leaves the blocker to the next hook out; if an interrupt closed the
 * blocker meanwhile, exit installs a new one, which fires that outer hook at once when the thread is
 * still interrupted. So a nested hook (a nested bridged call, a quick check before the real one) never
 * leaves the outer call deaf to interrupts. An NIO channel used between {@code enter()} and
 * {@code exit()} cannot be repaired this way (its {@code end()} is not ours): that is unsupported, and
 * {@link CancellationSignal} reports the interrupts it swallows. An NIO channel used between two calls
 * is fine: the next {@code enter()} installs the blocker again.
 *
 * <p>A hook fires at most once: once closed (by an interrupt) it cannot fire again, so make a
 * new one per stretch of work (see {@link #isOpen()}). Threading: {@link #enter()} and
 * {@link #exit()} are called by the thread making the call, in LIFO order with other hooks (a hook
 * may be entered by another thread later, after its exit, when something that orders the two hands
 * it over, such as a pool); the
 * action runs in the interrupting thread (or in this one, when entering finds the thread
 * interrupted) and must be short and must not block. When {@code exit()} returns, an action that
 * fired has completed and the hook will not fire for that stretch any more.
 */
public final class InterruptHook extends AbstractInterruptibleChannel {
    /** Each thread's stack of hooks entered and not yet exited, made on its first entry. */
    private static final ThreadLocal<Stack> STACKS = new Stacks();
    private static final VarHandle TOP;

    static {
        try {
            TOP = MethodHandles.lookup().findVarHandle(Stack.class, "top", InterruptHook.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

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

    /**
     * One thread's stack and blocker. Only that thread writes them; an interrupter reads {@link #top}
     * (in {@link Blocker#implCloseChannel()}).
     */
    private static final class Stack {
        /**
         * The innermost hook, linked to the outer ones by {@link #outer}. Pushed with a plain store
         * ({@code begin()}'s lock right after it publishes it to an interrupter that finds the blocker
         * after that lock; one that found it before sets the interrupt status that the same
         * {@code begin()} then reads), popped with a volatile store (the Dekker hand-off in exit()).
         */
        volatile InterruptHook top;
        /** The blocker installed for this thread's hooks, or null before the first entry; open until an interrupt closes it. */
        Blocker blocker;
    }

    /**
     * The channel recorded as the thread's blocker: {@code Thread.interrupt()} closes it, and the
     * close fires the thread's innermost hook. It fires at most once (a channel closes once); the next
     * entry after that installs a new one. The interrupter runs {@code implCloseChannel} under this
     * channel's close lock, so a thread that takes that lock (by {@link #close()}) waits for it.
     */
    private static final class Blocker extends AbstractInterruptibleChannel {
        private final Stack stack;

        Blocker(Stack stack) {
            this.stack = stack;
        }

        /** Records this channel as the calling thread's blocker; an interrupt already pending closes it at once. */
        void install() {
            begin();
        }

        /**
         * Clears the calling thread's blocker, first finishing an interrupt that picked this channel
         * but has not closed it yet (the JDK's {@code end()}): it then fires the hook on top now.
         */
        void uninstall() {
            try {
                end(true);
            } catch (AsynchronousCloseException closedByInterrupt) {
                // ClosedByInterruptException: the interrupt closed us, which fired the top hook; the
                // thread's interrupt status stays set, which is all the callers need.
            }
        }

        /** Waits until an interrupt's close of this channel has completed (its close lock); a no-op when none ran. */
        void awaitClose() {
            try {
                close();
            } catch (IOException impossible) {
                throw new UncheckedIOException(impossible); // implCloseChannel throws none
            }
        }

        @Override
        protected void implCloseChannel() {
            // Dekker with exit(): the close set `closed` (volatile) before this read of `top`
            // (volatile); exit() pops `top` (volatile), then reads `closed`. Either exit() sees the
            // close and waits for it on the close lock, or we see the popped stack and leave the
            // exited hook alone.
            InterruptHook hook = stack.top;
            if (hook != null) {
                hook.fire();
            }
        }
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
        TOP.set(mine, this); // plain: see Stack.top
        Blocker blocker = mine.blocker;
        if (blocker == null || !blocker.isOpen()) {
            blocker = new Blocker(mine); // the first entry, or an interrupt closed the last one
            mine.blocker = blocker;
        }
        blocker.install();
        if (!blocker.isOpen()) {
            // An interrupt closed the blocker, maybe one that found it installed from an earlier call
            // and closed it before it could see this hook on top. Its status is set (interrupters set it
            // before they pick the blocker), so fire this hook ourselves; a second fire is a no-op.
            fire();
        }
    }

    /**
     * Unregisters the hook and hands the thread's blocker back to the hook that was active before
     * it (installing a new blocker if an interrupt closed this one, which fires that hook at once if
     * the thread is still interrupted). When an interrupt has fired this hook, its action has
     * completed when this returns, and no interrupt fires it later.
     */
    public void exit() {
        if (popForExit(true)) {
            finishExit();
        }
    }

    /**
     * The first half of {@link #exit()}: a caller with a hand-off of its own at the same point (the
     * reusable signal's stop slot) pops the hook with a release store, orders both hand-offs with one
     * full fence, then calls {@link #finishExit()}; one fence instead of two.
     *
     * @param fence whether to pop with a volatile store (the caller fences otherwise)
     * @return true if the caller must call {@link #finishExit()} (after a full fence unless
     *         {@code fence}); false if the exit is complete (never entered, or the thread was
     *         interrupted: that exit uninstalls the blocker through the JDK's lock, which orders it)
     */
    boolean popForExit(boolean fence) {
        Stack mine = stack; // the stack enter() pushed this hook on: exit() runs on the same thread
        if (mine == null) {
            return false; // never entered
        }
        if (Thread.currentThread().isInterrupted()) {
            // An interrupt may have picked the blocker and not closed it yet; end() finishes it while
            // this hook is still on top, so it fires this hook (or finds it fired), never the next.
            Blocker blocker = mine.blocker;
            blocker.uninstall();
            InterruptHook top = unlink(true);
            if (top != null) {
                // The blocker is gone: give the thread a new one for the innermost hook still
                // active, which fires it now (the thread is interrupted).
                rearm(mine, top, blocker.isOpen() ? blocker : null);
            }
            return false;
        }
        unlink(fence); // a store of the stack's top, then (after a fence) the read in finishExit()
        return true;
    }

    /** The second half of {@link #exit()}, after {@link #popForExit(boolean)} and a full fence. */
    void finishExit() {
        Stack mine = stack;
        Blocker blocker = mine.blocker;
        if (!blocker.isOpen()) {
            // An interrupt closed the blocker: it may be firing this hook right now (it read the
            // top before our pop). Its close lock is held until it is done.
            blocker.awaitClose();
            InterruptHook top = mine.top; // what the pop left: only this thread writes it
            if (top != null) {
                // The blocker fires once: the hooks still active need a new one. Installing it fires
                // the top one at once if the thread is interrupted (the interrupt may have been meant
                // for it: it came after this hook's pop).
                rearm(mine, top, null);
            }
        }
    }

    /** Installs {@code blocker} (a new one if null) for {@code top}, the thread's innermost hook, firing it if the thread is interrupted. */
    private static void rearm(Stack mine, InterruptHook top, Blocker blocker) {
        Blocker fresh = blocker != null ? blocker : new Blocker(mine);
        mine.blocker = fresh;
        fresh.install();
        if (!fresh.isOpen()) {
            top.fire();
        }
    }

    /** Runs the action unless it ran already (a hook fires once). */
    private void fire() {
        try {
            close();
        } catch (IOException impossible) {
            throw new UncheckedIOException(impossible); // implCloseChannel throws none
        }
    }

    /** Removes this hook from the thread's stack; returns the innermost hook still active, or null. */
    private InterruptHook unlink(boolean fence) {
        Stack mine = stack;
        InterruptHook top = mine.top;
        if (top == this) {
            top = outer;
            if (fence) {
                TOP.setVolatile(mine, top);
            } else {
                TOP.setRelease(mine, top);
            }
        } else {
            // Exited out of order: drop this hook from the middle of the stack, keep the top. An
            // interrupter that read this hook as the top before the newer ones were pushed may still
            // be firing it: the fence (ours or the caller's) orders the read of the blocker's state
            // in finishExit() after the unlink.
            for (InterruptHook hook = top; hook != null; hook = hook.outer) {
                if (hook.outer == this) {
                    hook.outer = outer;
                    break;
                }
            }
            if (fence) {
                VarHandle.fullFence();
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
