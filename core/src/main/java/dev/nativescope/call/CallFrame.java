package dev.nativescope.call;

import dev.nativescope.library.NativeStatus;
import dev.nativescope.Context;
import dev.nativescope.bindings.nativescope_h;

import java.lang.foreign.Arena;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import dev.nativescope.internal.access.CallSnapshot;
import dev.nativescope.internal.access.FieldHandles;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.internal.posix.NativeHeap;
import dev.nativescope.interop.CancellationSignal;
import dev.nativescope.internal.text.SafeText;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.Consumer;

/**
 * The native context of one cancellable call: an {@code nsc_context} that is a child of the
 * caller's {@link Context} (it shares the context's deadline and values and is cancelled when the
 * context is) and that an interrupt of the calling thread cancels on its own, so interrupting one
 * thread never cancels its siblings' calls. Frames are pooled: a call takes one, the struct is
 * re-armed, and it goes back when the call returns.
 *
 * <p><b>The fast path allocates nothing.</b> Each frame owns a {@linkplain CancellationSignal#reusable
 * reusable signal}: its interrupt hook is kept while no interrupt has fired it, and it reaches the
 * context through the context's stop slot (one compare-and-set) rather than a done action. The
 * signal's {@code close()} waits for a stop still running and the interrupt hook's exit for an
 * interrupt's, so no canceller touches the struct after the call that it was meant for has ended:
 * the frame needs no generation of its own. A platform thread keeps its last frame in a per-thread
 * cache (one exchange on its own slot per call, no shared queue); virtual threads, and a platform
 * thread's nested calls, use a small shared array of slots indexed from the thread id, where an
 * exchange on a slot replaces the shared queue's CAS and node allocation. Caches of threads that have
 * ended are freed by a cleaner; {@link #trimIdle()} frees every idle frame, cached ones included.
 *
 * <p><b>Healing.</b> Only healthy frames go back into the pool: {@link #release()} re-initialises
 * a struct that was cancelled or that native code left hooks on, and a frame whose struct cannot be
 * destroyed (hooks still registered: {@code NSC_ERR_BUSY}) or re-initialised is retired for good:
 * counted in {@link NativeResources#retiredCallFrames()}, its memory kept (a leaked hook points into
 * it), never reused. The first retirement is logged once as a {@code WARNING} naming the fix; later
 * calls on any thread are unaffected.
 *
 * <p>Threading: one calling thread at a time owns a frame; {@link #stop} may run concurrently
 * from any thread while the frame's signal is open. {@link #release()} runs after the signal's
 * {@code close()}, when no canceller can touch the struct any more, so the re-initialisation it
 * does races with nothing of ours.
 */
final class CallFrame {
    /** Shared slots: a power of two, at least 8, about four per CPU. */
    private static final int POOL_SLOTS = Integer.highestOneBit(Math.max(8, 4 * Runtime.getRuntime().availableProcessors()) - 1) << 1;
    private static final AtomicReferenceArray<CallFrame> POOL = new AtomicReferenceArray<>(POOL_SLOTS);
    /** Platform threads' caches; the value is created on the thread's first release. */
    private static final ThreadLocal<Cache> CACHE = new ThreadLocal<>();
    /** Every live cache, for {@link #trimIdle()}. */
    private static final Set<Cache> CACHES = ConcurrentHashMap.newKeySet();
    static final long NO_DEADLINE = nativescope_h.NSC_NO_DEADLINE();
    /** Only the first retirement is logged: a predictor that leaks hooks would otherwise log per call. */
    private static final AtomicBoolean RETIREMENT_REPORTED = new AtomicBoolean();

    // --- The in-flight registry: every live frame is its own entry, a dump walks them. ---
    /** Every live frame; changed only when a frame is created or freed, never per call. */
    private static final Set<CallFrame> ALL = ConcurrentHashMap.newKeySet();
    /**
     * Frees of struct memory take the read lock (they run concurrently), a dump the write lock while
     * it reads heartbeats, so no dump reads a struct that is being freed. Not on the per-call path.
     */
    private static final ReentrantReadWriteLock FREEING = new ReentrantReadWriteLock();
    private static final VarHandle SEQ = FieldHandles.of(MethodHandles.lookup(), "callSeq", long.class);
    private static final VarHandle NATIVE_THREAD = FieldHandles.of(MethodHandles.lookup(), "nativeThread", Thread.class);

