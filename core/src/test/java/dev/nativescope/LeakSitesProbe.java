package dev.nativescope;

import java.util.List;

/**
 * Test support: what {@code dev.nativescope.testing.LeakCheckExtension} needs from the core's
 * package-private internals (where live call frames and value blocks were created, the singleton
 * thread names). Lives in the test sources, so the library exposes none of it.
 */
public final class LeakSitesProbe {
    /** Started once, on first use, and kept for the life of the process. */
    public static final List<String> SINGLETON_THREADS = List.of(DeadlineTimer.THREAD_NAME, "nativescope-values-cleaner");
    public static final String PROPERTY = LeakSites.PROPERTY;
    private static final int MAX_FRAMES = 24;

    private LeakSitesProbe() {
    }

    public static boolean paranoid() {
        return LeakSites.paranoid();
    }

    public static void paranoid(boolean on) {
        LeakSites.paranoid(on);
    }

    /** {@return the mark to pass to {@link #createdSince(long)}: everything created so far is before it} */
    public static long mark() {
        return LeakSites.mark();
    }

    /** {@return where the live call frames and value blocks created after {@code mark} were created, as text} */
    public static List<String> createdSince(long mark) {
        return LeakSites.createdSince(mark).stream().map(site -> {
            StringBuilder text = new StringBuilder(site.what()).append(" still live, created at:");
            // From the caller of LeakSites to the test method: JUnit's frames below it say nothing.
            int shown = 0;
            for (StackTraceElement frame : site.stack().getStackTrace()) {
                if (frame.getClassName().equals(LeakSites.class.getName())) {
                    continue;
                }
                if (frame.getClassName().startsWith("org.junit.") || shown++ == MAX_FRAMES) {
                    text.append("\n\t...");
                    break;
                }
                text.append("\n\tat ").append(frame);
            }
            return text.toString();
        }).toList();
    }
}
