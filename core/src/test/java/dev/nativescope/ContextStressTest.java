package dev.nativescope;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Randomised races between cancel, child creation, onDone, remove and the deadline timer. Each
 * iteration lets a few threads loose on one fresh context at the same moment (a barrier), then
 * checks the invariants once they are all through. Failures would show as wrong counts, never as
 * timing: the test has no time bounds except generous ones against hanging.
 */
class ContextStressTest {
    private static final int ITERATIONS = 5_000;
    private static final int THREADS = 3;
    /** Enough to span the other side's random spin; more would only slow a descheduled trial down. */
    private static final int MAX_PER_TRIAL = 64;
    private static final long SEED = 20240601L;
    private static final ContextKey<String> KEY = ContextKey.ofString("k");

    private enum Role { CANCEL_WITH_A, CANCEL_WITH_B, CLOSE, MAKE_CHILDREN, REGISTER_AND_REMOVE }

    /** One action registered in a race, and what became of it. */
    private static final class TrackedAction implements Runnable {
        final AtomicInteger runs = new AtomicInteger();
        Registration registration;
        boolean removed;

        @Override
        public void run() {
            runs.incrementAndGet();
        }
    }

    /** A child made in a race, with the cause it was cancelled with on its own, if any. */
    private record TrackedChild(CancellableContext context, Throwable ownCause, boolean parentWasDoneBefore,
                                boolean doneRightAfterCreation, TrackedAction action, CancellableContext grandchild) {
    }

    /** The shared state of one iteration; each role writes only its own lists. */
    private static final class Iteration {
        final int number;
        final Role[] roles = new Role[THREADS];
        final CancellableContext parent;
        final boolean parentHasShortDeadline;
        final RuntimeException causeA = new RuntimeException("A");
        final RuntimeException causeB = new RuntimeException("B");
        final TrackedAction parentAction = new TrackedAction();
        final List<TrackedChild> children = new ArrayList<>();
        final List<TrackedAction> actions = new ArrayList<>();
        final List<TrackedAction> actionsNotRunAtOnceWhenDone = new ArrayList<>();

        Iteration(int number, CancellableContext root) {
            this.number = number;
            SplittableRandom random = new SplittableRandom(SEED + number);
            List<Role> all = new ArrayList<>(List.of(Role.values()));
            for (int i = 0; i < THREADS; i++) {
                roles[i] = all.remove(random.nextInt(all.size()));
            }
            parentHasShortDeadline = random.nextInt(4) == 0;
            parent = parentHasShortDeadline
                    ? root.withDeadlineNanoTime(System.nanoTime() + random.nextLong(TimeUnit.MICROSECONDS.toNanos(200)))
                    : root.withCancel();
            parentAction.registration = parent.onDone(parentAction);
        }

        void play(int threadIndex) {
            SplittableRandom random = new SplittableRandom(SEED * 31 + number * THREADS + threadIndex);
            switch (roles[threadIndex]) {
                case CANCEL_WITH_A -> parent.cancel(causeA);
                case CANCEL_WITH_B -> parent.cancel(causeB);
                case CLOSE -> parent.close();
                case MAKE_CHILDREN -> makeChildren(random);
                case REGISTER_AND_REMOVE -> registerAndRemove(random);
            }
        }

        private void makeChildren(SplittableRandom random) {
            for (int i = 0; i < 4; i++) {
                boolean parentWasDoneBefore = parent.isDone();
                CancellableContext child = switch (random.nextInt(3)) {
                    case 0 -> parent.withCancel();
                    case 1 -> parent.withValue(KEY, "v").withCancel();
                    default -> parent.withTimeout(Duration.ofHours(1));
                };
                boolean doneRightAfterCreation = child.isDone();
                TrackedAction action = new TrackedAction();
                action.registration = child.onDone(action);
                CancellableContext grandchild = child.withCancel();
                Throwable ownCause = null;
                if (random.nextBoolean()) {
                    ownCause = new CancellationException("child " + i);
                    child.cancel(ownCause);
                }
                children.add(new TrackedChild(child, ownCause, parentWasDoneBefore, doneRightAfterCreation,
                        action, grandchild));
            }
        }

        private void registerAndRemove(SplittableRandom random) {
            for (int i = 0; i < 4; i++) {
                TrackedAction action = new TrackedAction();
                boolean parentWasDoneBefore = parent.isDone();
                Context target = random.nextBoolean() ? parent : parent.withValue(KEY, "v");
                action.registration = target.onDone(action);
                if (parentWasDoneBefore && action.runs.get() != 1) {
                    actionsNotRunAtOnceWhenDone.add(action);
                }
                actions.add(action);
            }
            for (TrackedAction action : actions) {
                if (random.nextBoolean()) {
                    action.removed = action.registration.remove();
                }
            }
        }

