package dev.nativescope.testing;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A {@link LeakProbe} of this module's tests, so that {@link LeakCheckExtensionTest} can prove the
 * probe contract without a native library: counts {@link #HELD} and {@link #IDLE} resources, trims
 * the idle ones, names one singleton thread, and records where held ones were created.
 * Thread-safe: atomics and a synchronized list.
 */
public final class CountingLeakProbe implements LeakProbe {
    static final String SINGLETON_THREAD = "nativescope-counting-singleton";
    static final AtomicLong HELD = new AtomicLong();
    /** Kept for reuse, not held: a check must not blame a class for them. */
    static final AtomicLong IDLE = new AtomicLong();
    private static final List<String> CREATION_SITES = new ArrayList<>();

    /** Holds one resource, remembering {@code site} as where it was created. */
    static void hold(String site) {
        synchronized (CREATION_SITES) {
            CREATION_SITES.add(site);
        }
        HELD.incrementAndGet();
    }

    /** Releases everything held, and forgets where it was created. */
    static void releaseAll() {
        synchronized (CREATION_SITES) {
            CREATION_SITES.clear();
        }
        HELD.set(0);
    }

    @Override
    public Map<String, Long> counters() {
        return Map.of("countedHeld", HELD.get(), "countedIdle", IDLE.get());
    }

    @Override
    public void trimIdle() {
        IDLE.set(0);
    }

    @Override
    public Set<String> singletonThreads() {
        return Set.of(SINGLETON_THREAD);
    }

    @Override
    public long creationMark() {
        synchronized (CREATION_SITES) {
            return CREATION_SITES.size();
        }
    }

    @Override
    public List<String> creationSites(long mark) {
        synchronized (CREATION_SITES) {
            return CREATION_SITES.subList((int) Math.min(mark, CREATION_SITES.size()), CREATION_SITES.size()).stream()
                    .map(site -> "counted resource created at " + site).toList();
        }
    }
}
