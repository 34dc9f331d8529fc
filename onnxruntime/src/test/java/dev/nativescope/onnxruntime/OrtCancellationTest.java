package dev.nativescope.onnxruntime;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.DeadlineExceededException;
import dev.nativescope.call.CallMode;
import dev.nativescope.call.NativeThreads;
import dev.nativescope.reference.ReferencePredictors;
import dev.nativescope.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

/**
 * A long chain of MatMul nodes (sized from the measured time of one node to run for about
 * {@link #UNCANCELLED_RUN} when nothing stops it) stopped by a deadline, a cancel from another
 * thread, an interrupt and a close; after each, the same predictor runs a normal inference
 * correctly, so no terminate flag leaks into later runs.
 */
class OrtCancellationTest {
    static final int SIZE = 512;
    /** How long the long chain would run uncancelled on an idle core, at the least. */
    static final Duration UNCANCELLED_RUN = Duration.ofSeconds(40);

    @TempDir
    static Path dir;
    static OrtModels.LongChain longChain;
    /** How fast a stop must land: generous, but far below {@link #UNCANCELLED_RUN}. */
    static Duration promptly;
    static OrtPredictor chain;
    static Arena arena;
    static Tensor x;
    static Tensor y;

    @BeforeAll
    static void buildTheLongChain() throws Exception {
        longChain = OrtModels.longChain(dir, SIZE, UNCANCELLED_RUN);
        promptly = longChain.promptly();
        assertThat(longChain.uncancelled()).as("the long chain runs much longer than the stop bound")
                .isGreaterThan(promptly.multipliedBy(5));
        chain = OrtModels.open(longChain.model());
        arena = Arena.ofShared();
        x = OrtModels.tensor(arena, OrtModels.randomFloats(new Random(3), SIZE * SIZE), SIZE, SIZE);
        y = OrtModels.nanTensor(arena, SIZE, SIZE);
    }

    @AfterAll
    static void close() throws Exception {
        chain.close();
        arena.close();
        assertThat(OrtObjects.open()).as("per-run ORT objects left open").isZero();
    }

    /** After every stop, the same session still computes: one row through the whole chain is y = x. */
    @AfterEach
    void sameSessionStillRunsCorrectly() throws Exception {
        assertThat(Thread.interrupted()).as("test thread left interrupted").isFalse();
        float[] row = OrtModels.randomFloats(new Random(5), SIZE);
        try (Arena small = Arena.ofConfined()) {
            Tensor out = OrtModels.nanTensor(small, 1, SIZE);
            chain.run(Context.background(), Map.of("x", OrtModels.tensor(small, row, 1, SIZE)), Map.of("y", out));
            assertThat(out.toFloatArray()).containsExactly(row);
        }
        assertThat(OrtObjects.open()).isZero();
    }

    @Test
    void deadlineStopsTheRunPromptly() {
        Duration timeout = Duration.ofMillis(300);
        long start = System.nanoTime();
        try (CancellableContext ctx = Context.background().withTimeout(timeout)) {
            assertThatThrownBy(() -> chain.run(ctx, Map.of("x", x), Map.of("y", y)))
                    .isInstanceOfSatisfying(DeadlineExceededException.class, e -> assertThat(e.deadlineNanoTime())
                            .isEqualTo(ctx.deadlineNanoTime().getAsLong()))
                    .hasRootCauseInstanceOf(java.util.concurrent.TimeoutException.class);
            long afterDeadline = System.nanoTime() - ctx.deadlineNanoTime().getAsLong();
            assertThat(Duration.ofNanos(afterDeadline)).as("return after the deadline").isLessThan(promptly);
            assertThat(ctx.isDeadlineExceeded()).isTrue();
        }
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(timeout.plus(promptly));
    }

    /**
     * The run's deadline exception is built by the same translation as the call bridge's: thrown in the
     * calling thread, with a TimeoutException whose cause is the context's own expiry (the instance
     * every descendant shares), so a log shows both where the run stopped and when the deadline fired.
     * Mid-run (the deadline timer terminates ORT) and at entry (the context had already expired), where
     * the bridge's translation is deterministic too.
     */
    @Test
    void deadlineExceptionCarriesTheBridgesCauseChain() throws Exception {
        try (CancellableContext ctx = Context.background().withTimeout(Duration.ofMillis(100))) {
            Throwable midRun = catchThrowable(() -> chain.run(ctx, Map.of("x", x), Map.of("y", y)));
            assertLinkedToTheContextsExpiry(midRun, ctx.cause());
        }
        try (CancellableContext ctx = Context.background().withTimeout(Duration.ofMillis(1))) {
            while (!ctx.isDone()) {
                Thread.sleep(1);
            }
            Throwable ort = catchThrowable(() -> chain.run(ctx, Map.of("x", x), Map.of("y", y)));
            Throwable bridge = catchThrowable(() -> ReferencePredictors.spin(ctx, Duration.ofSeconds(30), stats -> { }));
            assertLinkedToTheContextsExpiry(ort, ctx.cause());
            assertLinkedToTheContextsExpiry(bridge, ctx.cause());
            assertThat(ort).hasMessage(bridge.getMessage());
        }
    }

