package dev.nativescope.interop;

import dev.nativescope.Context;
import dev.nativescope.DeadlineExceededException;
import dev.nativescope.Registration;
import dev.nativescope.internal.access.ContextAccess;
import dev.nativescope.internal.access.FieldHandles;
import dev.nativescope.internal.access.SharedAccess;
import dev.nativescope.internal.access.StopLink;
import dev.nativescope.internal.text.SafeText;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Objects;
import java.util.concurrent.CancellationException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;

/**
 * The cancellation protocol for one stretch of native work that Java cannot interrupt: a downcall,
 * a JNI call into a third-party runtime (ONNX Runtime's {@code run}), a CUDA stream, a socket read in
 * native code. Opened by the thread about to do the work, it turns every way the work should stop
 * into one call of a {@link StopAction} that stops the native side (set a terminate flag, cancel a
 * struct, close a socket):
 * <ul>
 * <li>the {@link Context}'s cancellation or deadline ({@link Reason#CONTEXT});</li>
 * <li>an interrupt of the calling thread, also one that came before {@code open}
 *     ({@link Reason#INTERRUPT}), through an {@link InterruptHook};</li>
 * <li>optionally an owner's lifetime, e.g. the adapter's own {@code close()} ({@link Reason#OWNER}).</li>
 * </ul>
 * {@snippet :
 * try (CancellationSignal signal = CancellationSignal.open(context, reason -> runtime.abort(handle))) {
 *     if (!signal.isStopped()) {          // stopped before entry: do not start the work
 *         status = runtime.run(handle);
 *     }
 *     if (signal.isStopped()) {
 *         throw signal.stoppedException("llama.cpp decode");
 *     }
 * }
 * }
 * The first reason wins; the action runs at most once per signal, in the thread that caused the stop
 * (the canceller, the interrupter, the deadline timer) or at once in {@code open} when the context
 * is already done or the thread already interrupted. {@link #stoppedException(String)} is the one
 * translation of the outcome: a {@link DeadlineExceededException} linked to the context's expiry, or a
 * {@link CancellationException} whose cause is the context's cause or an {@link InterruptedException}.
 * The calling thread's interrupt status is left as it was.
 *
 * <p>Threading: {@code open} and {@link #close()} are called by the thread doing the work, and the
 * work must run between them on that thread. Nested signals and {@link InterruptHook}s are fine (an
 * inner one hands the thread's interrupt blocker back to the outer one when it ends), but Java code
 * between {@code open} and {@code close} must not use interruptible NIO channels: their {@code end()}
 * clears the blocker for good, so a later interrupt is not heard. That is detected: {@code close()}
 * finds the thread interrupted with no stop, logs a {@code WARNING} naming the fix (once per process) and records it
 * ({@link #missedInterrupt()}), so the caller does not report the work as completed normally. The action
 * must be short and must not block: it may run under the JDK's interrupt lock or on the shared
 * deadline timer. It may also still be running, or start, while {@code close()} returns: code whose
 * stop action touches memory freed after the work (a struct, run options) must make a late action
 * harmless, as {@code RunTermination} does.
 *
 * <p><b>Reusable signals.</b> A caller that does many short stretches on one thread (the call
 * bridge: one signal per call frame) makes the signal once with {@link #reusable(StopAction)} and
 * {@link #reopen(Context) reopens} it per stretch. Then nothing is allocated per stretch: the
 * interrupt hook is kept while no interrupt has fired it, and the context is reached through its
 * one stop slot (one compare-and-set, see {@code StopLink}) rather than a done action; a second
 * signal open under the same context at the same time falls back to a done action. Its
 * {@link #close()} waits for a context stop that is still running, so a late stop never reaches the
 * next stretch and the action never runs after {@code close()} returns (interrupt stops are over
 * when the hook's exit returns: the JDK finishes them under the channel's close lock).
 */
public final class CancellationSignal implements AutoCloseable {
    /** What stopped the work. */
    public enum Reason {
        /** The context was cancelled or its deadline passed. */
        CONTEXT,
        /** The calling thread was interrupted. */
        INTERRUPT,
        /** The owner given to {@link #open(Context, Context, StopAction)} became done (closed). */
        OWNER
    }

