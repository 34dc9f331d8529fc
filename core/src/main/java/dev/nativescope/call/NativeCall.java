package dev.nativescope.call;

import dev.nativescope.call.NativeThreads.OffloadedDowncall;
import dev.nativescope.library.NativeStatus;
import dev.nativescope.library.NativeStatusException;
import dev.nativescope.Context;
import dev.nativescope.DeadlineExceededException;
import dev.nativescope.internal.access.CallAccess;
import dev.nativescope.internal.access.CallSnapshot;
import dev.nativescope.internal.access.ContextAccess;
import dev.nativescope.internal.access.DiagnosticsHooks;
import dev.nativescope.internal.access.SharedAccess;
import dev.nativescope.internal.text.SafeText;
import dev.nativescope.interop.CancellationSignal;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.bindings.nativescope_h;
import java.lang.foreign.MemorySegment;
import java.lang.ref.Reference;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.concurrent.CancellationException;
import java.util.concurrent.TimeUnit;

/**
 * The cancellable call bridge: the one place that knows about interrupts. Every native function
 * that takes an {@code nsc_context *} is called through {@link #invoke(Context, Downcall)}:
 * <ol>
 * <li>the call gets its own native context (a child of {@code context}: same deadline and values,
 *     cancelled when {@code context} is);</li>
 * <li>an interrupt hook is registered for the calling thread, so {@code Thread.interrupt()}
 *     cancels this call's native context from the interrupting thread (no watcher thread, no
 *     polling from Java); a thread already interrupted is cancelled before entering native code;</li>
 * <li>the downcall runs with a pointer to that struct;</li>
 * <li>the hook is removed and the status translated: {@code NSC_CANCELED} becomes a
 *     {@link CancellationException} whose cause is the context's cause (or an
 *     {@link InterruptedException} for an interrupt), {@code NSC_DEADLINE_EXCEEDED} a
 *     {@link DeadlineExceededException}, negative statuses a {@link NativeStatusException}.</li>
 * </ol>
 * The calling thread's interrupt status is left as it was: an interrupt that cancelled the call is
 * still pending afterwards.
 *
 * <p><b>Native code that does not check its context.</b> Cancelling cannot stop native code that
 * never looks at its {@code nsc_context}: such a call ends at its own pace, and the caller (a
 * structured scope's {@code close()}, say) waits for it. When it then returns a status that is not
 * a cancellation, the call's work is done and its result is returned as usual, not thrown away;
 * if it returned more than {@value #LATE_RETURN_WARNING_PROPERTY} milliseconds (default
 * {@value #DEFAULT_LATE_RETURN_WARNING_MILLIS}) after its cancel, a {@code WARNING} on the
 * {@link System.Logger} {@code dev.nativescope.call.NativeCall} says how late, so the predictor that
 * ignores cancellation can be found and fixed.
 *
 * <p><b>What a Downcall may do.</b> Nested bridged calls (a quick check before the real call) are
 * fine: the inner call hands the interrupt hook back to the outer one when it ends. Java code in a
 * Downcall must not use interruptible NIO channels: their {@code end()} removes the call's hook for
 * good, so a later {@code Thread.interrupt()} is not heard. That is unsupported and detected: a
 * {@code WARNING} (logger {@code dev.nativescope.interop.CancellationSignal}, once per process) names
 * the fix, and the call throws a {@link CancellationException} caused by an
 * {@link InterruptedException} instead of returning its status as a normal success. FFM's own
 * exceptions from the downcall (a closed arena, another thread's confined arena, a heap segment)
 * reach the caller as themselves, not as the bindings' {@code AssertionError}.
 *
 * <p><b>Native functions without a context parameter.</b> A vendor's C API has fixed signatures:
 * {@link #call(Context, CurrentCall)} runs such a downcall under the same native context, made
 * current on the thread that runs the native code, where {@code nsc_current()} (nativescope.h)
 * finds it: a callback the vendor calls, or code deep below it, checks, waits, reads values and
 * registers hooks through it (see {@link CurrentCall}).
 *
 * <p>Entry compares the context's deadline with the clock, not only {@link Context#isDone()}: a
 * deadline that has passed but that the timer thread has not fired yet is fired here, so the call is
 * refused with a {@link DeadlineExceededException} and the context reports the same expiry.
 *
 * <p>Downcalls made through the bridge must not use {@code Linker.Option.critical}: they poll and
 * may block. Thread-safe; calls on different threads are independent.
 */
