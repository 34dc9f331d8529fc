package dev.nativescope.examples.soak;

/** What a worker's scheduled interrupt may hit: only the operation it was scheduled for. */
final class InterruptGuard {
    private final Thread thread;
    private long armedOp = -1;

    InterruptGuard(Thread thread) {
        this.thread = thread;
    }

    synchronized void arm(long op) {
        armedOp = op;
    }

    synchronized boolean interruptIf(long op) {
        if (armedOp != op) {
            return false;
        }
        thread.interrupt();
        return true;
    }

    void disarm() {
        synchronized (this) {
            armedOp = -1;
        }
        // An interrupt that landed after the call returned must not leak into the next operation.
        Thread.interrupted();
    }
}
