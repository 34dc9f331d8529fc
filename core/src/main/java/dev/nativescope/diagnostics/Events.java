package dev.nativescope.diagnostics;

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
 * not record it. Threading: as JFR events,
 * one thread fills and commits an instance.
 */
final class Events {
    private Events() {
    }

    /**
     * What every event about one call has: its label and its context's id. Abstract, so not an
     * event type itself; not {@code @Registered(false)}, which is inherited and would unregister the
     * subclasses.
     */
    abstract static class CallEvent extends Event {
        @Label("Label") String label;
        @Label("Context Id") long contextId;
    }

    @Name("dev.nativescope.NativeCall")
    @Label("Native Call")
    @Category({"nativescope"})
    @Description("A cancellable native call (NativeCall.invoke) that took longer than the threshold")
    @StackTrace(false)
    @Threshold("20 ms")
    static final class NativeCall extends CallEvent {
        @Label("Outcome") @Description("The native status, or EXCEPTION") String outcome;
        @Label("Trace Id") @Description("The context's trace-id value, if any") String traceId;
    }

    @Name("dev.nativescope.CancelRequested")
    @Label("Cancel Requested")
    @Category({"nativescope"})
    @Description("A cancel (of the context, a deadline, an interrupt) reached a native call in flight")
    @StackTrace(false)
    static final class CancelRequested extends CallEvent {
        @Label("Cause") @Description("The cause's class, or interrupt") String cause;
        @Label("Canceller") @Description("The thread that cancelled") String canceller;
    }

    @Name("dev.nativescope.CancelObserved")
    @Label("Cancel Observed")
    @Category({"nativescope"})
    @Description("A cancelled native call returned; latency from the cancel to the native return")
    @StackTrace(false)
    static final class CancelObserved extends CallEvent {
        @Label("Latency") @Timespan(Timespan.NANOSECONDS) long latency;
        @Label("Outcome") String outcome;
    }

    @Name("dev.nativescope.DeadlineExceeded")
    @Label("Deadline Exceeded")
    @Category({"nativescope"})
    @Description("A native call ended by its context's deadline; lateness from the deadline to the return")
    @StackTrace(false)
    static final class DeadlineExceeded extends CallEvent {
        @Label("Lateness") @Timespan(Timespan.NANOSECONDS) long lateness;
    }

    @Name("dev.nativescope.LateReturn")
    @Label("Late Return")
    @Category({"nativescope"})
    @Description("Native code that does not check its context returned a normal status long after its cancel")
    static final class LateReturn extends CallEvent {
        @Label("Late By") @Timespan(Timespan.NANOSECONDS) long lateBy;
        @Label("Outcome") String outcome;
    }

    @Name("dev.nativescope.CancelStuck")
    @Label("Cancel Stuck")
    @Category({"nativescope"})
    @Description("A native call cancelled longer ago than nativescope.diagnostics.stuckMillis whose native code has not checked its context since")
    @StackTrace(false)
    @Period("1 s")
    static final class CancelStuck extends Event {
        @Label("Label") String label;
        @Label("Thread") String callThread;
        @Label("Context Id") long contextId;
        @Label("Since Cancel") @Timespan(Timespan.NANOSECONDS) long sinceCancel;
        @Label("Cause") String cause;
        @Label("Checks") long checks;
        @Label("Heartbeat Age") @Description("Since the last clock check; N/A when none in this call")
        @Timespan(Timespan.NANOSECONDS) long heartbeatAge;
        @Label("State") String state;
    }
}