public final class NativeCall {
    /** System property: milliseconds a cancelled call may run on before its return is logged as late. */
    public static final String LATE_RETURN_WARNING_PROPERTY = "nativescope.lateReturnWarningMillis";
    static final long DEFAULT_LATE_RETURN_WARNING_MILLIS = 100;
    private static final long LATE_RETURN_WARNING_NANOS = TimeUnit.MILLISECONDS.toNanos(
            Long.getLong(LATE_RETURN_WARNING_PROPERTY, DEFAULT_LATE_RETURN_WARNING_MILLIS));
    /** Names a bridged call in messages. */
    private static final String WHAT = "native call";
    /** The message of the AssertionError with which jextract's generated code wraps what invokeExact threw. */
    private static final String GENERATED_WRAPPER_MESSAGE = "should not reach here";
    private static final ContextAccess CONTEXTS = SharedAccess.CONTEXTS.get();
    /** JFR events and the in-flight registry's switch ({@code dev.nativescope.diagnostics}). */
    private static final DiagnosticsHooks DIAGNOSTICS = SharedAccess.DIAGNOSTICS.get();
    /** Whether calls are tracked for dumps: {@code -Dnativescope.diagnostics=false} turns it off. */
    static final boolean DIAGNOSTICS_ON = DIAGNOSTICS.registryEnabled();
    /** Whether every tracked call reads the clock for its start time, not only those with a deadline (which read it anyway). */
    private static final boolean START_TIMES = DIAGNOSTICS_ON && DIAGNOSTICS.startTimesEnabled();
    /** No outcome yet: the call threw before it returned a status. */
    private static final int NO_STATUS = Integer.MIN_VALUE;

    static {
        SharedAccess.CALLS.register(new InFlight());
        DIAGNOSTICS.bridgeLoaded();
    }
    /**
     * The in-flight view for diagnostics. A class, not {@code CallFrame::inFlight}: a method reference
     * is a class spun at run time, which a fresh JVM's first bridged call would pay for (BENCHMARKS.md
     * "Cold start").
     */
    private static final class InFlight implements CallAccess {
        @Override
        public List<CallSnapshot> inFlight() {
            return CallFrame.inFlight();
        }
    }

    /** Looked up on first use only: finding the logging backend costs milliseconds at startup. */
    private static final class Log {
        static final System.Logger LOGGER = System.getLogger(NativeCall.class.getName());
    }

    private NativeCall() {
    }

    /** A downcall that receives the call's {@code nsc_context *} and returns an {@code nsc_status}. */
    @FunctionalInterface
    public interface Downcall {
        /**
         * @param context the native context of this call; valid only until the downcall returns
         * @return the native status
         * @throws Throwable whatever the method handle throws
         */
        int invoke(MemorySegment context) throws Throwable;
    }

    /**
     * A downcall to a native function that takes no {@code nsc_context *} (a vendor API with fixed
     * signatures, a jextract-generated function of it): while it runs, {@code nsc_current()} on the
     * thread that runs it returns the call's native context, so that native code below it (the
     * vendor's callbacks, a kernel, a plugin) can check it ({@code nsc_current_check()}), wait on it,
     * read its values and register cancel hooks on it (to call the vendor's own terminate function).
     *
     * <p>The bridge makes the context current just before {@code call()} and restores the previous
     * one (the outer call's when nested, else none) just after it, on the same thread, also when it
     * throws or was cancelled; an offloaded call does both on its native thread, so a pooled native
     * thread never sees the context of a call it ran before. Native code must not keep the pointer
     * after the call returns, and a callback the vendor makes on a thread of its own sees no current
     * context: capture the {@code nsc_context *} when registering such a callback (see
     * docs/predictor-sdk.md). Java code in {@code call()} must not use interruptible NIO channels
     * (as in a {@link Downcall}).
     *
     * @param <T> the result
     * @param <X> what it throws besides unchecked exceptions
     */
    @FunctionalInterface
    public interface CurrentCall<T, X extends Throwable> {
        /**
         * @return the native function's result, returned to the caller unless the call was stopped
         * @throws X what the downcall throws
         */
        T call() throws X;
    }

    /**
     * Runs {@code downcall} under {@link Context#current()}.
     *
     * @see #invoke(Context, Downcall)
     */
    public static int invoke(Downcall downcall) {
        return invoke(Context.current(), (String) null, downcall);
    }

