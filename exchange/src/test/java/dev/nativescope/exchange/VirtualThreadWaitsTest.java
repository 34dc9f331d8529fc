package dev.nativescope.exchange;

import static org.assertj.core.api.Assertions.assertThat;

import dev.nativescope.Context;
import dev.nativescope.call.CallMode;
import dev.nativescope.call.NativeCall;
import dev.nativescope.call.NativeThreads;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Consumers waiting on virtual threads do not pin their carriers: with 4x cores virtual threads
 * blocked in {@code awaitNext} at once, an unrelated virtual thread sleeping 5 ms keeps waking on
 * time. The same scenario with the waits inline ({@code -Dnativescope.callMode=INLINE}, the old
 * behaviour), in a child JVM, shows the starvation, so the test fails if the waits stop being
 * offloaded.
 *
 * <p>Bounds for the loaded shared 2-core machine: the goal is a gap of at most 50 ms, which a
 * quiet machine meets; at load averages of 12-16 the sleeper alone (the control, measured in the
 * same test) sees gaps of 19-184 ms, and with the offloaded waits 37-122 ms were measured, with the
 * longest gap at no particular point of the waits. So the bound is the larger of 200 ms and twice the
 * control's gap, and at most a third of the wait (500 ms). Pinned waits hold both carriers for most
 * of a wait (1.5 s; the sleeper can run only while the waits of a pair start or end): the inline
 * child must see more than half of it, measured 1.0-4.5 s.
 */
class VirtualThreadWaitsTest {
    private static final Duration WAIT = Duration.ofMillis(1500);

    private static Path file(String what) {
        return TensorExchange.defaultPath("nsc-test-vwait-" + what + "-" + ProcessHandle.current().pid() + "-" + System.nanoTime());
    }

    @Test
    void waitsOnVirtualThreadsLeaveTheCarriersFree() throws Exception {
        assertThat(VirtualThreadWaits.WAITERS).isLessThanOrEqualTo(Math.max(8, 4 * Runtime.getRuntime().availableProcessors()));
        // The native threads started and the handoff compiled before the measured run.
        Thread warm = Thread.ofVirtual().start(() -> {
            for (int i = 0; i < 200; i++) {
                NativeCall.invoke(Context.background(), CallMode.OFFLOAD, ctx -> 0);
            }
        });
        warm.join();
        assertThat(NativeThreads.offloads(CallMode.AUTO)).isFalse(); // a platform test thread waits inline
        VirtualThreadWaits.run(file("warm"), Duration.ofMillis(50)); // starts the native threads the waits take

        long control = VirtualThreadWaits.run(file("control"), WAIT, 0).maxGapNanos();
        VirtualThreadWaits.Outcome outcome = VirtualThreadWaits.run(file("auto"), WAIT);
        System.out.printf("virtual-thread waits offloaded: %d waiters, sleeper's longest gap %.1f ms at %d ms of the"
                + " %d ms waits (alone: %.1f ms)%n", VirtualThreadWaits.WAITERS, outcome.maxGapNanos() / 1e6,
                outcome.gapStartMillis(), WAIT.toMillis(), control / 1e6);
        assertThat(outcome.timeouts()).isEqualTo(VirtualThreadWaits.WAITERS);
        assertThat(outcome.overlapped()).as("all waits blocked at once").isTrue();
        assertThat(outcome.maxGapNanos())
                .isLessThan(Math.max(TimeUnit.MILLISECONDS.toNanos(200), 2 * control))
                .isLessThan(WAIT.toNanos() / 3);
    }

    @Test
    void inlineWaitsPinTheCarriersAndStarveOtherVirtualThreads() throws Exception {
        Process child = Children.jvm(List.of("-D" + CallMode.PROPERTY + "=INLINE"), VirtualThreadWaits.class,
                file("inline").toString(), Long.toString(WAIT.toMillis()));
        String line = Children.firstLine(child);
        assertThat(child.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(child.exitValue()).isZero();
        VirtualThreadWaits.Outcome outcome = VirtualThreadWaits.Outcome.parse(line);
        System.out.printf("virtual-thread waits inline: sleeper's longest gap %.1f ms%n", outcome.maxGapNanos() / 1e6);
        assertThat(outcome.timeouts()).isEqualTo(VirtualThreadWaits.WAITERS);
        assertThat(outcome.maxGapNanos()).isGreaterThan(WAIT.toNanos() / 2);
    }
}
