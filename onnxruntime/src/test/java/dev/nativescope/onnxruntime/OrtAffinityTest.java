package dev.nativescope.onnxruntime;

import ai.onnxruntime.OrtSession;
import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.call.Affinity;
import dev.nativescope.tensor.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CancellationException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Issue 14 item 3 for ONNX Runtime: a predictor opened with an {@link Affinity} runs every node of
 * every run on one native thread, whichever threads (platform, virtual, several at once) call it.
 * The thread is observed by ONNX Runtime itself: its profiler records the thread id of each node it
 * runs (with one intra-op thread, the thread that called run). The same probe without an affinity
 * sees the callers' threads, so it can tell threads apart.
 */
class OrtAffinityTest {
    static final int SIZE = 8;
    static final int RUNS_PER_CALLER = 20;
    /** The class's temporary directory: the model and ORT's profiles. */
    static Path dir;
    /** An identity chain, y = x. */
    static Path model;

    @BeforeAll
    static void writeTheIdentityChain(@TempDir Path tmp) throws Exception {
        dir = tmp;
        model = OrtModels.chain(tmp, 3, SIZE);
    }

    @Test
    void everyRunOfTheSessionRunsOnTheAffinitysOneNativeThread() throws Exception {
        try (Affinity affinity = Affinity.create()) {
            assertThat(nodeThreadsOfRuns("affinity", affinity))
                    .as("thread ids of the nodes ORT ran, all runs from six callers").hasSize(1);
        }
    }

    /** The control: without an affinity the profiler sees the callers' own threads (inline runs). */
    @Test
    void withoutAnAffinityTheProbeSeesTheCallersThreads() throws Exception {
        // Three platform callers run inline; the virtual ones go to the shared pool's threads.
        assertThat(nodeThreadsOfRuns("plain", null)).as("thread ids of the nodes ORT ran")
                .hasSizeGreaterThanOrEqualTo(3);
    }

    /** Runs the model from several callers at once on a profiled predictor; the node threads ORT recorded. */
    private static Set<Long> nodeThreadsOfRuns(String name, Affinity affinity) throws Exception {
        OrtPredictor predictor;
        try (OrtSession.SessionOptions options = OrtModels.singleThreaded()) {
            options.enableProfiling(dir.resolve("profile-" + name).toString());
            predictor = affinity == null ? OrtPredictor.open(model, options) : OrtPredictor.open(model, options, affinity);
        }
        try {
            runFromSeveralCallers(predictor);
            return nodeThreads(predictor);
        } finally {
            predictor.close();
        }
    }

    @Test
    void confinedTensorsAreRefusedBeforeOrtRunsAndTheSessionStaysUsable() throws Exception {
        try (Affinity affinity = Affinity.create();
             OrtSession.SessionOptions options = OrtModels.singleThreaded();
             OrtPredictor predictor = OrtPredictor.open(model, options, affinity)) {
            try (Arena confined = Arena.ofConfined()) {
                Tensor x = OrtModels.tensor(confined, new float[SIZE * SIZE], SIZE, SIZE);
                Tensor y = OrtModels.nanTensor(confined, SIZE, SIZE);
                assertThatThrownBy(() -> predictor.run(Context.background(), Map.of("x", x), Map.of("y", y)))
                        .isInstanceOf(WrongThreadException.class);
                assertThat(y.toFloatArray()).as("ORT wrote nothing").containsOnly(Float.NaN);
            }
            try (Arena shared = Arena.ofShared()) {
                runOnce(predictor, shared, new Random(2));
            }
        }
    }

    @Test
    void aCancelledContextStopsTheRunOnTheAffinity() throws Exception {
        try (Affinity affinity = Affinity.create();
             OrtSession.SessionOptions options = OrtModels.singleThreaded();
             OrtPredictor predictor = OrtPredictor.open(model, options, affinity);
             Arena shared = Arena.ofShared()) {
            Tensor x = OrtModels.tensor(shared, new float[SIZE * SIZE], SIZE, SIZE);
            Tensor y = OrtModels.nanTensor(shared, SIZE, SIZE);
            try (CancellableContext ctx = Context.background().withCancel()) {
                ctx.cancel();
                assertThatThrownBy(() -> predictor.run(ctx, Map.of("x", x), Map.of("y", y)))
                        .isInstanceOf(CancellationException.class);
            }
            runOnce(predictor, shared, new Random(3));
        }
    }

    @Test
    void aClosedAffinityRefusesRunsAndThePredictorStillCloses() throws Exception {
        Affinity affinity = Affinity.create();
        OrtPredictor predictor;
        try (OrtSession.SessionOptions options = OrtModels.singleThreaded()) {
            predictor = OrtPredictor.open(model, options, affinity);
        }
        affinity.close();
        try (Arena shared = Arena.ofShared()) {
            Tensor x = OrtModels.tensor(shared, new float[SIZE * SIZE], SIZE, SIZE);
            Tensor y = OrtModels.nanTensor(shared, SIZE, SIZE);
            assertThatThrownBy(() -> predictor.run(Context.background(), Map.of("x", x), Map.of("y", y)))
                    .isInstanceOf(IllegalStateException.class);
        }
        predictor.close(); // closes the session here (the leak check counts it)
    }

    /** Three platform and three virtual threads, all at once, each with its own tensors; checks every output. */
    private static void runFromSeveralCallers(OrtPredictor predictor) throws Exception {
        List<Thread> callers = new ArrayList<>();
        List<Throwable> failures = java.util.Collections.synchronizedList(new ArrayList<>());
        for (int i = 0; i < 6; i++) {
            int seed = i;
            Runnable calls = () -> {
                try (Arena shared = Arena.ofShared()) {
                    Random random = new Random(seed);
                    for (int run = 0; run < RUNS_PER_CALLER; run++) {
                        runOnce(predictor, shared, random);
                    }
                } catch (Throwable e) {
                    failures.add(e);
                }
            };
            callers.add(i < 3 ? Thread.ofPlatform().start(calls) : Thread.ofVirtual().start(calls));
        }
        for (Thread caller : callers) {
            caller.join();
        }
        assertThat(failures).isEmpty();
    }

    private static void runOnce(OrtPredictor predictor, Arena arena, Random random) throws Exception {
        float[] values = OrtModels.randomFloats(random, SIZE * SIZE);
        Tensor x = OrtModels.tensor(arena, values, SIZE, SIZE);
        Tensor y = OrtModels.nanTensor(arena, SIZE, SIZE);
        predictor.run(Context.background(), Map.of("x", x), Map.of("y", y));
        assertThat(y.toFloatArray()).as("y = x through the identity chain").containsExactly(values);
    }

    /** The thread ids ORT's profiler recorded for the model's nodes ("cat" : "Node" events). */
    private static Set<Long> nodeThreads(OrtPredictor predictor) throws Exception {
        String profile = Files.readString(Path.of(predictor.session().endProfiling()));
        Matcher node = Pattern.compile("\\{\"cat\"\\s*:\\s*\"Node\"[^{}]*?\"tid\"\\s*:\\s*(\\d+)").matcher(profile);
        Set<Long> threads = new TreeSet<>();
        int events = 0;
        while (node.find()) {
            threads.add(Long.parseLong(node.group(1)));
            events++;
        }
        assertThat(events).as("node events in the profile").isGreaterThanOrEqualTo(6 * RUNS_PER_CALLER);
        return threads;
    }
}
