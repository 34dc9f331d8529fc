package dev.nativescope.onnxruntime;

import dev.nativescope.Context;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;
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
import java.util.Set;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The reuse of ORT views across runs ({@link OrtBinding}): a run over the same tensor objects makes
 * no new view, a run over other tensors (also other objects over the same memory) does, and reused
 * views are checked like fresh ones: a closed arena, another thread's confined arena. Randomized:
 * threads mixing their own, shared and fresh tensors in concurrent runs always get the right output,
 * and every view is closed with the predictor. Model: a chain of identity MatMuls (y = x).
 */
class OrtBindingReuseTest {
    static final int SIZE = 8;

    @TempDir
    static Path dir;
    static Path model;

    @BeforeAll
    static void buildModel() throws Exception {
        model = OrtModels.chain(dir, 2, SIZE);
    }

    @Test
    void aRunOverTheSameTensorsMakesNoViewsAndClosingThePredictorClosesThem() throws Exception {
        long cachedBefore = OrtObjects.cached();
        try (Arena arena = Arena.ofShared()) {
            float[] values = OrtModels.randomFloats(new Random(1), SIZE * SIZE);
            Tensor x = OrtModels.tensor(arena, values, SIZE, SIZE);
            Tensor y = OrtModels.nanTensor(arena, SIZE, SIZE);
            Map<String, Tensor> inputs = Map.of("x", x);
            Map<String, Tensor> outputs = Map.of("y", y);
            try (OrtPredictor predictor = OrtModels.open(model)) {
                long created = OrtObjects.created();
                predictor.run(Context.background(), inputs, outputs);
                assertThat(OrtObjects.created() - created).as("RunOptions and two views").isEqualTo(3);
                assertThat(OrtObjects.cached() - cachedBefore).as("views kept for reuse").isEqualTo(2);

                for (int i = 0; i < 5; i++) {
                    y.segment().fill((byte) 0xff);
                    created = OrtObjects.created();
                    // Other map objects, same names and tensor objects: reused.
                    predictor.run(Context.background(), Map.of("x", x), Map.of("y", y));
                    assertThat(OrtObjects.created() - created).as("RunOptions only").isEqualTo(1);
                    assertThat(y.segment().toArray(ValueLayout.JAVA_FLOAT)).containsExactly(values);
                }
                assertThat(OrtObjects.open()).as("per-run objects between runs").isZero();

                // A new Tensor object over the same memory is another tensor: fresh views.
                created = OrtObjects.created();
                Tensor sameMemory = Tensor.of(x.segment(), DType.FLOAT32, SIZE, SIZE);
                predictor.run(Context.background(), Map.of("x", sameMemory), outputs);
                assertThat(OrtObjects.created() - created).isEqualTo(3);
                assertThat(OrtObjects.cached() - cachedBefore).as("two bindings kept").isEqualTo(4);

                // A third set replaces one of the two kept, closing its views.
                Tensor third = Tensor.of(x.segment(), DType.FLOAT32, SIZE, SIZE);
                predictor.run(Context.background(), Map.of("x", third), outputs);
                assertThat(OrtObjects.cached() - cachedBefore).isEqualTo(4);
                assertThat(OrtObjects.open()).isZero();

                // runAllocating reuses its input views the same way.
                try (OrtResult first = predictor.runAllocating(Context.background(), inputs, Set.of("y"))) {
                    assertThat(first.get("y").segment().toArray(ValueLayout.JAVA_FLOAT)).containsExactly(values);
                }
                created = OrtObjects.created();
                try (OrtResult second = predictor.runAllocating(Context.background(), inputs, Set.of("y"))) {
                    assertThat(OrtObjects.created() - created).as("RunOptions and the output ORT allocated").isEqualTo(2);
                    assertThat(second.get("y").segment().toArray(ValueLayout.JAVA_FLOAT)).containsExactly(values);
                }
            }
        }
        assertThat(OrtObjects.cached()).as("views left after close").isEqualTo(cachedBefore);
        assertThat(OrtObjects.open()).isZero();
    }

