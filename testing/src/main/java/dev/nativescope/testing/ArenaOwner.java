package dev.nativescope.testing;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;

/**
 * An arena of a given {@link Kind} and the segments allocated in it, with the thread that owns or
 * closes it, for the randomized hold-family tests (core's {@code HoldFamilyChild}, onnxruntime's
 * {@code OrtHoldFamilyChild}): a confined arena of another thread is created, filled and closed on
 * that thread; a shared one is closed by a thread of its own when {@link #closeNow()} is called.
 *
 * <p>Threading: made and read by the test thread; the owner thread writes {@link #closeOutcome()}
 * before it ends, so the test reads it after joining {@link #thread()}.
 */
public final class ArenaOwner {
    /** Which arena the segments come from, and who may close it. */
    public enum Kind { GLOBAL, AUTO, CONFINED_OWNER, CONFINED_OTHER, SHARED }

    /** Allocates the test's segments in the arena (on the owner thread for {@link Kind#CONFINED_OTHER}). */
    @FunctionalInterface
    public interface Allocator {
        MemorySegment[] allocate(Arena arena) throws Exception;
    }

    private final Arena arena;
    private final Thread thread;
    private final CountDownLatch closeNow = new CountDownLatch(1);
    private final AtomicReference<Throwable> closeOutcome = new AtomicReference<>();
    private volatile MemorySegment[] segments;

    public ArenaOwner(Kind kind, Allocator allocator) throws Exception {
        if (kind == Kind.CONFINED_OTHER) {
            AtomicReference<Arena> made = new AtomicReference<>();
            AtomicReference<Throwable> failed = new AtomicReference<>();
            CountDownLatch ready = new CountDownLatch(1);
            thread = Thread.ofPlatform().daemon(true).start(() -> {
                try {
                    made.set(Arena.ofConfined());
                    segments = allocator.allocate(made.get());
                } catch (Throwable e) {
                    failed.set(e);
                } finally {
                    ready.countDown();
                }
                closeWhenTold(made.get());
            });
            ready.await();
            if (failed.get() != null) {
                throw new AssertionError("allocating on the owner thread", failed.get());
            }
            arena = made.get();
        } else {
            arena = switch (kind) {
                case GLOBAL -> Arena.global();
                case AUTO -> Arena.ofAuto();
                case CONFINED_OWNER -> Arena.ofConfined();
                case SHARED -> Arena.ofShared();
                default -> throw new AssertionError(kind);
            };
            Arena closing = arena;
            thread = kind == Kind.SHARED ? Thread.ofPlatform().daemon(true).start(() -> closeWhenTold(closing)) : null;
            segments = allocator.allocate(arena);
        }
    }

    private void closeWhenTold(Arena closing) {
        try {
            closeNow.await();
            closing.close();
        } catch (Throwable e) {
            closeOutcome.set(e);
        }
    }

    /** {@return the arena} */
    public Arena arena() {
        return arena;
    }

    /** {@return the thread that owns (confined, another thread) or closes (shared) the arena, or null} */
    public Thread thread() {
        return thread;
    }

    /** {@return the segments the allocator made} */
    public MemorySegment[] segments() {
        return segments;
    }

    /** Tells the owner thread to close the arena now (shared, confined of another thread). */
    public void closeNow() {
        closeNow.countDown();
    }

    /** {@return what the owner thread's close threw, or null}: read after joining {@link #thread()} */
    public Throwable closeOutcome() {
        return closeOutcome.get();
    }
}
