package dev.nativescope.interop;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * {@link SegmentHold}: while the work runs, a shared arena refuses to close from any thread and its
 * memory stays readable; afterwards it closes; any number of arenas (chained downcalls); closed
 * arenas and other threads' confined arenas are refused before the work runs; whatever the work
 * throws comes back unchanged; holds nest.
 */
class SegmentHoldTest {

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
    void heldSharedArenaRefusesToCloseAndStaysReadable() throws Exception {
        Arena arena = Arena.ofShared();
        MemorySegment segment = arena.allocate(ValueLayout.JAVA_LONG, 1024);
        segment.setAtIndex(ValueLayout.JAVA_LONG, 7, 21);
        long read = SegmentHold.call(List.of(segment.asSlice(8, 16)), () -> {
            assertThat(closeFromAnotherThread(arena)).isInstanceOf(IllegalStateException.class);
            assertThatThrownBy(arena::close).isInstanceOf(IllegalStateException.class);
            return segment.getAtIndex(ValueLayout.JAVA_LONG, 7);
        });
        assertThat(read).isEqualTo(21);
        assertThat(closeFromAnotherThread(arena)).isNull();
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
        SegmentHold.call(segments, () -> {
            for (Arena arena : arenas) {
                assertThatThrownBy(arena::close).isInstanceOf(IllegalStateException.class);
            }
            return null;
        });
        arenas.forEach(Arena::close);
    }

    @Test
    void closedArenaIsRefusedBeforeTheWorkRuns() {
        Arena arena = Arena.ofShared();
        MemorySegment segment = arena.allocate(8);
        arena.close();
        AtomicInteger ran = new AtomicInteger();
        assertThatThrownBy(() -> SegmentHold.call(List.of(segment), ran::incrementAndGet))
                .isInstanceOf(IllegalStateException.class).hasMessageStartingWith("the tensor's memory was already freed");
        assertThat(ran).hasValue(0);
        // check(): the same refusal, for callers that hold through their own downcall.
        assertThatThrownBy(() -> SegmentHold.check(List.of(segment))).isInstanceOf(IllegalStateException.class)
                .hasMessageStartingWith("the tensor's memory was already freed");
    }

    @Test
    void anotherThreadsConfinedArenaIsRefusedBeforeTheWorkRuns() throws Exception {
        MemorySegment[] foreign = new MemorySegment[1];
        Arena[] owned = new Arena[1];
        Thread owner = Thread.ofPlatform().start(() -> {
            owned[0] = Arena.ofConfined();
            foreign[0] = owned[0].allocate(8);
        });
        owner.join();
        AtomicInteger ran = new AtomicInteger();
        assertThatThrownBy(() -> SegmentHold.call(List.of(foreign[0]), ran::incrementAndGet))
                .isInstanceOf(WrongThreadException.class).hasMessageContaining("owner thread");
        assertThat(ran).hasValue(0);
        assertThatThrownBy(() -> SegmentHold.check(List.of(foreign[0]))).isInstanceOf(WrongThreadException.class)
                .hasMessageContaining("owner thread");
    }

    @Test
    void ownConfinedAutoGlobalAndHeapSegmentsRunTheWork() {
        try (Arena confined = Arena.ofConfined()) {
            List<MemorySegment> segments = List.of(confined.allocate(8), Arena.ofAuto().allocate(8),
                    Arena.global().allocate(8), MemorySegment.ofArray(new byte[8]), MemorySegment.NULL);
            assertThat(SegmentHold.call(segments, () -> "ran")).isEqualTo("ran");
            SegmentHold.check(segments); // accepted, as by call()
            assertThat(SegmentHold.call(List.of(), () -> "empty")).isEqualTo("empty");
        }
    }