    /** Stops the native side of the work; see the class documentation for where it runs. */
    @FunctionalInterface
    public interface StopAction {
        /**
         * @param reason why the work is to stop
         */
        void stop(Reason reason);
    }

    private static final ContextAccess CONTEXTS = SharedAccess.CONTEXTS.get();
    private static final AtomicBoolean MISSED_REPORTED = new AtomicBoolean();
    /** Looked up on first use only: finding the logging backend costs milliseconds at startup. */
    private static final class Log {
        static final System.Logger LOGGER = System.getLogger(CancellationSignal.class.getName());
    }
    private static final VarHandle REASON = FieldHandles.of(MethodHandles.lookup(), "reason", Reason.class);

    private static final VarHandle ATTACHED = FieldHandles.of(MethodHandles.lookup(), "attachedOwner", Context.class);
    private static final VarHandle OWNER_ATTACHED = FieldHandles.of(MethodHandles.lookup(), "attachedLifetime", Context.class);
    private static final VarHandle STOPS_IN_FLIGHT = FieldHandles.of(MethodHandles.lookup(), "stopsInFlight", int.class);
    /** {@link #close()} of a reusable signal: busy polls before parking (a running stop needs about a microsecond). */
    private static final int CLOSE_SPINS = 100;

    private Context context;
    private final Context owner;
    private final StopAction action;
    private volatile Reason reason;
    /** Whether the stop came from a deadline; written before {@link #reason}, by the stopping thread. */
    private volatile boolean deadlineStop;
    /** Reusable only: the link in the context's stop slot, made once. */
    private final Link link;
    /** Reusable with an owner only: the link in the owner's stop slot, made once; else null. */
    private final Link ownerLink;
    /** Reusable only: the state owner the link is attached to for this stretch, or null between stretches. */
    // Written through ATTACHED, read directly by Link.attachedNow()
    private volatile Context attachedOwner;
    /** Reusable with an owner only: the owner's state owner {@link #ownerLink} is attached to, or null. */
    // Written through OWNER_ATTACHED, read directly by Link.attachedNow()
    private volatile Context attachedLifetime;
    /** Reusable only: context stops running through {@link #link} right now. */
    @SuppressWarnings("unused") // through STOPS_IN_FLIGHT
    private volatile int stopsInFlight;
    /** Reusable only: the thread parked in {@link #close()} until the stops in flight are over, or null. */
    private volatile Thread closing;

    private Registration onContextDone;
    private Registration onOwnerDone;
    /** Reusable with an owner only: whether {@link #ownerLink} holds the owner's slot this stretch. */
    private boolean ownerSlotHeld;
    private InterruptHook interruptHook;
    /** Set by {@link #close()}; read by the opening thread after it. */
    private boolean missedInterrupt;

    private CancellationSignal(Context context, Context owner, StopAction action, boolean reusable) {
        this.context = context;
        this.owner = owner;
        this.action = action;
        this.link = reusable ? new Link(Reason.CONTEXT) : null;
        this.ownerLink = reusable && owner != null ? new Link(Reason.OWNER) : null;
    }

    /**
     * Makes a closed signal for {@link #reopen(Context)}: see "Reusable signals" in the class
     * documentation. Only the thread that reopens it may use it (one stretch at a time); see
     * {@link #reusable(Context, StopAction)} for one that also stops when an owner is done.
     *
     * @param action what stops the native side; it must itself ignore a stop meant for an earlier
     *               stretch only if it keeps state across stretches beyond what {@code close()} waits for
     * @return the closed signal
     */
    public static CancellationSignal reusable(StopAction action) {
        Objects.requireNonNull(action, "action");
        return new CancellationSignal(null, null, action, true);
    }

