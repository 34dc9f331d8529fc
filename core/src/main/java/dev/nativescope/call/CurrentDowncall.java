package dev.nativescope.call;

import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.interop.SegmentHold;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.ByteBuffer;

/**
 * The {@link NativeCall.Downcall} of a {@link NativeCall.CurrentCall}: makes the call's struct the
 * current context ({@code nsc_current()}) on the thread that runs it (the caller's, or an offloaded
 * call's native thread), runs the call, restores the previous current context, and returns the
 * struct's state, so that the bridge translates a stopped call as it does any other. What the call
 * returned or threw is kept here for {@link NativeCall}, which reads it on the calling thread after
 * the call (an offloaded call's handoff orders the native thread's writes before that read).
 *
 * <p><b>Setting the context is two plain stores.</b> The shim's {@code nsc_current_slot()} gives the
 * address of the running thread's thread-local slot; the context is set and restored by writing it
 * from Java, with no downcall. That address is fixed for an OS thread's life (initial-exec TLS), and
 * a platform thread is one OS thread for its life, so it is cached here with that thread's id (ids
 * are never reused, and unlike a {@code Thread} reference an id does not keep an ended thread
 * reachable); a frame mostly stays in its thread's cache, and when it moves to another thread the id
 * differs and the slot is fetched again. A virtual thread moves between carriers, so its call
 * runs pinned inside a native frame ({@link SegmentHold#pinned}: a downcall that calls back), where
 * it stays on one carrier whatever it does, and fetches that carrier's slot inside the frame, for
 * this call only. The fetch is a critical downcall ({@code Linker.Option.critical}: no thread-state
 * transition; the function returns an address and never blocks).
 *
 * <p><b>No allocation per call.</b> Each {@link CallFrame} keeps one adapter ({@link CallFrame#currentDowncall}):
 * a call holds its frame, and with it the adapter, from before the call until its caller has read
 * the outcome, so the adapter needs no per-thread look-up, no nesting chain (a nested call has a
 * frame of its own) and is never allocated per call, on platform and virtual threads and offloaded
 * alike (a virtual thread's pinned frame and an offloaded call's handoff allocate for themselves). Its
 * reference fields are stored only when they change the outcome, because each store of one costs a
 * GC barrier on the call path: an inline call's {@code CurrentCall} reaches it as a parameter.
 *
 * <p>Threading: an adapter belongs to one call at a time. It is written by the thread that runs the
 * call and read by the caller after the call (the same thread inline, ordered by the handoff when
 * offloaded); the slot is only ever written by its own thread, so no store needs a fence: native code
 * on that thread reads the pointer after the store in program order (a downcall is opaque to the JIT,
 * which cannot move memory accesses across it).
 */
final class CurrentDowncall implements NativeCall.Downcall {
    private static final MethodHandle SLOT = Linker.nativeLinker().downcallHandle(
            nativescope_h.nsc_current_slot$address(),
            FunctionDescriptor.of(ValueLayout.ADDRESS.withTargetLayout(ValueLayout.JAVA_LONG)),
            Linker.Option.critical(false));
    /** The call of an offloaded run ({@link #bind}); an inline one is passed to {@link #invokeInline}. */
    private NativeCall.CurrentCall<?, ?> call;
    /** What the call returned, or null. */
    Object result;
    Throwable failure;
    boolean unbalanced;
    /** The id of the platform thread whose slot {@link #slot} is; 0 for none (ids start at 1). */
    private long slotThread;
    /** That thread's slot, 8 bytes: an {@code nsc_context *} as a {@code long}. */
    private MemorySegment slot;
    /** The frame's view of the struct, for its state after the call. */
    private final ByteBuffer view;

    CurrentDowncall(ByteBuffer view) {
        this.view = view;
    }

    /**
     * Binds the adapter to {@code call} for a run on another thread ({@link #invoke}); an inline
     * call needs no binding. {@link #release} after the outcome was read.
     */
    CurrentDowncall bind(NativeCall.CurrentCall<?, ?> call) {
        this.call = call;
        return this;
    }

    /** After the caller has read the outcome: forgets it (nothing kept alive) and frees the adapter. */
    void release() {
        // The common outcome (inline, no result object, no failure) stores nothing here.
        if (call != null) {
            call = null;
        }
        if (result != null) {
            result = null;
        }
        if (failure != null) {
            failure = null;
        }
        if (unbalanced) {
            unbalanced = false;
        }
    }

    /** Runs the bound call, on whatever thread runs this (an offloaded call's native thread). */
    @Override
    public int invoke(MemorySegment struct) {
        return invokeInline(struct, call);
    }

    /** Runs {@code call} on this thread as the current context's call. */
    int invokeInline(MemorySegment struct, NativeCall.CurrentCall<?, ?> call) {
        Thread self = Thread.currentThread();
        long id = self.threadId();
        if (id == slotThread) { // only ever a platform thread's id: see below
            return callAsCurrent(slot, struct, call);
        }
        if (self.isVirtual()) {
            // Fetched inside the native frame: the carrier it is pinned to is the OS thread whose
            // slot it is. Never cached: the next call may run on another carrier.
            return SegmentHold.pinned(() -> callAsCurrent(fetchSlot(), struct, call));
        }
        slot = fetchSlot();
        slotThread = id;
        return callAsCurrent(slot, struct, call);
    }

    private int callAsCurrent(MemorySegment slot, MemorySegment struct, NativeCall.CurrentCall<?, ?> call) {
        long self = struct.address();
        long outer = slot.get(ValueLayout.JAVA_LONG, 0);
        slot.set(ValueLayout.JAVA_LONG, 0, self);
        try {
            Object value = call.call();
            if (value != null) { // null already: see release()
                result = value;
            }
        } catch (Throwable thrown) {
            failure = thrown;
        } finally {
            // Never leave the pointer behind: restored before anything else can run on this thread.
            if (slot.get(ValueLayout.JAVA_LONG, 0) != self) {
                unbalanced = true;
            }
            slot.set(ValueLayout.JAVA_LONG, 0, outer);
        }
        // What stopped it, if anything: the bridge throws for a cancel; a deadline native code saw
        // on the clock (the timer may not have fired yet) is checked by the bridge.
        return ContextStruct.state(view);
    }

    /** {@return the running thread's slot} */
    static MemorySegment fetchSlot() {
        try {
            return (MemorySegment) SLOT.invokeExact();
        } catch (Throwable impossible) { // returns an address, cannot fail
            throw new AssertionError("nsc_current_slot failed", impossible);
        }
    }
}
