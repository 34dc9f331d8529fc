package dev.nativescope.examples.soak;

import dev.nativescope.Context;
import dev.nativescope.DeadlineExceededException;
import dev.nativescope.reference.PredictionStats;

import java.util.concurrent.CancellationException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/** The check of a call that must end cancelled: the right exception, in time, with the bound trace id. */
final class CancelChecks {
    /** A cancelled call must be back within this long after its trigger (cancel, deadline, interrupt). */
    static final long RETURN_BOUND_NANOS = TimeUnit.SECONDS.toNanos(5);

    private final Tally tally;

    CancelChecks(Tally tally) {
        this.tally = tally;
    }

    @FunctionalInterface
    interface NativeOp {
        Object run(Context ctx, java.util.function.Consumer<PredictionStats> onReturn);
    }


    /**
     * The call must end cancelled (with a deadline exactly when {@code deadline}), within the bound
     * after {@code trigger}, and the native code must have seen the bound trace id if it ran at all.
     */
    CancellationException expectCancelled(Context ctx, boolean deadline, long triggerNanos, String trace,
                                           NativeOp op) {
        return expectCancelled(ctx, deadline, new AtomicLong(triggerNanos), trace, op);
    }

    CancellationException expectCancelled(Context ctx, boolean deadline, AtomicLong trigger, String trace,
                                           NativeOp op) {
        boolean doneBefore = ctx.isDone();
        PredictionStats[] stats = new PredictionStats[1];
        CancellationException cancelled;
        try {
            Object result = op.run(ctx, s -> stats[0] = s);
            tally.callsDone.increment();
            throw new Violation("call returned " + result + (doneBefore ? " although its context was done before entry"
                    : " although its context was cancelled (lost cancel)"));
        } catch (CancellationException e) {
            long now = System.nanoTime();
            cancelled = e;
            tally.callsDone.increment();
            tally.cancelsDone.increment();
            if ((e instanceof DeadlineExceededException) != deadline) {
                throw new Violation("expected " + (deadline ? "a deadline" : "a cancellation") + ", got " + e);
            }
            long fired = trigger.get();
            if (fired == Long.MAX_VALUE) {
                throw new Violation("call ended cancelled before its trigger fired: " + e);
            }
            if (now - fired > RETURN_BOUND_NANOS) {
                throw new Violation("cancelled call returned " + (now - fired) / 1_000_000 + " ms after its trigger");
            }
        }
        // When the native code ran before the cancel, it must have read the bound trace id.
        String seen = stats[0] == null ? null : stats[0].traceId().orElse(null);
        if (seen != null && !seen.equals(trace)) {
            throw new Violation("cancelled call's native code saw trace id " + seen + ", bound " + trace);
        }
        return cancelled;
    }
}