    /** One platform thread's idle frame. */
    private static final class Cache {
        private static final VarHandle IDLE = FieldHandles.of(MethodHandles.lookup(), "idle", CallFrame.class);
        @SuppressWarnings("unused") // through IDLE
        private volatile CallFrame idle;

        /** Takes the frame, racing only with trimIdle() and the thread's cleaner (hence the exchange). */
        CallFrame take() {
            return (CallFrame) IDLE.getAndSet(this, (CallFrame) null);
        }
    }

    /**
     * The cache of the platform thread whose call holds this frame, as {@link #acquire()} found it
     * (null on a virtual thread, or before that thread's first release made one): {@link #release()}
     * puts the frame back there. Only the calling thread touches it, between the two.
     */
    private Cache home;
    /**
     * The adapter of this frame's calls without a context parameter, made on its first such call;
     * only its call touches it: the caller, and an offloaded call's native thread in between, ordered
     * by the handoff (see {@link CurrentDowncall}).
     */
    private CurrentDowncall currentDowncall;
    /** The block the struct is aligned in: malloc'd, or one of the {@link #RESERVE}'s. */
    private final MemorySegment block;
    /** Whether {@link #block} is a reserve block, which goes back to the reserve instead of to free(). */
    private final boolean reserveBlock;
    final MemorySegment struct;
    /** The struct's fields as {@link ContextStruct}'s accessors read and write them. */
    final ByteBuffer view;
    /** The frame's one signal, reopened per call. */
    final CancellationSignal signal;
    /** Set last by the canceller whose nsc_context_cancel won, after the two fields below. */
    private volatile boolean cancelledByUs;
    /** {@link System#nanoTime()} when this call was cancelled; meaningful once {@link #cancelledByUs}. */
    private long cancelNanoTime;
    private boolean interrupted;
    /**
     * Whether the current call runs on a native thread: written by the calling thread before it
     * reopens the signal (which publishes it to cancellers), read by {@link #stop}.
     */
    private boolean offloadedCall;

    /**
     * Odd while a tracked call is in flight: the calling thread writes the fields below with plain
     * stores, then this one with a release store; a dump reads it (acquire), the fields, and it again,
     * and drops what changed meanwhile (a seqlock: the per-call cost is a few plain stores).
     */
    @SuppressWarnings("unused") // through SEQ
    private volatile long callSeq;
    private Thread callThread;
    private Context callContext;
    private String callLabel;
    private Class<?> callDowncall;
    private long callStartNanoTime;
    /**
     * The native thread running this call while it is offloaded (from a virtual thread, or to an
     * affinity's thread), or null: set and cleared by that thread ({@link #offloadedTo}); read by dumps.
     */
    @SuppressWarnings("unused") // through NATIVE_THREAD
    private volatile Thread nativeThread;
    /**
     * The JFR native-call event of this frame's calls, once a recording asked for one: begun and
     * ended per call instead of allocated per call. Only the calling thread touches it.
     */
    Object jfrEvent;
    /**
     * The cancelling thread and the native check count at the cancel; meaningful once {@link #cancelledByUs}.
     * The thread itself, not its {@code toString()}: formatting it cost the canceller 0.6-3.7 us p50 after
     * the state word, which a spinning call on the canceller's CPU waited for (BENCHMARKS.md section 18);
     * a dump formats it. Cleared by {@link #untrack()}, so a pooled frame keeps no thread alive.
     */
    private Thread cancelledBy;
    private long checksAtCancel;