    @Test
    void reusedViewsOfAClosedArenaAreRefusedBeforeOrtRuns() throws Exception {
        try (OrtPredictor predictor = OrtModels.open(model); Arena kept = Arena.ofShared()) {
            Tensor y = OrtModels.nanTensor(kept, SIZE, SIZE);
            Arena inputArena = Arena.ofShared();
            Tensor x = OrtModels.tensor(inputArena, OrtModels.randomFloats(new Random(2), SIZE * SIZE), SIZE, SIZE);
            predictor.run(Context.background(), Map.of("x", x), Map.of("y", y));
            inputArena.close();
            // The binding for (x, y) is cached; its view of x now addresses freed memory.
            assertThatThrownBy(() -> predictor.run(Context.background(), Map.of("x", x), Map.of("y", y)))
                    .isInstanceOf(IllegalStateException.class).hasMessageContaining("arena is closed");
            assertThat(OrtObjects.open()).isZero();
        }
    }

    @Test
    void reusedViewsOfAnotherThreadsConfinedArenaAreRefused() throws Exception {
        try (OrtPredictor predictor = OrtModels.open(model); Arena arena = Arena.ofConfined()) {
            float[] values = OrtModels.randomFloats(new Random(4), SIZE * SIZE);
            Tensor x = OrtModels.tensor(arena, values, SIZE, SIZE);
            Tensor y = OrtModels.nanTensor(arena, SIZE, SIZE);
            predictor.run(Context.background(), Map.of("x", x), Map.of("y", y));
            AtomicReference<Throwable> thrown = new AtomicReference<>();
            Thread other = Thread.ofPlatform().start(() -> {
                try {
                    predictor.run(Context.background(), Map.of("x", x), Map.of("y", y));
                } catch (Throwable e) {
                    thrown.set(e);
                }
            });
            other.join(Duration.ofSeconds(30));
            assertThat(thrown.get()).isInstanceOf(WrongThreadException.class);
            // The owner still runs on the kept views.
            y.segment().fill((byte) 0xff);
            predictor.run(Context.background(), Map.of("x", x), Map.of("y", y));
            assertThat(y.segment().toArray(ValueLayout.JAVA_FLOAT)).containsExactly(values);
        }
    }

    /**
     * Threads run one predictor at once, each picking at random its own tensors (a hit for its slot),
     * tensors shared by all threads (two runs over the same binding at once: one takes it, the others
     * make their own), or fresh tensor objects (a miss that evicts); every output is right, and after
     * close no view and no per-run object is left.
     */
    @Test
    void concurrentRunsMixingKeptSharedAndFreshTensorsAreAlwaysRight() throws Exception {
        long seed = Long.getLong("nsc.ort.seed", 20261203L);
        int threads = 4;
        int runs = Integer.getInteger("nsc.ort.reuseRuns", 300);
        long cachedBefore = OrtObjects.cached();
        try (Arena arena = Arena.ofShared(); OrtPredictor predictor = OrtModels.open(model)) {
            float[] sharedValues = OrtModels.randomFloats(new Random(seed), SIZE * SIZE);
            Tensor sharedX = OrtModels.tensor(arena, sharedValues, SIZE, SIZE);
            CyclicBarrier start = new CyclicBarrier(threads);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            List<Thread> workers = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                Random random = new Random(seed + t + 1);
                workers.add(Thread.ofPlatform().start(() -> {
                    try {
                        float[] ownValues = OrtModels.randomFloats(random, SIZE * SIZE);
                        Tensor ownX = OrtModels.tensor(arena, ownValues, SIZE, SIZE);
                        Tensor ownY = OrtModels.nanTensor(arena, SIZE, SIZE);
                        start.await();
                        for (int i = 0; i < runs; i++) {
                            int pick = random.nextInt(3);
                            Tensor x = switch (pick) {
                                case 0 -> ownX;
                                case 1 -> sharedX;
                                default -> Tensor.of(ownX.segment(), DType.FLOAT32, SIZE, SIZE);
                            };
                            float[] expected = pick == 1 ? sharedValues : ownValues;
                            ownY.segment().fill((byte) 0xff);
                            predictor.run(Context.background(), Map.of("x", x), Map.of("y", ownY));
                            assertThat(ownY.segment().toArray(ValueLayout.JAVA_FLOAT)).as("run %d, pick %d", i, pick)
                                    .containsExactly(expected);
                        }
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                }));
            }
            for (Thread worker : workers) {
                worker.join(Duration.ofSeconds(120));
                assertThat(worker.isAlive()).isFalse();
            }
            assertThat(failure.get()).isNull();
            assertThat(OrtObjects.open()).as("per-run objects once the runs ended").isZero();
            assertThat(OrtObjects.cached() - cachedBefore).as("at most two bindings kept")
                    .isBetween(0L, 2L * OrtBinding.Cache.SLOTS);
        }
        assertThat(OrtObjects.cached()).as("views left after close").isEqualTo(cachedBefore);
    }
}