    /**
     * Makes a closed {@linkplain #reusable(StopAction) reusable} signal whose stretches also stop
     * when {@code owner} is done ({@link Reason#OWNER}), like {@link #open(Context, Context, StopAction)}
     * without allocating: the owner is reached through its stop slot as the context is (one
     * compare-and-set per stretch; a stretch that finds the slot taken, by another signal of the same
     * owner open at the same time, falls back to a done action). An adapter keeps one per unit of
     * work that runs one stretch at a time (a cached binding, a worker thread) and opens each
     * stretch with {@link #reopen(Context)}; a stretch may be opened by a different thread than the
     * previous one, never while one is open.
     *
     * @param owner the adapter's lifetime, cancelled by its {@code close()}
     * @param action what stops the native side
     * @return the closed signal
     */
    public static CancellationSignal reusable(Context owner, StopAction action) {
        Objects.requireNonNull(owner, "owner");
        Objects.requireNonNull(action, "action");
        return new CancellationSignal(null, owner, action, true);
    }

    /**
     * Opens a {@linkplain #reusable(StopAction) reusable} signal for a stretch under {@code context},
     * like {@link #open(Context, StopAction)} without allocating.
     *
     * @return this signal, open; close it when the native work has returned
     * @throws IllegalStateException if this signal is not reusable, or is open
     */
    public CancellationSignal reopen(Context context) {
        Objects.requireNonNull(context, "context");
        if (link == null || this.context != null) {
            throw new IllegalStateException(link == null ? "not a reusable signal" : "already open");
        }
        this.context = context;
        missedInterrupt = false;
        // No stop of the previous stretch is in flight (close() waited), so these resets race with
        // nothing; the stop slot's CAS and the hook's entry below publish them. The flag is written
        // only when set: a volatile store is a full fence, the price of an atomic per stretch.
        if (deadlineStop) {
            deadlineStop = false;
        }
        REASON.setRelease(this, (Reason) null);
        Context stateOwner = CONTEXTS.stateOwner(context);
        // Published by the slot's CAS below, before any canceller can find the link.
        ATTACHED.setRelease(this, stateOwner);
        if (!CONTEXTS.attachStop(context, link)) {
            // Another call under the same context holds the slot: a done action (it allocates).
            // It runs after the context is marked done, so its cause says whether it was a deadline.
            Link ours = link;
            onContextDone = context.onDone(() -> ours.contextStopping(stateOwner, stateOwner.isDeadlineExceeded()));
        }
        if (ownerLink != null) {
            attachOwner();
        }
        // The clock, not only isDone(): an expired deadline fires here, through the link just attached.
        if (CONTEXTS.expireIfDue(context)) {
            // Done before or while we attached: a canceller that read the slot before our CAS
            // stopped nothing, so stop now (idempotent with one that did).
            stop(Reason.CONTEXT, context.isDeadlineExceeded());
        }
        InterruptHook hook = interruptHook;
        if (hook == null || !hook.isOpen()) {
            // Only after an interrupt fired (closed) the previous one: a hook fires once.
            hook = new InterruptHook(new StopOnInterrupt());
            interruptHook = hook;
        }
        hook.enter();
        return this;
    }

    /**
     * Attaches {@link #ownerLink} to the owner's stop slot for this stretch (or a done action when
     * the slot is taken), then stops at once if the owner is already done: an owner cancelled before
     * the attach found no link, so this check is what stops the stretch (idempotent with one that did).
     */
    private void attachOwner() {
        Context lifetime = CONTEXTS.stateOwner(owner);
        // Published by the slot's CAS below, before the owner's canceller can find the link.
        OWNER_ATTACHED.setRelease(this, lifetime);
        ownerSlotHeld = CONTEXTS.attachStop(owner, ownerLink);
        if (!ownerSlotHeld) {
            Link ours = ownerLink;
            onOwnerDone = owner.onDone(() -> ours.contextStopping(lifetime, false));
        }
        if (owner.isDone()) {
            stop(Reason.OWNER, false);
        }
    }

    /** A reusable signal's entry in a stop slot: the context's, or the owner's. */
    private final class Link extends StopLink {
        private final Reason reason;

        Link(Reason reason) {
            this.reason = reason;
        }

        /**
         * The signal's field naming the state owner this link is attached to for the stretch, read as
         * a volatile field, not through a VarHandle held in an instance field: such a handle is not a
         * constant to the JIT, and this read comes before the state word on every cancel.
         */
        private Context attachedNow() {
            return reason == Reason.OWNER ? attachedLifetime : attachedOwner;
        }

