package dev.nativescope.call;

import dev.nativescope.call.NativeThreadPool.Handoff;
import dev.nativescope.call.NativeThreadPool.NativeThread;
import dev.nativescope.Context;
import dev.nativescope.Registration;
import dev.nativescope.internal.access.ContextAccess;
import dev.nativescope.internal.access.SharedAccess;
import dev.nativescope.library.NativeStatus;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.Objects;
import java.util.OptionalLong;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/**
 * The native threads: a bounded pool of platform threads on which offloaded native calls run while
 * their callers park (see {@link CallMode}). {@link NativeCall#invokeLong} and
 * {@link NativeCall#invoke(Context, CallMode, NativeCall.Downcall)} use it; adapters of third-party
 * runtimes whose calls pin too (a JNI call) use {@link #call}.
 *
 * <p><b>Bounds.</b> At most {@value #POOL_SIZE_PROPERTY} threads (default
 * {@code max(8, 4 * availableProcessors())}: blocked calls, such as a wait on a file descriptor,
 * cost a thread but no CPU), started on demand and ended after {@value #KEEP_ALIVE_PROPERTY} seconds
 * idle (default 60). A call that finds every thread busy waits in a queue of at most
 * {@value #QUEUE_PROPERTY} calls (default 4096); beyond that it is rejected with a
 * {@link RejectedExecutionException} that names these properties. The wait for a thread is part of
 * the call: it counts against the call's deadline, and a cancel of the context or an interrupt of
 * the caller ends it, with the exception an inline call would have thrown before entering native
 * code; native code is then never entered.
 *
 * <p><b>Wake-ups.</b> A native thread blocked in native code (a wait on the context's done fd) is
 * woken by the cancel, on the canceller's CPU. On Linux 6.12 and newer a woken thread preempts the
 * running one only if its scheduler slice is shorter, so with the default slice it would wait until
 * the canceller sleeps. Each native thread therefore asks for a {@value #SLICE_MICROS_PROPERTY} of
 * 500 us when it starts (below the kernel's default of 0.7-2.8 ms; its CPU share and nice value are
 * unchanged, only its turns are shorter when CPUs are contended). Set the property to 0 to leave the
 * threads' scheduling alone. Older kernels ignore it. BENCHMARKS.md has the figures.
 *
 * <p><b>What is the same and what differs on a native thread.</b> The downcall gets the call's
 * {@code nsc_context} (deadline, values, cancellation) as inline, and {@link Context#current()} in the
 * downcall is the caller's. An interrupt of the caller reaches the native call's cancel (the
 * caller's interrupt hook stays registered while it parks), and the caller's interrupt status is
 * left as it would be inline. Results and exceptions come back as they were thrown. The caller is
 * parked inside the call, so the segments it passes stay alive and their shared arenas cannot be
 * closed meanwhile (FFM holds them for the downcall, as inline). What differs: Java thread locals
 * in the downcall are the native thread's; and a segment of a <em>confined</em> arena
 * ({@code Arena.ofConfined()}) belongs to the caller, so FFM refuses to pass it from a native thread
 * before native code runs: the call then throws a {@link WrongThreadException} that says so. Take
 * such segments from {@link #arenaForCall(CallMode)} (shared when the call is offloaded, confined
 * otherwise), {@code Arena.ofShared()} or {@code Arena.ofAuto()}, or call with {@link CallMode#INLINE}.
 * A bridged call made from a native thread (a nested call in a Downcall) runs inline there; its
 * context's cancel reaches it, and so does an interrupt of the original caller, which the caller
 * forwards to the native thread for as long as that thread runs its work (as inline, where the
 * nested call's hook would hear it).
 *
 * <p>Threading: every method is thread-safe. See {@link NativeThreadPool} for the pool's locking and
 * {@link Handoff} for the one CAS that decides between a native thread starting a queued call and
 * its caller abandoning it.
 */
