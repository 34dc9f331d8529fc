package dev.nativescope.call;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Where the live call frames and value blocks were created, for leak reports; recorded only with
 * {@code -Dnativescope.leakDetection=paranoid} (a stack trace per creation is too dear otherwise).
 * Test support: the leak check reads {@link #createdSince(long)} through {@code CoreLeakProbe}, in
 * core's test sources.
 *
 * <p>Thread-safe: a concurrent map and an atomic sequence.
 */
final class LeakSites {
    static final String PROPERTY = "nativescope.leakDetection";

    private static volatile boolean paranoid = "paranoid".equalsIgnoreCase(System.getProperty(PROPERTY));
    private static final AtomicLong SEQUENCE = new AtomicLong();
    private static final Map<Object, Site> LIVE = new ConcurrentHashMap<>();

    /** One creation: its order, what was created, and the stack that created it. */
    record Site(long sequence, String what, Throwable stack) {
    }

    private LeakSites() {
    }

    static boolean paranoid() {
        return paranoid;
    }

    /** For the leak check's own tests, which cannot set the property before this class loads. */
    static void paranoid(boolean on) {
        paranoid = on;
    }

    static void created(Object resource, String what) {
        if (paranoid) {
            LIVE.put(resource, new Site(SEQUENCE.incrementAndGet(), what, new Throwable(what + " created here")));
        }
    }

    static void freed(Object resource) {
        if (!LIVE.isEmpty()) {
            LIVE.remove(resource);
        }
    }

    /** {@return the sequence number of the last recorded creation} */
    static long mark() {
        return SEQUENCE.get();
    }

    /** {@return the recorded creation sites of live resources created after {@code mark}, oldest first} */
    static List<Site> createdSince(long mark) {
        List<Site> sites = new ArrayList<>();
        for (Site site : LIVE.values()) {
            if (site.sequence() > mark) {
                sites.add(site);
            }
        }
        sites.sort((a, b) -> Long.compare(a.sequence(), b.sequence()));
        return sites;
    }
}
