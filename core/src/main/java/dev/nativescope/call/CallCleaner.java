package dev.nativescope.call;

import java.lang.ref.Cleaner;
import java.util.concurrent.ThreadFactory;

/**
 * The call package's one cleaner (value blocks of unreachable contexts, frame caches of ended
 * threads), created on first use: its daemon thread is not started by merely loading the bridge.
 */
final class CallCleaner {
    static final Cleaner CLEANER = Cleaner.create(new Threads());

    /** The cleaner's thread factory; a class, not a lambda, which a fresh JVM would spin at run time. */
    private static final class Threads implements ThreadFactory {
        @Override
        public Thread newThread(Runnable runnable) {
            Thread thread = new Thread(runnable, "nativescope-call-cleaner");
            thread.setDaemon(true);
            return thread;
        }
    }

    private CallCleaner() {
    }
}
