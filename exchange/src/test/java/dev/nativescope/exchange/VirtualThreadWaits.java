package dev.nativescope.exchange;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * The pinning scenario of {@link VirtualThreadWaitsTest}: 4x cores virtual threads block in
 * {@code awaitNext} on an exchange nobody publishes to, while an unrelated virtual thread sleeps 5 ms
 * in a loop and records the longest gap between its wake-ups. Run in the test's JVM and, as {@link
 * #main}, in a child JVM with {@code -Dnativescope.callMode=INLINE} (the waits pin their carriers).
 */
final class VirtualThreadWaits {
    static final int WAITERS = 4 * Runtime.getRuntime().availableProcessors();

    /**
     * @param maxGapNanos the sleeper's longest gap between wake-ups while the waits ran
     * @param timeouts how many waits ended with TIMEOUT (all should)
     * @param overlapped true when every wait had started before the first one ended (all blocked at once)
     * @param gapStartMillis when the longest gap began, from the start of the first wait (for diagnosis)
     */
    record Outcome(long maxGapNanos, int timeouts, boolean overlapped, long gapStartMillis) {
        String line() {
            return "gapNanos=" + maxGapNanos + " timeouts=" + timeouts + " overlapped=" + overlapped
                    + " gapStartMillis=" + gapStartMillis;
        }

        static Outcome parse(String line) {
            String[] f = line.split(" ");
            return new Outcome(Long.parseLong(f[0].substring("gapNanos=".length())),
                    Integer.parseInt(f[1].substring("timeouts=".length())),
                    Boolean.parseBoolean(f[2].substring("overlapped=".length())),
                    Long.parseLong(f[3].substring("gapStartMillis=".length())));
        }
    }

    private VirtualThreadWaits() {
    }

    static Outcome run(Path file, Duration wait) throws Exception {
        return run(file, wait, WAITERS);
    }

    /** @param waiters how many virtual threads wait (0: the sleeper alone for {@code wait}, the control) */
    static Outcome run(Path file, Duration wait, int waiters) throws Exception {
        try (Producer producer = TensorExchange.create(file, 2, 4096)) {
            List<Consumer> consumers = new ArrayList<>();
            try {
                for (int i = 0; i < waiters; i++) {
                    consumers.add(TensorExchange.openConsumer(file)); // one per waiter: a consumer is single-threaded
                }
                // The sleeper notes when it woke; the longest gap is computed once it stopped. Each wake-up
                // is noted before the sleeper looks at `measuring`: the first one after a starvation comes
                // when the waits have ended, typically after the main thread cleared `measuring`, and it
                // is the one that closes the gap.
                AtomicBoolean measuring = new AtomicBoolean(true);
                long[] wakes = new long[(int) (wait.toMillis() * 4 / 5) + 1000];
                AtomicInteger woke = new AtomicInteger();
                Thread sleeper = Thread.ofVirtual().start(() -> {
                    for (int n = 0; n < wakes.length; n++) {
                        wakes[n] = System.nanoTime();
                        woke.set(n + 1);
                        if (!measuring.get()) {
                            return;
                        }
                        try {
                            Thread.sleep(5);
                        } catch (InterruptedException e) {
                            return;
                        }
                    }
                });
                while (woke.get() < 5) {
                    Thread.sleep(5);
                }
                AtomicLongArray starts = new AtomicLongArray(waiters);
                AtomicLongArray ends = new AtomicLongArray(waiters);
                AtomicInteger timeouts = new AtomicInteger();
                List<Thread> threads = new ArrayList<>();
                for (int i = 0; i < waiters; i++) {
                    int k = i;
                    threads.add(Thread.ofVirtual().start(() -> {
                        starts.set(k, System.nanoTime());
                        if (consumers.get(k).awaitNext(wait).status() == ReadStatus.TIMEOUT) {
                            timeouts.incrementAndGet();
                        }
                        ends.set(k, System.nanoTime());
                    }));
                }
                if (waiters == 0) {
                    Thread.sleep(wait);
                }
                for (Thread waiter : threads) {
                    waiter.join();
                }
                measuring.set(false);
                sleeper.join();
                long maxGap = 0;
                long gapStart = 0;
                for (int n = 4; n < woke.get(); n++) { // from the 5th wake-up: the first include the thread's start
                    if (wakes[n] - wakes[n - 1] > maxGap) {
                        maxGap = wakes[n] - wakes[n - 1];
                        gapStart = wakes[n - 1];
                    }
                }
                long firstStart = Long.MAX_VALUE;
                long lastStart = Long.MIN_VALUE;
                long firstEnd = Long.MAX_VALUE;
                for (int i = 0; i < waiters; i++) {
                    firstStart = Math.min(firstStart, starts.get(i));
                    lastStart = Math.max(lastStart, starts.get(i));
                    firstEnd = Math.min(firstEnd, ends.get(i));
                }
                return new Outcome(maxGap, timeouts.get(), lastStart < firstEnd,
                        waiters == 0 ? 0 : (gapStart - firstStart) / 1_000_000);
            } finally {
                for (Consumer consumer : consumers) {
                    consumer.close();
                }
            }
        } finally {
            TensorExchange.delete(file);
        }
    }

    /** {@code FILE WAIT_MILLIS}: runs the scenario and prints its {@link Outcome#line()}. */
    public static void main(String[] args) throws Exception {
        System.out.println(run(Path.of(args[0]), Duration.ofMillis(Long.parseLong(args[1]))).line());
    }
}