    @Test
    void whateverTheWorkThrowsComesBackUnchanged() {
        try (Arena arena = Arena.ofShared()) {
            List<MemorySegment> held = List.of(arena.allocate(8));
            IOException checked = new IOException("checked");
            assertThatThrownBy(() -> SegmentHold.call(held, () -> {
                throw checked;
            })).isSameAs(checked);
            StackOverflowError error = new StackOverflowError("error");
            assertThatThrownBy(() -> SegmentHold.call(held, () -> {
                throw error;
            })).isSameAs(error);
        }
    }

    @Test
    void holdsNest() {
        try (Arena outer = Arena.ofShared(); Arena inner = Arena.ofShared()) {
            String result = SegmentHold.call(List.of(outer.allocate(8)),
                    () -> SegmentHold.call(List.of(inner.allocate(8)), () -> {
                        assertThatThrownBy(outer::close).isInstanceOf(IllegalStateException.class);
                        assertThatThrownBy(inner::close).isInstanceOf(IllegalStateException.class);
                        return "inner";
                    }) + " and outer");
            assertThat(result).isEqualTo("inner and outer");
        }
    }

    @Test
    void randomizedHoldsAgainstConcurrentCloses() throws Exception {
        Random random = new Random(13);
        for (int round = 0; round < 200; round++) {
            Arena arena = Arena.ofShared();
            MemorySegment segment = arena.allocate(ValueLayout.JAVA_LONG, 64);
            CompletableFuture<Throwable> closer = CompletableFuture.supplyAsync(() -> {
                if (random.nextBoolean()) {
                    Thread.onSpinWait();
                }
                try {
                    arena.close();
                    return null;
                } catch (Throwable e) {
                    return e;
                }
            }, runnable -> Thread.ofPlatform().start(runnable));
            try {
                long sum = SegmentHold.call(List.of(segment), () -> {
                    long s = 0;
                    for (long i = 0; i < 64; i++) {
                        s += segment.getAtIndex(ValueLayout.JAVA_LONG, i); // never freed under us
                    }
                    return s;
                });
                assertThat(sum).isZero();
            } catch (IllegalStateException closedFirst) {
                assertThat(closedFirst.getMessage()).containsIgnoringCase("already");
            }
            Throwable closeOutcome = closer.get(30, TimeUnit.SECONDS);
            if (closeOutcome != null) {
                assertThat(closeOutcome).isInstanceOf(IllegalStateException.class);
                arena.close();
            }
        }
    }

    /** {@return whether the calling code runs inside the hold's upcall, i.e. the downcall was made} */
    private static boolean insideTheDowncall() {
        return StackWalker.getInstance().walk(frames -> frames.anyMatch(frame ->
                frame.getClassName().equals(SegmentHold.class.getName()) && frame.getMethodName().equals("upcallTarget")));
    }

    /**
     * Global and own-confined segments need no hold: the work runs without the downcall. One shared or
     * automatic segment among them (which a hold must keep open or reachable) brings the downcall
     * back, and the shared arena then refuses to close.
     */
    @Test
    void globalAndOwnConfinedSegmentsSkipTheDowncallOthersTakeIt() throws Exception {
        try (Arena confined = Arena.ofConfined(); Arena shared = Arena.ofShared()) {
            MemorySegment own = confined.allocate(8);
            MemorySegment global = Arena.global().allocate(8);
            assertThat(SegmentHold.call(List.of(own, global, own.asSlice(4)), SegmentHoldTest::insideTheDowncall))
                    .as("global and own confined only").isFalse();
            assertThat(SegmentHold.call(List.of(global, MemorySegment.ofArray(new byte[4])), SegmentHoldTest::insideTheDowncall))
                    .as("global and heap").isFalse();
            assertThat(SegmentHold.call(List.of(own, Arena.ofAuto().allocate(8)), SegmentHoldTest::insideTheDowncall))
                    .as("with an automatic segment").isTrue();
            Arena sharedArena = shared;
            assertThat(SegmentHold.call(List.of(own, global, shared.allocate(8)), () -> {
                assertThat(closeFromAnotherThread(sharedArena)).isInstanceOf(IllegalStateException.class);
                return insideTheDowncall();
            })).as("with a shared segment").isTrue();
        }
    }

