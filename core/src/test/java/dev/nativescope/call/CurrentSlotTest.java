package dev.nativescope.call;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.childjvm.ChildJvm;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.testing.Allocations;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The current context set by stores through the thread's {@code nsc_current_slot()} (issue 18's
 * fast path): a call allocates nothing on a platform thread; the slot address a platform thread
 * caches is the one the shim reports for that thread every time; and, over randomized rounds of
 * calls nested 1-3 deep from platform and virtual threads, inline, offloaded and on an affinity's
 * thread, ending by a return, an exception or a cancel, every level sees its own context and every
 * end leaves the outer one (none between calls, on the caller, on a carrier, on a native thread).
 * {@code -Dnsc.stress.slotRounds=N} sets the rounds per worker.
 */
@Timeout(300)
class CurrentSlotTest {
    private static final int ROUNDS = Integer.getInteger("nsc.stress.slotRounds", 2500);

    @BeforeAll
    static void load() {
        NativeLibrary.load();
    }

    /**
     * In a child JVM, as {@code NativeCallFastPathTest} does for {@code invoke}: the claim is about
     * the path as C2 compiles it, which a whole suite's profile can blur. Before the reusable adapter
     * each call allocated one (32 B).
     */
    @Test
    void aCurrentCallAllocatesNothingOnAPlatformThread() throws Exception {
        ChildJvm.Result result = ChildJvm.run(List.of("--enable-native-access=ALL-UNNAMED"), List.of(),
                AllocationProbe.class.getName());
        assertThat(result.output()).as(result.output()).contains("call 0 ");
        assertThat(result.exitCode()).as(result.output()).isZero();
    }

    /**
     * Child: prints "call bytes-per-call-rounded-down raw". (Not nested calls: a nested {@code invoke}
     * allocates 56 B per call as well, in the bridge's frame path, which this test does not cover.)
     */
    public static final class AllocationProbe {
        private static final NativeCall.CurrentCall<Object, RuntimeException> NOOP = () -> {
            nativescope_h.nsc_noop();
            return null;
        };

        public static void main(String[] args) {
            try (CancellableContext context = Context.background().withCancel()) {
                // Warmed up until C2 has compiled the path, then measured over many calls: generous bounds.
                double call = Allocations.bestBytesPerCall(() -> NativeCall.call(context, NOOP), 200_000, 15);
                System.out.println("call " + (long) call + " " + call);
            }
        }
    }

