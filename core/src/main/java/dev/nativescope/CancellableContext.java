package dev.nativescope;

import dev.nativescope.internal.access.FieldHandles;
import dev.nativescope.internal.access.StopLink;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CancellationException;

/**
 * A {@link Context} that its owner can cancel: the handle returned by {@link #withCancel()},
 * {@link #withTimeout(java.time.Duration)}, {@link #withDeadline(Instant)} and
 * {@link #withDeadlineNanoTime(long)}.
 *
 * <p>Cancelling ends this context and every descendant: they become done, their
 * {@link #onDone(Runnable)} actions run, and this context is unlinked from its parent. Pass the
 * context on as a {@link Context} to code that should follow it but not end it. The owner should
 * close it when the work it covers is over, even on success, so that it releases its link in the
 * parent and its deadline timer entry:
 * {@snippet :
 * try (CancellableContext attempt = parent.withTimeout(Duration.ofSeconds(2))) {
 *     return attempt.call(() -> model.predict(input));
 * }
 * }
 *
 * <h2>Thread safety</h2>
 * Every method may be called from any thread, concurrently. Cancellation is idempotent and the
 * first cause wins: of several concurrent {@code cancel} calls exactly one makes the context done,
 * and that call's thread runs the actions; the others return at once (possibly before those
 * actions have finished). {@link #close()} is the exception: it waits for the actions, so that the
 * owner may release what they use once it returns.
 *
 * <h2>Implementation notes</h2>
 * Each context has a small lock guarding its list of live children ({@link ChildLinks}), its list
 * of pending actions ({@link DoneActions}) and the transition to done. The transition happens under
 * the lock and freezes both lists: from then on they belong to the cancelling thread alone, which
 * walks them without the lock. Every operation that adds to a list (deriving a child, registering
 * an action) checks under the same lock that the context is live, and otherwise handles the done
 * case itself; so nothing is ever added to a frozen list, and nothing in a frozen list is missed. A
 * thread holds at most one of these locks at a time, so they cannot deadlock, and no user code runs
 * under a lock.
 *
 * <h2>Cancels land first</h2>
 * A native call in flight under this context is stopped through the context's {@link StopLink} slot
 * (the call bridge attaches its frame's link there for the call's extent), and every way to cancel
 * runs that link before anything else: {@link #cancel()} and {@link #close()} before they build their
 * default cause, {@link #cancel(Throwable)}
 * before it takes the lock, the deadline timer and the native entry check before they build the
 * {@link DeadlineExceededException}, and a parent's cancel for each descendant right after marking it
 * done, before any action runs. The link is run again after {@code markDone}, for a call that attached
 * between the first run and the transition (it then sees the cause only after our second read: see
 * {@link #cancelTree}). What runs after the link still delays a call that shares the canceller's
 * CPU (it runs only once the canceller gives the CPU up), so the default cause is cheap: a
 * {@link CancellationException} that names the cancelling thread and fills no stack trace
 * ({@link ContextCanceledException}; BENCHMARKS.md section 18).
 */
public final class CancellableContext extends Context implements AutoCloseable {
    /**
     * The context this one is linked under: the nearest cancellable ancestor, whose cancellation
     * cancels this one. Null when there is none (only value contexts between this and background).
     */
    private final CancellableContext cancellableParent;

    /** Guards the lists, the transition to done, {@link #canceller} and the wait for {@link #settled}. */
    private final Object lock = new Object();

    /**
     * Null while live; then the first cause, forever. Written once, under {@link #lock}; read
     * without it by {@link Context#isDone()} and {@link Context#cause()} (the volatile read is what
     * publishes the canceller's earlier writes to those readers).
     */
    volatile Throwable cause;

    /**
     * True once done and every action registered while live has run or been removed. Set under
     * {@link #lock}, with a {@code notifyAll} for {@link #close()}; read without it on the fast path.
     */
    private volatile boolean settled;

    /** The thread running this context's actions while done but not settled; guarded by {@link #lock}. */
    private Thread canceller;

    /** Set once {@link #close()} has completed; read by the native mirror. */
    private volatile boolean closed;

    /** The pending expiry on the shared timer, if this context's own deadline is the effective one. */
    private volatile DeadlineTimer.Entry deadlineTask;

    // Live children: guarded by lock while live, owned by the cancelling thread once done.
    private final ChildLinks children = new ChildLinks();
    // This context's links in cancellableParent's list, changed only by that list (ChildLinks):
    // guarded by cancellableParent.lock, and owned by the parent's cancelling thread once the parent is done.
    CancellableContext previousSibling;
    CancellableContext nextSibling;

    // Pending actions: guarded by lock while live, owned by the cancelling thread once done.
    private final DoneActions actions = new DoneActions();