public final class NativeThreads {
    /** System property: the maximum number of native threads of the shared pool. */
    public static final String POOL_SIZE_PROPERTY = "nativescope.nativeThreads";
    /** System property: how many offloaded calls may wait for a native thread before calls are rejected. */
    public static final String QUEUE_PROPERTY = "nativescope.nativeThreads.queue";
    /** System property: seconds an idle native thread of the shared pool lives. */
    public static final String KEEP_ALIVE_PROPERTY = "nativescope.nativeThreads.keepAliveSeconds";
    /**
     * System property: the scheduler slice, in microseconds, each native thread asks the kernel for
     * when it starts (default 500; 0 leaves the threads as the JVM made them); see "Wake-ups" in
     * the class comment.
     */
    public static final String SLICE_MICROS_PROPERTY = "nativescope.nativeThreads.sliceMicros";
    /** The prefix of the native threads' names. */
    public static final String THREAD_NAME_PREFIX = "nativescope-native-";

    private static final ContextAccess CONTEXTS = SharedAccess.CONTEXTS.get();
    private static final int POOL_SIZE = positive(POOL_SIZE_PROPERTY,
            Math.max(8, 4 * Runtime.getRuntime().availableProcessors()));
    private static final int QUEUE_CAPACITY = positive(QUEUE_PROPERTY, 4096);
    private static final long KEEP_ALIVE_NANOS = TimeUnit.SECONDS.toNanos(positive(KEEP_ALIVE_PROPERTY, 60));
    /** 0: leave the slice alone. */
    static final long SLICE_NANOS = TimeUnit.MICROSECONDS.toNanos(nonNegative(SLICE_MICROS_PROPERTY, 500));
    /** How often a caller whose call waits in the queue re-checks it (besides the wake-ups it gets). */
    private static final long QUEUED_POLL_NANOS = TimeUnit.MILLISECONDS.toNanos(1);
    /** How long a caller polls for its call's end before parking; none on a single CPU. */
    private static final long CALLER_SPIN_NANOS = Runtime.getRuntime().availableProcessors() > 1 ? 5_000 : 0;
    /** After a wake-up whose stop the signal has not recorded yet: the stop action is a few microseconds away. */
    private static final long STOP_PENDING_POLL_NANOS = TimeUnit.MICROSECONDS.toNanos(10);

    /** Never started: owns no arena, so a segment it cannot access is confined to some thread. */
    private static final Thread NOT_OWNER = Thread.ofPlatform().unstarted(() -> { });

    static final NativeThreadPool POOL = new NativeThreadPool(THREAD_NAME_PREFIX, POOL_SIZE, QUEUE_CAPACITY,
            KEEP_ALIVE_NANOS, "the shared pool (" + POOL_SIZE_PROPERTY + ")");

    private NativeThreads() {
    }

    /** Work to run on a native thread. */
    @FunctionalInterface
    public interface Work<T, X extends Throwable> {
        /**
         * @return the result
         * @throws X what the work throws; rethrown in the caller unchanged
         */
        T run() throws X;
    }

    /**
     * Runs {@code work} where {@code mode} says: inline, or on a native thread (of {@code affinity}'s,
     * when given: then always offloaded) while the caller parks. For adapters whose native call is
     * not a bridged downcall (a JNI call): open the {@code CancellationSignal} on the calling thread
     * first, as inline, and pass its {@code isStopped} as {@code stopped}.
     *
     * @param context the work's context: its cancel ends the wait for a native thread
     * @param mode where to run; {@link CallMode#AUTO} offloads virtual-thread callers
     * @param affinity the session whose native thread runs the work, or null for the shared pool
     * @param stopped true once the work must not start (checked before it starts; polled while it waits)
     * @param ifStoppedBeforeStart what the call returns (or throws) when it stopped before the work
     *        started; runs on the calling thread
     * @param work the native work
     * @return what {@code work} returned, or {@code ifStoppedBeforeStart}'s result
     * @throws X what {@code work} threw, unchanged
     * @throws RejectedExecutionException when every native thread is busy and the queue is full
     */
    public static <T, X extends Throwable> T call(Context context, CallMode mode, Affinity affinity,
                                                  BooleanSupplier stopped, Supplier<? extends T> ifStoppedBeforeStart,
                                                  Work<? extends T, X> work) throws X {
        Objects.requireNonNull(context, "context");
        Objects.requireNonNull(mode, "mode");
        Objects.requireNonNull(stopped, "stopped");
        Objects.requireNonNull(ifStoppedBeforeStart, "ifStoppedBeforeStart");
        Objects.requireNonNull(work, "work");
        NativeThreadPool target = targetFor(mode.resolved(), affinity);
        if (target == null) {
            return work.run();
        }
        return handOff(target, context, stopped, ifStoppedBeforeStart, work);
    }