    private CallFrame() {
        // malloc'd (or a reserve block), not an arena's: a segment of the global scope costs a
        // downcall nothing to keep alive, while a shared arena's adds an acquire/release (two atomic
        // updates) to every call (CancellableCallBenchmark.noopBareFfmSharedArena). The frame frees
        // it itself (free/retire).
        MemorySegment reserved = takeReserveBlock();
        MemorySegment block = reserved != null ? reserved : NativeHeap.allocate(ContextStruct.SIZE + 63);
        boolean success = false;
        try {
            // 64-byte aligned so that the struct's two halves sit on their own cache lines.
            long skip = (64 - (block.address() & 63)) & 63;
            this.struct = block.asSlice(skip, ContextStruct.SIZE);
            this.view = ContextStruct.view(struct);
            // malloc'd memory may hold anything, NSC_ABI_VERSION included, which init refuses as a
            // live context (NSC_ERR_BUSY): zeroed first, as nativescope.h asks.
            struct.fill((byte) 0);
            int status = initIdle(struct);
            if (status != NativeStatus.OK.code()) {
                throw NativeStatus.exception(status, "nsc_context_init");
            }
            this.block = block;
            this.reserveBlock = reserved != null;
            this.signal = CancellationSignal.reusable(new Stop());
            success = true;
        } finally {
            if (!success) {
                releaseBlock(block, reserved != null);
            }
        }
        NativeResources.JAVA_NATIVE_BYTES.addAndGet(ContextStruct.SIZE);
        NativeResources.LIVE_CALL_FRAMES.incrementAndGet();
        LeakSites.created(this, "call frame (nsc_context and its done fd)");
        ALL.add(this);
    }

    /**
     * Makes this call visible to dumps (the registry is on). After {@link #arm}, before the signal
     * opens. Resets the heartbeat: plain stores, native code is not running on the struct yet.
     */
    void track(Context context, String label, Class<?> downcallClass, long startNanoTime) {
        callThread = Thread.currentThread();
        callContext = context;
        callLabel = label;
        callDowncall = downcallClass;
        callStartNanoTime = startNanoTime;
        ContextStruct.resetHeartbeat(view);
        SEQ.setRelease(this, (long) SEQ.get(this) + 1);
    }

    /** Ends what {@link #track} began; the call's references are dropped so the pool keeps nothing alive. */
    void untrack() {
        long seq = (long) SEQ.get(this);
        if ((seq & 1) == 0) {
            return;
        }
        SEQ.setRelease(this, seq + 1);
        // A dump that reads the cleared fields below must also see the new sequence number.
        VarHandle.storeStoreFence();
        callThread = null;
        callContext = null;
        cancelledBy = null;
        NATIVE_THREAD.setOpaque(this, (Thread) null);
    }

    /**
     * Called by the native thread that runs this frame's offloaded call: itself as it starts the
     * call, null before it hands the call back. Visible to dumps at once.
     */
    void offloadedTo(Thread nativeThread) {
        NATIVE_THREAD.setRelease(this, nativeThread);
    }

    /** {@return a snapshot of every tracked call in flight} */
    static List<CallSnapshot> inFlight() {
        List<CallSnapshot> calls = new ArrayList<>();
        long now = System.nanoTime();
        long monotonicMinusNanoTime = NativeLibrary.toMonotonicNanos(now, now) - now;
        FREEING.writeLock().lock();
        try {
            for (CallFrame frame : ALL) {
                CallSnapshot snapshot = frame.snapshot(monotonicMinusNanoTime);
                if (snapshot != null) {
                    calls.add(snapshot);
                }
            }
        } finally {
            FREEING.writeLock().unlock();
        }
        return calls;
    }

    /** Reads this frame under the seqlock; null when it is idle or its call changed meanwhile. */
    private CallSnapshot snapshot(long monotonicMinusNanoTime) {
        long seq = (long) SEQ.getAcquire(this);
        if ((seq & 1) == 0) {
            return null;
        }
        Thread thread = callThread;
        Context context = callContext;
        String label = callLabel;
        Class<?> downcall = callDowncall;
        long start = callStartNanoTime;
        Thread offloaded = (Thread) NATIVE_THREAD.getAcquire(this);
        boolean cancelled = cancelledByUs;
        long cancelAt = cancelled ? cancelNanoTime : -1;
        Thread by = cancelled ? cancelledBy : null;
        boolean byInterrupt = cancelled && interrupted;
        long atCancel = cancelled ? checksAtCancel : 0;
        long checks = ContextStruct.heartbeat(view, ContextStruct.HEARTBEAT_COUNT);
        long heartbeat = ContextStruct.heartbeat(view, ContextStruct.HEARTBEAT_NS);
        VarHandle.loadLoadFence();
        if ((long) SEQ.getOpaque(this) != seq || thread == null || context == null) {
            return null;
        }
        return new CallSnapshot(thread, offloaded, label, downcall, context, start, cancelAt,
                by == null ? null : SafeText.of(by), byInterrupt,
                checks, atCancel, heartbeat == 0 ? 0 : heartbeat - monotonicMinusNanoTime);
    }