    private static final VarHandle STOP_LINK = FieldHandles.of(MethodHandles.lookup(), "stopLink", StopLink.class);
    /** The link of the one native call that runs first on cancel (see the class documentation), or null. */
    @SuppressWarnings("unused") // through STOP_LINK
    private volatile StopLink stopLink;

    private CancellableContext(Context parent, long deadlineNanoTime, Instant deadline) {
        super(parent, null, null, deadlineNanoTime, deadline);
        this.cancellableParent = parent.stateOwner;
    }

    /**
     * Derives a cancellable child of {@code parent}, with an own deadline if {@code hasOwnDeadline},
     * and links it into the tree.
     *
     * @param ownWallClockDeadline the own deadline as given by the caller, or null to convert it
     */
    static CancellableContext create(Context parent, boolean hasOwnDeadline, long ownDeadlineNanoTime,
                                     Instant ownWallClockDeadline) {
        boolean ownDeadlineIsEarlier = hasOwnDeadline
                && (parent.deadline == null || ownDeadlineNanoTime - parent.deadlineNanoTime < 0);
        CancellableContext child;
        if (ownDeadlineIsEarlier) {
            Instant wallClock = ownWallClockDeadline != null ? ownWallClockDeadline : wallClockOf(ownDeadlineNanoTime);
            child = new CancellableContext(parent, ownDeadlineNanoTime, wallClock);
        } else {
            // The parent expires first and takes the child with it: no timer entry of our own.
            child = new CancellableContext(parent, parent.deadlineNanoTime, parent.deadline);
        }
        child.linkUnderParent();
        if (ownDeadlineIsEarlier) {
            child.expireAtDeadline();
        }
        return child;
    }

    private void linkUnderParent() {
        if (cancellableParent == null) {
            // Only background above: nothing can cancel this context but its owner, and nothing
            // needs to reference it (background keeps no children, so none can leak there).
            return;
        }
        Throwable parentCause = cancellableParent.linkChild(this);
        if (parentCause != null) {
            // The parent was done before we could link: be done at once, with the parent's cause,
            // before anyone else sees this context, so no one ever sees it live under a done parent.
            cancelTree(parentCause);
        }
    }

    /**
     * Links {@code child} into this context's list of children.
     *
     * @return null when linked, else this context's cause (it is done; the child was not linked)
     */
    private Throwable linkChild(CancellableContext child) {
        synchronized (lock) {
            // Checked under the lock that markDone() takes: either the child is linked before this
            // context is marked done, and then the canceller finds it in the frozen list and cancels it,
            // or this context is done already and the caller makes the child done itself.
            Throwable done = cause;
            if (done != null) {
                return done;
            }
            children.append(child);
            return null;
        }
    }

    /**
     * Unlinks {@code child}, which has just become done, from this context's list, unless this context
     * is done too. Called once per child, by the thread that made the child done.
     */
    private void unlinkChild(CancellableContext child) {
        synchronized (lock) {
            if (cause != null) {
                // This context's canceller owns the frozen list and may be walking it right now;
                // it drops the child itself.
                return;
            }
            // This context is live, so it has been live since the child was created: the child was
            // linked then (linkChild succeeded), and only this call, made once, unlinks it.
            children.unlink(child);
        }
    }

    /**
     * Expires this context if its deadline has passed, otherwise schedules this method on the shared
     * timer for the deadline. The timer runs it then, and it checks the clock once more: the timer
     * never fires early, but the contract that no context expires before its deadline should not
     * rest on that alone.
     */
    private void expireAtDeadline() {
        if (cause != null) {
            return;
        }
        long now = System.nanoTime();
        long remaining = deadlineNanoTime - now;
        if (remaining <= 0) {
            stopFirst(true);
            cancelTree(new DeadlineExceededException(deadlineNanoTime, now));
            return;
        }
        DeadlineTimer.Entry task = DeadlineTimer.schedule(new ExpireAtDeadline(), remaining);
        deadlineTask = task;
        // Race with a concurrent cancel: it writes cause, then reads deadlineTask (finishCancel); we
        // wrote deadlineTask, now read cause. With both fields volatile, at least one of us sees the
        // other's write, so the task is cancelled (removed from the queue) by one or both of us.
        if (cause != null) {
            task.cancel();
        }
    }

    /**
     * The timer's task: {@link #expireAtDeadline()}. A class, not a method reference: that is a class
     * spun at run time, which a fresh JVM's first deadline would pay for (BENCHMARKS.md "Cold start").
     */
    private final class ExpireAtDeadline implements Runnable {
        @Override
        public void run() {
            expireAtDeadline();
        }
    }

