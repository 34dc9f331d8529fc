package dev.nativescope;

/**
 * The handle of an action registered with {@link Context#onDone(Runnable)}, with which the action
 * can be withdrawn before it runs.
 *
 * <p>A registration is {@link AutoCloseable} so that an action needed only around a piece of work
 * can be scoped with try-with-resources:
 * {@snippet :
 * try (Registration stopOnCancel = context.onDone(socket::close)) {
 *     readResponse(socket);
 * }
 * }
 *
 * <p>Implementations are safe to use from any thread.
 */
public interface Registration extends AutoCloseable {
    /**
     * Withdraws the action, unless it has already started.
     *
     * <p>Returns {@code true} for exactly one call, and only when the action had not started:
     * then it never runs, and the context no longer references it. Returns {@code false} when the
     * action has run, is running in another thread at this moment, or was already withdrawn. This
     * method does not wait for a running action to finish.
     *
     * @return {@code true} if this call withdrew the action before it started
     */
    boolean remove();

    /**
     * Withdraws the action, as {@link #remove()} does, ignoring whether it had already run.
     */
    @Override
    default void close() {
        remove();
    }
}