    /** For cancel events: what this frame's call is (null fields when the registry is off). */
    Context trackedContext() {
        return callContext;
    }

    String trackedLabel() {
        return callLabel;
    }

    Class<?> trackedDowncall() {
        return callDowncall;
    }

    /** {@return this frame's adapter} Release it before the frame. */
    CurrentDowncall currentDowncall() {
        CurrentDowncall adapter = currentDowncall;
        if (adapter == null) {
            adapter = new CurrentDowncall(view);
            currentDowncall = adapter;
        }
        return adapter;
    }

    static CallFrame acquire() {
        Thread self = Thread.currentThread();
        Cache cache = null;
        if (!self.isVirtual()) {
            cache = CACHE.get();
            if (cache != null) {
                CallFrame cached = cache.take();
                if (cached != null) {
                    cached.home = cache;
                    return cached;
                }
            }
        }
        CallFrame frame = fromPool(self);
        frame.home = cache;
        return frame;
    }

    private static CallFrame fromPool(Thread self) {
        int start = slotOf(self);
        for (int i = 0; i < POOL_SLOTS; i++) {
            int slot = (start + i) & (POOL_SLOTS - 1);
            CallFrame frame = POOL.getAcquire(slot);
            // A frame found in a slot is idle, whoever put it there: no ABA to fear.
            if (frame != null && POOL.compareAndSet(slot, frame, null)) {
                return frame;
            }
        }
        return new CallFrame();
    }

    private static int slotOf(Thread thread) {
        long id = thread.threadId();
        return (int) (id ^ (id >>> 16)) * 0x9E3779B9 >>> 8;
    }

    /**
     * Arms the struct for a call with this deadline ({@code CLOCK_MONOTONIC}) and values. The struct
     * is live and hook-free: {@link #release()} puts only such frames back into the pool.
     */
    void arm(long deadlineMonotonicNanos, NativeValues values) {
        // No canceller can see this frame until the signal is reopened, which publishes these
        // writes. The volatile flag is written only when set: a volatile store is a full fence on
        // x86, ~5-9 ns per call here (CallPathBreakdownBenchmark.primitiveVolatileStore).
        if (cancelledByUs) {
            cancelledByUs = false;
        }
        interrupted = false;
        ContextStruct.arm(view, deadlineMonotonicNanos, values.array, values.count);
    }

    /**
     * Makes the struct fit for the next call: a cancelled struct keeps its done fd readable for good,
     * so it gets a fresh one rather than being drained (a late reader could then miss the cancel); a
     * struct that native code left hooks on must not carry them into another call.
     *
     * @return false when the frame was retired instead (see the class documentation)
     */
    private boolean reinitialiseIfUsed() {
        if (!isCancelled() && !ContextStruct.hasHooks(view)) {
            return true;
        }
        int status = nativescope_h.nsc_context_destroy(struct);
        if (status != NativeStatus.OK.code()) {
            retire(false, "nsc_context_destroy returned " + NativeStatus.nameOf(status)
                    + ": native code called nsc_hook_register on its call context and returned without"
                    + " nsc_hook_deregister. Deregister every hook before the native function returns (also on"
                    + " its error and cancel paths); see docs/predictor-sdk.md");
            return false;
        }
        status = initIdle(struct);
        if (status != NativeStatus.OK.code()) {
            retire(true, "nsc_context_init returned " + NativeStatus.nameOf(status) + " ("
                    + NativeStatus.exception(status, "nsc_context_init").getMessage()
                    + "): the shim could not re-create the call context's resources; check the process's fd limit");
            return false;
        }
        return true;
    }

    /**
     * Takes this frame out of use for good.
     *
     * @param destroyed whether the struct was destroyed (then its memory is freed); otherwise native
     *                  hooks may still point into it and the memory is kept for the life of the process
     */
    private void retire(boolean destroyed, String why) {
        ALL.remove(this);
        if (destroyed) {
            freeBlock();
            NativeResources.JAVA_NATIVE_BYTES.addAndGet(-ContextStruct.SIZE);
        }
        NativeResources.LIVE_CALL_FRAMES.decrementAndGet();
        NativeResources.RETIRED_CALL_FRAMES.incrementAndGet();
        LeakSites.freed(this);
        if (RETIREMENT_REPORTED.compareAndSet(false, true)) {
            System.getLogger(NativeCall.class.getName()).log(System.Logger.Level.WARNING,
                    "a call frame was retired (not reused; later calls are unaffected): " + why
                    + ". Further retirements are counted in NativeResources.retiredCallFrames() without logging");
        }
    }