    /**
     * Runs {@code downcall} under {@code context}, without a label: diagnostics name the call by
     * the class of {@code downcall}.
     *
     * @param context the context whose cancellation, deadline and values the native code sees
     * @param downcall the native call
     * @return the status when it is not a cancellation or an error: {@code NSC_OK},
     *         {@code NSC_TIMEOUT}, {@code NSC_NOT_FOUND}, ...
     * @throws DeadlineExceededException when the context's deadline stopped the call (or had passed)
     * @throws CancellationException when the context was cancelled or the thread interrupted
     * @throws NativeStatusException when the native code returned an error status
     * @throws IllegalStateException when the context was closed by its owner
     * @see #invoke(Context, String, Downcall)
     */
    public static int invoke(Context context, Downcall downcall) {
        return invoke(context, (String) null, downcall);
    }

    /**
     * Runs {@code downcall} under {@code context}; {@code label} names the call in diagnostics (the
     * in-flight dump of {@code dev.nativescope.diagnostics.Diagnostics}, {@code nativescope inspect},
     * JFR events): typically the native function or predictor, e.g. {@code "dense"}. Pass a constant:
     * the label is stored per call, not copied.
     *
     * @param context the context whose cancellation, deadline and values the native code sees
     * @param label the name of the call in diagnostics, or null to use the class of {@code downcall}
     * @param downcall the native call
     * @return the status when it is not a cancellation or an error: {@code NSC_OK},
     *         {@code NSC_TIMEOUT}, {@code NSC_NOT_FOUND}, ...
     * @throws DeadlineExceededException when the context's deadline stopped the call (or had passed)
     * @throws CancellationException when the context was cancelled or the thread interrupted
     * @throws NativeStatusException when the native code returned an error status
     * @throws IllegalStateException when the context was closed by its owner
     */
    public static int invoke(Context context, String label, Downcall downcall) {
        Objects.requireNonNull(context, "context");
        Objects.requireNonNull(downcall, "downcall");
        if (CallMode.FORCED != null) { // -Dnativescope.callMode (tests): a constant, folded away when unset
            downcall = OffloadedDowncall.wrap(context, CallMode.FORCED, null, downcall);
        }
        return invokeInMode(context, label, downcall, downcall.getClass(), null, null);
    }

    /**
     * {@link #invoke(Context, Downcall)} once the mode is applied (the downcall offloaded or not).
     *
     * @param kind the class that names the call in diagnostics when it has no label
     * @param currentCallFrame for a {@link CurrentCall}, the frame its caller acquired (it reads the
     *        call's outcome from the frame's adapter before releasing the frame); null for other calls,
     *        which take and release a frame here. A current call's native code cannot report a
     *        deadline it saw on the clock, so such a call that returns after the deadline is expired
     * @param inlineCall an inline {@link CurrentCall}, which {@code downcall} (the frame's adapter) runs
     *        with this parameter rather than a field (no store, no GC barrier); null for other calls
     */
    private static int invokeInMode(Context context, String label, Downcall downcall, Class<?> kind,
                                    CallFrame currentCallFrame, CurrentCall<?, ?> inlineCall) {
        NativeLibrary.load();
        // The clock, not only isDone(): a deadline that has passed but that the timer thread has not
        // fired yet is fired here, so the call is refused like any expired one and the context
        // reports the same expiry afterwards.
        if (CONTEXTS.expireIfDue(context)) {
            throw alreadyDone(context);
        }
        NativeValues values = NativeValues.holdFor(context);
        if (values == null) {
            throw alreadyDone(context);
        }
        CallFrame frame = currentCallFrame;
        Object event = null;
        int status = NO_STATUS;
        try {
            if (frame == null) {
                frame = CallFrame.acquire();
            }
            event = DIAGNOSTICS.callStarted(frame.jfrEvent);
            if (event != null) {
                frame.jfrEvent = event; // the same object after the frame's first recorded call
            }
            // One clock read for the deadline and the registry's start time; none without a deadline
            // (a clock read is a third of the bridge's overhead) unless start times are asked for.
            boolean hasDeadline = CONTEXTS.hasDeadline(context);
            long now = hasDeadline || START_TIMES ? System.nanoTime() : 0;
            frame.arm(hasDeadline ? deadlineOf(context, now) : CallFrame.NO_DEADLINE, values);
            if (DIAGNOSTICS_ON) {
                frame.track(context, label, kind, now);
            }
            status = callInFrame(context, frame, downcall, inlineCall);
            if (currentCallFrame != null && hasDeadline && status == NativeStatus.OK.code() && CONTEXTS.expireIfDue(context)) {
                // Returned after the deadline, which its native code may have seen on the clock and
                // stopped for: a function without a context cannot say, so the call counts as expired.
                status = NativeStatus.DEADLINE_EXCEEDED.code();
            }
            long cancelNanoTime = frame.cancelNanoTime();
            if (cancelNanoTime != -1) {
                afterCancel(context, label, kind, frame, status, System.nanoTime() - cancelNanoTime);
            } else if (status == NativeStatus.DEADLINE_EXCEEDED.code()) {
                deadlineNoticedByNativeCode(context, label, kind);
            }
            return translate(status, context, frame);
        } finally {
            if (event != null) {
                DIAGNOSTICS.callEnded(event, context, label, kind,
                        status == NO_STATUS ? "EXCEPTION" : NativeStatus.nameOf(status));
            }
            if (frame != null && currentCallFrame == null) {
                frame.release();
            }
            // A current call's frame is released after this, by its caller: nothing reads the
            // struct's values pointer once the call has returned (dumps read only its heartbeat).
            values.release();
            // The values block is retired by a cleaner when the context becomes unreachable: keep
            // the context reachable until the native code can no longer read the block.
            Reference.reachabilityFence(context);
        }
    }

