package dev.nativescope.testing;

import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What one module adds to {@link LeakCheckExtension}'s check of threads and file descriptors: the
 * counters of what it holds outside the Java heap, and how to read them fairly. Found with
 * {@link java.util.ServiceLoader} in {@code META-INF/services/dev.nativescope.testing.LeakProbe} on
 * the test class path (core's test jar registers core's probe, so modules that test on top of core
 * get it too); implementations need a public no-argument constructor.
 *
 * <p>Threading: the extension calls a probe from the thread that runs a test class's
 * {@code @BeforeAll}/{@code @AfterAll} callbacks, one call at a time but not always from the same
 * thread, while threads of the code under test may still be finishing. A probe must therefore read
 * what those threads update safely (atomics, or the native side's own synchronisation); it needs no
 * locking against the extension.
 */
public interface LeakProbe {
    /**
     * {@return the counters now, by name; must be cheap} Every counter must come back to its baseline
     * once a test class has closed what it opened; a name absent from the baseline counts as 0 there.
     */
    Map<String, Long> counters();

    /**
     * Frees what is kept for reuse rather than held (idle pools), so that {@link #counters()} shows
     * only what is in use. Called before every reading.
     */
    default void trimIdle() {
    }

    /**
     * {@return names of threads this module starts once, on first use, and keeps for the life of the
     * process} Each may appear during a test class but only once; other {@code nativescope-*}
     * threads must be gone when the class ends.
     */
    default Set<String> singletonThreads() {
        return Set.of();
    }

    /**
     * {@return a mark to pass to {@link #creationSites(long)} later: what exists now is before it}
     * Taken with every baseline.
     */
    default long creationMark() {
        return 0;
    }

    /**
     * Called only when a class leaked, to add to the report where what is still live and was created
     * after {@code mark} was created, one entry per site; or, when creation sites are not recorded,
     * how to get them.
     *
     * @param mark a value {@link #creationMark()} returned before the class ran
     * @return the report lines, empty if this probe records no creation sites
     */
    default List<String> creationSites(long mark) {
        return List.of();
    }
}
