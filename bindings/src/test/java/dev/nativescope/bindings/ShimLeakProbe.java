package dev.nativescope.bindings;

import dev.nativescope.testing.LeakProbe;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.util.Map;

/**
 * The shim's own counters ({@code nsc_stats_get}), read through the generated bindings, for the leak
 * check of this module's tests. Most of them never load the shim (core tests it); until one does,
 * the shim holds nothing in this process and the probe reports no counters, rather than loading it
 * and so changing what those tests run against.
 *
 * <p>Thread-safe: the shim updates its counters atomically.
 */
// The test classes are compiled into the named module of the code under test, and LeakProbe comes from the
// class path (the testing jar has no module descriptor): javac warns that an exported type implements it.
@SuppressWarnings("exports")
public final class ShimLeakProbe implements LeakProbe {
    /** Called by the {@link java.util.ServiceLoader}. */
    public ShimLeakProbe() {
    }

    @Override
    public Map<String, Long> counters() {
        // The bindings look symbols up in this class loader's libraries; calling one before the shim is
        // loaded would fail their holder class's initialisation for good.
        if (SymbolLookup.loaderLookup().find("nsc_stats_get").isEmpty()) {
            return Map.of();
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment stats = nsc_stats.allocate(arena);
            nativescope_h.nsc_stats_get(stats);
            return Map.of("shimLiveContexts", nsc_stats.live_contexts(stats), "shimLiveFds", nsc_stats.live_fds(stats),
                    "shimLiveHooks", nsc_stats.live_hooks(stats), "shimNativeBytes", nsc_stats.native_bytes(stats));
        }
    }
}