    // ---- Offloaded calls (issue 14): entries that move the native part to a native thread. ----
    // They wrap the downcall (OffloadedDowncall) and go through the inline path above unchanged.

    /**
     * Runs a long call under {@link Context#current()}.
     *
     * @see #invokeLong(Context, Downcall)
     */
    public static int invokeLong(Downcall downcall) {
        return invokeLong(Context.current(), downcall);
    }

    /**
     * Runs {@code downcall}, a call that may take long (more than about 20 microseconds), under
     * {@code context}: in {@link CallMode#AUTO}, so from a virtual thread it runs on a native thread
     * while the virtual thread parks (its carrier stays free for other virtual threads), and from a
     * platform thread inline. Same semantics, results and exceptions as
     * {@link #invoke(Context, Downcall)}; see {@link NativeThreads} for what differs on a native
     * thread (confined arenas, thread locals) and for the pool's bounds.
     *
     * @throws java.util.concurrent.RejectedExecutionException when every native thread is busy and
     *         the queue is full (the message names the properties to raise)
     */
    public static int invokeLong(Context context, Downcall downcall) {
        return invoke(context, CallMode.AUTO, downcall);
    }

    /**
     * Runs {@code downcall} under {@code context} in {@code mode}.
     *
     * @see #invokeLong(Context, Downcall)
     */
    public static int invoke(Context context, CallMode mode, Downcall downcall) {
        return invoke(context, null, mode, downcall);
    }

    /**
     * Runs {@code downcall} under {@code context} in {@code mode}; {@code label} names the call in
     * diagnostics, as for {@link #invoke(Context, String, Downcall)}.
     *
     * @see #invokeLong(Context, Downcall)
     */
    public static int invoke(Context context, String label, CallMode mode, Downcall downcall) {
        Objects.requireNonNull(context, "context");
        Objects.requireNonNull(mode, "mode");
        Objects.requireNonNull(downcall, "downcall");
        return invokeInMode(context, label, OffloadedDowncall.wrap(context, mode.resolved(), null, downcall),
                downcall.getClass(), null, null);
    }

    /**
     * Runs {@code downcall} under {@code context} on {@code affinity}'s native thread, from any
     * thread: every call of one session runs on the same thread.
     *
     * @see #invokeLong(Context, Downcall)
     */
    public static int invoke(Context context, Affinity affinity, Downcall downcall) {
        Objects.requireNonNull(context, "context");
        Objects.requireNonNull(affinity, "affinity");
        Objects.requireNonNull(downcall, "downcall");
        return invokeInMode(context, null, OffloadedDowncall.wrap(context, CallMode.OFFLOAD, affinity, downcall),
                downcall.getClass(), null, null);
    }

    // ---- Calls without a context parameter (issue 18): the context is made current instead. ----