    private static void assertLinkedToTheContextsExpiry(Throwable thrown, Throwable contextCause) {
        assertThat(thrown).isInstanceOf(DeadlineExceededException.class).isNotSameAs(contextCause)
                .hasMessage("native call stopped: context deadline exceeded");
        assertThat(thrown.getCause()).isInstanceOf(java.util.concurrent.TimeoutException.class);
        assertThat(thrown.getCause().getCause()).as("the context's own expiry").isSameAs(contextCause)
                .isInstanceOf(DeadlineExceededException.class);
    }

    @Test
    void expiredContextDoesNotRunAtAll() {
        try (CancellableContext ctx = Context.background().withTimeout(Duration.ZERO)) {
            long start = System.nanoTime();
            assertThatThrownBy(() -> chain.run(ctx, Map.of("x", x), Map.of("y", y)))
                    .isInstanceOf(DeadlineExceededException.class);
            assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(promptly);
        }
    }

    @Test
    void cancelFromAnotherThreadStopsTheRun() throws Exception {
        IllegalStateException why = new IllegalStateException("the client went away");
        try (CancellableContext ctx = Context.background().withCancel()) {
            Outcome outcome = Outcome.start(Thread.ofPlatform(), () -> chain.run(ctx, Map.of("x", x), Map.of("y", y)));
            Thread.sleep(200); // well inside the run
            long cancelled = System.nanoTime();
            ctx.cancel(why);
            Throwable thrown = outcome.await(promptly.plus(UNCANCELLED_RUN));
            assertThat(Duration.ofNanos(outcome.endedNanos - cancelled)).as("cancel to return").isLessThan(promptly);
            assertThat(thrown).isInstanceOf(CancellationException.class).isNotInstanceOf(DeadlineExceededException.class)
                    .hasCause(why);
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void interruptStopsTheRun(boolean virtual) throws Exception {
        interruptStops(virtual, () -> chain.run(Context.background(), Map.of("x", x), Map.of("y", y)));
    }

    /** runAllocating is offloaded from a virtual thread as run is, and an interrupt stops it the same way. */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void interruptStopsAnAllocatingRun(boolean virtual) throws Exception {
        interruptStops(virtual, () -> {
            try (OrtResult result = chain.runAllocating(Context.background(), Map.of("x", x), java.util.Set.of("y"))) {
                throw new AssertionError("the run completed: " + result);
            }
        });
    }

    private static void interruptStops(boolean virtual, Outcome.Body run) throws Exception {
        AtomicReference<Boolean> stillInterrupted = new AtomicReference<>();
        Thread.Builder builder = virtual ? Thread.ofVirtual() : Thread.ofPlatform();
        Outcome outcome = Outcome.start(builder, () -> {
            try {
                run.run();
            } finally {
                stillInterrupted.set(Thread.currentThread().isInterrupted());
            }
        });
        Thread.sleep(200);
        // ORT's run is a JNI call that would pin a virtual thread's carrier: it runs on a native thread.
        assertThat(dev.nativescope.call.NativeThreads.busyThreads()).as("native threads running the run")
                .isEqualTo(virtual ? 1 : 0);
        long interrupted = System.nanoTime();
        outcome.thread.interrupt();
        Throwable thrown = outcome.await(promptly.plus(UNCANCELLED_RUN));
        assertThat(Duration.ofNanos(outcome.endedNanos - interrupted)).as("interrupt to return").isLessThan(promptly);
        assertThat(thrown).isInstanceOf(CancellationException.class).hasCauseInstanceOf(InterruptedException.class);
        assertThat(stillInterrupted.get()).as("interrupt status kept").isTrue();
    }

    @Test
    void closeStopsTheRunAndWaitsForIt() throws Exception {
        OrtPredictor second = OrtModels.open(longChain.model());
        Outcome outcome = Outcome.start(Thread.ofPlatform(), () -> second.run(Context.background(), Map.of("x", x), Map.of("y", y)));
        Thread.sleep(300);
        long closing = System.nanoTime();
        second.close();
        long closed = System.nanoTime();
        assertThat(outcome.thread.isAlive() && outcome.endedNanos == 0).as("close returned before the run").isFalse();
        Throwable thrown = outcome.await(promptly);
        assertThat(Duration.ofNanos(closed - closing)).as("close").isLessThan(promptly);
        assertThat(thrown).isInstanceOf(CancellationException.class).hasMessageContaining("closed");
    }

    /**
     * Two close() calls at once while a run is in flight (one from a virtual thread): both stop it and
     * return (the last run out wakes every waiting close), and later runs are refused. That no close
     * frees the session under a run is OrtRaceTest's.
     */
    @Test
    void concurrentClosesBothWaitForTheRun() throws Exception {
        OrtPredictor second = OrtModels.open(longChain.model());
        Outcome run = Outcome.start(Thread.ofPlatform(), () -> second.run(Context.background(), Map.of("x", x), Map.of("y", y)));
        Thread.sleep(300);
        List<Outcome> closers = List.of(Outcome.start(Thread.ofPlatform(), second::close),
                Outcome.start(Thread.ofVirtual(), second::close));
        for (Outcome closer : closers) {
            assertThat(closer.await(promptly)).as("close").isNull();
        }
        assertThat(run.await(promptly)).isInstanceOf(CancellationException.class).hasMessageContaining("closed");
        assertThatThrownBy(() -> second.run(Context.background(), Map.of("x", x), Map.of("y", y)))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("closed");
        second.close();
    }

    /**
     * The memory given to a run stays valid until it returns: closing the output's (and the
     * input's) shared arena from another thread while ORT works on it is refused, the run is
     * unharmed, and once it has returned the arena closes. From a virtual thread the run is offloaded
     * to a native thread, which holds the segments there.
     */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void closingTheTensorsArenaDuringARunIsRefused(boolean virtual) throws Exception {
        Arena outputArena = Arena.ofShared();
        Tensor out = OrtModels.nanTensor(outputArena, SIZE, SIZE);
        try (CancellableContext ctx = Context.background().withCancel()) {
            AtomicReference<Boolean> offloaded = new AtomicReference<>();
            Outcome outcome = Outcome.start(virtual ? Thread.ofVirtual() : Thread.ofPlatform(), () -> {
                offloaded.set(NativeThreads.offloads(CallMode.AUTO));
                chain.run(ctx, Map.of("x", x), Map.of("y", out));
            });
            Thread.sleep(300); // well inside the run
            assertThat(offloaded.get()).as("offloaded").isEqualTo(virtual);
            assertThatThrownBy(outputArena::close).isInstanceOf(IllegalStateException.class);
            assertThatThrownBy(arena::close).as("the input's arena").isInstanceOf(IllegalStateException.class);
            assertThat(outcome.endedNanos).as("the run is still in flight after the refused closes").isZero();
            assertThat(out.segment().scope().isAlive()).isTrue();
            ctx.cancel(new IllegalStateException("enough"));
            Throwable thrown = outcome.await(promptly.plus(UNCANCELLED_RUN));
            assertThat(thrown).isInstanceOf(CancellationException.class);
        }
        // The run has returned: nothing holds the arena any more.
        outputArena.close();
        assertThat(out.segment().scope().isAlive()).isFalse();
    }

    /**
     * Tensors of the running thread's own confined arena need no hold (only that thread could close
     * it, and it is inside the run): the run still stops on a cancel from another thread, another
     * thread's close is refused, and the arena is alive throughout; the owner closes it afterwards.
     */
    @Test
    void aRunOverItsOwnConfinedArenaStillStopsAndKeepsItsMemory() throws Exception {
        AtomicReference<Arena> owned = new AtomicReference<>();
        AtomicReference<Tensor> ownOut = new AtomicReference<>();
        CountDownLatch allocated = new CountDownLatch(1);
        try (CancellableContext ctx = Context.background().withCancel()) {
            Outcome outcome = Outcome.start(Thread.ofPlatform(), () -> {
                try (Arena confined = Arena.ofConfined()) {
                    owned.set(confined);
                    Tensor in = OrtModels.tensor(confined, OrtModels.randomFloats(new Random(4), SIZE * SIZE), SIZE, SIZE);
                    ownOut.set(OrtModels.nanTensor(confined, SIZE, SIZE));
                    allocated.countDown();
                    chain.run(ctx, Map.of("x", in), Map.of("y", ownOut.get()));
                }
            });
            assertThat(allocated.await(30, TimeUnit.SECONDS)).isTrue();
            Thread.sleep(300); // well inside the run
            assertThatThrownBy(owned.get()::close).isInstanceOf(WrongThreadException.class);
            assertThat(ownOut.get().segment().scope().isAlive()).isTrue();
            assertThat(outcome.endedNanos).as("the run is still in flight").isZero();
            ctx.cancel(new IllegalStateException("enough"));
            assertThat(outcome.await(promptly.plus(UNCANCELLED_RUN))).isInstanceOf(CancellationException.class);
        }
        assertThat(ownOut.get().segment().scope().isAlive()).as("closed by its owner after the run").isFalse();
    }

    @Test
    void aTensorWhoseArenaIsClosedFailsTheRunBeforeOrtSeesIt() {
        Arena freed = Arena.ofShared();
        Tensor out = OrtModels.nanTensor(freed, SIZE, SIZE);
        freed.close();
        assertThatThrownBy(() -> chain.run(Context.background(), Map.of("x", x), Map.of("y", out)))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageStartingWith("the tensor's memory was already freed");
    }

    /**
     * {@link OrtPredictor#runAllocating} stops as {@code run} does: a deadline, a cancel, an interrupt and
     * a close end it promptly with the same exceptions, and nothing it allocated is left open.
     */
    @Test
    void runAllocatingStopsLikeRun() throws Exception {
        java.util.Set<String> ys = java.util.Set.of("y");
        long created = OrtObjects.created();
        try (CancellableContext ctx = Context.background().withTimeout(Duration.ofMillis(200))) {
            assertThatThrownBy(() -> chain.runAllocating(ctx, Map.of("x", x), ys)).isInstanceOf(DeadlineExceededException.class);
            assertThat(Duration.ofNanos(System.nanoTime() - ctx.deadlineNanoTime().getAsLong())).isLessThan(promptly);
        }
        try (CancellableContext ctx = Context.background().withTimeout(Duration.ZERO)) {
            long before = OrtObjects.created();
            assertThatThrownBy(() -> chain.runAllocating(ctx, Map.of("x", x), ys)).isInstanceOf(DeadlineExceededException.class);
            assertThat(OrtObjects.created()).as("an expired context makes no ORT object").isEqualTo(before);
        }
        IllegalStateException why = new IllegalStateException("gone");
        try (CancellableContext ctx = Context.background().withCancel()) {
            Outcome outcome = Outcome.start(Thread.ofPlatform(), () -> chain.runAllocating(ctx, Map.of("x", x), ys).close());
            Thread.sleep(200);
            ctx.cancel(why);
            assertThat(outcome.await(promptly.plus(UNCANCELLED_RUN))).isInstanceOf(CancellationException.class).hasCause(why);
        }
        AtomicReference<Boolean> stillInterrupted = new AtomicReference<>();
        Outcome interrupted = Outcome.start(Thread.ofVirtual(), () -> {
            try {
                chain.runAllocating(Context.background(), Map.of("x", x), ys).close();
            } finally {
                stillInterrupted.set(Thread.currentThread().isInterrupted());
            }
        });
        Thread.sleep(200);
        interrupted.thread.interrupt();
        assertThat(interrupted.await(promptly.plus(UNCANCELLED_RUN))).isInstanceOf(CancellationException.class)
                .hasCauseInstanceOf(InterruptedException.class);
        assertThat(stillInterrupted.get()).isTrue();
        OrtPredictor second = OrtModels.open(longChain.model());
        Outcome closing = Outcome.start(Thread.ofPlatform(), () -> second.runAllocating(Context.background(), Map.of("x", x), ys).close());
        Thread.sleep(300);
        second.close();
        assertThat(closing.await(promptly)).isInstanceOf(CancellationException.class).hasMessageContaining("closed");
        assertThatThrownBy(() -> second.runAllocating(Context.background(), Map.of("x", x), ys))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("closed");
        assertThat(OrtObjects.open()).isZero();
        assertThat(OrtObjects.created()).as("the stopped runs made ORT objects").isGreaterThan(created);
        // And an uncancelled allocating run of one row returns y = x.
        float[] row = OrtModels.randomFloats(new Random(9), SIZE);
        try (Arena small = Arena.ofConfined();
             OrtResult result = chain.runAllocating(Context.background(), Map.of("x", OrtModels.tensor(small, row, 1, SIZE)), ys)) {
            assertThat(result.get("y").shape()).containsExactly(1, SIZE);
            assertThat(result.get("y").toFloatArray()).containsExactly(row);
        }
    }

    /** A run in its own thread and how it ended. */
    static final class Outcome {
        final Thread thread;
        final CountDownLatch done = new CountDownLatch(1);
        final AtomicReference<Throwable> thrown = new AtomicReference<>();
        volatile long endedNanos;

        interface Body {
            void run() throws Exception;
        }

        private Outcome(Thread.Builder builder, Body body) {
            thread = builder.unstarted(() -> {
                try {
                    body.run();
                } catch (Throwable e) {
                    thrown.set(e);
                } finally {
                    endedNanos = System.nanoTime();
                    done.countDown();
                }
            });
        }

        static Outcome start(Thread.Builder builder, Body body) {
            Outcome outcome = new Outcome(builder, body);
            outcome.thread.start();
            return outcome;
        }

        Throwable await(Duration limit) throws InterruptedException {
            assertThat(done.await(limit.toMillis(), TimeUnit.MILLISECONDS)).as("the run ended within %s", limit).isTrue();
            return thrown.get();
        }
    }
}
