package dev.nativescope.call;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.reference.EventFd;
import dev.nativescope.reference.ReferencePredictors;
import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicReference;

import org.junit.jupiter.api.Test;

/**
 * Cancels and interrupts that race with the end of a native call: the call's end waits for a
 * canceller still in flight ({@code CallFrame.endCall}), and that wait must always end, on
 * platform and virtual threads, whatever the timing; nothing may stay behind.
 */
@OffloadMode
class CallFrameCancelRaceTest {

    @Test
    void cancelsAndInterruptsRacingWithTheEndOfCallsNeverHangAndLeaveNothing() throws Exception {
        ThreadLocalRandom random = ThreadLocalRandom.current();
        try (EventFd neverSignalled = EventFd.create()) {
            for (int round = 0; round < 3_000; round++) {
                CancellableContext context = Context.background().withCancel();
                boolean waits = random.nextBoolean();
                Duration length = Duration.ofNanos(random.nextLong(0, 50_000));
                AtomicReference<Throwable> failure = new AtomicReference<>();
                Runnable call = () -> {
                    try {
                        if (waits) {
                            ReferencePredictors.awaitFd(context, neverSignalled.fd(), length, null);
                        } else {
                            ReferencePredictors.spin(context, length, null);
                        }
                    } catch (CancellationException expected) {
                        // cancelled or interrupted before the call ended
                    } catch (Throwable unexpected) {
                        failure.set(unexpected);
                    }
                };
                Thread caller = random.nextBoolean() ? Thread.ofVirtual().start(call) : Thread.ofPlatform().start(call);
                long until = System.nanoTime() + random.nextLong(0, 60_000);
                while (System.nanoTime() - until < 0) {
                    Thread.onSpinWait();
                }
                if (random.nextBoolean()) {
                    context.cancel();
                } else {
                    caller.interrupt();
                }
                assertThat(caller.join(Duration.ofSeconds(10))).as("call of round %d ended", round).isTrue();
                assertThat(failure.get()).as("round %d", round).isNull();
                context.close();
            }
        }
        NativeResources.trimIdle();
        NativeResources resources = NativeResources.snapshot();
        assertThat(resources.liveCallFrames()).isZero();
        assertThat(resources.shimLiveFds()).isZero();
        assertThat(resources.shimLiveContexts()).isZero();
    }
}
