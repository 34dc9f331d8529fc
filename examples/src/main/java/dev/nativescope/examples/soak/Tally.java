package dev.nativescope.examples.soak;

import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/** The soak's counts: calls, cancellations, invariant violations and, per operation, runs and wall time. Thread-safe. */
final class Tally {
    static final int MAX_PRINTED_VIOLATIONS = 20;

    final LongAdder callsDone = new LongAdder();
    final LongAdder cancelsDone = new LongAdder();
    final AtomicLong violations = new AtomicLong();
    final LongAdder[] opCounts = new LongAdder[Op.values().length];
    /** Wall time spent in each operation, for the summary: what the mix's throughput goes into. */
    final LongAdder[] opNanos = new LongAdder[Op.values().length];

    Tally() {
        for (int i = 0; i < opCounts.length; i++) {
            opCounts[i] = new LongAdder();
            opNanos[i] = new LongAdder();
        }
    }

    void violation(String message) {
        long n = violations.incrementAndGet();
        if (n <= MAX_PRINTED_VIOLATIONS) {
            System.out.println("[soak] VIOLATION " + n + ": " + message);
        }
    }

    /** Prints the operations' counts and mean times, then the calls, cancellations and violations. */
    void printSummary() {
        System.out.println("[soak] operations (count, mean ms): " + Arrays.stream(Op.values())
                .map(op -> String.format(Locale.ROOT, "%s=%d (%.1f)", op.name().toLowerCase(Locale.ROOT),
                        opCounts[op.ordinal()].sum(),
                        opNanos[op.ordinal()].sum() / 1e6 / Math.max(1, opCounts[op.ordinal()].sum())))
                .reduce((a, b) -> a + " " + b).orElse(""));
        System.out.printf(Locale.ROOT, "[soak] calls %d, cancelled %d, violations %d%n", callsDone.sum(),
                cancelsDone.sum(), violations.get());
    }
}