    /** @return true when the struct was cancelled (by the context or an interrupt) */
    boolean isCancelled() {
        return ContextStruct.state(view) != NativeStatus.OK.code();
    }

    /**
     * The signal's stop action: the state word first, and nothing else before it: no exception is
     * built here (the cause is read or made by the calling thread, see {@link #cancelCause}). Only
     * the canceller whose {@code nsc_context_cancel} won records when and how; the calling thread
     * reads that after the signal's close, which waits for us.
     */
    private void stop(CancellationSignal.Reason reason) {
        boolean byInterrupt = reason == CancellationSignal.Reason.INTERRUPT;
        int status = !byInterrupt && signal.isDeadlineStop()
                ? NativeStatus.DEADLINE_EXCEEDED.code() : NativeStatus.CANCELED.code();
        if (nativescope_h.nsc_context_cancel(struct, status) == NativeStatus.OK.code()) {
            cancelNanoTime = System.nanoTime();
            interrupted = byInterrupt;
            if (NativeCall.DIAGNOSTICS_ON) {
                // After the state word: the native side already sees the cancel; this is for dumps.
                checksAtCancel = ContextStruct.heartbeat(view, ContextStruct.HEARTBEAT_COUNT);
                cancelledBy = Thread.currentThread();
            }
            cancelledByUs = true;
            NativeCall.cancelRequested(this, byInterrupt ? "interrupt"
                    : status == NativeStatus.DEADLINE_EXCEEDED.code() ? "deadline" : "cancel");
            if (offloadedCall && byInterrupt) {
                afterOffloadedStop.accept(this);
            }
        }
    }

    /**
     * The signal's stop action, {@link #stop}. A class, not {@code this::stop}: a method reference is
     * a class spun at run time, which a fresh JVM's first bridged call would pay for (BENCHMARKS.md
     * "Cold start"); the same for the other small classes below.
     */
    private final class Stop implements CancellationSignal.StopAction {
        @Override
        public void stop(CancellationSignal.Reason reason) {
            CallFrame.this.stop(reason);
        }
    }

    /** The calling thread, before it reopens the signal for a call: whether that call is offloaded. */
    void offloading(boolean offloaded) {
        offloadedCall = offloaded;
    }

    /**
     * After the state word (and the done fd's write) of an interrupted offloaded call: gives this
     * CPU up once. The kernel mostly wakes the native thread onto the interrupter's CPU (it slept on
     * the carrier's), and there it did not preempt: it waited until the interrupter slept, 18-22 us
     * p50 (the JDK's interrupt path after our hook, then its unpark of the virtual caller), against
     * 2-3 us inline, where the woken caller preempts (BENCHMARKS.md section 21). One yield lets it
     * run first. Not for {@code cancel()}: measured, no gain there (its canceller sleeps 4-5 us
     * after the state word), and the canceller's own call grew from 7 to 32-36 us p50. Not on a
     * virtual canceller either: its yield would unmount it, not free the CPU.
     */
    private static void yieldToWokenNativeThread(CallFrame frame) {
        if (!Thread.currentThread().isVirtual()) {
            Thread.yield();
        }
    }

    /** What the winning stop of an interrupted offloaded call does last; replaced by tests that check the order. */
    static volatile Consumer<CallFrame> afterOffloadedStop = new YieldToWokenNativeThread();

    /** {@link #yieldToWokenNativeThread}, as a class (see {@link Stop}). */
    private static final class YieldToWokenNativeThread implements Consumer<CallFrame> {
        @Override
        public void accept(CallFrame frame) {
            yieldToWokenNativeThread(frame);
        }
    }