        @Override
        public void contextStopping(Context cancelled, boolean deadline) {
            STOPS_IN_FLIGHT.getAndAdd(CancellationSignal.this, 1);
            try {
                // Dekker with close(): we incremented, then read the attached field; close() clears
                // it, then reads stopsInFlight (all volatile): either we see null (or another
                // stretch's context) and do nothing, or close() sees us and waits. A stale link
                // reattached to the same context for a new stretch is stopped rightly: that context
                // is done. An owner stop is never a deadline stop (as in open(): the owner is closed).
                if (cancelled != null && attachedNow() == cancelled) {
                    stop(reason, reason == Reason.CONTEXT && deadline);
                }
            } finally {
                if ((int) STOPS_IN_FLIGHT.getAndAdd(CancellationSignal.this, -1) == 1) {
                    Thread waiting = closing;
                    if (waiting != null) {
                        LockSupport.unpark(waiting);
                    }
                }
            }
        }
    }

    /**
     * Opens the signal for work under {@code context} on the calling thread.
     *
     * @param context whose cancellation and deadline stop the work
     * @param action what stops the native side
     * @return the open signal; close it when the native work has returned
     */
    public static CancellationSignal open(Context context, StopAction action) {
        return open(context, null, action);
    }

    /**
     * Opens the signal for work under {@code context} that also stops when {@code owner} is done:
     * an adapter cancels its own lifetime context in {@code close()} to stop the work in flight.
     *
     * @param owner the owner's lifetime, or null for none
     * @return the open signal; close it when the native work has returned
     */
    public static CancellationSignal open(Context context, Context owner, StopAction action) {
        Objects.requireNonNull(context, "context");
        Objects.requireNonNull(action, "action");
        CancellationSignal signal = new CancellationSignal(context, owner, action, false);
        // Registered before the hook is entered and before the caller's check: a cancel or close that
        // came before now stops at once, here, so the check after open() sees it.
        signal.onContextDone = context.onDone(() -> signal.stop(Reason.CONTEXT, context.isDeadlineExceeded()));
        // The clock, not only isDone(): an expired deadline the timer has not fired yet fires now,
        // through the action just registered, so work is never started after its deadline.
        CONTEXTS.expireIfDue(context);
        if (owner != null) {
            signal.onOwnerDone = owner.onDone(() -> signal.stop(Reason.OWNER, false));
        }
        InterruptHook hook = new InterruptHook(signal.new StopOnInterrupt());
        hook.enter();
        signal.interruptHook = hook;
        return signal;
    }

    /**
     * A signal's interrupt hook action. A class, not a lambda: a lambda is a class spun at run time,
     * which a fresh JVM's first bridged call would pay for (BENCHMARKS.md "Cold start").
     */
    private final class StopOnInterrupt implements Runnable {
        @Override
        public void run() {
            stop(Reason.INTERRUPT, false);
        }
    }

    private void stop(Reason why, boolean deadline) {
        if (reason == null && REASON.compareAndSet(this, (Reason) null, why)) {
            deadlineStop = deadline;
            action.stop(why);
        }
    }

    /** {@return true once a stop was requested, for whatever reason} */
    public boolean isStopped() {
        return reason != null;
    }

    /**
     * {@return true when the work was told to stop because a deadline passed}: known from the moment
     * of the stop, before the context's {@linkplain Context#cause() cause} may be visible (a cancel
     * stops native work first and builds its cause after); meaningful once {@link #isStopped()},
     * and exact in the stop action itself
     */
    public boolean isDeadlineStop() {
        return deadlineStop;
    }

    /** {@return why the work was told to stop, or null if it was not} */
    public Reason reason() {
        return reason;
    }

