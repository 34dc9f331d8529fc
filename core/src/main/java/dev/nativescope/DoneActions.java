package dev.nativescope;

import dev.nativescope.internal.access.FieldHandles;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.List;

/**
 * The pending {@link Context#onDone(Runnable)} actions of one {@link CancellableContext}, in
 * registration order, linked through the {@link DoneAction}s themselves, so that registering and
 * removing allocate nothing beyond the registration.
 *
 * <p>Not thread-safe by itself: the owning context decides who may touch it. While the context is
 * live, only code holding the context's lock reads or changes the list (and checks under that lock
 * that the context is still live). The transition to done, under the same lock, freezes it: from
 * then on it belongs to the cancelling thread alone, which {@linkplain #runAll runs it} without
 * the lock. Each action's own state word decides, once, between running and being removed.
 */
final class DoneActions extends IntrusiveList<DoneActions.DoneAction> {
    /** A registration on a context that can never be done: it holds no action and is in no list. */
    static DoneAction neverRuns() {
        return new DoneAction(null, null);
    }

    /** @return a new registration of {@code action} on {@code context}, in no list yet */
    static DoneAction registration(CancellableContext context, Runnable action) {
        return new DoneAction(context, action);
    }

    @Override DoneAction previousOf(DoneAction action) { return action.previous; }
    @Override DoneAction nextOf(DoneAction action) { return action.next; }
    @Override void setPrevious(DoneAction action, DoneAction previous) { action.previous = previous; }
    @Override void setNext(DoneAction action, DoneAction next) { action.next = next; }

    /**
     * Empties the list and runs every action in it that was not removed, in order; only for the
     * thread that owns the frozen list.
     *
     * @return {@code failures} with what the actions threw added (a new list if it was null)
     */
    List<Throwable> runAll(List<Throwable> failures) {
        DoneAction action = takeAll();
        while (action != null) {
            DoneAction next = detach(action);
            failures = action.runOnce(failures);
            action = next;
        }
        return failures;
    }

    /**
     * An action registered with {@link Context#onDone(Runnable)}. Its state word decides, once,
     * between running and being removed; the list links are guarded by the context's lock.
     */
    static final class DoneAction implements Registration {
        private static final int PENDING = 0;
        private static final int STARTED = 1;
        private static final int REMOVED = 2;
        private static final VarHandle STATE = FieldHandles.of(MethodHandles.lookup(), "state", int.class);

        /** The context whose list holds this action; null for a context that can never be done. */
        private final CancellableContext context;
        private final Runnable action;
        @SuppressWarnings("unused") // through STATE
        private volatile int state;
        private DoneAction previous;
        private DoneAction next;

        private DoneAction(CancellableContext context, Runnable action) {
            this.context = context;
            this.action = action;
        }

        /** Runs the action unless removed or already started; collects what it throws. */
        List<Throwable> runOnce(List<Throwable> failures) {
            // Race with remove(): one compare-and-set on the same word, so exactly one of them wins.
            if (!STATE.compareAndSet(this, PENDING, STARTED)) {
                return failures;
            }
            try {
                action.run();
            } catch (Throwable failure) {
                if (failures == null) {
                    failures = new ArrayList<>(2);
                }
                failures.add(failure);
            }
            return failures;
        }

        @Override
        public boolean remove() {
            if (!STATE.compareAndSet(this, PENDING, REMOVED)) {
                return false;
            }
            if (context != null) {
                // Only so that a live context does not keep removed actions: the state alone already
                // guarantees the action never runs.
                context.unlinkAction(this);
            }
            return true;
        }

        @Override
        public String toString() {
            return "Registration[" + switch ((int) STATE.getVolatile(this)) {
                case PENDING -> "pending";
                case STARTED -> "started";
                default -> "removed";
            } + "]";
        }
    }
}