    /**
     * {@return true when a call in {@code mode} made from the current thread would run on a native thread}
     */
    public static boolean offloads(CallMode mode) {
        return targetFor(Objects.requireNonNull(mode, "mode").resolved(), null) != null;
    }

    /**
     * {@return {@code mode}, or {@link CallMode#INLINE} when one of {@code segments} is confined to
     * the calling thread}: a native thread could not pass it ({@link WrongThreadException}), so such a
     * call runs inline, pinning as before, rather than fail. Null segments are ignored. Callers that
     * know their segments (the reference predictors) use this; give them shared or automatic arenas
     * to have the call offloaded.
     */
    public static CallMode modeFor(CallMode mode, MemorySegment... segments) {
        Objects.requireNonNull(mode, "mode");
        for (MemorySegment segment : segments) {
            // A confined segment is accessible by its owner only; NOT_OWNER is a thread that owns nothing.
            if (segment != null && !segment.isAccessibleBy(NOT_OWNER)) {
                return CallMode.INLINE;
            }
        }
        return mode;
    }

    /**
     * {@return an arena for the segments a call in {@code mode} passes to native code}: confined when
     * the call runs on the current thread, shared when it is offloaded (a native thread cannot use a
     * confined arena's segments). Close it after the call, as usual.
     */
    public static Arena arenaForCall(CallMode mode) {
        return offloads(mode) ? Arena.ofShared() : Arena.ofConfined();
    }

    /** {@return true when the current thread is a native thread} */
    public static boolean isNativeThread() {
        return Thread.currentThread() instanceof NativeThread;
    }

    /** {@return the maximum number of native threads of the shared pool} */
    public static int poolSize() {
        return POOL_SIZE;
    }

    /** {@return how many offloaded calls may wait for a native thread of the shared pool} */
    public static int queueCapacity() {
        return QUEUE_CAPACITY;
    }

    /** {@return the native threads of the shared pool alive now} */
    public static int liveThreads() {
        return POOL.live();
    }

    /** {@return the native threads of the shared pool running a call now} */
    public static int busyThreads() {
        return POOL.busy();
    }

    /** {@return the offloaded calls waiting for a native thread of the shared pool now} */
    public static int queuedCalls() {
        return POOL.queued();
    }

    /** Ends the shared pool's idle native threads (for leak checks); new calls start new ones. */
    public static void trimIdle() {
        POOL.trimIdle();
    }

    /** The pool a call in {@code mode} runs on, or null for inline. */
    static NativeThreadPool targetFor(CallMode mode, Affinity affinity) {
        Thread self = Thread.currentThread();
        if (affinity != null) {
            return affinity.runsOn(self) ? null : affinity.pool();
        }
        if (self instanceof NativeThread) {
            return null; // nested: a native thread is a platform thread, and must not wait for its own pool
        }
        return switch (mode) {
            case INLINE -> null;
            case OFFLOAD -> POOL;
            case AUTO -> self.isVirtual() ? POOL : null;
        };
    }

