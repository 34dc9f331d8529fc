package dev.nativescope.diagnostics;

import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;

/** Formats in-flight calls as the dump's table: one block per call, stuck ones first. Stateless. */
final class InFlightTable {
    private InFlightTable() {
    }

    static String format(List<InFlightCall> calls) {
        StringBuilder out = new StringBuilder();
        long stuck = calls.stream().filter(InFlightCall::stuck).count();
        long cancelled = calls.stream().filter(InFlightCall::cancelRequested).count();
        out.append(String.format(Locale.ROOT, "nativescope: %d cancellable call(s) in flight, %d cancel(s) requested"
                + " but not returned, %d stuck%n", calls.size(), cancelled, stuck));
        if (!Diagnostics.ENABLED) {
            out.append("(the in-flight registry is off: -D").append(Diagnostics.ENABLED_PROPERTY).append("=false)\n");
        }
        int n = 0;
        for (InFlightCall call : calls) {
            n++;
            out.append(String.format(Locale.ROOT, "%n#%d %-28s %s%n", n, call.label(), flag(call)));
            out.append("   thread    ").append(call.thread()).append(call.virtualThread() ? " (virtual)" : "");
            if (call.nativeThread() != null) {
                out.append(", offloaded to ").append(call.nativeThread());
            }
            out.append('\n');
            out.append("   running   ").append(call.runningFor() != null ? time(call.runningFor())
                    : "? (start times: calls with a deadline, or all with -D" + Diagnostics.START_TIMES_PROPERTY + "=true)");
            out.append(call.timeLeft() == null ? ", no deadline"
                    : call.timeLeft().isNegative() ? ", deadline passed " + time(call.timeLeft().negated()) + " ago"
                    : ", deadline in " + time(call.timeLeft()));
            out.append('\n');
            if (call.cancelRequested()) {
                out.append("   cancel    requested ").append(time(call.sinceCancel())).append(" ago by ")
                        .append(call.cancelledBy() == null ? "?" : call.cancelledBy()).append('\n');
                out.append("   cause     ").append(call.cancelCause()).append('\n');
            }
            out.append("   heartbeat ").append(call.checks()).append(" check(s)");
            if (call.cancelRequested()) {
                out.append(", ").append(call.checksSinceCancel()).append(" since the cancel");
            }
            out.append(call.heartbeatAge() == null ? ", no clock check in this call"
                    : ", last clock check " + time(call.heartbeatAge()) + " ago").append('\n');
            out.append("   contexts  ").append(call.contexts().stream().map(InFlightTable::context)
                    .collect(Collectors.joining(" -> "))).append('\n');
            if (!call.values().isEmpty()) {
                out.append("   values    ").append(values(call.values())).append('\n');
            }
        }
        if (stuck > 0) {
            out.append(String.format(Locale.ROOT, "%nSTUCK: the native code was cancelled more than %d ms ago and has not"
                    + " checked its nsc_context since: it lacks cancellation points (nsc_check, nsc_checker_poll, or"
                    + " nsc_wait_fd / nsc_sleep instead of a plain blocking call); see docs/predictor-sdk.md%n",
                    Diagnostics.STUCK_NANOS / 1_000_000));
        }
        return out.toString();
    }

    private static String flag(InFlightCall call) {
        return switch (call.state()) {
            case RUNNING -> "running";
            case CANCEL_PENDING -> "CANCEL REQUESTED, not returned yet";
            case NOT_CHECKING -> "STUCK: cancelled, native code has not checked its context since";
            case BLOCKED_OUTSIDE_CONTEXT_WAIT -> "STUCK: cancelled, blocked in a wait that is not a context wait";
        };
    }

    private static String context(InFlightCall.ContextInfo c) {
        StringBuilder s = new StringBuilder().append('#').append(c.id()).append(' ').append(c.kind());
        if (c.key() != null) {
            s.append(' ').append(c.key());
        }
        if (c.timeLeft() != null) {
            s.append(c.timeLeft().isNegative() ? " deadline passed" : " deadline in " + time(c.timeLeft()));
        }
        if (c.done()) {
            s.append(" [done: ").append(c.cause()).append(']');
        }
        return s.toString();
    }

    private static String values(Map<String, String> values) {
        return values.entrySet().stream()
                .map(e -> e.getValue() == null ? e.getKey() : e.getKey() + "=" + e.getValue())
                .collect(Collectors.joining(", "))
                + (Diagnostics.SHOW_VALUES ? "" : " (values hidden; -D" + Diagnostics.SHOW_VALUES_PROPERTY + "=true shows them)");
    }

    static String time(Duration d) {
        if (d == null) {
            return "?";
        }
        long nanos = d.toNanos();
        if (nanos < 1_000_000) {
            return String.format(Locale.ROOT, "%.1f us", nanos / 1e3);
        }
        if (nanos < 10_000_000_000L) {
            return String.format(Locale.ROOT, "%.1f ms", nanos / 1e6);
        }
        return String.format(Locale.ROOT, "%.1f s", nanos / 1e9);
    }
}
