package dev.nativescope.examples;

import dev.nativescope.Context;
import dev.nativescope.examples.NativeWork.Threads;
import dev.nativescope.onnxruntime.OrtModels;
import dev.nativescope.onnxruntime.OrtPredictor;
import dev.nativescope.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Queue;
import java.util.Random;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.StructuredTaskScope;
import java.util.concurrent.StructuredTaskScope.Joiner;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * A {@link StructuredTaskScope} timeout stops a long ONNX Runtime run: the scope interrupts its
 * subtask, {@link OrtPredictor}'s interrupt hook sets the run's terminate flag, and ORT returns
 * after the node in progress, so {@code close()} does not wait for a run of 20+ s. The model is a
 * chain of MatMul nodes written at test time with python3-onnx (the onnxruntime module's test jar).
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class OrtScopeTimeoutTest {
    private static final int SIZE = 512;
    private static final Duration SCOPE_TIMEOUT = Duration.ofMillis(500);
    private static final Duration UNCANCELLED_RUN = Duration.ofSeconds(30);

    @TempDir
    static Path dir;
    static OrtModels.LongChain longChain;
    static OrtPredictor predictor;
    static Arena arena;
    static Tensor x;

    @BeforeAll
    static void openTheLongChain() throws Exception {
        longChain = OrtModels.longChain(dir, SIZE, UNCANCELLED_RUN);
        predictor = OrtModels.open(longChain.model());
        arena = Arena.ofShared();
        x = OrtModels.tensor(arena, OrtModels.randomFloats(new Random(1), SIZE * SIZE), SIZE, SIZE);
    }

    @AfterAll
    static void close() throws Exception {
        predictor.close();
        arena.close();
    }

    @ParameterizedTest
    @EnumSource(Threads.class)
    void scopeTimeoutStopsAnOrtRun(Threads threads) throws Exception {
        Duration promptly = longChain.promptly();
        Queue<Throwable> ended = new ConcurrentLinkedQueue<>();
        long opened = System.nanoTime();
        try (var scope = StructuredTaskScope.open(Joiner.<Object>awaitAll(),
                cf -> threads.configure(cf).withTimeout(SCOPE_TIMEOUT))) {
            scope.fork(() -> {
                try (Arena own = Arena.ofConfined()) {
                    Tensor y = OrtModels.nanTensor(own, SIZE, SIZE);
                    predictor.run(Context.current(), Map.of("x", x), Map.of("y", y));
                    ended.add(new AssertionError("the run completed"));
                } catch (Throwable e) {
                    ended.add(e);
                }
                return null;
            });
            assertThatThrownBy(scope::join).isInstanceOf(StructuredTaskScope.TimeoutException.class);
        }
        long closed = System.nanoTime();
        assertThat(Duration.ofNanos(closed - opened - SCOPE_TIMEOUT.toNanos()))
                .as("join + close after the timeout; uncancelled the run takes %s", longChain.uncancelled())
                .isLessThan(promptly);
        assertThat(ended).singleElement().isInstanceOf(CancellationException.class)
                .satisfies(e -> assertThat(e.getCause()).isInstanceOf(InterruptedException.class));
    }
}
