package dev.nativescope.interop;

import dev.nativescope.library.NativeLibrary;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.ref.Reference;
import java.util.Collection;
import java.util.Objects;

/**
 * Runs work that hands memory segments to native code behind FFM's back (through JNI, like ONNX
 * Runtime's Java API, or as raw addresses inside descriptors, like DLPack) while their memory is
 * guaranteed to stay valid: {@link #call} holds the segments for the duration of the work.
 *
 * <p><b>What a hold guarantees, per arena kind.</b>
 * <ul>
 *   <li>shared: the arena cannot be closed while held; {@code Arena.close()} throws
 *       {@link IllegalStateException} from any thread (exactly as for a segment passed to a
 *       downcall);</li>
 *   <li>confined: the work is refused with {@link WrongThreadException} before it starts unless the
 *       calling thread is the arena's owner (only the owner can close it, and it is busy running
 *       the work; so work that closes its own confined arena while native code still uses it is
 *       not stopped: that is the work's own use after free, as with any segment it frees);</li>
 *   <li>automatic: the segments stay reachable, so their memory is not freed;</li>
 *   <li>global: nothing to do.</li>
 * </ul>
 * A segment whose arena is already closed is refused with {@link IllegalStateException}; heap
 * segments are skipped (the GC keeps them alive while referenced, and no native code may get their
 * address anyway).
 *
 * <p><b>A close that races a Java access.</b> A hold stops a close only while it lasts. When another
 * thread closes a shared arena while this one reads its memory in Java (outside a hold), HotSpot
 * (JDK 22+, JDK-8310644) interrupts this thread to deliver the read's failure, and leaves it
 * interrupted even when the read finished in time; its next bridged call (or anything else that
 * honours interrupts) then fails as interrupted. Close arenas only once no thread uses them.
 *
 * <p><b>How.</b> FFM acquires the arena of every {@code MemorySegment} argument of a downcall for
 * the downcall's duration (checking the owner thread of a confined one, keeping an automatic one
 * reachable). {@link #call} passes the segments (one per arena, eight per downcall) to the shim's
 * {@code nsc_hold_run}, which calls back into Java (an upcall) on the same thread; the upcall runs
 * the work, or, for more than eight arenas, the next {@code nsc_hold_run} with the next eight. No
 * thread handoff, no file descriptor, no arena per call: a downcall and an upcall, well under a
 * microsecond (see BENCHMARKS.md). When every segment is the global arena's or of a confined arena of
 * the calling thread, nothing needs holding (see above): the work runs directly, with a reachability
 * fence, and no downcall. Work handed to another thread (an offloaded call) holds there: that thread
 * is not the owner of a confined arena, so its segments are refused. The upcall catches every {@link Throwable} the work throws (an
 * exception escaping an upcall would end the JVM) and {@link #call} rethrows it once the downcalls
 * have returned.
 *
 * <p><b>Threading.</b> Stateless and thread-safe: any number of threads may hold at once, also the
 * same segments; holds nest (the work may call {@link #call} again). The per-thread state of a
 * call in progress lives in a {@link ThreadLocal} that is restored before {@link #call} returns.
 * The work runs on the calling thread. On a virtual thread a hold made by the downcall pins the
 * carrier for its duration (native frames are on the stack), as any downcall does; the direct path
 * (global and own-confined segments) does not. Work that must stay on one carrier throughout (it
 * sets and restores a native thread-local around Java code that may park) uses {@link #pinned}.
 */
public final class SegmentHold {
    /** Segment parameters of nsc_hold_run. */
    static final int SLOTS = 8;

    /** The work run under a hold; may throw one checked exception type. */
    @FunctionalInterface
    public interface Work<T, X extends Exception> {
        T run() throws X;
    }

    /** The call in progress on this thread (innermost), read by the upcall. */
    private static final ThreadLocal<Frame> CURRENT = new ThreadLocal<>();

    private SegmentHold() {
    }