    /**
     * @return what cancelled the call: an InterruptedException, or the context's cause. A cancel
     *         writes the state word before it builds its cause, so the cause may be moments away:
     *         it is waited for (a stop through the context always ends with the context done)
     */
    Throwable cancelCause(Context context) {
        if (interrupted) {
            return new InterruptedException("thread interrupted during a native call");
        }
        Throwable cause = context.cause();
        for (int spins = 0; cause == null && cancelledByUs; spins++) {
            if (spins < 100) {
                Thread.onSpinWait();
            } else {
                // Not yield(): the canceller is typically the thread our wake-up preempted on this
                // CPU, and a virtual thread's yield keeps its carrier on the CPU (measured: 3.6 ms,
                // a scheduler slice, in CancelLatencyBenchmark.cancelFd, virtual). Sleeping frees it.
                LockSupport.parkNanos(this, 10_000);
            }
            cause = context.cause();
        }
        return cause != null ? cause : new CancellationException("canceled");
    }

    boolean wasInterrupted() {
        return cancelledByUs && interrupted;
    }

    /**
     * @return when one of this frame's cancellers cancelled the current call ({@link System#nanoTime()}),
     *         or -1 when none did (it was not cancelled, or native code set the state itself);
     *         exact after the signal's close
     */
    long cancelNanoTime() {
        return cancelledByUs ? cancelNanoTime : -1;
    }

    /** Returns the frame to the pool once its call has ended (the signal closed), healed or retired. */
    void release() {
        untrack();
        Cache cache = home; // the calling thread's, found by acquire(): no second thread-local look-up
        home = null;
        if (!reinitialiseIfUsed()) {
            return;
        }
        Thread self = Thread.currentThread();
        if (cache == null && !self.isVirtual()) {
            cache = CACHE.get();
            if (cache == null) {
                cache = newCache(self);
            }
        }
        // Only this thread fills its cache (others only empty it), so a null seen here stays
        // null until our store; release semantics publish the frame's state to a trimmer.
        if (cache != null && Cache.IDLE.getOpaque(cache) == null) {
            Cache.IDLE.setRelease(cache, this);
            return;
        }
        int start = slotOf(self);
        for (int i = 0; i < POOL_SLOTS; i++) {
            int slot = (start + i) & (POOL_SLOTS - 1);
            if (POOL.getPlain(slot) == null && POOL.compareAndSet(slot, null, this)) {
                return;
            }
        }
        free();
    }

    /** Once per platform thread that makes a call: its cache, freed by a cleaner when the thread is gone. */
    private static Cache newCache(Thread thread) {
        Cache cache = new Cache();
        CACHE.set(cache);
        CACHES.add(cache);
        // The action must not capture the thread, or the thread would never become unreachable.
        CallCleaner.CLEANER.register(thread, new FreeCache(cache));
        return cache;
    }

    /** A thread's cleaner action: frees its cached frame once the thread is gone (a class, see {@link Stop}). */
    private static final class FreeCache implements Runnable {
        private final Cache cache;

        FreeCache(Cache cache) {
            this.cache = cache;
        }

        @Override
        public void run() {
            CACHES.remove(cache);
            CallFrame frame = cache.take();
            if (frame != null) {
                frame.free();
            }
        }
    }

    static void trimIdle() {
        for (Cache cache : CACHES) {
            CallFrame frame = cache.take();
            if (frame != null) {
                frame.free();
            }
        }
        for (int slot = 0; slot < POOL_SLOTS; slot++) {
            CallFrame frame = POOL.getAndSet(slot, null);
            if (frame != null) {
                frame.free();
            }
        }
    }

    private void free() {
        int status = nativescope_h.nsc_context_destroy(struct);
        if (status != NativeStatus.OK.code()) {
            // Pooled frames are hook-free (release() heals or retires), so this is native code that
            // registered a hook after its call returned: freeing the struct would let a later cancel
            // write freed memory.
            retire(false, "nsc_context_destroy returned " + NativeStatus.nameOf(status)
                    + ": a cancel hook was registered on an idle call context; deregister hooks before the native"
                    + " function returns");
            return;
        }
        ALL.remove(this);
        freeBlock();
        NativeResources.JAVA_NATIVE_BYTES.addAndGet(-ContextStruct.SIZE);
        NativeResources.LIVE_CALL_FRAMES.decrementAndGet();
        LeakSites.freed(this);
    }