        void verify(CancellableContext root) {
            if (!parent.isDone()) {
                parent.cancel(new RuntimeException("late")); // no canceller among the roles
            }
            // The deadline timer may still be running the actions it started: close() waits for them.
            parent.close();
            children.forEach(child -> child.context().close());

            String where = "iteration " + number + " roles " + List.of(roles) + (parentHasShortDeadline ? " deadline" : "");
            Throwable cause = parent.cause();
            assertThat(cause).as(where).isNotNull();
            if (List.of(roles).contains(Role.CANCEL_WITH_A) && !List.of(roles).contains(Role.CANCEL_WITH_B)
                    && !List.of(roles).contains(Role.CLOSE) && !parentHasShortDeadline) {
                assertThat(cause).as(where).isSameAs(causeA);
            }
            assertThat(parentAction.runs).as(where + ": parent action").hasValue(1);
            assertThat(parentAction.registration.remove()).as(where).isFalse();

            for (TrackedAction action : actions) {
                assertThat(action.runs).as(where + ": action removed=" + action.removed).hasValue(action.removed ? 0 : 1);
            }
            assertThat(actionsNotRunAtOnceWhenDone).as(where + ": registered when done, not run at once").isEmpty();

            for (TrackedChild child : children) {
                CancellableContext context = child.context();
                assertThat(context.isDone()).as(where).isTrue();
                if (child.parentWasDoneBefore()) {
                    assertThat(child.doneRightAfterCreation()).as(where + ": child of a done parent").isTrue();
                }
                if (child.ownCause() == null) {
                    assertThat(context.cause()).as(where).isSameAs(cause);
                } else {
                    assertThat(context.cause()).as(where).isIn(child.ownCause(), cause);
                }
                assertThat(child.action().runs).as(where + ": child action").hasValue(1);
                assertThat(child.grandchild().cause()).as(where + ": grandchild").isSameAs(context.cause());
                assertThat(context.childCount()).as(where).isZero();
            }
            assertThat(parent.childCount()).as(where).isZero();
            assertThat(parent.pendingActionCount()).as(where).isZero();
            assertThat(root.childCount()).as(where + ": parent unlinked from root").isZero();
            assertThat(root.isDone()).isFalse();
        }
    }

