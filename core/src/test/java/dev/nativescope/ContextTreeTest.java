package dev.nativescope;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Cancellation through the tree, causes, and {@code onDone} actions. */
class ContextTreeTest {

    @Test
    void backgroundIsNeverDoneAndHasNoDeadline() {
        Context background = Context.background();
        assertThat(background.isDone()).isFalse();
        assertThat(background.cause()).isNull();
        assertThat(background.isDeadlineExceeded()).isFalse();
        assertThat(background.deadline()).isEmpty();
        assertThat(background.deadlineNanoTime()).isEmpty();
        assertThat(background.values()).isEmpty();
        assertThat(Context.background()).isSameAs(background);
        assertThat(background).hasToString("Context.background()");
    }

    @Test
    void cancelMakesDoneWithCancellationException() {
        CancellableContext context = Context.background().withCancel();
        assertThat(context.isDone()).isFalse();
        assertThat(context.cause()).isNull();

        context.cancel();

        assertThat(context.isDone()).isTrue();
        assertThat(context.isDeadlineExceeded()).isFalse();
        assertThat(context.cause()).isInstanceOf(CancellationException.class)
                .hasMessage("context canceled (by thread \"" + Thread.currentThread().getName() + "\" #"
                        + Thread.currentThread().threadId() + ")");
    }

    /**
     * The default cause is built after the state word and before cancel() returns, while a spinning call
     * on the canceller's CPU waits for that CPU: it names the canceller instead of walking its stack.
     */
    @Test
    void defaultCausesNameTheCancellingThreadAndCarryNoStackTrace() throws InterruptedException {
        CancellableContext cancelled = Context.background().withCancel();
        CancellableContext closed = Context.background().withCancel();
        Thread canceller = Thread.ofVirtual().name("the-canceller").start(() -> {
            cancelled.cancel();
            closed.close();
        });
        canceller.join();

        String by = " (by thread \"the-canceller\" #" + canceller.threadId() + ")";
        assertThat(cancelled.cause()).isInstanceOf(CancellationException.class).hasMessage("context canceled" + by);
        assertThat(closed.cause()).isInstanceOf(CancellationException.class).hasMessage("context closed" + by);
        assertThat(cancelled.cause().getStackTrace()).isEmpty();
        assertThat(closed.cause().getStackTrace()).isEmpty();
        // A cause of one's own keeps its stack trace: the way to get one.
        CancellableContext own = Context.background().withCancel();
        own.cancel(new CancellationException("mine"));
        assertThat(own.cause().getStackTrace()).isNotEmpty();
    }

    @Test
    void cancelWithCauseKeepsThatObject() {
        CancellableContext context = Context.background().withCancel();
        IllegalStateException cause = new IllegalStateException("sibling failed");
        context.cancel(cause);
        assertThat(context.cause()).isSameAs(cause);
    }

    @Test
    void cancelWithNullCauseIsRejected() {
        CancellableContext context = Context.background().withCancel();
        assertThatThrownBy(() -> context.cancel(null)).isInstanceOf(NullPointerException.class).hasMessage("cause");
        assertThat(context.isDone()).isFalse();
        context.close();
    }

    @Test
    void firstCauseWinsAndCancelIsIdempotent() {
        CancellableContext context = Context.background().withCancel();
        RuntimeException first = new RuntimeException("first");
        AtomicInteger runs = new AtomicInteger();
        context.onDone(runs::incrementAndGet);

        context.cancel(first);
        context.cancel(new RuntimeException("second"));
        context.cancel();
        context.close();

        assertThat(context.cause()).isSameAs(first);
        assertThat(runs).hasValue(1);
    }