    /**
     * Runs {@code work} while the native segments among {@code segments} are held (see the class
     * comment).
     *
     * @param segments the segments native code will use during {@code work}; nulls are not allowed
     * @param work the work; runs on the calling thread, at most once
     * @return what {@code work} returned
     * @throws WrongThreadException when a segment is confined to another thread (work not run)
     * @throws IllegalStateException when a segment's arena is already closed (work not run)
     * @throws X whatever {@code work} throws, rethrown unchanged
     */
    public static <T, X extends Exception> T call(Collection<MemorySegment> segments, Work<T, X> work) throws X {
        Objects.requireNonNull(work, "work");
        MemorySegment[] held = distinctNativeArenas(segments);
        if (held.length == 0) {
            return work.run();
        }
        if (!needsDowncall(held)) {
            // Global and own-confined segments only: nothing can free them while the work runs (see
            // the class comment); the fence keeps them reachable to the end, as the downcall would.
            try {
                return work.run();
            } finally {
                Reference.reachabilityFence(held);
            }
        }
        try {
            return inNativeFrame(held, work);
        } finally {
            Reference.reachabilityFence(held);
        }
    }

    /**
     * Checks {@code segments} as {@link #call} does before its work runs, with the same exceptions and
     * advice, for a caller that holds them by passing them to its own downcall (FFM then holds them for
     * that downcall, and checks them again without a race).
     *
     * @param segments the segments native code will use; nulls are not allowed
     * @throws WrongThreadException when a segment is confined to another thread
     * @throws IllegalStateException when a segment's arena is already closed
     */
    public static void check(Collection<MemorySegment> segments) {
        distinctNativeArenas(segments);
    }

    /** Runs {@code work} in the upcall of nsc_hold_run over {@code held} (none: only the native frame). */
    private static <T, X extends Exception> T inNativeFrame(MemorySegment[] held, Work<T, X> work) throws X {
        Frame frame = new Frame(held, work);
        Frame outer = CURRENT.get();
        CURRENT.set(frame);
        try {
            frame.enter(0);
        } finally {
            CURRENT.set(outer);
        }
        return frame.<T, X>outcome();
    }

    /**
     * Runs {@code work} on the calling thread inside a native frame (the shim's {@code nsc_hold_run}
     * calling back), so that a virtual thread stays mounted on its carrier, one OS thread, until the
     * work ends, whatever the work does (a park in it cannot move it to another carrier). On a
     * platform thread it only costs the downcall and upcall.
     *
     * @param work the work; runs on the calling thread, once
     * @return what {@code work} returned
     * @throws X whatever {@code work} throws, rethrown unchanged
     */
    public static <T, X extends Exception> T pinned(Work<T, X> work) throws X {
        Objects.requireNonNull(work, "work");
        return inNativeFrame(new MemorySegment[0], work);
    }

    /**
     * {@return whether a segment of {@code held} (checked: alive, accessible by this thread) needs the
     * downcall}: every one except the global arena's and those of a confined arena of this thread.
     * A shared or automatic arena cannot be told apart without the JDK's internals (a shared one
     * must be held, an automatic one only kept reachable), so both take the downcall.
     */
    private static boolean needsDowncall(MemorySegment[] held) {
        for (MemorySegment segment : held) {
            // A segment another thread cannot access is confined, and being accessible by this
            // thread (checked) it is confined to this one: its owner, busy running the work.
            if (!GLOBAL.equals(segment.scope()) && segment.isAccessibleBy(NOT_AN_OWNER)) {
                return true;
            }
        }
        return false;
    }

    /** The global arena's scope (also that of {@code MemorySegment.ofAddress}): never closed. */
    private static final MemorySegment.Scope GLOBAL = MemorySegment.NULL.scope();
    /** A thread never started, so it owns no confined arena: what only a confined segment refuses. */
    private static final Thread NOT_AN_OWNER = Thread.ofPlatform().unstarted(() -> { });