    /**
     * The skip is for the owner only: with the caller's own confined segment, another thread's confined
     * segment is still refused before the work runs; and work handed to another thread (as an offloaded
     * call does) is refused the caller's confined segment, and holds a shared one there.
     */
    @Test
    void theSkipIsTheOwnersOnlyAndOffloadedWorkStillHolds() throws Exception {
        MemorySegment[] foreign = new MemorySegment[1];
        Thread owner = Thread.ofPlatform().start(() -> foreign[0] = Arena.ofConfined().allocate(8));
        owner.join();
        AtomicInteger ran = new AtomicInteger();
        try (Arena confined = Arena.ofConfined(); Arena shared = Arena.ofShared()) {
            MemorySegment own = confined.allocate(8);
            assertThatThrownBy(() -> SegmentHold.call(List.of(own, foreign[0]), ran::incrementAndGet))
                    .isInstanceOf(WrongThreadException.class).hasMessageContaining("owner thread");
            assertThatThrownBy(() -> SegmentHold.call(List.of(foreign[0], Arena.global().allocate(8)), ran::incrementAndGet))
                    .isInstanceOf(WrongThreadException.class);
            Throwable offloadedConfined = CompletableFuture.supplyAsync(() -> {
                try {
                    SegmentHold.call(List.of(own), ran::incrementAndGet);
                    return (Throwable) null;
                } catch (Throwable e) {
                    return e;
                }
            }, runnable -> Thread.ofPlatform().start(runnable)).get(30, TimeUnit.SECONDS);
            assertThat(offloadedConfined).isInstanceOf(WrongThreadException.class);
            assertThat(ran).hasValue(0);
            MemorySegment sharedSegment = shared.allocate(8);
            Boolean heldThere = CompletableFuture.supplyAsync(() -> SegmentHold.call(List.of(sharedSegment), () -> {
                assertThatThrownBy(shared::close).isInstanceOf(IllegalStateException.class);
                return insideTheDowncall();
            }), runnable -> Thread.ofPlatform().start(runnable)).get(30, TimeUnit.SECONDS);
            assertThat(heldThere).isTrue();
        }
    }
    /**
     * {@code pinned} keeps a virtual thread on one carrier while its work parks, with more virtual
     * threads than carriers competing (the current context's set/restore relies on it); a hold over
     * global segments alone runs directly and is not that guarantee.
     */
    @Test
    void pinnedWorkStaysOnItsCarrierThroughParks() throws Exception {
        List<Thread> threads = new ArrayList<>();
        AtomicInteger moved = new AtomicInteger();
        AtomicInteger ran = new AtomicInteger();
        for (int t = 0; t < 32; t++) {
            threads.add(Thread.ofVirtual().start(() -> {
                String carrier = SegmentHold.pinned(() -> {
                    String first = carrierOf(Thread.currentThread());
                    for (int i = 0; i < 5; i++) {
                        java.util.concurrent.locks.LockSupport.parkNanos(200_000);
                        if (!carrierOf(Thread.currentThread()).equals(first)) {
                            moved.incrementAndGet();
                        }
                    }
                    return first;
                });
                if (!carrier.isEmpty()) {
                    ran.incrementAndGet();
                }
            }));
        }
        for (Thread thread : threads) {
            thread.join(TimeUnit.SECONDS.toMillis(60));
        }
        assertThat(ran).hasValue(32);
        assertThat(moved).as("parks that resumed the work on another carrier").hasValue(0);
    }

    /** The carrier's name from a mounted virtual thread's toString(): {@code VirtualThread[#n]/runnable@ForkJoinPool-1-worker-3}. */
    private static String carrierOf(Thread virtual) {
        String text = virtual.toString();
        int at = text.lastIndexOf('@');
        return at < 0 ? "" : text.substring(at + 1);
    }
}
