package dev.nativescope.onnxruntime;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.DeadlineExceededException;
import dev.nativescope.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CancellationException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Randomized races of a stop (cancel, deadline, interrupt, close) against runs of a medium chain
 * (a few hundred microseconds per run, so stops land before, during and after runs). Every run
 * either completes with the right output (y = x) or ends with the exception of its stop; nothing
 * crashes, no per-run ORT object stays open. Iterations: {@code -Dnsc.ort.races=N} (default 1000).
 */
class OrtRaceTest {
    static final int SIZE = 64;
    static final int NODES = 48;
    static final int ITERATIONS = Integer.getInteger("nsc.ort.races", 1000);

    @TempDir
    static Path dir;
    static Path model;
    static long runNanos;

    @BeforeAll
    static void buildModel() throws Exception {
        model = OrtModels.chain(dir, NODES, SIZE);
        runNanos = OrtModels.nodeNanos(dir, SIZE, SIZE) * NODES;
        System.out.printf("medium chain: %d nodes of %dx%d, one run ~%.3f ms%n", NODES, SIZE, SIZE, runNanos / 1e6);
    }

    @AfterAll
    static void nothingLeaks() {
        assertThat(OrtObjects.open()).as("per-run ORT objects left open").isZero();
    }

    enum Stop { CANCEL, DEADLINE, INTERRUPT }

    @Test
    void stopsRaceRuns() throws Exception {
        Random random = new Random(Long.getLong("nsc.ort.seed", 20261123L));
        int completed = 0;
        int stopped = 0;
        try (OrtPredictor predictor = OrtModels.open(model); Arena arena = Arena.ofShared()) {
            float[] values = OrtModels.randomFloats(random, SIZE * SIZE);
            Tensor x = OrtModels.tensor(arena, values, SIZE, SIZE);
            Tensor y = OrtModels.nanTensor(arena, SIZE, SIZE);
            for (int i = 0; i < ITERATIONS; i++) {
                Stop stop = Stop.values()[random.nextInt(Stop.values().length)];
                long delayNanos = (long) (random.nextDouble() * 2 * runNanos);
                y.segment().fill((byte) 0xff); // NaN
                IllegalStateException why = new IllegalStateException("race " + i);
                try (CancellableContext ctx = stop == Stop.DEADLINE
                        ? Context.background().withTimeout(Duration.ofNanos(delayNanos))
                        : Context.background().withCancel()) {
                    AtomicReference<Throwable> thrown = new AtomicReference<>();
                    Thread runner = Thread.ofPlatform().start(() -> {
                        try {
                            predictor.run(ctx, Map.of("x", x), Map.of("y", y));
                        } catch (Throwable e) {
                            thrown.set(e);
                        }
                    });
                    spin(delayNanos);
                    switch (stop) {
                        case CANCEL -> ctx.cancel(why);
                        case INTERRUPT -> runner.interrupt();
                        case DEADLINE -> { }
                    }
                    runner.join(Duration.ofSeconds(30));
                    assertThat(runner.isAlive()).as("iteration %d: run still going", i).isFalse();
                    Throwable e = thrown.get();
                    if (e == null) {
                        completed++;
                        assertThat(y.segment().toArray(ValueLayout.JAVA_FLOAT)).as("iteration %d output", i).containsExactly(values);
                    } else {
                        stopped++;
                        assertThat(e).as("iteration %d (%s)", i, stop).isInstanceOf(CancellationException.class);
                        switch (stop) {
                            case CANCEL -> assertThat(e).hasCause(why);
                            case DEADLINE -> assertThat(e).isInstanceOf(DeadlineExceededException.class);
                            case INTERRUPT -> assertThat(e).hasCauseInstanceOf(InterruptedException.class);
                        }
                    }
                }
            }
        }
        System.out.printf("stop vs run: %d iterations, %d completed, %d stopped%n", ITERATIONS, completed, stopped);
        assertThat(completed).as("runs that completed").isPositive();
        assertThat(stopped).as("runs that were stopped").isPositive();
        assertThat(OrtObjects.open()).isZero();
    }

    @Test
    void closeRacesRuns() throws Exception {
        Random random = new Random(Long.getLong("nsc.ort.seed", 20261124L));
        int completed = 0;
        int cancelled = 0;
        int refused = 0;
        try (Arena arena = Arena.ofShared()) {
            float[] values = OrtModels.randomFloats(random, SIZE * SIZE);
            Tensor x = OrtModels.tensor(arena, values, SIZE, SIZE);
            for (int i = 0; i < ITERATIONS; i++) {
                OrtPredictor predictor = OrtModels.open(model);
                AtomicInteger done = new AtomicInteger();
                AtomicInteger stoppedByClose = new AtomicInteger();
                AtomicInteger refusedAfterClose = new AtomicInteger();
                AtomicReference<Throwable> failure = new AtomicReference<>();
                List<Thread> runners = new ArrayList<>();
                for (int r = 0; r < 2; r++) {
                    Tensor y = OrtModels.nanTensor(arena, SIZE, SIZE);
                    runners.add(Thread.ofPlatform().start(() -> {
                        try {
                            while (true) {
                                y.segment().fill((byte) 0xff);
                                try {
                                    predictor.run(Context.background(), Map.of("x", x), Map.of("y", y));
                                } catch (CancellationException e) {
                                    assertThat(e).hasMessageContaining("closed");
                                    stoppedByClose.incrementAndGet();
                                    continue;
                                } catch (IllegalStateException e) {
                                    assertThat(e).hasMessageContaining("closed");
                                    refusedAfterClose.incrementAndGet();
                                    return;
                                }
                                assertThat(y.segment().toArray(ValueLayout.JAVA_FLOAT)).containsExactly(values);
                                done.incrementAndGet();
                            }
                        } catch (Throwable e) {
                            failure.set(e);
                        }
                    }));
                }
                spin((long) (random.nextDouble() * 3 * runNanos));
                predictor.close();
                for (Thread runner : runners) {
                    runner.join(Duration.ofSeconds(30));
                    assertThat(runner.isAlive()).as("iteration %d: runner still going", i).isFalse();
                }
                assertThat(failure.get()).as("iteration %d", i).isNull();
                completed += done.get();
                cancelled += stoppedByClose.get();
                refused += refusedAfterClose.get();
            }
        }
        System.out.printf("close vs run: %d iterations, %d runs completed, %d cancelled by close, %d refused after close%n",
                ITERATIONS, completed, cancelled, refused);
        assertThat(refused).isEqualTo(2 * ITERATIONS);
        assertThat(completed + cancelled).isPositive();
        assertThat(OrtObjects.open()).isZero();
    }

    private static void spin(long nanos) {
        long end = System.nanoTime() + nanos;
        while (System.nanoTime() - end < 0) {
            Thread.onSpinWait();
        }
    }
}