    /**
     * Runs {@code call} under {@link Context#current()}.
     *
     * @see #call(Context, CurrentCall)
     */
    public static <T, X extends Throwable> T call(CurrentCall<? extends T, X> call) throws X {
        return call(Context.current(), call);
    }

    /**
     * Runs {@code call}, a downcall to a native function without an {@code nsc_context *}
     * parameter, under {@code context}: the call gets its own native context as with
     * {@link #invoke(Context, Downcall)} (cancelled with {@code context}, by its deadline and by an
     * interrupt of the calling thread), made current for {@code nsc_current()} while {@code call}
     * runs (see {@link CurrentCall}). Inline, as {@link #invoke(Context, Downcall)}.
     *
     * <p>Such a function cannot report that a cancel stopped it: its result is returned when the
     * call's context was live when it returned; when the context was cancelled or its deadline had
     * passed by then, the call throws as a stopped {@link #invoke(Context, Downcall)} does, and the
     * result is dropped (so do not use this form for functions that return something that must be
     * freed). A context already done refuses the call before native code runs. What {@code call}
     * throws is rethrown unchanged (jextract's {@code AssertionError} wrapper removed) when the call
     * was not stopped, and added as suppressed to the cancellation otherwise.
     *
     * @param context the context whose cancellation, deadline and values the native code sees
     * @param call the native call
     * @return what {@code call} returned
     * @throws DeadlineExceededException when the context's deadline passed before the call returned
     * @throws CancellationException when the context was cancelled or the thread interrupted
     * @throws IllegalStateException when the context was closed by its owner, or when native code
     *         changed the current context ({@code nsc_current_set}) without restoring it
     * @throws X what {@code call} threw
     */
    public static <T, X extends Throwable> T call(Context context, CurrentCall<? extends T, X> call) throws X {
        return call(context, null, CallMode.FORCED != null ? CallMode.FORCED : CallMode.INLINE, call);
    }

    /**
     * Runs {@code call} under {@code context} in {@code mode}: {@link CallMode#AUTO} for calls that
     * may take long, so that from a virtual thread it runs on a native thread (see
     * {@link #invokeLong(Context, Downcall)}), where the context is made current.
     *
     * @see #call(Context, CurrentCall)
     */
    public static <T, X extends Throwable> T call(Context context, CallMode mode, CurrentCall<? extends T, X> call)
            throws X {
        return call(context, null, mode, call);
    }

    /**
     * Runs {@code call} under {@code context} in {@code mode}; {@code label} names the call in
     * diagnostics, as for {@link #invoke(Context, String, Downcall)}.
     *
     * @see #call(Context, CurrentCall)
     */
    public static <T, X extends Throwable> T call(Context context, String label, CallMode mode,
                                                  CurrentCall<? extends T, X> call) throws X {
        Objects.requireNonNull(mode, "mode");
        return callWithCurrent(context, label, mode.resolved(), null, call);
    }

    /**
     * Runs {@code call} under {@code context} on {@code affinity}'s native thread, from any thread.
     *
     * @see #call(Context, CurrentCall)
     */
    public static <T, X extends Throwable> T call(Context context, Affinity affinity, CurrentCall<? extends T, X> call)
            throws X {
        Objects.requireNonNull(affinity, "affinity");
        return callWithCurrent(context, null, CallMode.OFFLOAD, affinity, call);
    }

    private static <T, X extends Throwable> T callWithCurrent(Context context, String label, CallMode mode,
            Affinity affinity, CurrentCall<? extends T, X> call) throws X {
        Objects.requireNonNull(context, "context");
        Objects.requireNonNull(call, "call");
        NativeLibrary.load(); // before CurrentDowncall's initialiser looks the slot function up
        // An inline call without affinity runs here on any thread (a native thread's nested calls too).
        NativeThreadPool target = mode == CallMode.INLINE && affinity == null ? null : NativeThreads.targetFor(mode, affinity);
        // The frame is taken here, not in invokeInMode, so that its adapter (no allocation, no
        // thread-local look-up) can be read after the call and before the frame goes back.
        CallFrame frame = CallFrame.acquire();
        CurrentDowncall current = frame.currentDowncall();
        try {
            try {
                if (target == null) {
                    invokeInMode(context, label, current, call.getClass(), frame, call);
                } else {
                    invokeInMode(context, label, new OffloadedDowncall(target, context, current.bind(call)),
                            call.getClass(), frame, null);
                }
            } catch (RuntimeException | Error stopped) {
                if (current.failure != null && current.failure != stopped) {
                    stopped.addSuppressed(current.failure);
                }
                throw stopped;
            }
            if (current.unbalanced) {
                throw new IllegalStateException("native code called nsc_current_set during a bridged call without"
                        + " restoring the context it returned; restore it (also on error paths) before returning");
            }
            if (current.failure != null) {
                throw NativeCall.<X>sneaky(current.failure);
            }
            @SuppressWarnings("unchecked") // what call returned, a T (or null)
            T result = (T) current.result;
            return result;
        } finally {
            current.release(); // the frame's adapter: after its outcome was read, before the frame's next call
            frame.release();
        }
    }