    @Test
    void cancellingParentCancelsEveryDescendantWithTheSameCause() {
        CancellableContext root = Context.background().withCancel();
        CancellableContext child = root.withCancel();
        Context valueChild = child.withValue(ContextKey.ofString("k"), "v");
        CancellableContext grandchild = valueChild.withCancel();
        CancellableContext sibling = root.withTimeout(java.time.Duration.ofHours(1));
        RuntimeException cause = new RuntimeException("request aborted");

        root.cancel(cause);

        for (Context context : List.of(root, child, valueChild, grandchild, sibling)) {
            assertThat(context.isDone()).as("%s", context).isTrue();
            assertThat(context.cause()).as("%s", context).isSameAs(cause);
        }
        assertThat(root.childCount()).isZero();
        assertThat(child.childCount()).isZero();
    }

    @Test
    void childNeverCancelsItsParent() {
        CancellableContext parent = Context.background().withCancel();
        CancellableContext child = parent.withCancel();
        CancellableContext sibling = parent.withCancel();

        child.cancel();
        child.close();

        assertThat(child.isDone()).isTrue();
        assertThat(parent.isDone()).isFalse();
        assertThat(sibling.isDone()).isFalse();
        assertThat(parent.childCount()).isEqualTo(1);
        parent.close();
        assertThat(sibling.isDone()).isTrue();
    }

    @Test
    void childOfADoneParentIsDoneAtOnceWithTheParentsCause() {
        CancellableContext parent = Context.background().withCancel();
        RuntimeException cause = new RuntimeException("gone");
        parent.cancel(cause);

        CancellableContext child = parent.withCancel();
        CancellableContext timed = parent.withTimeout(java.time.Duration.ofHours(1));
        Context valueChild = parent.withValue(ContextKey.ofString("k"), "v");

        assertThat(child.cause()).isSameAs(cause);
        assertThat(timed.cause()).isSameAs(cause);
        assertThat(valueChild.cause()).isSameAs(cause);
        assertThat(parent.childCount()).isZero();
    }

    @Test
    void valueContextSharesTheStateOfItsCancellableAncestor() {
        CancellableContext parent = Context.background().withCancel();
        Context valueChild = parent.withValue(ContextKey.ofString("k"), "v");
        AtomicInteger runs = new AtomicInteger();
        valueChild.onDone(runs::incrementAndGet);

        assertThat(valueChild.isDone()).isFalse();
        assertThat(parent.pendingActionCount()).isEqualTo(1);
        parent.cancel();

        assertThat(valueChild.isDone()).isTrue();
        assertThat(valueChild.cause()).isSameAs(parent.cause());
        assertThat(runs).hasValue(1);
    }

    @Test
    void contextsWithoutCancellableAncestorNeverRunActions() {
        Context valueChild = Context.background().withValue(ContextKey.ofString("k"), "v");
        AtomicInteger runs = new AtomicInteger();

        Registration registration = valueChild.onDone(runs::incrementAndGet);

        assertThat(valueChild.isDone()).isFalse();
        assertThat(registration.remove()).isTrue();
        assertThat(registration.remove()).isFalse();
        assertThat(Context.background().onDone(runs::incrementAndGet).remove()).isTrue();
        assertThat(runs).hasValue(0);
    }

    @Test
    void doneChildIsUnlinkedFromItsLiveParent() {
        CancellableContext parent = Context.background().withCancel();
        Context valueParent = parent.withValue(ContextKey.ofString("k"), "v");
        List<CancellableContext> children = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            children.add(i % 2 == 0 ? parent.withCancel() : valueParent.withCancel());
        }
        assertThat(parent.childCount()).isEqualTo(10);

        // Unlink from the middle, the ends, and the rest: the list must stay consistent.
        for (int index : new int[] {5, 0, 9, 1, 8, 2, 7, 3, 6, 4}) {
            children.get(index).cancel();
        }