    /** A platform thread's slot: the same address on every fetch, and the one nsc_current() reads. */
    @Test
    void aPlatformThreadsSlotIsFixedAndIsWhatNscCurrentReads() throws Exception {
        List<Long> slots = Collections.synchronizedList(new ArrayList<>());
        Runnable probe = () -> {
            MemorySegment slot = CurrentDowncall.fetchSlot();
            for (int i = 0; i < 1000; i++) {
                assertThat(CurrentDowncall.fetchSlot().address()).isEqualTo(slot.address());
                if (i % 100 == 0) {
                    Thread.yield();
                }
            }
            slot.set(java.lang.foreign.ValueLayout.JAVA_LONG, 0, 0x1000L);
            assertThat(CurrentContextTest.current()).isEqualTo(0x1000L);
            slot.set(java.lang.foreign.ValueLayout.JAVA_LONG, 0, 0L);
            assertThat(CurrentContextTest.current()).isZero();
            slots.add(slot.address());
        };
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            threads.add(Thread.ofPlatform().start(() -> {
                probe.run();
                LockSupport.parkNanos(50_000_000); // alive together with the others: distinct slots
            }));
        }
        for (Thread thread : threads) {
            thread.join();
        }
        assertThat(slots).hasSize(3).doesNotHaveDuplicates();
    }

    /** What one round's innermost call does. */
    private enum End { RETURN, THROW, CANCEL_DURING, CANCELLED_BEFORE }

    /** Thrown by a round's innermost call. */
    private static final class Marker extends RuntimeException {
        Marker() {
            super("thrown by the innermost call", null, false, false);
        }
    }

    @Test
    void randomizedNestedCallsNeverLeaveAStalePointer() throws Exception {
        long seed = Long.getLong("nsc.stress.seed", System.nanoTime());
        Map<Long, Long> slotOfThread = new ConcurrentHashMap<>();
        ExecutorService cancellers = Executors.newFixedThreadPool(2);
        List<Throwable> failures = Collections.synchronizedList(new ArrayList<>());
        List<Thread> workers = new ArrayList<>();
        try (Affinity affinity = Affinity.create()) {
            for (int w = 0; w < 4; w++) {
                SplittableRandom random = new SplittableRandom(seed + w);
                Runnable body = () -> {
                    try {
                        for (int round = 0; round < ROUNDS; round++) {
                            oneRound(random, cancellers, affinity, slotOfThread);
                        }
                    } catch (Throwable t) {
                        failures.add(t);
                    }
                };
                workers.add((w % 2 == 0 ? Thread.ofPlatform() : Thread.ofVirtual()).name("slot-stress-" + w).start(body));
            }
            for (Thread worker : workers) {
                assertThat(worker.join(java.time.Duration.ofMinutes(4))).as(worker + " finished").isTrue();
            }
            // The affinity's native thread ran levels of many rounds: nothing left current on it.
            long[] seen = {-1};
            NativeCall.invoke(Context.background(), affinity, ctx -> {
                seen[0] = CurrentContextTest.current();
                return 0;
            });
            assertThat(seen[0]).as("nothing current on the affinity's thread after the rounds").isZero();
        } finally {
            cancellers.shutdown();
            assertThat(cancellers.awaitTermination(30, TimeUnit.SECONDS)).isTrue();
        }
        if (!failures.isEmpty()) {
            throw new AssertionError("seed " + seed + " (-Dnsc.stress.seed): " + failures.size()
                    + " workers failed, first: " + failures.get(0), failures.get(0));
        }
        assertThat(slotOfThread).as("platform threads that ran levels").isNotEmpty();
    }

    private static void oneRound(SplittableRandom random, ExecutorService cancellers, Affinity affinity,
                                 Map<Long, Long> slotOfThread) throws Exception {
        assertThat(CurrentContextTest.current()).as("nothing current between calls").isZero();
        int depth = 1 + random.nextInt(3);
        // Per level: 0 inline, 1 auto, 2 offloaded to the pool, 3 the affinity's thread.
        int[] where = new int[depth];
        for (int i = 0; i < depth; i++) {
            where[i] = random.nextInt(4);
        }
        End end = End.values()[random.nextInt(End.values().length)];
        int target = random.nextInt(depth);
        CancellableContext[] contexts = new CancellableContext[depth];
        contexts[0] = Context.background().withCancel();
        for (int i = 1; i < depth; i++) {
            contexts[i] = contexts[i - 1].withCancel();
        }
        try {
            if (end == End.CANCELLED_BEFORE) {
                contexts[target].cancel();
            }
            Future<?> stop = end != End.CANCEL_DURING ? null : cancellers.submit(() -> {
                LockSupport.parkNanos(random.nextLong(200_000));
                contexts[target].cancel();
            });
            Object outcome;
            try {
                outcome = level(contexts, where, affinity, end, 0, 0L, slotOfThread);
            } catch (CancellationException | Marker e) {
                outcome = e;
            }
            if (stop != null) {
                stop.get(30, TimeUnit.SECONDS);
            }
            switch (end) {
                case RETURN -> assertThat(outcome).isEqualTo(depth);
                case THROW -> assertThat(outcome).isInstanceOf(Marker.class);
                case CANCEL_DURING, CANCELLED_BEFORE -> assertThat(outcome).isInstanceOf(CancellationException.class);
            }
            assertThat(CurrentContextTest.current()).as("restored on the caller after " + end).isZero();
        } finally {
            for (int i = depth - 1; i >= 0; i--) {
                contexts[i].close();
            }
        }
    }

    /** Level k; outer is the current context of level k-1 on the thread that ran it (0 for none). */
    private static int level(CancellableContext[] contexts, int[] where, Affinity affinity, End end, int k,
                             long outer, Map<Long, Long> slotOfThread) {
        NativeCall.CurrentCall<Integer, RuntimeException> body = () -> {
            long mine = CurrentContextTest.current();
            assertThat(mine).as("level %d has a context of its own", k).isNotZero().isNotEqualTo(outer);
            Thread self = Thread.currentThread();
            if (!self.isVirtual()) {
                long slot = CurrentDowncall.fetchSlot().address();
                assertThat(slotOfThread.computeIfAbsent(self.threadId(), id -> slot)).as("slot of " + self)
                        .isEqualTo(slot);
            }
            try {
                if (k + 1 < contexts.length) {
                    return 1 + level(contexts, where, affinity, end, k + 1, mine, slotOfThread);
                }
                switch (end) {
                    case THROW -> throw new Marker();
                    case CANCEL_DURING, CANCELLED_BEFORE -> {
                        // Ends only by a cancel (5 s bound: a lost cancel fails the round, not the suite).
                        nativescope_h.nsc_predict_spin_current(5_000_000_000L, MemorySegment.NULL);
                        return 1;
                    }
                    default -> {
                        return 1;
                    }
                }
            } finally {
                assertThat(CurrentContextTest.current()).as("level %d restored after its inner call", k)
                        .isEqualTo(mine);
            }
        };
        return switch (where[k]) {
            case 0 -> NativeCall.call(contexts[k], CallMode.INLINE, body);
            case 1 -> NativeCall.call(contexts[k], CallMode.AUTO, body);
            case 2 -> NativeCall.call(contexts[k], CallMode.OFFLOAD, body);
            default -> NativeCall.call(contexts[k], affinity, body);
        };
    }
}
