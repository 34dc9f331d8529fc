package dev.nativescope.interop;

import dev.nativescope.testing.ProcSelf;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * {@link SegmentHold}: while held, a shared arena refuses to close from any thread and its memory
 * stays readable; afterwards it closes; any number of segments; a closed arena is reported; races
 * between holding, releasing and closing the arena never free memory under a hold.
 */
class SegmentHoldTest {

    @AfterEach
    void noHoldLeft() {
        assertThat(SegmentHold.liveHolds()).as("live holds").isZero();
    }

    /** Tries arena.close() on another thread: the outcome, null on success. */
    private static Throwable closeFromAnotherThread(Arena arena) throws Exception {
        return CompletableFuture.supplyAsync(() -> {
            try {
                arena.close();
                return (Throwable) null;
            } catch (Throwable e) {
                return e;
            }
        }, runnable -> Thread.ofPlatform().start(runnable)).get(30, TimeUnit.SECONDS);
    }

    @Test
    void heldArenaRefusesToCloseAndStaysReadable() throws Exception {
        Arena arena = Arena.ofShared();
        MemorySegment segment = arena.allocate(ValueLayout.JAVA_LONG, 1024);
        for (long i = 0; i < 1024; i++) {
            segment.setAtIndex(ValueLayout.JAVA_LONG, i, i * 3);
        }
        try (SegmentHold hold = SegmentHold.hold(List.of(segment.asSlice(8, 16)))) {
            assertThat(SegmentHold.liveHolds()).isEqualTo(1);
            Throwable refused = closeFromAnotherThread(arena);
            assertThat(refused).isInstanceOf(IllegalStateException.class);
            assertThatThrownBy(arena::close).isInstanceOf(IllegalStateException.class);
            assertThat(segment.scope().isAlive()).isTrue();
            for (long i = 0; i < 1024; i++) {
                assertThat(segment.getAtIndex(ValueLayout.JAVA_LONG, i)).isEqualTo(i * 3);
            }
            hold.close();
            hold.close(); // idempotent
        }
        assertThat(closeFromAnotherThread(arena)).isNull();
        assertThat(segment.scope().isAlive()).isFalse();
    }

    @Test
    void moreThanEightArenasAreAllHeld() throws Exception {
        List<Arena> arenas = new ArrayList<>();
        List<MemorySegment> segments = new ArrayList<>();
        for (int i = 0; i < 21; i++) {
            Arena arena = Arena.ofShared();
            arenas.add(arena);
            MemorySegment segment = arena.allocate(64);
            segments.add(segment);
            segments.add(segment.asSlice(8)); // same arena twice: held once
        }
        try (SegmentHold hold = SegmentHold.hold(segments)) {
            for (Arena arena : arenas) {
                assertThat(closeFromAnotherThread(arena)).isInstanceOf(IllegalStateException.class);
            }
        }
        for (Arena arena : arenas) {
            assertThat(closeFromAnotherThread(arena)).isNull();
        }
    }

    @Test
    void alreadyClosedArenaIsReportedClearly() {
        Arena live = Arena.ofShared();
        Arena closed = Arena.ofShared();
        MemorySegment ok = live.allocate(16);
        MemorySegment freed = closed.allocate(16);
        closed.close();
        assertThatThrownBy(() -> SegmentHold.hold(List.of(ok, freed)))
                .isInstanceOf(IllegalStateException.class)
                .hasMessage("the tensor's memory was already freed");
        // The failed hold released what it had taken.
        live.close();
    }

    @Test
    void heapConfinedAndAutoSegmentsAreAccepted() throws Exception {
        try (Arena confined = Arena.ofConfined(); Arena shared = Arena.ofShared()) {
            MemorySegment heap = MemorySegment.ofArray(new int[4]);
            MemorySegment auto = Arena.ofAuto().allocate(8);
            MemorySegment global = Arena.global().allocate(8);
            MemorySegment sharedSegment = shared.allocate(8);
            try (SegmentHold hold = SegmentHold.hold(List.of(heap, confined.allocate(8), auto, global, sharedSegment))) {
                assertThat(closeFromAnotherThread(shared)).isInstanceOf(IllegalStateException.class);
            }
            try (SegmentHold nothing = SegmentHold.hold(List.of(heap))) {
                assertThat(SegmentHold.liveHolds()).isZero();
            }
        }
    }

