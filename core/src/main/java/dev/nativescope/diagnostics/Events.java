package dev.nativescope.diagnostics;

import dev.nativescope.Context;

import jdk.jfr.Category;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.Period;
import jdk.jfr.StackTrace;
import jdk.jfr.Threshold;
import jdk.jfr.Timespan;

/**
 * The JFR events, namespace {@code dev.nativescope}. Loaded by {@link JfrHooks} once JFR is
 * initialised in this JVM; from then on each costs one static enabled check per call while JFR does
 * not record it. Threading: as JFR events, one thread fills and commits an instance (a call frame's
 * reused {@code NativeCall} event: the one thread running that frame's call).
 */
final class Events {
    private Events() {
    }

    /**
     * What every event of a call carries: its label and its context's id. JFR takes these fields
     * into each subclass (listed after the subclass's own) and the inherited annotations
     * ({@code @Category}, {@code @StackTrace}) with them; an abstract class is not itself an event type.
     * Never {@code @Registered(false)} here: that annotation is inherited too, and would unregister
     * every subclass.
     */
    @Category({"nativescope"})
    @StackTrace(false)
    abstract static class CallEvent extends Event {
        @Label("Label") String label;
        @Label("Context Id") long contextId;

        /** Fills the fields every call event has. */
        final void describe(String label, Context context) {
            this.label = label;
            this.contextId = Diagnostics.idOf(context);
        }
    }

    /**
     * An event about a cancel: the call's and the cancel's cause. {@code CancelStuck} names the
     * cause as {@code CancelRequested} does (same field, same description).
     */
    abstract static class CancelEvent extends CallEvent {
        @Label("Cause") @Description("The cause's class, or interrupt") String cause;
    }

    /** The return of a call a cancel reached: the status it returned ({@code CancelObserved}, {@code LateReturn}). */
    abstract static class ReturnAfterCancel extends CallEvent {
        @Label("Outcome") String outcome;
    }

    @Name("dev.nativescope.NativeCall")
    @Label("Native Call")
    @Description("A cancellable native call (NativeCall.invoke) that took longer than the threshold")
    @Threshold("20 ms")
    static final class NativeCall extends CallEvent {
        @Label("Outcome") @Description("The native status, or EXCEPTION") String outcome;
        @Label("Trace Id") @Description("The context's trace-id value, if any") String traceId;
    }

    @Name("dev.nativescope.CancelRequested")
    @Label("Cancel Requested")
    @Description("A cancel (of the context, a deadline, an interrupt) reached a native call in flight")
    static final class CancelRequested extends CancelEvent {
        @Label("Canceller") @Description("The thread that cancelled") String canceller;
    }

    @Name("dev.nativescope.CancelObserved")
    @Label("Cancel Observed")
    @Description("A cancelled native call returned; latency from the cancel to the native return")
    static final class CancelObserved extends ReturnAfterCancel {
        @Label("Latency") @Timespan(Timespan.NANOSECONDS) long latency;
    }

    @Name("dev.nativescope.DeadlineExceeded")
    @Label("Deadline Exceeded")
    @Description("A native call ended by its context's deadline; lateness from the deadline to the return")
    static final class DeadlineExceeded extends CallEvent {
        @Label("Lateness") @Timespan(Timespan.NANOSECONDS) long lateness;
    }

    @Name("dev.nativescope.LateReturn")
    @Label("Late Return")
    @Description("Native code that does not check its context returned a normal status long after its cancel")
    @StackTrace(true) // the one event with the caller's stack: it points at the code that called the late function
    static final class LateReturn extends ReturnAfterCancel {
        @Label("Late By") @Timespan(Timespan.NANOSECONDS) long lateBy;
    }

    @Name("dev.nativescope.CancelStuck")
    @Label("Cancel Stuck")
    @Description("A native call cancelled longer ago than nativescope.diagnostics.stuckMillis whose native code has not checked its context since")
    @Period("1 s")
    static final class CancelStuck extends CancelEvent {
        @Label("Thread") String callThread;
        @Label("Since Cancel") @Timespan(Timespan.NANOSECONDS) long sinceCancel;
        @Label("Checks") long checks;
        @Label("Heartbeat Age") @Description("Since the last clock check; N/A when none in this call")
        @Timespan(Timespan.NANOSECONDS) long heartbeatAge;
        @Label("State") String state;
    }
}
