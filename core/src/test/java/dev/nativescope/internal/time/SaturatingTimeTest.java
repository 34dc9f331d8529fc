package dev.nativescope.internal.time;

import org.junit.jupiter.api.Test;

import java.math.BigInteger;
import java.time.Duration;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

/** Saturating time arithmetic, checked against exact BigInteger arithmetic over the whole long range. */
class SaturatingTimeTest {
    private static final BigInteger HORIZON = BigInteger.valueOf(SaturatingTime.HORIZON_NANOS);

    @Test
    void everyConversionSaturatesOverTheWholeRange() {
        SplittableRandom random = new SplittableRandom(4);
        long[] edges = {Long.MIN_VALUE, Long.MIN_VALUE + 1, -SaturatingTime.HORIZON_NANOS - 1, -1, 0, 1,
                SaturatingTime.HORIZON_NANOS + 1, Long.MAX_VALUE - 1, Long.MAX_VALUE};
        for (int i = 0; i < 200_000; i++) {
            long a = i < edges.length * edges.length ? edges[i % edges.length] : random.nextLong();
            long b = i < edges.length * edges.length ? edges[i / edges.length] : random.nextLong();
            BigInteger exactSum = BigInteger.valueOf(a).add(BigInteger.valueOf(b));
            assertThat(BigInteger.valueOf(SaturatingTime.saturatedAdd(a, b)))
                    .isEqualTo(exactSum.max(BigInteger.valueOf(Long.MIN_VALUE)).min(BigInteger.valueOf(Long.MAX_VALUE)));
            assertThat(BigInteger.valueOf(SaturatingTime.clampToHorizon(a))).isEqualTo(BigInteger.valueOf(a).max(HORIZON.negate()).min(HORIZON));
            // A deadline normalised against "now" keeps its sign of (deadline - now) as the JDK reads it.
            long normalised = SaturatingTime.normalisedDeadline(a, b);
            long ahead = a - b;
            assertThat(Long.signum(normalised - b)).isEqualTo(Long.signum(ahead));
            assertThat(Math.abs(normalised - b)).isLessThanOrEqualTo(SaturatingTime.HORIZON_NANOS);
            // The native clock conversion never moves a future deadline into the past, nor the reverse.
            long other = random.nextLong();
            long converted = SaturatingTime.toOtherClock(a, b, other);
            BigInteger exact = BigInteger.valueOf(other).add(BigInteger.valueOf(SaturatingTime.clampToHorizon(ahead)));
            assertThat(BigInteger.valueOf(converted))
                    .isEqualTo(exact.max(BigInteger.valueOf(Long.MIN_VALUE)).min(BigInteger.valueOf(Long.MAX_VALUE)));
        }
    }

    @Test
    void durationsSaturateAtTheHorizonIncludingTheExtremes() {
        assertThat(SaturatingTime.nanosOf(Duration.ofSeconds(Long.MAX_VALUE, 999_999_999))).isEqualTo(SaturatingTime.HORIZON_NANOS);
        assertThat(SaturatingTime.nanosOf(Duration.ofSeconds(Long.MIN_VALUE))).isEqualTo(-SaturatingTime.HORIZON_NANOS);
        assertThat(SaturatingTime.nanosOf(Duration.ZERO)).isZero();
        SplittableRandom random = new SplittableRandom(5);
        for (int i = 0; i < 100_000; i++) {
            Duration duration = Duration.ofSeconds(random.nextLong(), random.nextInt(1_000_000_000));
            BigInteger exact = BigInteger.valueOf(duration.getSeconds()).multiply(BigInteger.valueOf(1_000_000_000))
                    .add(BigInteger.valueOf(duration.getNano()));
            assertThat(BigInteger.valueOf(SaturatingTime.nanosOf(duration))).isEqualTo(exact.max(HORIZON.negate()).min(HORIZON));
        }
    }
}
