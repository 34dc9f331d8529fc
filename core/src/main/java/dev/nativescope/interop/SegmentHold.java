package dev.nativescope.interop;

import dev.nativescope.library.NativeStatus;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.internal.posix.Libc;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * Keeps the arenas of native memory segments open while it is held, so that native code that
 * reaches the memory behind FFM's back (through JNI, like ONNX Runtime's Java API, or through a
 * raw address) never sees it freed.
 *
 * <p><b>How.</b> FFM's one public guarantee about this: while a downcall that received a segment
 * as an argument is in flight, that segment's arena cannot be closed ({@code Arena.close()} on a
 * shared arena throws {@link IllegalStateException}). A hold therefore passes the segments (at
 * most eight per call, several calls for more; one segment per arena suffices) to the shim's
 * {@code nsc_hold_segments}, which only blocks, on daemon platform threads of a small cached pool
 * ({@code nativescope-segment-hold-N}); {@link #hold} returns once every such call has started, and
 * {@link #close()} makes them return.
 *
 * <p><b>Which segments.</b> Heap segments are skipped (the GC keeps them alive while referenced,
 * and FFM cannot pass them to a downcall). Segments confined to a thread are skipped too: only
 * their owner thread can close their arena, and while that thread is the one doing the guarded
 * work it cannot. Global and automatic segments are held like any other (harmlessly).
 *
 * <p>Thread-safe; {@link #close()} is idempotent and may be called from any thread. Each live
 * hold occupies one pooled thread per eight arenas: hold for the duration of a native call, not
 * indefinitely.
 */
public final class SegmentHold implements AutoCloseable {
    /** Segment arguments of nsc_hold_segments. */
    static final int SLOTS = 8;
    /** How long {@link #hold} waits for the holder calls to start before giving up. */
    private static final long ENTER_TIMEOUT_NANOS = TimeUnit.SECONDS.toNanos(60);
    private static final long CLOSE_TIMEOUT_SECONDS = 60;
    private static final VarHandle INT = ValueLayout.JAVA_INT.varHandle();
    private static final AtomicLong LIVE = new AtomicLong();
    private static final AtomicInteger THREAD_NUMBERS = new AtomicInteger();
    /**
     * Holder threads are made on demand and end after {@value #IDLE_SECONDS} s without work: a
     * thread costs tens of microseconds to start, against the milliseconds of the runs that need a
     * hold, and an idle process keeps none. They are platform threads (a blocked downcall would pin
     * a virtual thread's carrier anyway), daemon so that a forgotten hold never keeps the JVM alive.
     */
    private static final long IDLE_SECONDS = 1;
    private static final ExecutorService HOLDERS = new ThreadPoolExecutor(0, Integer.MAX_VALUE,
            IDLE_SECONDS, TimeUnit.SECONDS, new SynchronousQueue<>(), holderThreads());

    private static final SegmentHold EMPTY = new SegmentHold(-1, null, List.of());

    /** The eventfd the holder calls wait on; -1 for {@link #EMPTY}. */
    private final int release;
    private final Arena flagArena;
    private final List<Future<Integer>> holders;
    private final AtomicBoolean closed = new AtomicBoolean();

    private SegmentHold(int release, Arena flagArena, List<Future<Integer>> holders) {
        this.release = release;
        this.flagArena = flagArena;
        this.holders = holders;
    }

    private static ThreadFactory holderThreads() {
        return runnable -> {
            Thread thread = Thread.ofPlatform()
                    .name("nativescope-segment-hold-" + THREAD_NUMBERS.incrementAndGet())
                    .daemon(true)
                    .unstarted(runnable);
            return thread;
        };
    }

    /**
     * Holds the arenas of {@code segments} open until {@link #close()}.
     *
     * @param segments the segments whose memory native code is about to use; nulls are not allowed
     * @return the hold, already in force when this returns; close it once native code is done
     * @throws IllegalStateException when the arena of a segment was already closed ("the tensor's
     *         memory was already freed"), or the holder calls could not start
     */
    public static SegmentHold hold(Collection<MemorySegment> segments) {
        Objects.requireNonNull(segments, "segments");
        // One segment per arena: holding any segment of an arena keeps the whole arena open.
        Map<MemorySegment.Scope, MemorySegment> byScope = new LinkedHashMap<>();
        for (MemorySegment segment : segments) {
            Objects.requireNonNull(segment, "segment");
            if (segment.isNative()) {
                byScope.putIfAbsent(segment.scope(), segment);
            }
        }
        if (byScope.isEmpty()) {
            return EMPTY;
        }
        NativeLibrary.load();
        List<MemorySegment> toHold = new ArrayList<>(byScope.values());
        int calls = (toHold.size() + SLOTS - 1) / SLOTS;

        int release = Libc.eventfd();
        // Shared: written by native code on the holder threads, read here and freed by close().
        Arena flagArena = Arena.ofShared();
        MemorySegment flags = flagArena.allocate(ValueLayout.JAVA_INT, calls);
        List<Future<Integer>> holders = new ArrayList<>(calls);
        SegmentHold hold = new SegmentHold(release, flagArena, holders);
        LIVE.incrementAndGet();
        try {
            for (int call = 0; call < calls; call++) {
                List<MemorySegment> chunk = toHold.subList(call * SLOTS, Math.min(toHold.size(), (call + 1) * SLOTS));
                MemorySegment entered = flags.asSlice((long) call * Integer.BYTES, Integer.BYTES);
                holders.add(HOLDERS.submit(() -> holdCall(entered, release, chunk)));
            }
            awaitEntered(flags, holders);
            return hold;
        } catch (RuntimeException | Error e) {
            try {
                hold.close();
            } catch (RuntimeException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }

    /** Runs on a holder thread: blocks in nsc_hold_segments until the release fd is signalled. */
    private static int holdCall(MemorySegment entered, int fd, List<MemorySegment> chunk) {
        MemorySegment[] s = new MemorySegment[SLOTS];
        Thread self = Thread.currentThread();
        for (int i = 0; i < SLOTS; i++) {
            MemorySegment segment = i < chunk.size() ? chunk.get(i) : MemorySegment.NULL;
            // A confined segment of another thread would fail the call (WrongThreadException); its
            // arena can only be closed by its owner, so it needs no hold.
            s[i] = segment.isAccessibleBy(self) ? segment : MemorySegment.NULL;
        }
        try {
            return nativescope_h.nsc_hold_segments(entered, fd, s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
        } catch (AssertionError e) {
            // The jextract wrapper turns whatever the downcall throws into an AssertionError; a
            // closed arena is an IllegalStateException from the FFM runtime: pass that one on.
            if (e.getCause() instanceof IllegalStateException closedArena) {
                throw closedArena;
            }
            throw e;
        }
    }

    /** Waits until every holder call has set its flag; fails if one ended without holding. */
    private static void awaitEntered(MemorySegment flags, List<Future<Integer>> holders) {
        long start = System.nanoTime();
        boolean interrupted = false;
        try {
            for (int call = 0; call < holders.size(); call++) {
                Future<Integer> holder = holders.get(call);
                long offset = (long) call * Integer.BYTES;
                long parkNanos = 10_000;
                int spins = 0;
                // Acquire pairs with the release store of nsc_hold_segments.
                while ((int) INT.getAcquire(flags, offset) == 0) {
                    if (holder.isDone()) {
                        throw notHeld(holder);
                    }
                    if (System.nanoTime() - start > ENTER_TIMEOUT_NANOS) {
                        throw new IllegalStateException("the segment holder threads did not start within "
                                + TimeUnit.NANOSECONDS.toSeconds(ENTER_TIMEOUT_NANOS) + " s");
                    }
                    // A short spin for the common case (a pooled thread picks the call up at once),
                    // then parking with a growing period so a slow start costs no CPU.
                    if (spins < 200) {
                        spins++;
                        Thread.onSpinWait();
                    } else {
                        LockSupport.parkNanos(parkNanos);
                        parkNanos = Math.min(parkNanos * 2, 1_000_000);
                        if (Thread.interrupted()) {
                            // The hold is short and must not be half taken: finish, restore the flag.
                            interrupted = true;
                        }
                    }
                }
            }
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** The exception for a holder call that ended before setting its flag. */
    private static RuntimeException notHeld(Future<Integer> holder) {
        try {
            int status = holder.get();
            return new IllegalStateException("nsc_hold_segments returned " + NativeStatus.nameOf(status) + " without holding");
        } catch (ExecutionException e) {
            if (e.getCause() instanceof IllegalStateException closedArena) {
                return new IllegalStateException("the tensor's memory was already freed", closedArena);
            }
            return new IllegalStateException("nsc_hold_segments failed", e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new IllegalStateException("interrupted while checking a segment holder", e);
        }
    }

    /** @return the holds taken and not yet closed, for leak checks */
    public static long liveHolds() {
        return LIVE.get();
    }

    /**
     * Releases the hold: the holder calls return (after which the arenas may be closed again), the
     * release fd and the flags are freed. Waits for the holder calls, so that when this returns
     * the arenas can be closed. Idempotent.
     */
    @Override
    public void close() {
        if (release < 0 || !closed.compareAndSet(false, true)) {
            return;
        }
        try {
            Libc.signalEventfd(release, 1);
        } catch (RuntimeException e) {
            // The calls were not told to return and still use the fd and the flags: leaking both
            // (and the hold) is the only safe outcome.
            throw e;
        }
        boolean interrupted = false;
        try {
            for (Future<Integer> holder : holders) {
                while (true) {
                    try {
                        holder.get(CLOSE_TIMEOUT_SECONDS, TimeUnit.SECONDS);
                        break;
                    } catch (InterruptedException e) {
                        // Must not return while a call still holds (or still uses the fd and flag).
                        interrupted = true;
                    } catch (ExecutionException e) {
                        break; // it failed to hold; hold() reports that, nothing to release here
                    } catch (TimeoutException e) {
                        // The calls return once the fd is readable, which it now is: never free the
                        // fd or the flags under a call that could still use them, so keep waiting.
                    }
                }
            }
        } finally {
            try {
                Libc.close(release);
                flagArena.close();
            } finally {
                LIVE.decrementAndGet();
                if (interrupted) {
                    Thread.currentThread().interrupt();
                }
            }
        }
    }
}
