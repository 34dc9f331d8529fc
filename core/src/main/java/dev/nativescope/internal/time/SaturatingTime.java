package dev.nativescope.internal.time;

import java.time.Duration;

/**
 * The one home of saturating time arithmetic: every conversion between {@link System#nanoTime()},
 * {@link Duration}s and the native clock goes through here, so that no deadline can wrap into the
 * past or the future.
 *
 * <p>The rule: a time to a deadline is kept within {@code [-HORIZON_NANOS, HORIZON_NANOS]} (about
 * 146 years either way). Keeping relative times within half the range of {@code long} lets two
 * deadlines be compared by subtraction, as {@code System.nanoTime()} values must be, even when
 * adding them to the clock overflows. A {@code System.nanoTime()} value is read as the JDK defines
 * it: only its difference to the clock means anything, so {@code System.nanoTime() + Long.MAX_VALUE}
 * is far in the future, not in the past.
 *
 * <p>Stateless and thread-safe.
 */
public final class SaturatingTime {
    /** The longest time to a deadline that is kept as is, in either direction: about 146 years. */
    public static final long HORIZON_NANOS = Long.MAX_VALUE >> 1;
    private static final Duration HORIZON = Duration.ofNanos(HORIZON_NANOS);
    /** Not {@code HORIZON.negated()}: that multiplies through BigDecimal, whose classes cost a fresh JVM ~10 ms. */
    private static final Duration NEGATIVE_HORIZON = Duration.ofNanos(-HORIZON_NANOS);

    private SaturatingTime() {
    }

    /** {@return {@code nanos} clamped to {@code [-HORIZON_NANOS, HORIZON_NANOS]}} */
    public static long clampToHorizon(long nanos) {
        return Math.max(-HORIZON_NANOS, Math.min(HORIZON_NANOS, nanos));
    }

    /** {@return {@code duration} in nanoseconds, clamped to the horizon (never throws)} */
    public static long nanosOf(Duration duration) {
        if (duration.compareTo(HORIZON) > 0) {
            return HORIZON_NANOS;
        }
        if (duration.compareTo(NEGATIVE_HORIZON) < 0) {
            return -HORIZON_NANOS;
        }
        return duration.toNanos();
    }

    /**
     * Normalises a deadline given in the {@code System.nanoTime()} base: {@code now} plus the
     * (wrapping) difference {@code nanoTime - now}, clamped to the horizon. The result differs from
     * {@code now} by at most {@code HORIZON_NANOS}, whatever {@code nanoTime} was.
     */
    public static long normalisedDeadline(long nanoTime, long now) {
        return now + clampToHorizon(nanoTime - now);
    }

    /** {@return {@code a + b}, or {@code Long.MAX_VALUE}/{@code Long.MIN_VALUE} where it would overflow} */
    public static long saturatedAdd(long a, long b) {
        long sum = a + b;
        // Overflow iff both operands have the same sign and the sum's sign differs.
        if (((a ^ sum) & (b ^ sum)) < 0) {
            return a < 0 ? Long.MIN_VALUE : Long.MAX_VALUE;
        }
        return sum;
    }

    /**
     * Converts a {@code System.nanoTime()} deadline to another clock, given that clock's reading
     * {@code otherNow} taken together with {@code now}: {@code otherNow + (deadline - now)}, with
     * the difference clamped to the horizon and the sum saturated.
     */
    public static long toOtherClock(long deadlineNanoTime, long now, long otherNow) {
        return saturatedAdd(otherNow, clampToHorizon(deadlineNanoTime - now));
    }
}