        assertThat(parent.childCount()).isZero();
        assertThat(parent.isDone()).isFalse();
        CancellableContext later = parent.withCancel();
        assertThat(parent.childCount()).isEqualTo(1);
        later.close();
        assertThat(parent.childCount()).isZero();
        parent.close();
    }

    @Test
    void manyChildrenComingAndGoingLeaveNothingBehind() {
        CancellableContext parent = Context.background().withCancel();
        for (int i = 0; i < 100_000; i++) {
            try (CancellableContext child = parent.withCancel()) {
                child.onDone(() -> { });
            }
        }
        assertThat(parent.childCount()).isZero();
        assertThat(parent.pendingActionCount()).isZero();
        parent.close();
    }

    @Test
    void deepChainIsCancelledWithoutRecursion() {
        CancellableContext root = Context.background().withCancel();
        Context tip = root;
        for (int i = 0; i < 50_000; i++) {
            tip = i % 3 == 0 ? tip.withValue(ContextKey.ofString("depth"), "" + i) : tip.withCancel();
        }
        AtomicInteger runs = new AtomicInteger();
        tip.onDone(runs::incrementAndGet);

        root.cancel();

        assertThat(tip.isDone()).isTrue();
        assertThat(tip.cause()).isSameAs(root.cause());
        assertThat(runs).hasValue(1);
    }

    @Test
    void onDoneRunsExactlyOnceInTheCancellingThread() throws InterruptedException {
        CancellableContext context = Context.background().withCancel();
        List<Thread> ranIn = Collections.synchronizedList(new ArrayList<>());
        List<Boolean> sawDone = Collections.synchronizedList(new ArrayList<>());
        context.onDone(() -> {
            ranIn.add(Thread.currentThread());
            sawDone.add(context.isDone() && context.cause() != null);
        });

        Thread canceller = Thread.ofPlatform().start(context::cancel);
        canceller.join();
        context.cancel();

        assertThat(ranIn).containsExactly(canceller);
        assertThat(sawDone).containsExactly(true);
    }

    @Test
    void onDoneOnADoneContextRunsAtOnceInTheRegisteringThread() {
        CancellableContext context = Context.background().withCancel();
        context.cancel();
        AtomicReference<Thread> ranIn = new AtomicReference<>();

        Registration registration = context.onDone(() -> ranIn.set(Thread.currentThread()));

        assertThat(ranIn).hasValue(Thread.currentThread());
        assertThat(registration.remove()).as("already ran").isFalse();
    }

    @Test
    void removedActionNeverRuns() {
        CancellableContext context = Context.background().withCancel();
        AtomicInteger kept = new AtomicInteger();
        AtomicInteger removed = new AtomicInteger();
        context.onDone(kept::incrementAndGet);
        Registration registration = context.onDone(removed::incrementAndGet);
        context.onDone(kept::incrementAndGet);

        assertThat(registration.remove()).isTrue();
        assertThat(registration.remove()).as("second remove").isFalse();
        assertThat(context.pendingActionCount()).isEqualTo(2);
        context.cancel();

        assertThat(removed).hasValue(0);
        assertThat(kept).hasValue(2);
        assertThat(registration.remove()).isFalse();
    }

    @Test
    void removeAfterRunReportsFalse() {
        CancellableContext context = Context.background().withCancel();
        AtomicInteger runs = new AtomicInteger();
        Registration registration = context.onDone(runs::incrementAndGet);
        context.cancel();

        assertThat(registration.remove()).isFalse();
        assertThat(runs).hasValue(1);
    }

    @Test
    void registrationClosesLikeRemove() {
        CancellableContext context = Context.background().withCancel();
        AtomicInteger runs = new AtomicInteger();
        try (Registration registration = context.onDone(runs::incrementAndGet)) {
            assertThat(registration).isNotNull();
            assertThat(context.pendingActionCount()).isEqualTo(1);
        }
        assertThat(context.pendingActionCount()).isZero();
        context.cancel();
        assertThat(runs).hasValue(0);
    }

    @Test
    void removeFromInsideARunningActionReportsFalse() {
        CancellableContext context = Context.background().withCancel();
        AtomicReference<Registration> self = new AtomicReference<>();
        AtomicReference<Boolean> removedWhileRunning = new AtomicReference<>();
        self.set(context.onDone(() -> removedWhileRunning.set(self.get().remove())));
        context.cancel();
        assertThat(removedWhileRunning).hasValue(false);
    }

    @Test
    void actionsRunParentFirstInRegistrationOrderThenChildrenLevelByLevel() {
        CancellableContext root = Context.background().withCancel();
        CancellableContext first = root.withCancel();
        CancellableContext second = root.withValue(ContextKey.ofString("k"), "v").withCancel();
        CancellableContext grandchild = first.withCancel();
        List<String> order = Collections.synchronizedList(new ArrayList<>());
        grandchild.onDone(() -> order.add("grandchild"));
        second.onDone(() -> order.add("second"));
        first.onDone(() -> order.add("first"));
        root.onDone(() -> order.add("root 1"));
        root.onDone(() -> order.add("root 2"));
        // Every action sees the whole subtree done already.
        root.onDone(() -> order.add("grandchild done: " + grandchild.isDone()));

        root.cancel();

        assertThat(order).containsExactly(
                "root 1", "root 2", "grandchild done: true", "first", "second", "grandchild");
    }

    @Test
    void failingActionsGoToTheUncaughtExceptionHandlerAndDoNotStopCancellation() throws InterruptedException {
        CancellableContext root = Context.background().withCancel();
        CancellableContext child = root.withCancel();
        AtomicInteger ran = new AtomicInteger();
        RuntimeException boom = new RuntimeException("boom");
        AssertionError error = new AssertionError("also boom");
        root.onDone(() -> { throw boom; });
        root.onDone(ran::incrementAndGet);
        child.onDone(() -> { throw error; });
        child.onDone(ran::incrementAndGet);
        List<Throwable> handled = Collections.synchronizedList(new ArrayList<>());
        List<Integer> ranWhenHandled = Collections.synchronizedList(new ArrayList<>());

        Thread canceller = Thread.ofPlatform().unstarted(root::cancel);
        canceller.setUncaughtExceptionHandler((thread, failure) -> {
            ranWhenHandled.add(ran.get());
            handled.add(failure);
            throw new IllegalStateException("a failing handler must not matter either");
        });
        canceller.start();
        canceller.join();

        assertThat(handled).containsExactly(boom, error);
        assertThat(ranWhenHandled).as("handled after all actions ran").containsExactly(2, 2);
        assertThat(child.isDone()).isTrue();
        assertThat(root.cause()).isInstanceOf(CancellationException.class);
    }

    @Test
    void failingActionRunAtOnceGoesToTheHandlerNotToTheCaller() throws InterruptedException {
        CancellableContext context = Context.background().withCancel();
        context.cancel();
        RuntimeException boom = new RuntimeException("boom");
        List<Throwable> handled = Collections.synchronizedList(new ArrayList<>());
        AtomicReference<Registration> registration = new AtomicReference<>();

        Thread registrar = Thread.ofPlatform().unstarted(() -> registration.set(context.onDone(() -> { throw boom; })));
        registrar.setUncaughtExceptionHandler((thread, failure) -> handled.add(failure));
        registrar.start();
        registrar.join();

        assertThat(handled).containsExactly(boom);
        assertThat(registration.get()).isNotNull();
    }

    @Test
    void closeCancelsWithClosedCauseAndMarksClosed() {
        CancellableContext context = Context.background().withCancel();
        CancellableContext child = context.withCancel();
        assertThat(context.isClosed()).isFalse();

        context.close();

        assertThat(context.isClosed()).isTrue();
        assertThat(context.cause()).isInstanceOf(CancellationException.class)
                .hasMessageStartingWith("context closed (by thread \"" + Thread.currentThread().getName() + "\"");
        assertThat(child.cause()).isSameAs(context.cause());
        assertThat(child.isClosed()).as("only the owner's close() closes").isFalse();
        context.close();
        assertThat(context.isClosed()).isTrue();
    }

    @Test
    void closeAfterCancelKeepsTheFirstCause() {
        CancellableContext context = Context.background().withCancel();
        RuntimeException cause = new RuntimeException("first");
        context.cancel(cause);
        assertThat(context.isClosed()).isFalse();
        context.close();
        assertThat(context.isClosed()).isTrue();
        assertThat(context.cause()).isSameAs(cause);
    }

    @Test
    void closeWaitsForActionsRunningInAnotherThread() throws InterruptedException {
        CancellableContext context = Context.background().withCancel();
        CountDownLatch actionStarted = new CountDownLatch(1);
        CountDownLatch releaseAction = new CountDownLatch(1);
        AtomicInteger finishedActions = new AtomicInteger();
        context.onDone(() -> {
            actionStarted.countDown();
            awaitUninterruptibly(releaseAction);
            finishedActions.incrementAndGet();
        });
        Thread canceller = Thread.ofPlatform().start(context::cancel);
        assertThat(actionStarted.await(10, TimeUnit.SECONDS)).isTrue();

        AtomicInteger finishedWhenClosed = new AtomicInteger(-1);
        Thread closer = Thread.ofPlatform().start(() -> {
            context.close();
            finishedWhenClosed.set(finishedActions.get());
        });
        awaitState(closer, Thread.State.WAITING);
        assertThat(context.isClosed()).isFalse();

        releaseAction.countDown();
        closer.join(TimeUnit.SECONDS.toMillis(10));
        canceller.join(TimeUnit.SECONDS.toMillis(10));
        assertThat(closer.isAlive()).isFalse();
        assertThat(finishedWhenClosed).hasValue(1);
        assertThat(context.isClosed()).isTrue();
    }

    @Test
    void closeFromInsideItsOwnActionDoesNotDeadlock() {
        CancellableContext parent = Context.background().withCancel();
        CancellableContext child = parent.withCancel();
        AtomicInteger runs = new AtomicInteger();
        child.onDone(child::close);
        child.onDone(runs::incrementAndGet);
        parent.onDone(child::close); // closes the child before the child's actions had their turn

        parent.cancel();

        assertThat(child.isClosed()).isTrue();
        assertThat(runs).hasValue(1);
    }

    @Test
    void closeKeepsTheInterruptStatus() {
        CancellableContext context = Context.background().withCancel();
        Thread.currentThread().interrupt();
        try {
            context.close();
            assertThat(Thread.currentThread().isInterrupted()).isTrue();
        } finally {
            Thread.interrupted();
        }
    }

    @Test
    void toStringShowsStateDeadlineAndValueNames() {
        CancellableContext context = Context.background().withTimeout(java.time.Duration.ofHours(1));
        Context withValues = context.withValue(ContextKey.ofString("request-id"), "secret")
                .withValue(ContextKey.of("attempt", Integer.class), 2);
        assertThat(context.toString()).startsWith("CancellableContext[live, deadline ");
        assertThat(withValues.toString()).startsWith("Context[live").endsWith("values [attempt, request-id]]")
                .doesNotContain("secret");
        context.close();
        assertThat(withValues.toString()).contains("done: dev.nativescope.ContextCanceledException: context closed (by thread");
        assertThat(Context.background().withValue(ContextKey.ofString("k"), "v").toString())
                .isEqualTo("Context[never done, values [k]]");
    }

    static void awaitUninterruptibly(CountDownLatch latch) {
        boolean interrupted = false;
        while (true) {
            try {
                latch.await();
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    static void awaitState(Thread thread, Thread.State state) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (thread.getState() != state) {
            assertThat(System.nanoTime() - deadline).as("%s reaching %s", thread, state).isNegative();
            Thread.sleep(1);
        }
    }
}
