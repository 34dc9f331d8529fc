package dev.nativescope.benchmarks;

import java.util.Arrays;

/**
 * Two runs compared in the same invocations: each invocation times one run of each, in alternating
 * order (so neither always gets the warmer caches), and an iteration's end reports their p50 and p90.
 * On a shared machine, whose load changes within seconds, only such pairs give a fair ratio.
 * Holds up to 2^16 pairs per iteration (later ones are run but not recorded).
 *
 * <p>Not thread-safe: one per benchmark thread (JMH state).
 */
final class AlternatedPairs {
    /** One of the two runs. */
    @FunctionalInterface
    interface Run<X extends Exception> {
        void run() throws X;
    }

    private final long[] firstNanos = new long[1 << 16];
    private final long[] secondNanos = new long[1 << 16];
    private int count;

    /** Forgets the pairs recorded (at the start of an iteration). */
    void reset() {
        count = 0;
    }

    /** Runs {@code first} and {@code second} once each, in the order this pair's turn says, and records both times. */
    <X extends Exception> void time(Run<X> first, Run<X> second) throws X {
        boolean firstFirst = (count & 1) == 0;
        long t0 = System.nanoTime();
        (firstFirst ? first : second).run();
        long t1 = System.nanoTime();
        (firstFirst ? second : first).run();
        long t2 = System.nanoTime();
        if (count < firstNanos.length) {
            firstNanos[count] = firstFirst ? t1 - t0 : t2 - t1;
            secondNanos[count] = firstFirst ? t2 - t1 : t1 - t0;
            count++;
        }
    }

    /**
     * Prints the iteration's pairs, if any, as one line: {@code [tag] label: N pairs; <first> p50 .. us
     * p90 .. us; <second> p50 .. us p90 .. us; <second>/<first> p50 R, difference p50 D us}.
     */
    void report(String tag, String label, String first, String second) {
        if (count == 0) {
            return;
        }
        long[] a = Arrays.copyOf(firstNanos, count);
        long[] b = Arrays.copyOf(secondNanos, count);
        Arrays.sort(a);
        Arrays.sort(b);
        double a50 = a[count / 2] / 1e3;
        double b50 = b[count / 2] / 1e3;
        System.out.printf("%n[%s] %s: %d pairs; %s p50 %.2f us p90 %.2f us; %s p50 %.2f us p90 %.2f us;"
                        + " %s/%s p50 %.3f, difference p50 %.2f us%n", tag, label, count, first, a50, a[count * 9 / 10] / 1e3,
                second, b50, b[count * 9 / 10] / 1e3, second, first, b50 / a50, b50 - a50);
    }
}