    /**
     * One native segment per arena, checked: alive, and accessible by this thread. FFM checks the
     * same again when it acquires them for the downcall (the race-free check); these give messages
     * that say what to do.
     */
    private static MemorySegment[] distinctNativeArenas(Collection<MemorySegment> segments) {
        Objects.requireNonNull(segments, "segments");
        MemorySegment[] held = new MemorySegment[segments.size()];
        int count = 0;
        Thread self = Thread.currentThread();
        next:
        for (MemorySegment segment : segments) {
            Objects.requireNonNull(segment, "segment");
            if (!segment.isNative()) {
                continue;
            }
            MemorySegment.Scope scope = segment.scope();
            for (int i = 0; i < count; i++) {
                if (held[i].scope().equals(scope)) {
                    continue next;
                }
            }
            if (!scope.isAlive()) {
                throw new IllegalStateException("the tensor's memory was already freed (its arena is closed); keep the"
                        + " arena open until native code is done with it");
            }
            if (!segment.isAccessibleBy(self)) {
                throw new WrongThreadException("a tensor's memory belongs to a confined arena of another thread; only"
                        + " the owner thread of a confined arena may hand it to native code (run the call on the"
                        + " owner thread, or allocate from Arena.ofShared())");
            }
            held[count++] = segment;
        }
        return count == held.length ? held : java.util.Arrays.copyOf(held, count);
    }

    /** The state of one {@link #call}: its segments, its work, and the outcome the upcall records. */
    private static final class Frame {
        private final MemorySegment[] held;
        private final Work<?, ?> work;
        /** Index of the first segment the next nsc_hold_run passes. */
        private int next;
        private Object result;
        private Throwable failure;
        private boolean ran; // success flag: the work ran to its end (or threw)

        Frame(MemorySegment[] held, Work<?, ?> work) {
            this.held = held;
            this.work = work;
        }

        /** Downcall with segments [from, from + 8): the upcall continues with the rest or runs the work. */
        void enter(int from) {
            next = from + SLOTS;
            MemorySegment[] s = new MemorySegment[SLOTS];
            for (int i = 0; i < SLOTS; i++) {
                s[i] = from + i < held.length ? held[from + i] : MemorySegment.NULL;
            }
            try {
                Native.HOLD_RUN.invokeExact(Native.UPCALL, s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
            } catch (RuntimeException | Error e) {
                // FFM refused a segment before the call (closed meanwhile, WrongThreadException):
                // the work has not run.
                throw e;
            } catch (Throwable e) {
                throw new IllegalStateException("nsc_hold_run failed", e);
            }
        }

        /** Runs inside the upcall: never throws. */
        void upcall() {
            try {
                if (next < held.length) {
                    enter(next);
                } else {
                    ran = true;
                    result = work.run();
                }
            } catch (Throwable e) {
                if (failure == null) {
                    failure = e;
                }
            }
        }

        @SuppressWarnings("unchecked")
        <T, X extends Exception> T outcome() throws X {
            if (failure instanceof RuntimeException e) {
                throw e;
            }
            if (failure instanceof Error e) {
                throw e;
            }
            if (failure != null) {
                throw (X) failure; // only the work's X can get here: everything else is unchecked
            }
            if (!ran) {
                throw new IllegalStateException("nsc_hold_run returned without calling back; is libnativescope"
                        + " the version of this nativescope-core?");
            }
            return (T) result;
        }
    }

    /** Target of the upcall stub: runs the innermost call of this thread. Never throws. */
    private static void upcallTarget() {
        Frame frame = CURRENT.get();
        if (frame != null) {
            frame.upcall();
        }
    }

    /** The downcall and the upcall stub, linked once (the stub lives forever, in the global arena). */
    private static final class Native {
        static final MethodHandle HOLD_RUN;
        static final MemorySegment UPCALL;

        static {
            NativeLibrary.load();
            Linker linker = Linker.nativeLinker();
            MemorySegment symbol = SymbolLookup.loaderLookup().find("nsc_hold_run")
                    .orElseThrow(() -> new IllegalStateException("libnativescope has no nsc_hold_run; it is older than"
                            + " this nativescope-core: use the native-shim of the same version"));
            FunctionDescriptor eightSegments = FunctionDescriptor.ofVoid(ValueLayout.ADDRESS,
                    ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                    ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS);
            HOLD_RUN = linker.downcallHandle(symbol, eightSegments);
            try {
                MethodHandle target = MethodHandles.lookup().findStatic(SegmentHold.class, "upcallTarget",
                        MethodType.methodType(void.class));
                UPCALL = linker.upcallStub(target, FunctionDescriptor.ofVoid(), Arena.global());
            } catch (ReflectiveOperationException e) {
                throw new ExceptionInInitializerError(e);
            }
        }
    }
}
