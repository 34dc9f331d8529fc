package dev.nativescope.call;

import dev.nativescope.Context;
import dev.nativescope.library.NativeStatus;

import java.lang.foreign.MemorySegment;

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
        return NativeThreads.handOff(target, context, () -> stateOf(struct) != NativeStatus.OK.code(),
                () -> stateOf(struct), () -> inner.invoke(struct));
    }

    private static int stateOf(MemorySegment struct) {
        return dev.nativescope.bindings.nsc_context.state(struct);
    }
}
