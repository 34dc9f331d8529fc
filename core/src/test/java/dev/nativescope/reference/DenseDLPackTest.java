package dev.nativescope.reference;

import dev.nativescope.call.OffloadMode;
import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.DeadlineExceededException;
import dev.nativescope.library.NativeStatusException;
import dev.nativescope.library.NativeStatus;
import dev.nativescope.library.NativeLibrary;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.Random;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.DoubleSupplier;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@link ReferencePredictors#denseDLPack}: strided operands through DLPack descriptors, refusals, cancel, deadline.
 * The tensors live in shared arenas: a confined operand keeps the call inline ({@code NativeThreads.modeFor}), so
 * with confined ones the {@code offload-mode} run would quietly repeat the inline one instead of holding the
 * operands from a native thread.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
@OffloadMode
class DenseDLPackTest {
    /** Generous for a loaded 2-core machine: the latency itself is benchmarked, not tested. */
    private static final long PROMPT_SECONDS = 10;
    private static final float SENTINEL = -1f;  // relu never writes a negative value

    @BeforeAll
    static void load() {
        NativeLibrary.load();
    }

    /** A fresh row-major float32 tensor whose elements come from {@code values}. */
    private static Tensor tensor(Arena arena, DoubleSupplier values, long... shape) {
        long count = 1;
        for (long d : shape) {
            count *= d;
        }
        MemorySegment segment = arena.allocate(ValueLayout.JAVA_FLOAT, count);
        for (long i = 0; i < count; i++) {
            segment.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) values.getAsDouble());
        }
        return Tensor.of(segment, DType.FLOAT32, shape);
    }

    private static Tensor random(Arena arena, Random random, long... shape) {
        return tensor(arena, () -> random.nextFloat() * 2 - 1, shape);
    }

    private static Tensor filled(Arena arena, float value, long... shape) {
        return tensor(arena, () -> value, shape);
    }

    /** relu(x * w + bias) in double, read through the tensors' own strides. */
    private static double expected(Tensor x, Tensor w, Tensor bias, long i, long j) {
        double sum = bias == null ? 0 : bias.getDouble(j);
        for (long k = 0; k < x.dim(1); k++) {
            sum += x.getDouble(i, k) * w.getDouble(k, j);
        }
        return Math.max(0, sum);
    }

    @Test
    void stridedOperandsGiveTheJavaReferenceAndOnlyYIsWritten() {
        int rows = 37;
        int inner = 50;
        int cols = 41;
        Random random = new Random(23);
        try (Arena arena = Arena.ofShared()) {
            Tensor x = random(arena, random, rows, inner);
            Tensor w = random(arena, random, cols, inner).transpose(0, 1);          // column-major w
            Tensor bias = random(arena, random, cols, 3).select(1, 2);              // stride 3
            Tensor yBuffer = filled(arena, SENTINEL, rows, 2 * cols);
            Tensor y = yBuffer.slice(1, 1, 2 * cols, 2);                            // odd columns
            assertThat(w.isContiguous()).isFalse();
            assertThat(y.strides()).containsExactly(2L * cols, 2);

            AtomicReference<PredictionStats> returned = new AtomicReference<>();
            PredictionStats stats = ReferencePredictors.denseDLPack(Context.background(), x, w, bias, y, 2,
                    returned::set);
            assertThat(stats.status()).isZero();
            assertThat(stats.workUnits()).isEqualTo(2L * 2 * 2);  // repeat 2, ceil(37/32) x ceil(41/32) tiles
            assertThat(returned.get()).isEqualTo(stats);

            for (long i = 0; i < rows; i++) {
                for (long j = 0; j < cols; j++) {
                    assertThat(y.getDouble(i, j)).as("y[%d][%d]", i, j)
                            .isCloseTo(expected(x, w, bias, i, j), Offset.offset(1e-4));
                    assertThat(yBuffer.getFloat(i, 2 * j)).as("gap [%d][%d]", i, 2 * j).isEqualTo(SENTINEL);
                }
            }
        }
    }

    @Test
    void flippedOperandsAndNoBias() {
        int n = 33;
        Random random = new Random(29);
        try (Arena arena = Arena.ofShared()) {
            Tensor xStore = random(arena, random, n, n);
            // x with its rows in reverse order: element [0, k] is the last row.
            Tensor x = Tensor.of(xStore.segment(), (long) (n - 1) * n * 4, DType.FLOAT32, new long[] {n, n},
                    new long[] {-n, 1});
            Tensor w = random(arena, random, n, n);
            Tensor y = filled(arena, SENTINEL, n, n).transpose(0, 1);
            ReferencePredictors.denseDLPack(Context.background(), x, w, null, y, 1, null);
            for (long i = 0; i < n; i++) {
                for (long j = 0; j < n; j++) {
                    assertThat(y.getDouble(i, j)).isCloseTo(expected(x, w, null, i, j), Offset.offset(1e-4));
                }
            }
        }
    }

    @Test
    void compactOperandsGiveExactlyWhatDenseGives() {
        int rows = 20;
        int inner = 70;
        int cols = 45;
        Random random = new Random(31);
        try (Arena arena = Arena.ofShared()) {
            Tensor x = random(arena, random, rows, inner);
            Tensor w = random(arena, random, inner, cols);
            Tensor bias = random(arena, random, cols);
            Tensor viaDLPack = filled(arena, SENTINEL, rows, cols);
            Tensor viaPointers = filled(arena, SENTINEL, rows, cols);
            ReferencePredictors.denseDLPack(Context.background(), x, w, bias, viaDLPack, 1, null);
            ReferencePredictors.dense(Context.background(), x.segment(), w.segment(), bias.segment(),
                    viaPointers.segment(), rows, inner, cols, 1, null);
            assertThat(viaDLPack.toFloatArray()).containsExactly(viaPointers.toFloatArray());
        }
    }

    @Test
    void badOperandsAreRefusedBeforeNativeCode() {
        try (Arena arena = Arena.ofShared()) {
            Tensor x = filled(arena, 1, 4, 3);
            Tensor w = filled(arena, 1, 3, 5);
            Tensor y = filled(arena, 0, 4, 5);
            Context bg = Context.background();
            Tensor doubles = Tensor.of(arena.allocate(8 * 12), DType.FLOAT64, 4, 3);
            assertThatThrownBy(() -> ReferencePredictors.denseDLPack(bg, doubles, w, null, y, 1, null))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("x must be a rank-2 float32");
            assertThatThrownBy(() -> ReferencePredictors.denseDLPack(bg, x, w, filled(arena, 0, 5, 1), y, 1, null))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("bias must be a rank-1 float32");
            assertThatThrownBy(() -> ReferencePredictors.denseDLPack(bg, x, filled(arena, 0, 4, 5), null, y, 1, null))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("shapes do not chain");
            assertThatThrownBy(() -> ReferencePredictors.denseDLPack(bg, x, w, filled(arena, 0, 4), y, 1, null))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("bias [4]");
            assertThatThrownBy(() -> ReferencePredictors.denseDLPack(bg, x, w, null, y, 0, null))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("repeat");
            Tensor heap = Tensor.of(MemorySegment.ofArray(new float[12]), DType.FLOAT32, 4, 3);
            assertThatThrownBy(() -> ReferencePredictors.denseDLPack(bg, heap, w, null, y, 1, null))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("heap");
            Tensor misaligned = Tensor.of(arena.allocate(4 * 12 + 4, 8), 2, DType.FLOAT32, new long[] {4, 3},
                    new long[] {3, 1});
            assertThatThrownBy(() -> ReferencePredictors.denseDLPack(bg, misaligned, w, null, y, 1, null))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("not 4-byte aligned");
        }
    }

    @Test
    void anOverlappingOutputIsRefusedBeforeNativeCodeWithAMessageNamingTheTensors() {
        // Before: both were NativeStatusException "NSC_ERR_INVALID: invalid argument" from native code.
        try (Arena arena = Arena.ofShared()) {
            Tensor x = filled(arena, 1, 4, 3);
            Tensor w = filled(arena, 1, 3, 5);
            Tensor broadcastY = Tensor.of(arena.allocate(4 * 5), 0, DType.FLOAT32, new long[] {4, 5}, new long[] {0, 1});
            Tensor yOverX = Tensor.of(x.segment(), 0, DType.FLOAT32, new long[] {2, 5}, new long[] {5, 1});
            assertThatThrownBy(() -> ReferencePredictors.denseDLPack(Context.background(), x, w, null, broadcastY, 1, null))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("y [4, 5] with strides [0, 1]").hasMessageContaining("share bytes");
            Tensor x2 = x.slice(0, 0, 2);
            assertThatThrownBy(() -> ReferencePredictors.denseDLPack(Context.background(), x2, w, null, yOverX, 1, null))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("y [2, 5]").hasMessageContaining("overlaps x [2, 3]");
            Tensor yOverW = Tensor.of(w.segment(), 0, DType.FLOAT32, new long[] {1, 5}, new long[] {5, 1});
            Tensor x1 = x.slice(0, 0, 1);
            assertThatThrownBy(() -> ReferencePredictors.denseDLPack(Context.background(), x1, w, null, yOverW, 1, null))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("overlaps w [3, 5]");
            Tensor bias = filled(arena, 0, 5);
            Tensor yOverBias = Tensor.of(bias.segment(), 0, DType.FLOAT32, new long[] {1, 5}, new long[] {5, 1});
            assertThatThrownBy(() -> ReferencePredictors.denseDLPack(Context.background(), x1, w, bias, yOverBias, 1, null))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("overlaps bias [5]");
            assertThat(x.toFloatArray()).as("x untouched").containsOnly(1f);
            assertThat(w.toFloatArray()).as("w untouched").containsOnly(1f);
            // Adjacent but not overlapping is fine: y right after x in the same segment.
            MemorySegment both = arena.allocate(4 * (2 * 3 + 2 * 5), 16);
            Tensor xa = Tensor.of(both, 0, DType.FLOAT32, new long[] {2, 3}, new long[] {3, 1});
            Tensor ya = Tensor.of(both, 4 * 6, DType.FLOAT32, new long[] {2, 5}, new long[] {5, 1});
            ReferencePredictors.denseDLPack(Context.background(), xa, w, null, ya, 1, null);
        }
    }

    /** Waits until native code has written y[0, 0]: the call is then running in native code. */
    private static void awaitFirstTile(Tensor y, Future<?> call) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (y.getFloat(0, 0) == SENTINEL) {
            assertThat(call.isDone()).as("the call ended before computing a tile").isFalse();
            assertThat(System.nanoTime()).as("native code never wrote y").isLessThan(deadline);
            Thread.sleep(1);
        }
    }

    private static Throwable outcome(Future<?> call) throws InterruptedException, TimeoutException {
        try {
            call.get(PROMPT_SECONDS, TimeUnit.SECONDS);
            return null;
        } catch (ExecutionException e) {
            return e.getCause();
        }
    }

    @Test
    void cancelFromAnotherThreadStopsAnEndlessRun() throws Exception {
        int n = 64;
        Random random = new Random(37);
        try (Arena arena = Arena.ofShared();
             CancellableContext context = Context.background().withCancel();
             ExecutorService executor = Executors.newSingleThreadExecutor()) {
            Tensor x = random(arena, random, n, n);
            Tensor w = random(arena, random, n, n).transpose(0, 1);  // the strided path
            Tensor y = filled(arena, SENTINEL, n, n);
            AtomicReference<PredictionStats> returned = new AtomicReference<>();
            Future<?> call = executor.submit(() -> ReferencePredictors.denseDLPack(context, x, w, null, y,
                    Long.MAX_VALUE, returned::set));
            awaitFirstTile(y, call);
            IllegalStateException cause = new IllegalStateException("request abandoned");
            context.cancel(cause);
            Throwable thrown = outcome(call);
            assertThat(thrown).isInstanceOf(CancellationException.class);
            assertThat(thrown.getCause()).isSameAs(cause);
            assertThat(returned.get().status()).isEqualTo(NativeStatus.CANCELED.code());
            assertThat(returned.get().workUnits()).isPositive();
            assertThat(returned.get().checks()).isEqualTo(returned.get().workUnits() + 1);
        }
    }

    @Test
    void theTensorsArenaCannotBeClosedUnderARunningCall() throws Exception {
        int n = 64;
        Random random = new Random(43);
        Arena arena = Arena.ofShared();
        try (CancellableContext context = Context.background().withCancel();
             ExecutorService executor = Executors.newSingleThreadExecutor()) {
            Tensor x = random(arena, random, n, n);
            Tensor w = random(arena, random, n, n);
            Tensor y = filled(arena, SENTINEL, n, n);
            Future<?> call = executor.submit(() -> ReferencePredictors.denseDLPack(context, x, w, null, y,
                    Long.MAX_VALUE, null));
            awaitFirstTile(y, call);
            // Native code holds only raw addresses: without the hold this close would free its memory.
            assertThatThrownBy(arena::close).isInstanceOf(IllegalStateException.class);
            assertThat(arena.scope().isAlive()).isTrue();
            context.cancel();
            assertThat(outcome(call)).isInstanceOf(CancellationException.class);
        } finally {
            arena.close();
        }
        assertThat(arena.scope().isAlive()).isFalse();
    }

    @Test
    void aDeadlineStopsAnEndlessRun() {
        int n = 64;
        Random random = new Random(41);
        try (Arena arena = Arena.ofShared();
             CancellableContext context = Context.background().withTimeout(Duration.ofMillis(50))) {
            Tensor x = random(arena, random, n, n);
            Tensor w = random(arena, random, n, n);
            Tensor y = filled(arena, SENTINEL, n, n);
            long deadline = context.deadlineNanoTime().orElseThrow();
            AtomicReference<PredictionStats> returned = new AtomicReference<>();
            Throwable thrown = catchThrowable(() -> ReferencePredictors.denseDLPack(context, x, w, null, y,
                    Long.MAX_VALUE, returned::set));
            assertThat(thrown).isInstanceOf(DeadlineExceededException.class);
            assertThat(System.nanoTime()).isGreaterThanOrEqualTo(deadline);
            if (returned.get() != null) {
                assertThat(returned.get().endNanoTime()).isGreaterThanOrEqualTo(deadline);
            }
        }
    }
}
