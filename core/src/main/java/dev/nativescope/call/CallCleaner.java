package dev.nativescope.call;

import java.lang.ref.Cleaner;

/**
 * The call package's one cleaner (value blocks of unreachable contexts, frame caches of ended
 * threads), created on first use: its daemon thread is not started by merely loading the bridge.
 */
final class CallCleaner {
    static final Cleaner CLEANER = Cleaner.create(runnable -> {
        Thread thread = new Thread(runnable, "nativescope-call-cleaner");
        thread.setDaemon(true);
        return thread;
    });

    private CallCleaner() {
    }
}