    @Test
    void randomizedHoldReleaseAndArenaCloseRaces() throws Exception {
        long fdsBefore = ProcSelf.openDescriptorCount();
        Random random = new Random(42);
        AtomicInteger refusedWhileHeld = new AtomicInteger();
        AtomicInteger holdsRefused = new AtomicInteger();
        int iterations = 1000;
        for (int iteration = 0; iteration < iterations; iteration++) {
            Arena arena = Arena.ofShared();
            int count = 1 + random.nextInt(12);
            List<MemorySegment> segments = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                // Mostly one arena, sometimes extra arenas, so that several calls are chained.
                Arena owner = i > 0 && random.nextInt(4) == 0 ? Arena.ofAuto() : arena;
                MemorySegment segment = owner.allocate(ValueLayout.JAVA_LONG, 4);
                segment.setAtIndex(ValueLayout.JAVA_LONG, 0, iteration);
                segments.add(segment);
            }
            MemorySegment watched = segments.get(0);
            long holdDelay = random.nextInt(200_000);
            long closeDelay = random.nextInt(400_000);
            AtomicBoolean held = new AtomicBoolean();
            AtomicBoolean releasing = new AtomicBoolean();
            AtomicBoolean violated = new AtomicBoolean();
            CountDownLatch go = new CountDownLatch(1);
            int iterationNumber = iteration;

            Thread holder = Thread.ofPlatform().start(() -> {
                await(go);
                try (SegmentHold hold = SegmentHold.hold(segments)) {
                    held.set(true);
                    // The memory is readable for as long as it is held.
                    if (watched.getAtIndex(ValueLayout.JAVA_LONG, 0) != iterationNumber) {
                        violated.set(true);
                    }
                    LockSupport.parkNanos(holdDelay);
                    if (watched.getAtIndex(ValueLayout.JAVA_LONG, 0) != iterationNumber) {
                        violated.set(true);
                    }
                    releasing.set(true);
                } catch (IllegalStateException e) {
                    // Only legal when the arena was closed first.
                    if (!"the tensor's memory was already freed".equals(e.getMessage()) || watched.scope().isAlive()) {
                        violated.set(true);
                    }
                    holdsRefused.incrementAndGet();
                }
            });
            Thread closer = Thread.ofPlatform().start(() -> {
                await(go);
                LockSupport.parkNanos(closeDelay);
                while (true) {
                    try {
                        arena.close();
                        // Closed: never between "held" and "releasing".
                        if (held.get() && !releasing.get()) {
                            violated.set(true);
                        }
                        return;
                    } catch (IllegalStateException e) {
                        if (!held.get() || releasing.get()) {
                            // Refused outside of the window where we know it is held: allowed only
                            // during hold() or close() themselves, which the retry covers.
                        } else {
                            refusedWhileHeld.incrementAndGet();
                        }
                        Thread.onSpinWait();
                    }
                }
            });
            go.countDown();
            holder.join(TimeUnit.SECONDS.toMillis(60));
            closer.join(TimeUnit.SECONDS.toMillis(60));
            assertThat(holder.isAlive()).as("holder thread stuck").isFalse();
            assertThat(closer.isAlive()).as("closer thread stuck").isFalse();
            assertThat(violated).as("iteration %d: memory freed under a hold", iteration).isFalse();
            assertThat(arena.scope().isAlive()).isFalse();
        }
        assertThat(refusedWhileHeld.get()).as("some closes were refused while held").isPositive();
        assertThat(holdsRefused.get()).as("holds refused for closed arenas").isBetween(0, iterations);
        assertThat(SegmentHold.liveHolds()).isZero();
        // Nothing leaks: the fds are back (allowing for unrelated JVM activity) and the pool stays small.
        assertThat(ProcSelf.openDescriptorCount()).isLessThanOrEqualTo(fdsBefore + 4);
        long holderThreads = Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().startsWith("nativescope-segment-hold-")).count();
        assertThat(holderThreads).as("pooled holder threads").isLessThanOrEqualTo(16);
    }

    private static void await(CountDownLatch latch) {
        try {
            latch.await();
        } catch (InterruptedException e) {
            throw new IllegalStateException(e);
        }
    }
}