    /**
     * Builds the exception for work that stopped, to throw in the calling thread.
     *
     * @param what names the work in the message, e.g. {@code "ONNX Runtime run"}
     * @return for {@link Reason#CONTEXT}, a {@link DeadlineExceededException} linked to the
     *         context's expiry when its deadline passed, else a {@link CancellationException} caused by
     *         the context's cause; for {@link Reason#INTERRUPT} one caused by an
     *         {@link InterruptedException}; for {@link Reason#OWNER} one caused by the owner's cause
     * @throws IllegalStateException if the work was not told to stop
     */
    public RuntimeException stoppedException(String what) {
        Reason why = reason;
        if (context == null) {
            throw new IllegalStateException("a reusable signal translates its stop only while open");
        }
        if (why == null) {
            throw new IllegalStateException(what + " was not stopped");
        }
        return switch (why) {
            case CONTEXT -> {
                awaitCause(context);
                yield contextStopped(context, what);
            }
            case INTERRUPT -> interrupted(what);
            case OWNER -> {
                awaitCause(owner);
                Throwable cause = owner.cause();
                String message = SafeText.messageOf(cause);
                yield canceled(what, message != null ? message : "its owner closed", cause);
            }
        };
    }

    /**
     * Waits until {@code context}'s cause is visible. A reusable signal is stopped through the
     * context's stop slot, which every cancel and expiry runs before it builds and publishes the
     * cause (so native work stops first): the work can end and ask for its exception in between
     * (seen: a CancellationException without the cancel's cause, OrtRaceTest). The cause is
     * microseconds away; after a second without it (it always comes) the exception is built as is.
     */
    private static void awaitCause(Context context) {
        long deadline = System.nanoTime() + 1_000_000_000L;
        for (int spins = 0; context.cause() == null && System.nanoTime() - deadline < 0; spins++) {
            if (spins < 100) {
                Thread.onSpinWait();
            } else {
                // Parking, not yield(): the canceller may be the thread our wake-up preempted on this CPU.
                LockSupport.parkNanos(10_000);
            }
        }
    }

    /**
     * {@return the exception for work under {@code context} that stopped because the context is
     * done}: the same translation as {@link #stoppedException(String)} for {@link Reason#CONTEXT},
     * for callers that found the context done without opening a signal (a check before entry)
     */
    public static RuntimeException contextStopped(Context context, String what) {
        Throwable cause = context.cause();
        if (cause instanceof DeadlineExceededException deadline) {
            return CONTEXTS.deadlineExceeded(context, deadline);
        }
        return canceled(what, cause);
    }

    /** {@return the exception for work that stopped because the calling thread was interrupted} */
    public static CancellationException interrupted(String what) {
        CancellationException canceled = new CancellationException(what + " canceled: the thread was interrupted");
        canceled.initCause(new InterruptedException("thread interrupted during " + what));
        return canceled;
    }

    /** {@return the exception for work that stopped because of {@code cause}, a context's cause} */
    public static CancellationException canceled(String what, Throwable cause) {
        // SafeText: a cause whose toString() throws must still give the CancellationException.
        return canceled(what, SafeText.of(cause), cause);
    }

    private static CancellationException canceled(String what, String detail, Throwable cause) {
        CancellationException canceled = new CancellationException(what + " canceled: " + detail);
        canceled.initCause(cause);
        return canceled;
    }

