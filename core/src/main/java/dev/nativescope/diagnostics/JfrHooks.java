package dev.nativescope.diagnostics;

import dev.nativescope.Context;
import dev.nativescope.internal.access.CallSnapshot;
import dev.nativescope.internal.access.SharedAccess;
import dev.nativescope.internal.text.SafeText;

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
        for (CallSnapshot s : SharedAccess.calls().inFlight()) {
            if (s.cancelNanoTime() == -1 || now - s.cancelNanoTime() < Diagnostics.STUCK_NANOS || s.checks() != s.checksAtCancel()) {
                continue;
            }
            Events.CancelStuck event = new Events.CancelStuck();
            event.label = Diagnostics.labelOf(s.label(), s.downcallClass());
            event.callThread = SafeText.of(s.thread());
            event.contextId = Diagnostics.idOf(s.context());
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

    static Object callStarted() {
        if (!NATIVE_CALL.isEnabled()) {
            return null;
        }
        Events.NativeCall event = new Events.NativeCall();
        event.begin();
        return event;
    }

    static void callEnded(Object started, Context context, String label, Class<?> downcallClass, String outcome) {
        Events.NativeCall event = (Events.NativeCall) started;
        event.end();
        if (describe(event, context, label, downcallClass)) {
            event.outcome = outcome;
            event.traceId = Diagnostics.traceIdOf(context);
            event.commit();
        }
    }

    static void cancelRequested(Context context, String label, Class<?> downcallClass, String reason) {
        Events.CancelRequested event = CANCEL_REQUESTED.isEnabled() ? new Events.CancelRequested() : null;
        if (describe(event, context, label, downcallClass)) {
            Throwable cause = context == null ? null : context.cause();
            event.cause = cause == null ? reason : reason + ": " + causeName(cause);
            event.canceller = SafeText.of(Thread.currentThread());
            event.commit();
        }
    }

    static void cancelObserved(Context context, String label, Class<?> downcallClass, long latencyNanos, String outcome,
            boolean interrupted) {
        Events.CancelObserved event = CANCEL_OBSERVED.isEnabled() ? new Events.CancelObserved() : null;
        if (describe(event, context, label, downcallClass)) {
            event.latency = Math.max(0, latencyNanos);
            event.outcome = outcome;
            event.commit();
        }
    }

    static void deadlineExceeded(Context context, String label, Class<?> downcallClass, long latenessNanos) {
        Events.DeadlineExceeded event = DEADLINE_EXCEEDED.isEnabled() ? new Events.DeadlineExceeded() : null;
        if (describe(event, context, label, downcallClass)) {
            event.lateness = latenessNanos;
            event.commit();
        }
    }

    static void lateReturn(Context context, String label, Class<?> downcallClass, long lateNanos, String outcome) {
        Events.LateReturn event = LATE_RETURN.isEnabled() ? new Events.LateReturn() : null;
        if (describe(event, context, label, downcallClass)) {
            event.lateBy = lateNanos;
            event.outcome = outcome;
            event.commit();
        }
    }

    /**
     * Fills what every call event has, when {@code event} (null: its type is off) is to be committed:
     * the label ({@code null} when the registry is off and the context unknown) and the context id.
     *
     * @return whether the caller should fill the rest and commit
     */
    private static boolean describe(Events.CallEvent event, Context context, String label, Class<?> downcallClass) {
        if (event == null || !event.shouldCommit()) {
            return false;
        }
        event.label = context == null ? null : Diagnostics.labelOf(label, downcallClass);
        event.contextId = Diagnostics.idOf(context);
        return true;
    }
}
