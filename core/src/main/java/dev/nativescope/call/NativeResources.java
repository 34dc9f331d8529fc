package dev.nativescope.call;

import dev.nativescope.library.NativeLibrary;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.bindings.nsc_stats;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What nativescope holds outside the Java heap, for leak checks and dumps: the Java side's native
 * allocations (call frames and value blocks) and the shim's own counters (done fds, hooks,
 * initialised contexts, bytes).
 *
 * <p>Thread-safe; counters are updated with atomic adds and read without a global snapshot, so a
 * reading taken while calls run is approximate. Take it when the calls have ended.
 *
 * @param javaNativeBytes bytes allocated by the Java side in native memory and not yet freed
 * @param liveCallFrames per-call native contexts alive (pooled idle ones included; retired ones not)
 * @param retiredCallFrames call frames taken out of use for good because their struct could not be
 *        destroyed or re-initialised (native code left cancel hooks registered on its call context); their
 *        memory stays allocated (and in {@code javaNativeBytes}) for the life of the process
 * @param liveValueBlocks native copies of context values alive
 * @param shimLiveContexts contexts initialised by the shim and not destroyed (one per call frame)
 * @param shimLiveFds done fds the shim created and has not closed
 * @param shimLiveHooks cancel hooks registered and not deregistered
 * @param shimNativeBytes bytes the shim allocated and has not freed
 */
public record NativeResources(long javaNativeBytes, long liveCallFrames, long retiredCallFrames, long liveValueBlocks,
                              long shimLiveContexts, long shimLiveFds, long shimLiveHooks, long shimNativeBytes) {

    static final AtomicLong JAVA_NATIVE_BYTES = new AtomicLong();
    static final AtomicLong LIVE_CALL_FRAMES = new AtomicLong();
    static final AtomicLong RETIRED_CALL_FRAMES = new AtomicLong();
    static final AtomicLong LIVE_VALUE_BLOCKS = new AtomicLong();

    /**
     * Reads the counters now. Idle call frames are kept in a small pool; call
     * {@link #trimIdle()} first to count only what calls in flight hold.
     *
     * @return the counters
     */
    public static NativeResources snapshot() {
        NativeLibrary.load();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment stats = nsc_stats.allocate(arena);
            nativescope_h.nsc_stats_get(stats);
            return new NativeResources(JAVA_NATIVE_BYTES.get(), LIVE_CALL_FRAMES.get(), RETIRED_CALL_FRAMES.get(), LIVE_VALUE_BLOCKS.get(),
                    nsc_stats.live_contexts(stats), nsc_stats.live_fds(stats), nsc_stats.live_hooks(stats),
                    nsc_stats.native_bytes(stats));
        }
    }

    /**
     * Frees the idle call frames kept for reuse and ends the idle native threads
     * ({@link NativeThreads#trimIdle()}), so that a snapshot shows only what is in use.
     */
    public static void trimIdle() {
        CallFrame.trimIdle();
        NativeThreads.trimIdle();
    }
}
