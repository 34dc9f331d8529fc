package dev.nativescope.interop;

import org.junit.jupiter.api.Test;

import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * An {@link InterruptHook} that moves between threads (a pooled call frame's hook does, from one
 * virtual thread to the next) works on the stack of the thread that enters it now, not the one it
 * remembers from its last entry: the outer hook of the new thread still hears an interrupt after
 * the moved hook's nested exit. Randomized: three hooks shared by a new thread each round, entered
 * in random order 1-3 deep and interrupted at a random depth: every hook still active fires (the
 * innermost at the interrupt, the outer ones when the inner exit re-enters them), none other.
 */
class InterruptHookThreadsTest {

    @Test
    void aHookEnteredOnAnotherThreadHandsTheBlockerBackToThatThreadsOuterHook() throws Exception {
        AtomicInteger movedFired = new AtomicInteger();
        InterruptHook moved = new InterruptHook(movedFired::incrementAndGet);
        // Entered and exited on one thread first: the hook now remembers that thread's stack.
        Thread first = Thread.ofPlatform().start(() -> {
            moved.enter();
            moved.exit();
        });
        first.join();

        CountDownLatch nestedDone = new CountDownLatch(1);
        CountDownLatch outerFired = new CountDownLatch(1);
        CountDownLatch interrupted = new CountDownLatch(1);
        Thread second = Thread.ofPlatform().start(() -> {
            InterruptHook outer = new InterruptHook(outerFired::countDown);
            outer.enter();
            try {
                moved.enter(); // nested, on this thread's stack
                moved.exit();  // must re-enter `outer`, the innermost hook still active here
                nestedDone.countDown();
                awaitQuietly(interrupted);
            } finally {
                outer.exit();
            }
        });
        assertThat(nestedDone.await(30, TimeUnit.SECONDS)).isTrue();
        second.interrupt();
        interrupted.countDown();
        assertThat(outerFired.await(30, TimeUnit.SECONDS)).as("the outer hook heard the interrupt").isTrue();
        second.join();
        assertThat(movedFired).as("the moved hook had exited: not fired").hasValue(0);
    }

    @Test
    void hooksSharedByThreadsInTurnNeverLoseAnInterrupt() throws Exception {
        Random random = new Random(12);
        InterruptHook[] shared = new InterruptHook[3];
        AtomicInteger[] fired = new AtomicInteger[shared.length];
        for (int round = 0; round < 300; round++) {
            for (int i = 0; i < shared.length; i++) {
                if (shared[i] == null || !shared[i].isOpen()) { // a fired hook cannot fire again: replace it
                    fired[i] = new AtomicInteger();
                    shared[i] = new InterruptHook(fired[i]::incrementAndGet);
                }
            }
            int depth = 1 + random.nextInt(3);
            int interruptAt = random.nextInt(depth); // the innermost hook active when the interrupt comes
            int[] order = {0, 1, 2};
            for (int i = 2; i > 0; i--) {
                int j = random.nextInt(i + 1);
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
            int[] openAfter = new int[1];
            CountDownLatch ready = new CountDownLatch(1);
            Thread worker = Thread.ofPlatform().start(() -> {
                // Enter `depth` hooks, exit down to `interruptAt + 1` of them, then wait until the
                // innermost one has fired (spinning: a blocking wait would take the blocker slot itself;
                // not until isInterrupted(): the interrupter sets the status before it reads the blocker).
                // Bounded, so a hook that never fires fails the assertions below instead of hanging.
                for (int d = 0; d < depth; d++) {
                    shared[order[d]].enter();
                }
                for (int d = depth - 1; d > interruptAt; d--) {
                    shared[order[d]].exit();
                }
                ready.countDown();
                long giveUp = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (shared[order[interruptAt]].isOpen() && System.nanoTime() - giveUp < 0) {
                    Thread.onSpinWait();
                }
                for (int d = interruptAt; d >= 0; d--) {
                    shared[order[d]].exit();
                }
                openAfter[0] = Thread.interrupted() ? 1 : 0;
            });
            assertThat(ready.await(30, TimeUnit.SECONDS)).isTrue();
            worker.interrupt(); // from another thread: a self-interrupt does not run the blocker
            worker.join();
            // The innermost active hook hears the interrupt; each outer one, re-entered by the inner
            // exit with the thread still interrupted, fires then; the hooks exited before it never do.
            for (int d = 0; d < depth; d++) {
                assertThat(fired[order[d]]).as("round %d: hook at depth %d of %d, interrupted at %d", round, d, depth,
                        interruptAt).hasValue(d <= interruptAt ? 1 : 0);
            }
            assertThat(openAfter[0]).as("the interrupt status is kept").isEqualTo(1);
        }
    }

    private static void awaitQuietly(CountDownLatch latch) {
        while (true) {
            try {
                latch.await();
                return;
            } catch (InterruptedException expected) {
                // the interrupt we wait for; the status is cleared by the throw: keep waiting for the latch
            }
        }
    }
}