    @Test
    void racingCancelChildCreationOnDoneAndRemoveKeepInvariants() throws InterruptedException {
        CancellableContext root = Context.background().withCancel();
        AtomicReference<Iteration> current = new AtomicReference<>();
        AtomicInteger next = new AtomicInteger();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        // Barrier actions run in the last thread to arrive, before any thread is released: so the
        // iteration is set up before the race, and verified only after every thread left it.
        CyclicBarrier start = new CyclicBarrier(THREADS, () -> current.set(new Iteration(next.getAndIncrement(), root)));
        CyclicBarrier end = new CyclicBarrier(THREADS, () -> {
            try {
                current.get().verify(root);
            } catch (Throwable t) {
                failure.compareAndSet(null, t);
                throw t;
            }
        });
        List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < THREADS; t++) {
            int threadIndex = t;
            threads.add(Thread.ofPlatform().name("racer-" + t).start(() -> {
                try {
                    for (int i = 0; i < ITERATIONS; i++) {
                        start.await(60, TimeUnit.SECONDS);
                        current.get().play(threadIndex);
                        end.await(60, TimeUnit.SECONDS);
                    }
                } catch (BrokenBarrierException e) {
                    // another thread failed; its failure is the one reported
                } catch (Throwable t2) {
                    failure.compareAndSet(null, t2);
                    start.reset();
                    end.reset();
                }
            }));
        }
        for (Thread thread : threads) {
            thread.join(TimeUnit.MINUTES.toMillis(2));
            assertThat(thread.isAlive()).as("%s finished", thread).isFalse();
        }
        if (failure.get() != null) {
            throw new AssertionError("race failed", failure.get());
        }
        assertThat(next).hasValue(ITERATIONS);
        assertThat(root.childCount()).isZero();
        root.close();
    }

    @Test
    void concurrentChildrenAndActionsUnderOneLongLivedParentLeaveNothingBehind() throws InterruptedException {
        CancellableContext parent = Context.background().withCancel();
        Context valueParent = parent.withValue(KEY, "v");
        int perThread = 25_000;
        AtomicInteger actionRuns = new AtomicInteger();
        AtomicInteger expectedRuns = new AtomicInteger();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            long seed = SEED + t;
            threads.add(Thread.ofPlatform().start(() -> {
                try {
                    SplittableRandom random = new SplittableRandom(seed);
                    for (int i = 0; i < perThread; i++) {
                        CancellableContext child = switch (random.nextInt(3)) {
                            case 0 -> parent.withCancel();
                            case 1 -> valueParent.withCancel();
                            default -> parent.withTimeout(Duration.ofHours(1));
                        };
                        Registration onParent = parent.onDone(actionRuns::incrementAndGet);
                        Registration onChild = child.onDone(actionRuns::incrementAndGet);
                        if (random.nextBoolean()) {
                            child.cancel();
                        } else {
                            child.close();
                        }
                        expectedRuns.incrementAndGet(); // the child's action
                        if (!onParent.remove()) {
                            throw new AssertionError("parent is live: its action cannot have run");
                        }
                        if (onChild.remove()) {
                            throw new AssertionError("child is done: its action must have run");
                        }
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            }));
        }
        for (Thread thread : threads) {
            thread.join(TimeUnit.MINUTES.toMillis(2));
        }
        if (failure.get() != null) {
            throw new AssertionError("worker failed", failure.get());
        }
        assertThat(actionRuns).hasValue(expectedRuns.get());
        assertThat(parent.isDone()).isFalse();
        assertThat(parent.childCount()).isZero();
        assertThat(parent.pendingActionCount()).isZero();
        parent.close();
    }

    /** One focused race between two threads, set up before and verified after. */
    private interface Trial {
        void first();

        void second();

        void verify();
    }

    /**
     * Runs {@code iterations} trials on two threads. After the barrier both threads spin until the
     * other has arrived too, so the two sides start within nanoseconds of each other rather than a
     * thread wake-up apart; a random spin in a trial then moves the collision point around.
     */
    private static void race(int iterations, java.util.function.IntFunction<Trial> newTrial) throws InterruptedException {
        AtomicReference<Trial> current = new AtomicReference<>();
        AtomicInteger arrived = new AtomicInteger();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        int[] number = {0};
        CyclicBarrier start = new CyclicBarrier(2, () -> {
            arrived.set(0);
            current.set(newTrial.apply(number[0]++));
        });
        CyclicBarrier end = new CyclicBarrier(2, () -> current.get().verify());
        List<Thread> threads = new ArrayList<>();
        for (int side = 0; side < 2; side++) {
            boolean first = side == 0;
            threads.add(Thread.ofPlatform().name("race-" + side).start(() -> {
                try {
                    for (int i = 0; i < iterations; i++) {
                        start.await(60, TimeUnit.SECONDS);
                        arrived.incrementAndGet();
                        for (int spins = 0; arrived.get() < 2; spins++) {
                            if (spins < 1_000) {
                                Thread.onSpinWait();
                            } else {
                                Thread.yield(); // on a busy machine the other side may need our CPU
                            }
                        }
                        if (first) {
                            current.get().first();
                        } else {
                            current.get().second();
                        }
                        end.await(60, TimeUnit.SECONDS);
                    }
                } catch (BrokenBarrierException e) {
                    // the other side failed, or the verification did; that failure is reported
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                    start.reset();
                    end.reset();
                }
            }));
        }
        for (Thread thread : threads) {
            thread.join(TimeUnit.MINUTES.toMillis(2));
            assertThat(thread.isAlive()).as("%s finished", thread).isFalse();
        }
        if (failure.get() != null) {
            throw new AssertionError("race failed", failure.get());
        }
    }

    private static void awaitDone(Context context) {
        while (!context.isDone()) {
            Thread.yield();
        }
    }

    private static void spin(SplittableRandom random, int maxSpins) {
        for (int i = random.nextInt(maxSpins); i > 0; i--) {
            Thread.onSpinWait();
        }
    }

    @Test
    void childCreatedWhileTheParentIsCancelledIsNeverLeftLive() throws InterruptedException {
        CancellableContext root = Context.background().withCancel();
        race(5_000, number -> new Trial() {
            final SplittableRandom random = new SplittableRandom(SEED + number);
            final CancellableContext parent = root.withCancel();
            final Context valueParent = parent.withValue(KEY, "v");
            final RuntimeException cause = new RuntimeException("cancelled");
            final List<CancellableContext> children = new ArrayList<>();
            boolean createdAfterDoneWasLive;

            @Override
            public void first() {
                spin(random, 2_000);
                parent.cancel(cause);
            }

            @Override
            public void second() {
                // Create children until the cancel has landed, then one more under the done parent.
                // Bounded, in case the other side is descheduled for a while on a busy machine.
                boolean parentWasDone;
                do {
                    if (children.size() == MAX_PER_TRIAL) {
                        awaitDone(parent);
                    }
                    parentWasDone = parent.isDone();
                    CancellableContext child = switch (children.size() % 3) {
                        case 0 -> parent.withCancel();
                        case 1 -> valueParent.withCancel();
                        default -> parent.withTimeout(Duration.ofHours(1));
                    };
                    children.add(child);
                    if (parentWasDone && !child.isDone()) {
                        createdAfterDoneWasLive = true;
                    }
                } while (!parentWasDone);
            }

            @Override
            public void verify() {
                assertThat(createdAfterDoneWasLive).as("child of a done parent created live").isFalse();
                for (CancellableContext child : children) {
                    assertThat(child.cause()).as("trial %d: child %s", number, child).isSameAs(cause);
                }
                assertThat(parent.childCount()).isZero();
                assertThat(root.childCount()).isZero();
            }
        });
        root.close();
    }

    @Test
    void actionRegisteredWhileTheContextIsCancelledRunsExactlyOnce() throws InterruptedException {
        race(5_000, number -> new Trial() {
            final SplittableRandom random = new SplittableRandom(SEED + number);
            final CancellableContext context = Context.background().withCancel();
            final Context valueChild = context.withValue(KEY, "v");
            final List<TrackedAction> actions = new ArrayList<>();
            boolean registeredAfterDoneDidNotRunAtOnce;

            @Override
            public void first() {
                spin(random, 2_000);
                context.cancel();
            }

            @Override
            public void second() {
                boolean wasDone;
                do {
                    if (actions.size() == MAX_PER_TRIAL) {
                        awaitDone(context);
                    }
                    wasDone = context.isDone();
                    TrackedAction action = new TrackedAction();
                    action.registration = (actions.size() % 2 == 0 ? context : valueChild).onDone(action);
                    actions.add(action);
                    if (wasDone && action.runs.get() != 1) {
                        registeredAfterDoneDidNotRunAtOnce = true;
                    }
                } while (!wasDone);
            }

            @Override
            public void verify() {
                assertThat(registeredAfterDoneDidNotRunAtOnce).isFalse();
                for (TrackedAction action : actions) {
                    assertThat(action.runs).as("trial %d", number).hasValue(1);
                }
            }
        });
    }

    @Test
    void removeRacingTheCancelDecidesEachActionOnce() throws InterruptedException {
        race(5_000, number -> new Trial() {
            final SplittableRandom random = new SplittableRandom(SEED + number);
            final CancellableContext context = Context.background().withCancel();
            final List<TrackedAction> actions = new ArrayList<>();

            {
                for (int i = 0; i < 32; i++) {
                    TrackedAction action = new TrackedAction();
                    action.registration = context.onDone(action);
                    actions.add(action);
                }
            }

            @Override
            public void first() {
                spin(random, 500);
                context.cancel();
            }

            @Override
            public void second() {
                // From the back, so that the remover and the canceller meet in the middle.
                for (int i = actions.size() - 1; i >= 0; i--) {
                    actions.get(i).removed = actions.get(i).registration.remove();
                }
            }

            @Override
            public void verify() {
                for (TrackedAction action : actions) {
                    assertThat(action.runs).as("trial %d, removed=%s", number, action.removed)
                            .hasValue(action.removed ? 0 : 1);
                }
                assertThat(context.pendingActionCount()).isZero();
            }
        });
    }

    @Test
    void concurrentCancelsAgreeOnOneCauseAndRunActionsOnce() throws InterruptedException {
        race(5_000, number -> new Trial() {
            final SplittableRandom random = new SplittableRandom(SEED + number);
            final CancellableContext context = Context.background().withCancel();
            final CancellableContext child = context.withCancel();
            final RuntimeException first = new RuntimeException("first");
            final RuntimeException second = new RuntimeException("second");
            final AtomicInteger runs = new AtomicInteger();

            {
                context.onDone(runs::incrementAndGet);
                child.onDone(runs::incrementAndGet);
            }

            @Override
            public void first() {
                spin(random, 50);
                context.cancel(first);
            }

            @Override
            public void second() {
                spin(random, 50);
                if (random.nextBoolean()) {
                    context.cancel(second);
                } else {
                    context.close();
                }
            }

            @Override
            public void verify() {
                context.close(); // waits for the actions, whichever thread runs them
                assertThat(context.cause()).as("trial %d", number).isNotNull();
                assertThat(child.cause()).isSameAs(context.cause());
                assertThat(runs).as("trial %d", number).hasValue(2);
            }
        });
    }
}