    @SuppressWarnings("unchecked")
    private static <X extends Throwable> X sneaky(Throwable failure) throws X {
        throw (X) unwrapGenerated(failure);
    }

    /** A canceller reached the call: report how long native code took to return, and how late a deadline was. */
    private static void afterCancel(Context context, String label, Class<?> kind, CallFrame frame, int status,
            long latencyNanos) {
        String outcome = NativeStatus.nameOf(status);
        DIAGNOSTICS.cancelObserved(context, label, kind, latencyNanos, outcome, frame.wasInterrupted());
        if (status != NativeStatus.CANCELED.code() && status != NativeStatus.DEADLINE_EXCEEDED.code()) {
            if (latencyNanos > LATE_RETURN_WARNING_NANOS) {
                reportLateReturn(status, latencyNanos, frame.cancelCause(context));
                DIAGNOSTICS.lateReturn(context, label, kind, latencyNanos, outcome);
            }
        } else if (status == NativeStatus.DEADLINE_EXCEEDED.code()) {
            // The deadline's stop writes DEADLINE_EXCEEDED into the state word (before the context's cause exists).
            deadlineNoticedByNativeCode(context, label, kind);
        }
    }

    private static void deadlineNoticedByNativeCode(Context context, String label, Class<?> kind) {
        long lateness = CONTEXTS.hasDeadline(context)
                ? System.nanoTime() - CONTEXTS.deadlineNanoTimeOr(context, 0) : -1;
        DIAGNOSTICS.deadlineExceeded(context, label, kind, lateness);
    }

    /** From {@link CallFrame}'s stop action, in the cancelling thread, once the state word is written. */
    static void cancelRequested(CallFrame frame, String reason) {
        DIAGNOSTICS.cancelRequested(frame.trackedContext(), frame.trackedLabel(), frame.trackedDowncall(), reason);
    }

    private static int callInFrame(Context context, CallFrame frame, Downcall downcall, CurrentCall<?, ?> inlineCall) {
        try {
            // The frame's own signal covers the context (cancel, deadline) and the calling thread's
            // interrupt; its close() waits for a stop in flight, so none reaches the frame's next call.
            frame.offloading(downcall instanceof OffloadedDowncall);
            CancellationSignal signal = frame.signal.reopen(context);
            int status = NativeStatus.OK.code();
            // Cancelled between the isDone check and here, or interrupted before the call: don't
            // enter native code at all. The stop may still be writing the state word (its reason is
            // set first): the status is read after close(), which waits for it.
            boolean stoppedBeforeEntry = signal.isStopped() || frame.isCancelled();
            try {
                if (!stoppedBeforeEntry) {
                    // An offloaded call names its native thread in the frame (one class check inline).
                    status = downcall instanceof OffloadedDowncall offloaded ? offloaded.invokeIn(frame)
                            : inlineCall != null ? ((CurrentDowncall) downcall).invokeInline(frame.struct, inlineCall)
                            : downcall.invoke(frame.struct);
                }
            } catch (Throwable failure) {
                signal.close();
                if (signal.missedInterrupt()) {
                    // Typically a ClosedByInterruptException from an NIO channel in the Downcall.
                    CancellationException interrupted = missedInterrupt("threw " + failure.getClass().getName());
                    interrupted.addSuppressed(failure);
                    throw interrupted;
                }
                throw failure;
            }
            signal.close();
            if (stoppedBeforeEntry) {
                status = nativeStatusOfCancelledFrame(frame);
            }
            if (signal.missedInterrupt() && status >= 0) {
                // The interrupt was not heard (the hook was not installed), so we cannot tell whether
                // it came before the native work began: never report the call as a normal success.
                throw missedInterrupt("returned " + NativeStatus.nameOf(status));
            }
            return status;
        } catch (RuntimeException | Error e) {
            Throwable unwrapped = unwrapGenerated(e);
            if (unwrapped instanceof RuntimeException runtime) {
                throw runtime;
            }
            throw (Error) unwrapped;
        } catch (Throwable e) {
            throw new IllegalStateException("native call failed: " + SafeText.of(e), e);
        }
    }

