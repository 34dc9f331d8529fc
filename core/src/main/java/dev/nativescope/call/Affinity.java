package dev.nativescope.call;

import dev.nativescope.call.NativeThreadPool.NativeThread;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A session's own native thread: every call made with this affinity runs on the same platform
 * thread, for runtimes that keep per-thread state (a CUDA context current on the thread, a
 * thread-local allocator, a library that must be called from the thread that initialised it).
 * Pass it to {@link NativeCall#invoke(dev.nativescope.Context, Affinity, NativeCall.Downcall)} or
 * {@link NativeThreads#call}; calls with an affinity are always offloaded, from virtual and platform
 * threads alike (except a call made on the affinity's own thread, which runs inline).
 *
 * <p>The thread starts with the first call and lives until {@link #close()}. Calls of one affinity
 * run one at a time, in submission order; the others wait in its queue (bounded by
 * {@value NativeThreads#QUEUE_PROPERTY}), cancellable and counted against their deadlines, as in
 * the shared pool. Close the affinity with its session.
 *
 * <p>Threading: thread-safe; any thread may make calls with it and close it. {@code close()} lets
 * calls in flight and queued ones finish, refuses new ones with an {@link IllegalStateException},
 * and returns once the idle thread has ended (a busy one ends after the queue).
 */
public final class Affinity implements AutoCloseable {
    private static final AtomicInteger IDS = new AtomicInteger();
    private final NativeThreadPool pool;

    private Affinity(String name) {
        this.pool = new NativeThreadPool(NativeThreads.THREAD_NAME_PREFIX + "affinity-" + name + "-", 1,
                NativeThreads.queueCapacity(), -1, "the Affinity " + name);
    }

    /** {@return a new affinity, for one session} */
    public static Affinity create() {
        return new Affinity(Integer.toString(IDS.incrementAndGet()));
    }

    NativeThreadPool pool() {
        return pool;
    }

    boolean runsOn(Thread thread) {
        return thread instanceof NativeThread worker && worker.pool == pool;
    }

    /** {@return the native thread's id, or -1 before the first call (or after it ended)} */
    public long threadId() {
        List<NativeThread> threads = pool.threads();
        return threads.isEmpty() ? -1 : threads.getFirst().threadId();
    }

    @Override
    public void close() {
        pool.close();
    }
}