    /**
     * Ends the stretch: unregisters the interrupt hook (waiting for an interrupt's action in
     * progress) and withdraws the done actions. Later cancels and interrupts no longer reach the
     * action, except one already running (see the class documentation).
     *
     * <p>If the thread is interrupted and nothing stopped the work, the interrupt came while the
     * hook was not installed (Java code in the stretch used an interruptible NIO channel, or the
     * thread interrupted itself): that is logged and recorded, see {@link #missedInterrupt()}.
     */
    @Override
    public void close() {
        // Read before exit(): an interrupt that comes after the stretch is not a missed one. An
        // interrupt whose action is in flight is seen as a stop once exit() returns (an interrupted
        // thread's exit runs or finishes the close through the JDK's end()), so only an interrupt the
        // hook never saw is left over.
        // A platform-thread interrupt sets the status before it reads the blocker (under the JDK's
        // interrupt lock): one that lands just as the work ends, between those two steps, looks the
        // same as a missed one. Treating it as an interrupt of the work is right either way; only the
        // WARNING would mislead, which is why it is logged once per process (and says so).
        boolean interruptedAtEnd = Thread.currentThread().isInterrupted();
        if (link != null) {
            closeReusable();
        } else {
            try {
                interruptHook.exit();
            } finally {
                onContextDone.remove();
                if (onOwnerDone != null) {
                    onOwnerDone.remove();
                }
            }
        }
        if (interruptedAtEnd && reason == null) {
            missedInterrupt = true;
            if (MISSED_REPORTED.compareAndSet(false, true)) {
                Log.LOGGER.log(System.Logger.Level.WARNING, "the thread was interrupted during native work while its"
                    + " interrupt hook was not installed, so the interrupt did not stop the work: Java code inside"
                    + " the work (e.g. in a NativeCall.invoke Downcall) used an interruptible NIO channel or"
                    + " interrupted its own thread. Do such I/O before NativeCall.invoke or after it, not inside"
                    + " the Downcall. (Rarely, an interrupt that lands just as native work ends is reported too.) Logged"
                    + " once per process");
            }
        }
    }

    private void closeReusable() {
        Context closed = context;
        if (closed == null) {
            throw new IllegalStateException("not open");
        }
        boolean hookPopped = false;
        try {
            hookPopped = interruptHook.popForExit(false);
        } finally {
            // Two Dekker hand-offs end here, ordered by one full fence: the hook's pop before its read
            // of the blocker (finishExit), and the cleared attached fields (see Link.contextStopping)
            // before awaitStops' read. The fields are cleared with release stores. Under a context
            // that can never be done (Context.background() and its value children) nothing was
            // attached and no canceller can reach the link; only this thread writes the field, so
            // the plain read is exact.
            boolean attached = ownerLink != null || (Context) ATTACHED.get(this) != null;
            if (attached) {
                ATTACHED.setRelease(this, (Context) null);
                if (ownerLink != null) {
                    OWNER_ATTACHED.setRelease(this, (Context) null);
                }
            }
            if (hookPopped || attached) {
                VarHandle.fullFence();
            }
            if (hookPopped) {
                interruptHook.finishExit();
            }
            Registration fallback = onContextDone;
            if (fallback != null) {
                onContextDone = null;
                fallback.remove(); // a running one goes through the link: awaited below
            } else {
                CONTEXTS.detachStop(closed, link);
            }
            if (ownerLink != null) {
                Registration ownerFallback = onOwnerDone;
                if (ownerFallback != null) {
                    onOwnerDone = null;
                    ownerFallback.remove();
                }
                if (ownerSlotHeld) {
                    ownerSlotHeld = false;
                    CONTEXTS.detachStop(owner, ownerLink);
                }
            }
            awaitStops();
            context = null;
        }
    }

    /**
     * Waits for context stops in flight. Not a pure spin: the stopping thread is typically inside
     * {@code nsc_context_cancel} right after the write that woke us, and the kernel likes to wake
     * us on its CPU; a spin would then hold that CPU for a scheduler slice. So spin briefly, then
     * park until the last stop unparks us. Park returns at once for an interrupted thread: yield then.
     */
    private void awaitStops() {
        for (int spins = 0; spins < CLOSE_SPINS; spins++) {
            if ((int) STOPS_IN_FLIGHT.getVolatile(this) == 0) {
                return;
            }
            Thread.onSpinWait();
        }
        Thread self = Thread.currentThread();
        // Published before the re-read: a stop decrements, then reads closing (both volatile).
        closing = self;
        try {
            while ((int) STOPS_IN_FLIGHT.getVolatile(this) != 0) {
                if (self.isInterrupted()) {
                    Thread.yield();
                } else {
                    LockSupport.park(this);
                }
            }
        } finally {
            closing = null;
        }
    }

    /**
     * {@return true when {@link #close()} found the thread interrupted although no stop was
     * requested}: the interrupt came while the hook was not installed, so the work was not told to
     * stop. Callers should treat the work as interrupted rather than report its result as normal.
     */
    public boolean missedInterrupt() {
        return missedInterrupt;
    }
}