    /**
     * Hands {@code work} to {@code target} and parks until it is done (or abandoned while queued).
     *
     * <p>Interrupts: the caller's interrupt hook (opened by the caller's {@code CancellationSignal})
     * fires in the interrupter and stops the native work; here the interrupt wakes the park and is
     * forwarded once to the native thread running the work ({@link Handoff#forwardInterrupt()}), for the
     * hooks of nested bridged calls there; the caller's status is cleared while we wait (a set status
     * would make every park return at once) and set again before returning, as after an inline call.
     */
    static <T, X extends Throwable> T handOff(NativeThreadPool target, Context context, BooleanSupplier stopped,
                                              Supplier<? extends T> ifStoppedBeforeStart, Work<? extends T, X> work) throws X {
        Context current = Context.current();
        Handoff<T> handoff = new Handoff<>(work, stopped, current == Context.background() ? null : current);
        boolean queued = target.submit(handoff);
        Registration wake = null;
        boolean interrupted = false;
        try {
            if (queued) {
                // Waiting for a thread: a cancel must wake us (an interrupt does by itself).
                Thread caller = handoff.caller;
                wake = context.onDone(() -> LockSupport.unpark(caller));
            }
            // A short call is back within microseconds: poll a little before parking (saves a wake-up).
            if (!queued) {
                NativeThreadPool.spinFor(() -> handoff.state() == Handoff.DONE ? Boolean.TRUE : null, CALLER_SPIN_NANOS);
            }
            while (true) {
                int state = handoff.state();
                if (state == Handoff.DONE) {
                    break;
                }
                if (Thread.interrupted() && !interrupted) {
                    interrupted = true;
                    // Our hook stopped the struct; a nested bridged call the work makes on the native
                    // thread has a hook of its own there, which only an interrupt of that thread fires.
                    handoff.forwardInterrupt();
                }
                if (state != Handoff.QUEUED) {
                    LockSupport.park(handoff);
                    continue;
                }
                // Queued. The deadline includes the wait: fire it if the timer has not yet.
                CONTEXTS.expireIfDue(context);
                if (stopped.getAsBoolean()) {
                    if (handoff.abandon()) {
                        target.remove(handoff);
                        return ifStoppedBeforeStart.get();
                    }
                    continue; // a native thread took it just now: it sees the stop before starting
                }
                // Woken by a cancel or an interrupt whose stop action has not run yet: it is microseconds
                // away, and it does not wake us, so poll briefly; otherwise until the deadline or a wake-up.
                long pause = interrupted || context.isDone() ? STOP_PENDING_POLL_NANOS : untilDeadline(context);
                LockSupport.parkNanos(handoff, pause);
            }
        } finally {
            if (wake != null) {
                wake.remove();
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
        if (handoff.notStarted) {
            return ifStoppedBeforeStart.get();
        }
        Throwable failure = handoff.failure;
        if (failure != null) {
            throw NativeThreads.<X>rethrown(failure);
        }
        return handoff.result;
    }

    private static long untilDeadline(Context context) {
        OptionalLong deadline = context.deadlineNanoTime();
        if (deadline.isEmpty()) {
            return QUEUED_POLL_NANOS;
        }
        long left = deadline.getAsLong() - System.nanoTime();
        return Math.max(1_000, Math.min(QUEUED_POLL_NANOS, left));
    }

    /**
     * What the work threw, unchanged, except FFM's refusal of a confined segment on a native thread,
     * which inline would not have thrown: that gets a message naming the fix.
     */
    @SuppressWarnings("unchecked")
    private static <X extends Throwable> X rethrown(Throwable failure) {
        WrongThreadException wrongThread = null;
        if (failure instanceof WrongThreadException direct) {
            wrongThread = direct;
        } else if (failure instanceof AssertionError wrapper && wrapper.getCause() instanceof WrongThreadException wrapped) {
            wrongThread = wrapped; // jextract's "should not reach here" wrapper
        }
        if (wrongThread != null) {
            return (X) new WrongThreadException("an offloaded native call ran on a native thread,"
                    + " which does not own a segment the call passes: " + wrongThread.getMessage()
                    + ". A confined arena's segments (Arena.ofConfined()) can only be passed by their owner thread:"
                    + " allocate them from NativeThreads.arenaForCall(mode), Arena.ofShared() or Arena.ofAuto(),"
                    + " or make the call with CallMode.INLINE", wrongThread);
        }
        return (X) failure;
    }

    private static int positive(String property, int fallback) {
        return parsed(property, fallback, 1, "a positive integer");
    }

    private static int nonNegative(String property, int fallback) {
        return parsed(property, fallback, 0, "an integer >= 0");
    }

    private static int parsed(String property, int fallback, int min, String what) {
        String value = System.getProperty(property);
        if (value == null || value.isBlank()) {
            return fallback;
        }
        try {
            int parsed = Integer.parseInt(value.trim());
            if (parsed >= min) {
                return parsed;
            }
        } catch (NumberFormatException ignored) {
            // reported below
        }
        throw new IllegalArgumentException("system property " + property + "=" + value + " must be " + what);
    }

    /**
     * A {@link NativeCall.Downcall} that runs another one on a native thread. The bridge calls it on
     * the calling thread, inside the call's {@code CancellationSignal} (interrupt hook registered,
     * done actions registered, frame armed), exactly where it would call the downcall inline; only the
     * native part moves. Everything before and after (entry checks, status translation, frame healing)
     * is the inline path's, so results and exceptions are the same.
     *
     * <p>Stop before start: the frame's struct is cancelled by the signal's actions (context cancel,
     * deadline, interrupt) also while the call waits in the queue; then the call returns the struct's
     * state without entering native code, which the bridge translates as it does a call cancelled
     * before entry. Threading: created and invoked on the calling thread; the inner downcall runs on the
     * native thread, under the handoff's happens-before edges (see {@link Handoff}).
     */
    record OffloadedDowncall(NativeThreadPool target, Context context, NativeCall.Downcall inner) implements NativeCall.Downcall {
        /** Wraps {@code downcall} when the call is to be offloaded from this thread; returns it unchanged otherwise. */
        static NativeCall.Downcall wrap(Context context, CallMode mode, Affinity affinity, NativeCall.Downcall downcall) {
            NativeThreadPool target = NativeThreads.targetFor(mode, affinity);
            return target == null ? downcall : new OffloadedDowncall(target, context, downcall);
        }

        @Override
        public int invoke(MemorySegment struct) throws Throwable {
            return handOff(struct, ContextStruct.view(struct), null);
        }

        /**
         * What the bridge calls instead of {@link #invoke}: the same, and the native thread names itself
         * in {@code frame}'s registry entry while it runs the call (when the registry is on).
         */
        int invokeIn(CallFrame frame) throws Throwable {
            return handOff(frame.struct, frame.view, NativeCall.DIAGNOSTICS_ON ? frame : null);
        }

        private int handOff(MemorySegment struct, ByteBuffer view, CallFrame frame) throws Throwable {
            return NativeThreads.handOff(target, context, () -> stateOf(view) != NativeStatus.OK.code(),
                    () -> stateOf(view), () -> runNamed(struct, frame));
        }

        /**
         * On the native thread. The entry is cleared before the handoff is done, so the caller (which
         * reads DONE before it releases the frame) never leaves a native thread behind in a frame; a call
         * abandoned in the queue never ran here, so it never had one.
         */
        private int runNamed(MemorySegment struct, CallFrame frame) throws Throwable {
            if (frame == null) {
                return inner.invoke(struct);
            }
            frame.offloadedTo(Thread.currentThread());
            try {
                return inner.invoke(struct);
            } finally {
                frame.offloadedTo(null);
            }
        }

        private static int stateOf(ByteBuffer view) {
            return ContextStruct.state(view);
        }
    }
}
