package dev.nativescope;

/**
 * Test-only view of the context tree's package-private bookkeeping, for tests and leak probes in
 * other packages: how many children and pending done actions a context holds, and how many deadline
 * timer tasks are queued. Lives in the test sources, so the library exposes none of it.
 *
 * <p>Thread-safe as the counters it reads (approximate while contexts change).
 */
public final class ContextProbe {
    /** The name of the shared deadline timer thread, started once and kept for the life of the process. */
    public static final String TIMER_THREAD_NAME = DeadlineTimer.THREAD_NAME;

    private ContextProbe() {
    }

    /** {@return the live cancellable children linked to {@code context}} */
    public static int childCount(CancellableContext context) {
        return context.childCount();
    }

    /** {@return the done actions registered on {@code context} that have neither run nor been removed} */
    public static int pendingActionCount(CancellableContext context) {
        return context.pendingActionCount();
    }

    /** {@return the deadline tasks queued on the shared timer (contexts with a deadline neither done nor closed)} */
    public static int queuedDeadlineCount() {
        return DeadlineTimer.queuedTaskCount();
    }
}