    /**
     * jextract's generated functions catch every {@code Throwable} around {@code invokeExact} and
     * throw {@code new AssertionError("should not reach here", ex)}; FFM's own checks (a closed
     * arena: IllegalStateException; another thread's confined arena: WrongThreadException; a heap
     * segment: IllegalArgumentException) arrive wrapped that way. Give callers the exception itself.
     */
    private static Throwable unwrapGenerated(Throwable thrown) { // RuntimeException or Error in, the same out
        if (thrown instanceof AssertionError wrapper && GENERATED_WRAPPER_MESSAGE.equals(wrapper.getMessage())
                && (wrapper.getCause() instanceof RuntimeException || wrapper.getCause() instanceof Error)) {
            return wrapper.getCause();
        }
        return thrown;
    }

    private static CancellationException missedInterrupt(String outcome) {
        CancellationException interrupted = new CancellationException(WHAT + " canceled: the thread was interrupted"
                + " while the call's interrupt hook was not installed (Java code in the Downcall used an interruptible"
                + " NIO channel); the native code " + outcome + ", which is discarded. Do such I/O outside the Downcall");
        interrupted.initCause(new InterruptedException("thread interrupted during " + WHAT));
        return interrupted;
    }

    /**
     * The native code finished its work although the call was cancelled: it does not check its
     * context, or not often enough. Its result stands; say how late it came.
     */
    private static void reportLateReturn(int status, long lateNanos, Throwable cause) {
        System.Logger logger = Log.LOGGER;
        if (logger.isLoggable(System.Logger.Level.WARNING)) {
            logger.log(System.Logger.Level.WARNING, String.format(Locale.ROOT,
                    "a native call returned %s %.1f ms after it was cancelled (%s): the native code does not check"
                    + " its nsc_context often enough (nsc_check, nsc_checker_poll or the nsc_wait functions; see"
                    + " docs/predictor-sdk.md), and its caller waited for it",
                    NativeStatus.nameOf(status), lateNanos / 1e6, SafeText.of(cause)));
        }
    }

    private static int nativeStatusOfCancelledFrame(CallFrame frame) {
        return ContextStruct.state(frame.view);
    }

    private static long deadlineOf(Context context, long now) {
        // Relative to the clock and saturated (NativeLibrary.toMonotonicNanos): no deadline can wrap
        // into the native clock's past. Read without the OptionalLong, which C2 does not always elide.
        return NativeLibrary.toMonotonicNanos(CONTEXTS.deadlineNanoTimeOr(context, 0), now);
    }

    private static int translate(int status, Context context, CallFrame frame) {
        if (status == NativeStatus.CANCELED.code()) {
            if (frame.wasInterrupted()) {
                throw CancellationSignal.interrupted(WHAT);
            }
            Throwable cause = frame.cancelCause(context);
            if (cause instanceof DeadlineExceededException deadline) {
                throw CONTEXTS.deadlineExceeded(context, deadline);
            }
            throw CancellationSignal.canceled(WHAT, cause);
        }
        if (status == NativeStatus.DEADLINE_EXCEEDED.code()) {
            // Either the deadline timer cancelled the context (then its cause may be moments away:
            // the state word is written first), or native code read the clock first.
            Throwable cause = frame.cancelNanoTime() != -1 ? frame.cancelCause(context) : context.cause();
            throw CONTEXTS.deadlineExceeded(context,
                    cause instanceof DeadlineExceededException deadline ? deadline : null);
        }
        if (status < 0) {
            throw NativeStatus.exception(status, WHAT);
        }
        return status;
    }

    private static RuntimeException alreadyDone(Context context) {
        if (CONTEXTS.isClosed(context)) {
            return new IllegalStateException("the context was closed by its owner; derive a new context"
                    + " (Context.withCancel(), withTimeout(...)) for new native calls");
        }
        return CancellationSignal.contextStopped(context, WHAT);
    }
}
