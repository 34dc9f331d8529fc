package dev.nativescope.call;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.DeadlineExceededException;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.reference.ReferencePredictors;
import dev.nativescope.childjvm.ChildJvm;
import dev.nativescope.testing.Allocations;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicReference;

import org.junit.jupiter.api.Test;

/**
 * The bridge's fast path (issue 12, item 1): a call allocates nothing on a platform thread, and
 * the per-frame signal that makes that possible never lets a cancel miss its call or reach the
 * frame's next one.
 */
class NativeCallFastPathTest {
    /**
     * In a child JVM: the claim is about the path as C2 compiles it for an application, and the
     * profile of a whole test suite (hundreds of different Downcalls at one call site) can keep the
     * escape analysis from removing what the JIT otherwise removes (seen: 64 B/call in the suite,
     * 0 alone and in JMH).
     */
    @Test
    void aCallUnderALiveContextAllocatesNothingOnAPlatformThread() throws Exception {
        ChildJvm.Result result = ChildJvm.run(List.of("--enable-native-access=ALL-UNNAMED"), List.of(),
                AllocationProbe.class.getName());
        assertThat(result.output()).as(result.output()).contains("withCancel 0 ").contains("background 0 ")
                .contains("deadline 0 ");
        assertThat(result.exitCode()).as(result.output()).isZero();
    }

    /** Child: prints "name bytes-per-call-rounded-down raw" for each kind of context. */
    public static final class AllocationProbe {
        public static void main(String[] args) {
            try (CancellableContext context = Context.background().withCancel();
                 CancellableContext withDeadline = context.withTimeout(Duration.ofHours(1))) {
                print("withCancel", bytesPerCall(context));
                print("background", bytesPerCall(Context.background()));
                print("deadline", bytesPerCall(withDeadline));
            }
        }

        private static void print(String name, double bytesPerCall) {
            System.out.println(name + " " + (long) bytesPerCall + " " + bytesPerCall);
        }
    }

    /** Warmed up until C2 has compiled the path, then measured over many calls: generous bounds. */
    private static double bytesPerCall(Context context) {
        int calls = 200_000;
        double best = Double.MAX_VALUE;
        for (int round = 0; round < 15 && best >= 1.0; round++) {
            long before = Allocations.currentThread();
            for (int i = 0; i < calls; i++) {
                NativeCall.invoke(context, nativescope_h::nsc_noop_ctx);
            }
            long after = Allocations.currentThread();
            best = Math.min(best, (after - before) / (double) calls);
        }
        return best;
    }

    /**
     * 10^4 cancel-versus-call races, every way to cancel, platform and virtual threads: the spin
     * (5 s unless stopped) always ends with a CancellationException, no call hangs, the frame's next
     * call on the same thread (the frame is reused from the thread's cache) is never hit by a late
     * stop, and no frame is left behind.
     */
    @Test
    void cancelsRacingWithCallsAreNeverLostNorLate() throws Exception {
        NativeResources.trimIdle();
        NativeResources before = NativeResources.snapshot();
        ThreadLocalRandom random = ThreadLocalRandom.current();
        for (int round = 0; round < 10_000; round++) {
            CancellableContext parent = Context.background().withCancel();
            int how = random.nextInt(6);
            CancellableContext context = how == 5 ? parent.withTimeout(Duration.ofNanos(random.nextLong(0, 40_000)))
                    : parent.withCancel();
            AtomicReference<Object> outcome = new AtomicReference<>();
            Runnable call = () -> {
                try {
                    long start = System.nanoTime();
                    int status = NativeCall.invoke(context, ctx -> nativescope_h.nsc_predict_spin(ctx, 5_000_000_000L,
                            MemorySegment.NULL));
                    outcome.set("returned " + status + " after " + (System.nanoTime() - start) / 1000 + " us, thread "
                            + Thread.currentThread() + ", done " + context.isDone());
                } catch (CancellationException expected) {
                    // The next call on this thread reuses the frame: a late stop must not reach it.
                    Thread.interrupted();
                    try (CancellableContext next = Context.background().withCancel()) {
                        int status = NativeCall.invoke(next, nativescope_h::nsc_noop_ctx);
                        outcome.set(status == 0 ? expected : "next call returned " + status);
                    } catch (Throwable late) {
                        outcome.set(late);
                    }
                } catch (Throwable unexpected) {
                    outcome.set(unexpected);
                }
            };
            Thread caller = random.nextBoolean() ? Thread.ofVirtual().start(call) : Thread.ofPlatform().start(call);
            long until = System.nanoTime() + random.nextLong(0, 40_000);
            while (System.nanoTime() - until < 0) {
                Thread.onSpinWait();
            }
            switch (how) {
                case 0 -> context.cancel();
                case 1 -> context.cancel(new IllegalStateException("round " + round));
                case 2 -> context.close();
                case 3 -> parent.cancel();
                case 4 -> caller.interrupt();
                default -> { } // the deadline
            }
            assertThat(caller.join(Duration.ofSeconds(10))).as("call of round %d (way %d) ended", round, how).isTrue();
            if (how == 2 && !(outcome.get() instanceof CancellationException)
                    && outcome.get() instanceof IllegalStateException closed) { // CancellationException is one too
                // Closed before the call entered: refused as a closed context.
                assertThat(closed).hasMessageContaining("closed by its owner");
            } else {
                assertThat(outcome.get()).as("round %d (way %d)", round, how).isInstanceOf(CancellationException.class);
            }
            if (how == 5) {
                assertThat(outcome.get()).isInstanceOf(DeadlineExceededException.class);
            }
            context.close();
            parent.close();
        }
        NativeResources.trimIdle();
        NativeResources after = NativeResources.snapshot();
        assertThat(after.liveCallFrames()).isEqualTo(before.liveCallFrames());
        assertThat(after.shimLiveContexts()).isEqualTo(before.shimLiveContexts());
        assertThat(after.shimLiveFds()).isEqualTo(before.shimLiveFds());
        assertThat(after.shimLiveHooks()).isEqualTo(before.shimLiveHooks());
    }

    @Test
    void twoCallsUnderOneContextAtOnceAreBothCancelled() throws Exception {
        // The second takes the fallback (a done action): the context's stop slot holds the first.
        try (CancellableContext context = Context.background().withCancel()) {
            AtomicReference<Throwable> inner = new AtomicReference<>();
            Thread other = Thread.ofPlatform().start(() -> {
                try {
                    ReferencePredictors.spin(context, Duration.ofSeconds(5), null);
                } catch (Throwable t) {
                    inner.set(t);
                }
            });
            Thread.sleep(20);
            Thread.ofVirtual().start(() -> {
                try {
                    Thread.sleep(20);
                } catch (InterruptedException ignored) {
                }
                context.cancel();
            });
            assertThatThrownBy(() -> ReferencePredictors.spin(context, Duration.ofSeconds(5), null))
                    .isInstanceOf(CancellationException.class);
            other.join(Duration.ofSeconds(10));
            assertThat(inner.get()).isInstanceOf(CancellationException.class);
        }
    }
}
