package dev.nativescope.call;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.library.NativeStatus;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Randomized cancels and interrupts against current-context calls nested 1-3 deep, each level in a
 * random mode (inline, auto, offloaded), from platform and virtual threads at once: every level sees
 * a current context of its own, every return restores the outer one, nothing is current on a caller
 * (or a carrier) between calls, and no cancel is lost: a call that only a stop can end always ends,
 * with a {@link CancellationException}. Interrupts stop nested calls that stay on the caller's thread
 * (a native thread's nested call has its own frame, which the caller's interrupt does not reach). {@code -Dnsc.stress.currentRounds=N} sets the rounds per thread.
 */
@Timeout(300)
@OffloadMode
class CurrentContextStressTest {
    private static final int ROUNDS = Integer.getInteger("nsc.stress.currentRounds", 2000);
    private static final CallMode[] MODES = CallMode.values();

    @BeforeAll
    static void load() {
        NativeLibrary.load();
    }

    @Test
    void cancelsAndInterruptsAgainstNestedCurrentCalls() throws Exception {
        long seed = Long.getLong("nsc.stress.seed", System.nanoTime());
        ExecutorService cancellers = Executors.newFixedThreadPool(2);
        List<Thread> workers = new ArrayList<>();
        List<Throwable> failures = java.util.Collections.synchronizedList(new ArrayList<>());
        try {
            for (int w = 0; w < 4; w++) {
                SplittableRandom random = new SplittableRandom(seed + w);
                Runnable body = () -> {
                    try {
                        for (int round = 0; round < ROUNDS; round++) {
                            oneRound(random, cancellers);
                        }
                    } catch (Throwable t) {
                        failures.add(t);
                    }
                };
                workers.add((w % 2 == 0 ? Thread.ofPlatform() : Thread.ofVirtual()).name("current-stress-" + w).start(body));
            }
            for (Thread worker : workers) {
                assertThat(worker.join(java.time.Duration.ofMinutes(4))).as(worker + " finished").isTrue();
            }
        } finally {
            cancellers.shutdown();
            assertThat(cancellers.awaitTermination(30, TimeUnit.SECONDS)).isTrue();
        }
        if (!failures.isEmpty()) {
            AssertionError error = new AssertionError("seed " + seed + " (-Dnsc.stress.seed): " + failures.size()
                    + " rounds failed, first: " + failures.get(0), failures.get(0));
            throw error;
        }
    }

    private static void oneRound(SplittableRandom random, ExecutorService cancellers) throws Exception {
        assertThat(CurrentContextTest.current()).as("nothing current between calls").isZero();
        int depth = 1 + random.nextInt(3);
        CallMode[] modes = new CallMode[depth];
        for (int i = 0; i < depth; i++) {
            modes[i] = MODES[random.nextInt(MODES.length)];
        }
        // 0: finite spin, maybe cancelled; 1: endless spin ended by a cancel; 2: endless spin ended by an interrupt.
        int kind = random.nextInt(3);
        if (kind == 2 && depth > 1) {
            // An interrupt reaches the calls on the interrupted thread only (a nested call on a native thread
            // has a frame of its own, see NativeThreads): nested levels stay on the caller.
            java.util.Arrays.fill(modes, CallMode.INLINE);
        }
        long spinNanos = kind == 0 ? random.nextLong(200_000) : -1;
        int target = random.nextInt(depth);
        long delayNanos = random.nextLong(300_000);
        boolean cancelAtAll = kind != 0 || random.nextBoolean();
        Thread caller = Thread.currentThread();

        CancellableContext[] contexts = new CancellableContext[depth];
        contexts[0] = Context.background().withCancel();
        for (int i = 1; i < depth; i++) {
            contexts[i] = contexts[i - 1].withCancel();
        }
        try {
            Future<?> stop = !cancelAtAll ? null : cancellers.submit(() -> {
                LockSupport.parkNanos(delayNanos);
                if (kind == 2) {
                    caller.interrupt();
                } else {
                    contexts[target].cancel();
                }
            });
            Throwable thrown = null;
            int status = Integer.MIN_VALUE;
            try {
                status = level(contexts, modes, 0, 0L, spinNanos);
            } catch (CancellationException e) {
                thrown = e;
            }
            // Cleared before waiting for the stop (whose interrupt has come: only it ends an endless spin),
            // so an interrupt never outlives its round.
            boolean interrupted = Thread.interrupted();
            if (stop != null) {
                stop.get(30, TimeUnit.SECONDS);
            }
            if (kind == 0) {
                assertThat(thrown != null || status == NativeStatus.OK.code()).as("finite spin: OK or cancelled").isTrue();
            } else {
                assertThat(thrown).as("an endless spin ends only by its stop: no lost cancel").isNotNull();
                if (kind == 2) {
                    assertThat(thrown).hasCauseInstanceOf(InterruptedException.class);
                    assertThat(interrupted).as("the interrupt stays pending after the call").isTrue();
                }
            }
            assertThat(CurrentContextTest.current()).as("restored after the call").isZero();
        } finally {
            for (int i = depth - 1; i >= 0; i--) {
                contexts[i].close();
            }
        }
    }

    /** Level k of the nested call; outer is the current context of the level above, on the thread that ran it. */
    private static int level(CancellableContext[] contexts, CallMode[] modes, int k, long outer, long spinNanos) {
        return NativeCall.call(contexts[k], modes[k], () -> {
            long mine = CurrentContextTest.current();
            assertThat(mine).as("level %d has a current context", k).isNotZero().isNotEqualTo(outer);
            int status;
            if (k + 1 < contexts.length) {
                status = level(contexts, modes, k + 1, mine, spinNanos);
            } else {
                status = nativescope_h.nsc_predict_spin_current(spinNanos, MemorySegment.NULL);
            }
            assertThat(CurrentContextTest.current()).as("level %d restored after its inner call", k).isEqualTo(mine);
            return status;
        });
    }
}
