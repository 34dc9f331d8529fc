package dev.nativescope.interop;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The thread's blocker stays installed between hooks ({@link InterruptHook}, "One blocker per
 * thread, left installed"). What that must not break, for platform and virtual threads:
 * <ul>
 * <li>an NIO channel used between two hooks clears the blocker; the next hook must still hear an
 *     interrupt (a hook that trusted the blocker left from its last entry would not);</li>
 * <li>an interrupt that lands while no hook is entered fires nothing, and the next hook fires at
 *     entry (the status is still set);</li>
 * <li>an interrupt racing a hook's exit either fires it before {@code exit()} returns or not at
 *     all: never after (a late fire would cancel the frame's next call), and never twice; the outer
 *     hooks of an interrupted thread all fire by their exits.</li>
 * </ul>
 */
class InterruptHookStickyBlockerTest {

    @TempDir
    Path dir;

    @Test
    void aHookAfterNioOnTheSameThreadStillHearsAnInterrupt() throws Exception {
        Path file = Files.write(dir.resolve("data"), new byte[64]);
        for (boolean virtual : new boolean[] {false, true}) {
            SplittableRandom random = new SplittableRandom(7);
            for (int round = 0; round < 200; round++) {
                boolean nioBetween = random.nextBoolean();
                int earlierHooks = random.nextInt(3);
                AtomicInteger fired = new AtomicInteger();
                CountDownLatch entered = new CountDownLatch(1);
                AtomicReference<Throwable> failure = new AtomicReference<>();
                Thread worker = (virtual ? Thread.ofVirtual() : Thread.ofPlatform()).start(() -> {
                    try {
                        for (int i = 0; i < earlierHooks; i++) { // leave the blocker installed from earlier hooks
                            InterruptHook earlier = new InterruptHook(() -> failure.set(new AssertionError("earlier hook fired")));
                            earlier.enter();
                            earlier.exit();
                        }
                        if (nioBetween) { // clears the thread's blocker (its end())
                            try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
                                channel.read(ByteBuffer.allocate(16), 0);
                            }
                        }
                        InterruptHook hook = new InterruptHook(fired::incrementAndGet);
                        hook.enter();
                        try {
                            entered.countDown();
                            long giveUp = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                            while (fired.get() == 0 && System.nanoTime() - giveUp < 0) {
                                Thread.onSpinWait(); // not a blocking wait: that would take the blocker slot
                            }
                        } finally {
                            hook.exit();
                        }
                    } catch (Throwable t) {
                        failure.set(t);
                    }
                });
                assertThat(entered.await(30, TimeUnit.SECONDS)).isTrue();
                worker.interrupt();
                worker.join();
                assertThat(failure.get()).isNull();
                assertThat(fired).as("virtual %s, round %d, NIO between %s, %d earlier hooks", virtual, round,
                        nioBetween, earlierHooks).hasValue(1);
            }
        }
    }

    @Test
    void anInterruptBetweenHooksFiresNothingAndTheNextHookAtEntry() throws Exception {
        for (boolean virtual : new boolean[] {false, true}) {
            AtomicInteger firstFired = new AtomicInteger();
            AtomicInteger secondFired = new AtomicInteger();
            CountDownLatch idle = new CountDownLatch(1);
            CountDownLatch interrupted = new CountDownLatch(1);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            int[] firedAtEntry = {-1};
            Thread worker = (virtual ? Thread.ofVirtual() : Thread.ofPlatform()).start(() -> {
                try {
                    InterruptHook first = new InterruptHook(firstFired::incrementAndGet);
                    first.enter();
                    first.exit();
                    idle.countDown();
                    while (!Thread.currentThread().isInterrupted()) {
                        Thread.onSpinWait(); // no blocking wait: it would clear the blocker left installed
                    }
                    interrupted.await(30, TimeUnit.SECONDS); // returns at once (interrupted): fine
                } catch (InterruptedException expected) {
                    Thread.currentThread().interrupt(); // keep the status for the next hook
                } catch (Throwable t) {
                    failure.set(t);
                    return;
                }
                InterruptHook second = new InterruptHook(secondFired::incrementAndGet);
                second.enter();
                firedAtEntry[0] = secondFired.get();
                second.exit();
            });
            assertThat(idle.await(30, TimeUnit.SECONDS)).isTrue();
            worker.interrupt(); // lands on the blocker left installed, with no hook on it
            interrupted.countDown();
            worker.join();
            assertThat(failure.get()).isNull();
            assertThat(firstFired).as("virtual %s: the exited hook", virtual).hasValue(0);
            assertThat(firedAtEntry[0]).as("virtual %s: the next hook fires at entry", virtual).isEqualTo(1);
        }
    }

    @Test
    void interruptsRacingExitsNeverFireAHookAfterItsExit() throws Exception {
        for (boolean virtual : new boolean[] {false, true}) {
            SplittableRandom random = new SplittableRandom(virtual ? 11 : 5);
            AtomicInteger lateFires = new AtomicInteger();
            AtomicInteger missed = new AtomicInteger();
            for (int round = 0; round < 2_000; round++) {
                int depth = 1 + random.nextInt(3);
                int spinBeforeExit = random.nextInt(2_000);
                long interruptDelay = random.nextInt(40_000);
                CountDownLatch entered = new CountDownLatch(1);
                AtomicReference<Throwable> failure = new AtomicReference<>();
                Thread worker = (virtual ? Thread.ofVirtual() : Thread.ofPlatform()).start(() -> {
                    try {
                        InterruptHook[] hooks = new InterruptHook[depth];
                        boolean[][] exited = new boolean[depth][1];
                        AtomicInteger[] fired = new AtomicInteger[depth];
                        for (int d = 0; d < depth; d++) {
                            int at = d;
                            fired[d] = new AtomicInteger();
                            hooks[d] = new InterruptHook(() -> {
                                synchronized (exited[at]) {
                                    if (exited[at][0]) {
                                        lateFires.incrementAndGet();
                                    }
                                }
                                fired[at].incrementAndGet();
                            });
                            hooks[d].enter();
                        }
                        entered.countDown();
                        for (int i = 0; i < spinBeforeExit; i++) {
                            Thread.onSpinWait();
                        }
                        boolean interruptedBeforeExits = Thread.currentThread().isInterrupted();
                        for (int d = depth - 1; d >= 0; d--) {
                            hooks[d].exit();
                            synchronized (exited[d]) {
                                exited[d][0] = true;
                            }
                        }
                        for (int d = 0; d < depth; d++) {
                            if (fired[d].get() > 1) {
                                failure.set(new AssertionError("hook " + d + " fired " + fired[d] + " times"));
                            }
                        }
                        if (interruptedBeforeExits) {
                            // Interrupted while all were entered: each outer hook has fired by its
                            // exit (the inner exit re-arms it, the status is set). The innermost may
                            // not have: an interrupt sets the status before it picks the blocker, and
                            // one that the exit beats to the JDK's lock is an interrupt after the
                            // stretch (CancellationSignal.close() names that window).
                            for (int d = 0; d < depth - 1; d++) {
                                if (fired[d].get() != 1) {
                                    missed.incrementAndGet();
                                }
                            }
                        }
                    } catch (Throwable t) {
                        failure.set(t);
                    }
                });
                assertThat(entered.await(30, TimeUnit.SECONDS)).isTrue();
                long until = System.nanoTime() + interruptDelay;
                while (System.nanoTime() - until < 0) {
                    Thread.onSpinWait();
                }
                worker.interrupt();
                worker.join();
                assertThat(failure.get()).as("virtual %s, round %d", virtual, round).isNull();
            }
            // Wait out interrupters' closes that might still be running, then look.
            Thread.sleep(50);
            assertThat(lateFires).as("virtual %s: fires after exit() returned", virtual).hasValue(0);
            assertThat(missed).as("virtual %s: entered hooks not fired by an interrupt before their exit", virtual).hasValue(0);
        }
    }
}
