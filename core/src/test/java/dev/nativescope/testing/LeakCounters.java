package dev.nativescope.testing;

import java.util.Map;

/**
 * Counters of another module that {@link LeakCheckExtension} compares before and after each test
 * class, found with {@link java.util.ServiceLoader} in
 * {@code META-INF/services/dev.nativescope.testing.LeakCounters} of the module's test resources.
 * Implementations must be cheap and thread-safe; every counter must come back to its baseline once a
 * test class has closed what it opened.
 */
public interface LeakCounters {
    /** {@return the counters now, by name} */
    Map<String, Long> read();
}
