package dev.nativescope.examples;

import dev.nativescope.Context;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.bindings.nsc_predict_stats;
import dev.nativescope.call.CallMode;
import dev.nativescope.call.NativeCall;
import dev.nativescope.reference.EventFd;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.StructuredTaskScope;
import java.util.concurrent.StructuredTaskScope.Joiner;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Pinning (issue 14): with the default number of carriers, 4x cores long native predictors forked
 * on the default (virtual-thread) {@code StructuredTaskScope} all enter native code when they are
 * offloaded ({@link CallMode#AUTO}, the reference predictors' mode), the scope's timeout stops them
 * all, and 10^3 unrelated virtual threads sleeping 5 ms keep running. The same run with offloading
 * disabled ({@link CallMode#INLINE}) shows the starvation: the first predictors pin every carrier,
 * the others only start after the timeout, and the sleepers stall until then, so this test fails if
 * offloading stops working.
 *
 * <p>Bounds for a loaded 2-core machine (measured at load average 6-8 with other builds running:
 * blocked predictors offloaded, 20-76 ms; inline, 306-390 ms with a 300 ms timeout; at load 12-15
 * offloaded gaps of 161-222 ms were seen, when the sleepers alone already stall for 100-180 ms): the
 * issue's goal is 50 ms, which a quiet machine meets. The bound for blocked predictors (they use no
 * CPU) is 120 ms or twice the gap the same sleepers show with no predictor at all, measured just
 * before for as long, whichever is larger, and never more than half the scope's timeout (1 s); a run
 * over it is measured once more (a stall of the machine does not repeat; starvation does). Inline
 * shows at least two thirds of that timeout. Spinning predictors offloaded
 * are 4x cores runnable native threads that compete with the carriers for the CPU, as platform
 * threads would: the OS shares the cores, so their gap (50-241 ms measured under that load) is
 * printed, not bounded; that they all enter native code and all stop at the timeout is checked.
 */
class PinningTest extends NativeScopeTest {
    private static final Duration SCOPE_TIMEOUT = Duration.ofSeconds(1);
    private static final int CORES = Runtime.getRuntime().availableProcessors();
    private static final int PREDICTORS = 4 * CORES;
    private static final int SLEEPERS = 1000;

    @org.junit.jupiter.api.BeforeAll
    static void warmUpOffloading() throws Exception {
        // Native threads started and the handoff path compiled before the measured runs.
        Thread warm = Thread.ofVirtual().start(() -> {
            for (int i = 0; i < 1000; i++) {
                NativeCall.invoke(Context.background(), CallMode.OFFLOAD, nativescope_h::nsc_noop_ctx);
            }
        });
        warm.join();
    }

    @ParameterizedTest(name = "{0} predictors, {1}")
    @CsvSource({"BLOCKING, AUTO, 120", "SPINNING, AUTO, 0", "BLOCKING, INLINE, -1", "SPINNING, INLINE, -1"})
    void longNativeCallsOnVirtualThreadsNeverStarveOtherVirtualThreads(String kind, CallMode mode, long maxGapMillis)
            throws Exception {
        Run run = measure(kind, mode);
        assertThat(run.stoppedByTimeout()).as("predictors stopped by the scope's timeout").isEqualTo(PREDICTORS);
        if (maxGapMillis >= 0) {
            assertThat(run.enteredBeforeTimeout()).as("predictors that entered native code before the timeout")
                    .isEqualTo(PREDICTORS);
            assertThat(run.closedAfter()).as("timeout to close").isLessThan(SCOPE_TIMEOUT.plusSeconds(2));
        }
        if (maxGapMillis > 0) {
            if (run.maxGap().compareTo(run.bound(maxGapMillis)) >= 0) {
                // One stall of the machine (seen once at load 12: 127 ms against 14 ms with no predictor) is
                // not starvation, which inline shows every time: measure again, and judge the second run.
                run = measure(kind, mode);
            }
            assertThat(run.maxGap()).as("the unrelated virtual threads' longest gap between 5 ms sleeps (%d ms with no"
                    + " predictor)", run.alone().toMillis()).isLessThan(run.bound(maxGapMillis));
        } else if (maxGapMillis < 0) {
            // Offloading disabled: the starvation this mode exists to prevent.
            assertThat(run.enteredBeforeTimeout()).as("inline, predictors that entered native code before the timeout"
                    + " (one per carrier; the others start after it)").isLessThan(PREDICTORS);
            assertThat(run.maxGap()).as("inline, the sleepers wait for the pinned carriers")
                    .isGreaterThan(SCOPE_TIMEOUT.multipliedBy(2).dividedBy(3));
        }
    }

    /** What one scope of predictors did, and the sleepers' longest gaps with and without it. */
    private record Run(int enteredBeforeTimeout, int stoppedByTimeout, Duration maxGap, Duration alone,
                       Duration closedAfter) {
        /** The larger of {@code millis} and twice the gap with no predictor, at most half the scope's timeout. */
        Duration bound(long millis) {
            Duration relative = Collections.max(List.of(Duration.ofMillis(millis), alone.multipliedBy(2)));
            return Collections.min(List.of(relative, SCOPE_TIMEOUT.dividedBy(2)));
        }
    }

    private static Run measure(String kind, CallMode mode) throws Exception {
        AtomicInteger entered = new AtomicInteger();
        AtomicInteger enteredBeforeTimeout = new AtomicInteger();
        AtomicInteger stoppedByTimeout = new AtomicInteger();
        AtomicLong maxGapNanos = new AtomicLong();
        AtomicBoolean measuring = new AtomicBoolean(true);
        List<Thread> sleepers = new ArrayList<>();
        try (EventFd never = EventFd.create(); Arena arena = Arena.ofShared()) {
            for (int i = 0; i < SLEEPERS; i++) {
                sleepers.add(Thread.ofVirtual().start(() -> {
                    long last = System.nanoTime();
                    while (measuring.get()) {
                        try {
                            Thread.sleep(5);
                        } catch (InterruptedException e) {
                            return;
                        }
                        long now = System.nanoTime();
                        maxGapNanos.accumulateAndGet(now - last, Math::max);
                        last = now;
                    }
                }));
            }
            Thread.sleep(100); // every sleeper is in its loop
            maxGapNanos.set(0);
            Thread.sleep(SCOPE_TIMEOUT); // the machine's own stalls, with no predictor, as long as the scope runs
            Duration alone = Duration.ofNanos(maxGapNanos.getAndSet(0));
            final long opened = System.nanoTime(); // CLOCK_MONOTONIC, as the native start_ns
            try (var scope = StructuredTaskScope.open(Joiner.<Object>awaitAll(), cf -> cf.withTimeout(SCOPE_TIMEOUT))) {
                for (int i = 0; i < PREDICTORS; i++) {
                    MemorySegment stats = arena.allocate(nsc_predict_stats.layout());
                    MemorySegment value = arena.allocate(ValueLayout.JAVA_LONG);
                    NativeCall.Downcall predictor = kind.equals("BLOCKING")
                            ? ctx -> nativescope_h.nsc_predict_wait(ctx, never.fd(), -1, value, stats)
                            : ctx -> nativescope_h.nsc_predict_spin(ctx, -1, stats);
                    scope.fork(() -> {
                        try {
                            NativeCall.invoke(Context.current(), mode, predictor);
                        } catch (CancellationException stopped) {
                            if (stopped.getCause() instanceof InterruptedException) {
                                stoppedByTimeout.incrementAndGet();
                            }
                        } finally {
                            long start = nsc_predict_stats.start_ns(stats);
                            if (start != 0) {
                                entered.incrementAndGet();
                                if (start - opened < SCOPE_TIMEOUT.toNanos()) {
                                    enteredBeforeTimeout.incrementAndGet();
                                }
                            }
                        }
                        return null;
                    });
                }
                assertThatThrownBy(scope::join).isInstanceOf(StructuredTaskScope.TimeoutException.class);
            }
            Duration closedAfter = Duration.ofNanos(System.nanoTime() - opened);
            measuring.set(false);
            for (Thread sleeper : sleepers) {
                sleeper.join();
            }
            Duration maxGap = Duration.ofNanos(maxGapNanos.get());
            System.out.printf("PinningTest %s %s: %d of %d predictors entered native code (%d before the timeout), sleepers' max gap %.1f ms"
                    + " (%.1f ms with no predictor), scope closed after %.1f ms (load average %s)%n", kind, mode, entered.get(),
                    PREDICTORS, enteredBeforeTimeout.get(), maxGap.toNanos() / 1e6, alone.toNanos() / 1e6,
                    closedAfter.toNanos() / 1e6, loadAverage());
            return new Run(enteredBeforeTimeout.get(), stoppedByTimeout.get(), maxGap, alone, closedAfter);
        } finally {
            measuring.set(false);
        }
    }

    static String loadAverage() {
        try {
            return java.nio.file.Files.readString(java.nio.file.Path.of("/proc/loadavg")).trim();
        } catch (java.io.IOException e) {
            return "unknown";
        }
    }
}
