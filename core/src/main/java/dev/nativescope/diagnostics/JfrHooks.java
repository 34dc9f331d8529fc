package dev.nativescope.diagnostics;

import dev.nativescope.Context;
import dev.nativescope.internal.access.CallSnapshot;
import dev.nativescope.internal.access.SharedAccess;
import dev.nativescope.internal.text.SafeText;

import java.util.function.Supplier;
import jdk.jfr.FlightRecorder;

/**
 * The JFR side of {@link CallHooks}: each event behind its class's enabled check (a static probe
 * instance: {@code isEnabled()} reads the event class's state, not the instance's), and the periodic
 * stuck-cancel event. Loaded only once JFR is initialised in this JVM (a recording was started, at
 * JVM start or later): loading the event classes loads about 170 JFR classes, tens of milliseconds
 * that a process which never records should not pay on its first native call. Stateless; thread-safe.
 */
final class JfrHooks {
    private static final Events.NativeCall NATIVE_CALL = new Events.NativeCall();
    private static final Events.CancelRequested CANCEL_REQUESTED = new Events.CancelRequested();
    private static final Events.CancelObserved CANCEL_OBSERVED = new Events.CancelObserved();
    private static final Events.DeadlineExceeded DEADLINE_EXCEEDED = new Events.DeadlineExceeded();
    private static final Events.LateReturn LATE_RETURN = new Events.LateReturn();

    private JfrHooks() {
    }

    /** Registers the periodic event; the event classes are registered by this class's initialiser. */
    static void start() {
        try {
            FlightRecorder.addPeriodicEvent(Events.CancelStuck.class, JfrHooks::emitStuck);
        } catch (RuntimeException | LinkageError e) {
            System.getLogger(Diagnostics.class.getName()).log(System.Logger.Level.WARNING,
                    "could not register the JFR event dev.nativescope.CancelStuck: " + SafeText.of(e));
        }
    }

    private static void emitStuck() {
        if (!Diagnostics.ENABLED) {
            return;
        }
        long now = System.nanoTime();
        for (CallSnapshot s : SharedAccess.CALLS.get().inFlight()) {
            if (s.cancelNanoTime() == -1 || now - s.cancelNanoTime() < Diagnostics.STUCK_NANOS || s.checks() != s.checksAtCancel()) {
                continue;
            }
            Events.CancelStuck event = new Events.CancelStuck();
            event.describe(Diagnostics.labelOf(s.label(), s.downcallClass()), s.context());
            event.callThread = SafeText.of(s.thread());
            event.sinceCancel = now - s.cancelNanoTime();
            event.cause = s.interrupted() ? "interrupt" : causeName(s.context().cause());
            event.checks = s.checks();
            event.heartbeatAge = s.heartbeatNanoTime() == 0 ? Long.MIN_VALUE : now - s.heartbeatNanoTime();
            event.state = "NOT_CHECKING";
            event.commit();
        }
    }

    private static String causeName(Throwable cause) {
        return cause == null ? null : cause.getClass().getName();
    }

    /**
     * A new event of {@code probe}'s class when that class is enabled and the event passes its
     * filters, else null: then the caller computes none of its fields. (The method references passed
     * here are spun only once JFR is initialised, when this class loads: not on a cold start.)
     */
    private static <E extends Events.CallEvent> E toCommit(E probe, Supplier<E> create) {
        if (!probe.isEnabled()) {
            return null;
        }
        E event = create.get();
        return event.shouldCommit() ? event : null;
    }

    /** See {@code DiagnosticsHooks.callStarted}: {@code reusable} is the frame's event of an earlier call, or null. */
    static Object callStarted(Object reusable) {
        if (!NATIVE_CALL.isEnabled()) {
            return null;
        }
        // The frame's own event: one call at a time uses a frame, and an event is free again once it
        // is committed or dropped (begin() and end() overwrite its start and duration).
        Events.NativeCall event = reusable instanceof Events.NativeCall own ? own : new Events.NativeCall();
        event.begin();
        return event;
    }

    static void callEnded(Object started, Context context, String label, Class<?> downcallClass, String outcome) {
        Events.NativeCall event = (Events.NativeCall) started;
        event.end();
        if (event.shouldCommit()) {
            event.describe(Diagnostics.labelOf(label, downcallClass), context);
            event.outcome = outcome;
            event.traceId = Diagnostics.traceIdOf(context);
            event.commit();
            // The event stays with its pooled frame: it must not keep a context's value alive.
            event.traceId = null;
        }
    }

    static void cancelRequested(Context context, String label, Class<?> downcallClass, String reason) {
        Events.CancelRequested event = toCommit(CANCEL_REQUESTED, Events.CancelRequested::new);
        if (event != null) {
            event.describe(context == null ? null : Diagnostics.labelOf(label, downcallClass), context);
            Throwable cause = context == null ? null : context.cause();
            event.cause = cause == null ? reason : reason + ": " + causeName(cause);
            event.canceller = SafeText.of(Thread.currentThread());
            event.commit();
        }
    }

    static void cancelObserved(Context context, String label, Class<?> downcallClass, long latencyNanos, String outcome,
            boolean interrupted) {
        Events.CancelObserved event = toCommit(CANCEL_OBSERVED, Events.CancelObserved::new);
        if (event != null) {
            event.describe(Diagnostics.labelOf(label, downcallClass), context);
            event.latency = Math.max(0, latencyNanos);
            event.outcome = outcome;
            event.commit();
        }
    }

    static void deadlineExceeded(Context context, String label, Class<?> downcallClass, long latenessNanos) {
        Events.DeadlineExceeded event = toCommit(DEADLINE_EXCEEDED, Events.DeadlineExceeded::new);
        if (event != null) {
            event.describe(Diagnostics.labelOf(label, downcallClass), context);
            event.lateness = latenessNanos;
            event.commit();
        }
    }

    static void lateReturn(Context context, String label, Class<?> downcallClass, long lateNanos, String outcome) {
        Events.LateReturn event = toCommit(LATE_RETURN, Events.LateReturn::new);
        if (event != null) {
            event.describe(Diagnostics.labelOf(label, downcallClass), context);
            event.lateBy = lateNanos;
            event.outcome = outcome;
            event.commit();
        }
    }
}