    /**
     * The entry check of native calls ({@link Context#expireIfDue()}): expires the context that owns
     * this context's effective deadline if the clock has passed it. That owner is the topmost
     * cancellable ancestor with the same deadline (children that inherit a deadline keep no timer
     * entry of their own), so the whole subtree that shares the deadline expires with one cause, as
     * when the timer fires. Races with the timer are settled by {@code markDone}: the first cause wins.
     */
    boolean expireIfDue() {
        if (cause != null) {
            return true;
        }
        if (deadline == null) {
            return false;
        }
        long now = System.nanoTime();
        if (deadlineNanoTime - now > 0) {
            return false;
        }
        CancellableContext owner = this;
        while (owner.cancellableParent != null && owner.cancellableParent.deadline != null
                && owner.cancellableParent.deadlineNanoTime == deadlineNanoTime) {
            owner = owner.cancellableParent;
        }
        // The caller's own call (attached to this context) and the owner's first, then the exception.
        stopFirst(true);
        owner.stopFirst(true);
        DeadlineExceededException expired = new DeadlineExceededException(deadlineNanoTime, now);
        owner.cancelTree(expired);
        if (cause == null) {
            // The owner was already done and its cascade has not reached us yet: do not wait for it.
            cancelTree(expired);
        }
        return true;
    }

    /**
     * Cancels this context and its descendants with a {@link CancellationException} whose message is
     * "context canceled" followed by the cancelling thread's name and id, e.g.
     * {@code context canceled (by thread "main" #1)}; it has no stack trace (filling one would delay
     * native code that shares this thread's CPU): pass a cause of your own to
     * {@link #cancel(Throwable)} for one. Does nothing if this context is already done.
     *
     * @see #cancel(Throwable)
     */
    public void cancel() {
        if (cause == null) {
            stopFirst(false);
            cancelTree(new ContextCanceledException("context canceled"));
        }
    }

    /**
     * Cancels this context and its descendants with {@code cause}, unless it is already done.
     *
     * <p>If this call makes the context done, then before it returns every descendant is done, with
     * the same cause object unless it had been cancelled on its own before, and the
     * {@link #onDone(Runnable)} actions of this context and those descendants have run in this thread (exceptions they threw have gone to this thread's uncaught
     * exception handler; this method itself never throws because of them). If the context was
     * already done, this method changes nothing and returns at once; in particular it may return
     * while another thread is still running the actions of the cancellation that came first.
     *
     * @param cause why the context is cancelled; returned by {@link #cause()} from now on
     * @throws NullPointerException if {@code cause} is null
     */
    public void cancel(Throwable cause) {
        Objects.requireNonNull(cause, "cause");
        if (this.cause == null) {
            stopFirst(cause instanceof DeadlineExceededException);
        }
        cancelTree(cause);
    }

    /**
     * Ends this context as its owner: cancels it with a {@link CancellationException} whose message is
     * "context closed" followed by the closing thread, as {@link #cancel()} does (unless it is already
     * done, then the first cause stays), waits until every
     * {@link #onDone(Runnable)} action of this context that was registered before it became done has
     * run or been removed, even if another thread is running them, and marks the context closed.
     * Idempotent.
     *
     * <p>The wait does not apply to the thread running those actions itself, which may close the
     * context from within one of them, and it is not interruptible (the interrupt status is kept). An
     * action that waits for the thread calling this method would wait forever: actions must not
     * block.
     */
    @Override
    public void close() {
        if (cause == null) {
            stopFirst(false);
            cancelTree(new ContextCanceledException("context closed"));
        }
        awaitSettled();
        closed = true;
    }

    /** Runs the attached {@link StopLink}, if any: writes its native call's state word. */
    private void stopFirst(boolean deadline) {
        StopLink link = stopLink;
        if (link != null) {
            link.contextStopping(this, deadline);
        }
    }

    /** @return true when {@code link} now holds the slot; false when another link does */
    boolean attachStop(StopLink link) {
        // A full fence: the caller reads the cause after it (see cancelTree).
        return STOP_LINK.compareAndSet(this, (StopLink) null, link);
    }

    void detachStop(StopLink link) {
        // Only the attacher clears its own link, and nobody replaces a non-null one, so the plain
        // check cannot race. A release store suffices: a canceller that still reads the old link
        // asks it, and the link ignores a context it is no longer attached to.
        if (STOP_LINK.getOpaque(this) == link) {
            STOP_LINK.setRelease(this, (StopLink) null);
        }
    }

    /** {@return whether {@link #close()} has completed: the owner is done with this context} */
    boolean isClosed() {
        return closed;
    }

