package dev.nativescope.diagnostics;

import dev.nativescope.Context;
import dev.nativescope.internal.access.DiagnosticsHooks;
import dev.nativescope.internal.text.SafeText;

import java.util.concurrent.atomic.AtomicBoolean;
import jdk.jfr.FlightRecorder;
import jdk.jfr.FlightRecorderListener;

/**
 * The call bridge's diagnostics hooks, and the lazy set-up of what they need: the JFR events
 * ({@link JfrHooks}) once JFR is initialised in this JVM, the MBean a while after the bridge's first
 * use. Until JFR is initialised every event hook is one volatile read of a flag.
 *
 * <p>Thread-safe: the set-up runs once ({@link #SET_UP}); the flag is written once, by the thread
 * that initialises JFR, after {@link JfrHooks} is initialised, so a thread that reads it true calls
 * into an initialised class (the class initialisation's own lock orders the rest).
 */
final class CallHooks implements DiagnosticsHooks {
    private static final AtomicBoolean SET_UP = new AtomicBoolean();
    /** Off the caller's thread and later: the platform MBean server costs tens of milliseconds to start. */
    static final String SETUP_THREAD_NAME = "nativescope-diagnostics-setup";
    /** Whether {@link JfrHooks} is loaded: JFR is initialised in this JVM (a recording exists or existed). */
    private static volatile boolean jfr;

    @Override
    public boolean registryEnabled() {
        return Diagnostics.ENABLED;
    }

    @Override
    public boolean startTimesEnabled() {
        return Diagnostics.START_TIMES;
    }

    @Override
    public void bridgeLoaded() {
        if (SET_UP.compareAndSet(false, true)) {
            // In the calling thread, so that with -XX:StartFlightRecording (JFR initialised before
            // main) the events are on before the first call: the listener is told at once then.
            try {
                FlightRecorder.addListener(new FlightRecorderListener() {
                    @Override
                    public void recorderInitialized(FlightRecorder recorder) {
                        enableJfr();
                    }
                });
            } catch (RuntimeException | LinkageError e) {
                System.getLogger(Diagnostics.class.getName()).log(System.Logger.Level.WARNING,
                        "could not listen for JFR's start (the dev.nativescope JFR events stay off): " + SafeText.of(e));
            }
            // Not a lambda or method reference: either would load DiagnosticsBean (and the JMX classes
            // its verification needs) here, in the calling thread.
            Thread setUp = new Thread(new MBeanSetUp(), SETUP_THREAD_NAME);
            setUp.setDaemon(true);
            setUp.start();
        }
    }

    /** The set-up thread's work; DiagnosticsBean is loaded only when it runs. */
    private static final class MBeanSetUp implements Runnable {
        @Override
        public void run() {
            DiagnosticsBean.registerLater();
        }
    }

    /**
     * Runs in the thread that initialises JFR, before any recording of it starts. A failure leaves
     * the events off and is logged, never thrown into JFR's own initialisation.
     */
    private static void enableJfr() {
        try {
            JfrHooks.start();
            jfr = true;
        } catch (RuntimeException | LinkageError e) {
            System.getLogger(Diagnostics.class.getName()).log(System.Logger.Level.WARNING,
                    "could not load the dev.nativescope JFR events (they stay off): " + SafeText.of(e));
        }
    }

    @Override
    public Object callStarted(Object reusable) {
        return jfr ? JfrHooks.callStarted(reusable) : null;
    }

    @Override
    public void callEnded(Object started, Context context, String label, Class<?> downcallClass, String outcome) {
        JfrHooks.callEnded(started, context, label, downcallClass, outcome);
    }

    @Override
    public void cancelRequested(Context context, String label, Class<?> downcallClass, String reason) {
        if (jfr) {
            JfrHooks.cancelRequested(context, label, downcallClass, reason);
        }
    }

    @Override
    public void cancelObserved(Context context, String label, Class<?> downcallClass, long latencyNanos, String outcome,
            boolean interrupted) {
        if (jfr) {
            JfrHooks.cancelObserved(context, label, downcallClass, latencyNanos, outcome, interrupted);
        }
    }

    @Override
    public void deadlineExceeded(Context context, String label, Class<?> downcallClass, long latenessNanos) {
        if (jfr) {
            JfrHooks.deadlineExceeded(context, label, downcallClass, latenessNanos);
        }
    }

    @Override
    public void lateReturn(Context context, String label, Class<?> downcallClass, long lateNanos, String outcome) {
        if (jfr) {
            JfrHooks.lateReturn(context, label, downcallClass, lateNanos, outcome);
        }
    }
}