    /** Frees the struct's memory; never while a dump reads it (see {@link #FREEING}). */
    private void freeBlock() {
        FREEING.readLock().lock();
        try {
            releaseBlock(block, reserveBlock);
        } finally {
            FREEING.readLock().unlock();
        }
    }

    /**
     * {@code nsc_context_init(struct, NSC_NO_DEADLINE, NULL, 0)} through the shim's
     * {@code nsc_context_init_idle} (nsc_internal.h), which has {@code nsc_context_cancel}'s shape:
     * the loader links that shape for the first cancel, so this handle costs a lookup, where a shape
     * of its own (nsc_context_init's) cost a fresh JVM's load ~5 ms to link (BENCHMARKS.md "Cold
     * start"). Bound by hand, with the bindings' descriptor of {@code nsc_context_cancel}: the JDK
     * shares a link between equal descriptors only.
     */
    private static final class IdleInit {
        static final MethodHandle HANDLE;

        static {
            // No orElseThrow(supplier): a method reference is a class spun at run time.
            Optional<MemorySegment> symbol = SymbolLookup.loaderLookup().find("nsc_context_init_idle");
            if (symbol.isEmpty()) {
                throw new IllegalStateException("libnativescope has no nsc_context_init_idle; it is older than this"
                        + " nativescope core: use the native-shim jar of the same release");
            }
            HANDLE = Linker.nativeLinker().downcallHandle(symbol.get(), nativescope_h.nsc_context_cancel$descriptor());
        }
    }

    /** {@return the status of initialising {@code struct} for a frame} */
    private static int initIdle(MemorySegment struct) {
        try {
            return (int) IdleInit.HANDLE.invokeExact(struct, 0);
        } catch (Throwable e) {
            throw new IllegalStateException("nsc_context_init_idle failed: " + SafeText.of(e), e);
        }
    }

    // --- The reserve: the first frames' blocks, made without malloc. ---

    /**
     * Struct blocks allocated by {@code Arena.global()} rather than malloc, for the first frames of
     * the process: the arena allocates without a downcall, where malloc is the first downcall of a
     * fresh JVM that returns an address, and linking it cost the first bridged call ~6 ms (the
     * {@code ColdStart} benchmark; BENCHMARKS.md "Cold start"). Global memory is never freed, so at
     * most {@link #RESERVE_BLOCKS} are ever made ({@value #RESERVE_BLOCKS} x 128 bytes for the life of
     * the process), and a freed frame puts its block back here for a later frame; frames beyond them
     * are malloc'd. The counters ({@link NativeResources}) count a reserve block as any other while a
     * frame holds it. A block comes back zeroed only when made: {@link #CallFrame()} zeroes every one.
     */
    private static final int RESERVE_BLOCKS = 4;
    /** Reserve blocks no frame holds; lock-free, like the pool. */
    private static final AtomicReferenceArray<MemorySegment> RESERVE = new AtomicReferenceArray<>(RESERVE_BLOCKS);
    /** How many reserve blocks were made: only ever grows, up to {@link #RESERVE_BLOCKS}. */
    private static final AtomicInteger RESERVE_MADE = new AtomicInteger();

    /** {@return a reserve block of {@code ContextStruct.SIZE} bytes, 64-byte aligned, or null when every one is held} */
    private static MemorySegment takeReserveBlock() {
        for (int slot = 0; slot < RESERVE_BLOCKS; slot++) {
            MemorySegment block = RESERVE.getPlain(slot);
            if (block != null && RESERVE.compareAndSet(slot, block, null)) {
                return block;
            }
        }
        for (int made = RESERVE_MADE.get(); made < RESERVE_BLOCKS; made = RESERVE_MADE.get()) {
            if (RESERVE_MADE.compareAndSet(made, made + 1)) {
                return Arena.global().allocate(ContextStruct.SIZE, 64);
            }
        }
        return null;
    }

    /** Gives a block back: a reserve block to the reserve (a slot is free: at most as many exist), any other to free(). */
    private static void releaseBlock(MemorySegment block, boolean reserved) {
        if (!reserved) {
            NativeHeap.free(block);
            return;
        }
        for (int slot = 0; ; slot = (slot + 1) % RESERVE_BLOCKS) {
            if (RESERVE.getPlain(slot) == null && RESERVE.compareAndSet(slot, null, block)) {
                return;
            }
        }
    }
}