    /**
     * Makes this context done with {@code cause}, then its descendants, then runs their actions;
     * nothing if this context is already done. The cascade is iterative (breadth first), so the depth
     * of the tree is not limited by the stack.
     */
    private void cancelTree(Throwable cause) {
        if (!markDone(cause)) {
            return;
        }
        boolean deadline = cause instanceof DeadlineExceededException;
        // Again after markDone: a call that attached after the caller's stopFirst() read the slot
        // saw no cause yet and entered native code. We wrote the cause (volatile) and now read the
        // slot; it wrote the slot (CAS) and then read the cause: one of us sees the other.
        stopFirst(deadline);
        // Our lists are frozen and ours alone since markDone(): read them without the lock.
        if (children.isEmpty()) {
            if (cancellableParent != null) {
                cancellableParent.unlinkChild(this);
            }
            reportActionFailures(finishCancel(null));
            return;
        }
        // Mark the whole subtree done before running any action, so every action sees all of it done.
        List<CancellableContext> cancelled = new ArrayList<>();
        cancelled.add(this);
        for (int i = 0; i < cancelled.size(); i++) {
            CancellableContext node = cancelled.get(i);
            CancellableContext child = node.children.takeAll();
            while (child != null) {
                // The sibling links of a done parent's children are ours too: a child becoming done on
                // its own meanwhile finds the parent done in unlinkChild() and leaves them alone.
                CancellableContext next = node.children.detach(child);
                // A child already done was cancelled on its own first, with its own cause; its
                // canceller takes care of its subtree.
                if (child.markDone(cause)) {
                    child.stopFirst(deadline);
                    cancelled.add(child);
                }
                child = next;
            }
        }
        // After the walk: every native call of the subtree is stopped before we take another lock.
        if (cancellableParent != null) {
            cancellableParent.unlinkChild(this);
        }
        List<Throwable> failures = null;
        for (CancellableContext node : cancelled) {
            failures = node.finishCancel(failures);
        }
        reportActionFailures(failures);
    }

    /**
     * The transition to done.
     *
     * @return whether this call made the context done (and its caller now owns the frozen lists)
     */
    private boolean markDone(Throwable cause) {
        synchronized (lock) {
            if (this.cause != null) {
                return false;
            }
            this.cause = cause;
            if (actions.isEmpty()) {
                settled = true;
            } else {
                canceller = Thread.currentThread();
            }
            return true;
        }
    }

    /** After markDone(): releases the timer entry and runs the frozen actions, then settles. */
    private List<Throwable> finishCancel(List<Throwable> failures) {
        DeadlineTimer.Entry task = deadlineTask;
        if (task != null) {
            // Harmless when the task is the one running us: it is no longer queued.
            task.cancel();
        }
        if (actions.isEmpty()) {
            return failures; // settled in markDone()
        }
        try {
            failures = actions.runAll(failures);
        } finally {
            synchronized (lock) {
                settled = true;
                canceller = null;
                lock.notifyAll();
            }
        }
        return failures;
    }

    private void awaitSettled() {
        if (settled) {
            return;
        }
        boolean interrupted = false;
        synchronized (lock) {
            // The canceller itself gets here when an action closes this context (or an action of an
            // ancestor closes it before this context's actions had their turn): it must not wait for
            // itself.
            while (!settled && canceller != Thread.currentThread()) {
                try {
                    lock.wait();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /** Registers {@code action} for {@link Context#onDone(Runnable)}, or runs it now if done. */
    DoneActions.DoneAction addDoneAction(Runnable action) {
        DoneActions.DoneAction registration = DoneActions.registration(this, action);
        synchronized (lock) {
            // Appended under the lock that markDone() takes: either the canceller finds it in the
            // frozen list, or we see the context done here and run it ourselves; never both, never
            // neither.
            if (cause == null) {
                actions.append(registration);
                return registration;
            }
        }
        reportActionFailures(registration.runOnce(null));
        return registration;
    }

    /** Drops a removed action from the pending list, unless the context is done (then it is skipped). */
    void unlinkAction(DoneActions.DoneAction action) {
        synchronized (lock) {
            if (cause != null) {
                // The canceller owns the frozen list and skips the action: its state is REMOVED.
                return;
            }
            // Live, so the action is in the list: it was appended while live and only its one
            // successful remove() unlinks it.
            actions.unlink(action);
        }
    }

    /** {@return the number of live children linked under this context, for leak tests} */
    int childCount() {
        synchronized (lock) {
            if (cause != null) {
                return 0; // the frozen list is the canceller's, and is dropped as it is walked
            }
            return children.size();
        }
    }

    /** {@return the number of actions waiting for this context to be done, for leak tests} */
    int pendingActionCount() {
        synchronized (lock) {
            if (cause != null) {
                return 0;
            }
            return actions.size();
        }
    }

    private static void reportActionFailures(List<Throwable> failures) {
        if (failures == null) {
            return;
        }
        Thread thread = Thread.currentThread();
        Thread.UncaughtExceptionHandler handler = thread.getUncaughtExceptionHandler();
        for (Throwable failure : failures) {
            try {
                handler.uncaughtException(thread, failure);
            } catch (Throwable ignored) {
                // As the JVM does with a failing handler: nothing more can be done with it, and the
                // caller's cancel must not fail because of an action.
            }
        }
    }
}
