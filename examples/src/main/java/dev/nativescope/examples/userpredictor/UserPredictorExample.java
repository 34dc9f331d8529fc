package dev.nativescope.examples.userpredictor;

import dev.nativescope.Context;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.Random;
import java.util.concurrent.CancellationException;
import java.util.concurrent.StructuredTaskScope;
import java.util.concurrent.StructuredTaskScope.Joiner;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A user's own predictor under a {@link StructuredTaskScope}: a convolution that completes and
 * matches its Java reference, then a convolution that would run for minutes and a frame read from
 * a pipe nobody writes, both stopped in native code by the scope's timeout.
 *
 * <p>Run: {@code java --enable-preview --enable-native-access=ALL-UNNAMED -cp
 * examples/target/nativescope-examples.jar dev.nativescope.examples.userpredictor.UserPredictorExample}
 */
public final class UserPredictorExample {
    private UserPredictorExample() {
    }

    /**
     * Fills a new {@code [rows, cols]} float32 tensor in {@code arena} with seeded values in [-1, 1).
     */
    public static Tensor randomMatrix(Arena arena, int rows, int cols, long seed) {
        Random random = new Random(seed);
        MemorySegment segment = arena.allocate(ValueLayout.JAVA_FLOAT, (long) rows * cols);
        for (long i = 0; i < (long) rows * cols; i++) {
            segment.setAtIndex(ValueLayout.JAVA_FLOAT, i, random.nextFloat() * 2 - 1);
        }
        return Tensor.of(segment, DType.FLOAT32, rows, cols);
    }

    /** @return a new zeroed {@code [rows, cols]} float32 tensor in {@code arena} */
    public static Tensor zeros(Arena arena, int rows, int cols) {
        return Tensor.of(arena.allocate(ValueLayout.JAVA_FLOAT, (long) rows * cols), DType.FLOAT32, rows, cols);
    }

    public static void main(String[] args) throws Exception {
        UserPredictor.load();
        try (Arena arena = Arena.ofShared()) {
            Tensor input = randomMatrix(arena, 256, 256, 1);
            Tensor kernel = randomMatrix(arena, 5, 5, 2);
            Tensor output = zeros(arena, 252, 252);

            long rows = UserPredictor.conv2d(Context.background(), input, kernel, output, 1, null);
            float[][] expected = Conv2dReference.conv2d(input, kernel);
            long mismatches = 0;
            for (int i = 0; i < expected.length; i++) {
                for (int j = 0; j < expected[i].length; j++) {
                    mismatches += Float.compare(expected[i][j], output.getFloat(i, j)) == 0 ? 0 : 1;
                }
            }
            System.out.printf("conv2d completed: %d rows, %d elements differ from the Java reference%n",
                    rows, mismatches);

            Duration timeout = Duration.ofMillis(300);
            AtomicLong convRows = new AtomicLong();
            AtomicLong frameBytes = new AtomicLong();
            long start = System.nanoTime();
            try (Pipe silent = Pipe.open();
                 var scope = StructuredTaskScope.open(Joiner.awaitAll(), cf -> cf.withTimeout(timeout))) {
                scope.fork(() -> report("conv2d x 1,000,000", () ->
                        UserPredictor.conv2d(Context.current(), input, kernel, output, 1_000_000, convRows::set)));
                scope.fork(() -> report("read_frame on a silent pipe", () -> UserPredictor.readFrame(Context.current(),
                        silent.readFd(), zeros(arena, 4, 4), null, frameBytes::set)));
                try {
                    scope.join();
                } catch (StructuredTaskScope.TimeoutException expectedTimeout) {
                    System.out.printf("scope timed out after %s%n", timeout);
                }
            }
            System.out.printf("scope closed after %d ms; conv2d computed %d of %d rows, read_frame read %d bytes%n",
                    Duration.ofNanos(System.nanoTime() - start).toMillis(), convRows.get(), 252L * 1_000_000,
                    frameBytes.get());
        }
    }

    private static Object report(String name, java.util.concurrent.Callable<?> call) throws Exception {
        try {
            return call.call();
        } catch (CancellationException e) {
            System.out.printf("%s: %s (cause: %s)%n", name, e.getMessage(), e.getCause());
            throw e;
        }
    }
}
