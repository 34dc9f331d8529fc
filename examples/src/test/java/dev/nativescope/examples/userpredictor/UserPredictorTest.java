package dev.nativescope.examples.userpredictor;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.DeadlineExceededException;
import dev.nativescope.library.NativeStatusException;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;
import dev.nativescope.testing.ProcSelf;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.StructuredTaskScope;
import java.util.concurrent.StructuredTaskScope.Joiner;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static dev.nativescope.examples.userpredictor.UserPredictorExample.randomMatrix;
import static dev.nativescope.examples.userpredictor.UserPredictorExample.zeros;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The user's own predictor library ({@code examples/user-predictor}), loaded after the shim and
 * called through the bridge: its results match the Java reference, and a scope timeout, a failing
 * sibling, an interrupt and a deadline each stop it in native code (long before its uncancelled
 * run would end), with the progress it reports proving it was running there.
 */
@Timeout(value = 45, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class UserPredictorTest {
    /** A cancelled call must return within this; uncancelled, the long convolution runs for minutes. */
    private static final Duration PROMPTLY = Duration.ofSeconds(10);
    /** 252 rows of 252 x 25 multiply-adds, a million times: about 1.6e12 flops, minutes on any core. */
    private static final long LONG_REPEAT = 1_000_000;
    private static final int OUT = 252;
    private static final int NSC_OK = nativescope_h.NSC_OK();
    /** Virtual threads run on this many carriers (as NativeWork.Threads.CARRIERS, package-private to examples). */
    private static final int CARRIERS = Integer.getInteger("jdk.virtualThreadScheduler.parallelism",
            Runtime.getRuntime().availableProcessors());

    /**
     * Memory that long native calls use is in automatic arenas: should a cancel not land, the
     * test fails by its timeout while native code is still running, and must not free memory under
     * it (the calls keep their tensors reachable until they return).
     */
    private static final Arena ARENA = Arena.ofAuto();
    private static Tensor input;
    private static Tensor kernel;

    @BeforeAll
    static void load() {
        UserPredictor.load();
        input = randomMatrix(ARENA, 256, 256, 11);
        kernel = randomMatrix(ARENA, 5, 5, 12);
        // Link both downcalls before any test measures time.
        UserPredictor.conv2d(Context.background(), input, kernel, zeros(ARENA, OUT, OUT), 1, null);
    }

    @Test
    void completedConvolutionMatchesTheJavaReference() {
        try (Arena arena = Arena.ofConfined()) {
            Tensor output = zeros(arena, OUT, OUT);
            long rows = UserPredictor.conv2d(Context.background(), input, kernel, output, 2, null);
            assertThat(rows).isEqualTo(2L * OUT);
            assertMatchesReference(output, input, kernel);
        }
    }

    @Test
    void stridedViewsAreConvolvedInPlace() {
        try (Arena arena = Arena.ofConfined()) {
            // A transposed input (column-major strides), a kernel sliced with step 2 and a transposed
            // output: native code reads and writes them through their strides, no copies.
            Tensor transposedInput = input.transpose(0, 1);
            Tensor wideKernel = randomMatrix(arena, 3, 7, 13);
            Tensor slicedKernel = wideKernel.slice(1, 0, 7, 2); // [3, 4]
            Tensor output = zeros(arena, 256 - 4 + 1, 256 - 3 + 1).transpose(0, 1); // [254, 253]
            UserPredictor.conv2d(Context.background(), transposedInput, slicedKernel, output, 1, null);
            assertMatchesReference(output, transposedInput, slicedKernel);
        }
    }

    @Test
    void shapesNativeCodeRejectsBecomeANativeStatusException() {
        try (Arena arena = Arena.ofConfined()) {
            Tensor wrongOutput = zeros(arena, OUT, OUT + 1);
            assertThatThrownBy(() -> UserPredictor.conv2d(Context.background(), input, kernel, wrongOutput, 1, null))
                    .isInstanceOf(NativeStatusException.class)
                    .satisfies(e -> assertThat(((NativeStatusException) e).status())
                            .isEqualTo(nativescope_h.NSC_ERR_INVALID()));
            // The output may not overlap the input: it would read what it writes.
            Tensor overlapping = Tensor.of(input.segment(), DType.FLOAT32, OUT, OUT);
            assertThatThrownBy(() -> UserPredictor.conv2d(Context.background(), input, kernel, overlapping, 1, null))
                    .isInstanceOf(NativeStatusException.class);
        }
    }

    @Test
    void readFrameAssemblesAFrameWrittenInPieces() throws Exception {
        try (Arena arena = Arena.ofShared(); Pipe pipe = Pipe.open()) {
            Tensor sent = randomMatrix(arena, 16, 16, 14);
            Tensor frame = zeros(arena, 16, 16);
            Thread writer = Thread.ofPlatform().start(() -> {
                MemorySegment bytes = sent.segment();
                long third = bytes.byteSize() / 3;
                try {
                    pipe.write(bytes.asSlice(0, third));
                    Thread.sleep(50);
                    pipe.write(bytes.asSlice(third, third));
                    Thread.sleep(50);
                    pipe.write(bytes.asSlice(2 * third));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            AtomicLong bytesRead = new AtomicLong();
            int status = UserPredictor.readFrame(Context.background(), pipe.readFd(), frame, Duration.ofSeconds(20),
                    bytesRead::set);
            writer.join();
            assertThat(status).isEqualTo(NSC_OK);
            assertThat(bytesRead.get()).isEqualTo(16 * 16 * 4);
            assertThat(frame.segment().mismatch(sent.segment())).as("first differing byte").isEqualTo(-1);
        }
    }

    @Test
    void readFrameEndsWithItsOwnTimeoutOrAtEndOfFile() {
        try (Arena arena = Arena.ofConfined(); Pipe pipe = Pipe.open()) {
            Tensor frame = zeros(arena, 4, 4);
            pipe.write(arena.allocate(ValueLayout.JAVA_FLOAT, 3)); // 12 of the 64 bytes
            AtomicLong bytesRead = new AtomicLong();
            long start = System.nanoTime();
            int status = UserPredictor.readFrame(Context.background(), pipe.readFd(), frame, Duration.ofMillis(200),
                    bytesRead::set);
            assertThat(status).isEqualTo(nativescope_h.NSC_TIMEOUT());
            assertThat(Duration.ofNanos(System.nanoTime() - start)).isGreaterThanOrEqualTo(Duration.ofMillis(200))
                    .isLessThan(PROMPTLY);
            assertThat(bytesRead.get()).isEqualTo(12);

            pipe.closeWriteEnd();
            status = UserPredictor.readFrame(Context.background(), pipe.readFd(), frame, null, bytesRead::set);
            assertThat(status).isEqualTo(nativescope_h.NSC_NOT_FOUND());
            assertThat(bytesRead.get()).isZero();
        }
    }

    @Test
    void scopeTimeoutStopsTheConvolutionInNativeCode() throws Exception {
        AtomicLong rowsDone = new AtomicLong(-1);
        AtomicReference<RuntimeException> failure = new AtomicReference<>();
        Duration timeout = Duration.ofMillis(300);
        long opened = System.nanoTime();
        try (var scope = StructuredTaskScope.open(Joiner.awaitAll(), cf -> cf.withTimeout(timeout))) {
            Tensor output = zeros(ARENA, OUT, OUT);
            scope.fork(() -> record(failure, () -> UserPredictor.conv2d(Context.current(), input, kernel, output,
                    LONG_REPEAT, rowsDone::set)));
            assertThatThrownBy(scope::join).isInstanceOf(StructuredTaskScope.TimeoutException.class);
        }
        assertThat(Duration.ofNanos(System.nanoTime() - opened)).as("join + close").isLessThan(PROMPTLY);
        assertInterruptedInNative(failure.get());
        assertThat(rowsDone.get()).as("rows computed before the timeout stopped it")
                .isPositive().isLessThan(LONG_REPEAT * OUT);
    }

    @Test
    void failingSiblingStopsAFrameReadBlockedInNativeCode() throws Exception {
        AtomicLong bytesRead = new AtomicLong(-1);
        AtomicReference<RuntimeException> failure = new AtomicReference<>();
        CountDownLatch reading = new CountDownLatch(1);
        IllegalStateException siblingFailure = new IllegalStateException("the model server went away");
        long opened = System.nanoTime();
        try (Pipe pipe = Pipe.open();
             var scope = StructuredTaskScope.open(Joiner.awaitAllSuccessfulOrThrow())) {
            pipe.write(ARENA.allocate(ValueLayout.JAVA_FLOAT, 5)); // 20 bytes of a 64-byte frame, then nothing
            Tensor frame = zeros(ARENA, 4, 4);
            scope.fork(() -> {
                reading.countDown();
                return record(failure, () -> UserPredictor.readFrame(Context.current(), pipe.readFd(), frame, null,
                        bytesRead::set));
            });
            scope.fork(() -> {
                reading.await();
                Thread.sleep(300); // the reader is blocked in nsc_wait_fd by now
                throw siblingFailure;
            });
            assertThatThrownBy(scope::join).isInstanceOf(StructuredTaskScope.FailedException.class)
                    .hasCause(siblingFailure);
        }
        assertThat(Duration.ofNanos(System.nanoTime() - opened)).as("join + close").isLessThan(PROMPTLY);
        assertInterruptedInNative(failure.get());
        assertThat(bytesRead.get()).as("bytes read before the sibling failed").isEqualTo(20);
    }

    @Test
    void interruptStopsTheConvolutionOfAPlatformThread() throws Exception {
        AtomicLong rowsDone = new AtomicLong(-1);
        AtomicReference<RuntimeException> failure = new AtomicReference<>();
        AtomicReference<Boolean> interruptedAfter = new AtomicReference<>();
        CountDownLatch calling = new CountDownLatch(1);
        Tensor output = zeros(ARENA, OUT, OUT);
        Thread worker = Thread.ofPlatform().name("user-conv").start(() -> {
            calling.countDown();
            try {
                UserPredictor.conv2d(Context.background(), input, kernel, output, LONG_REPEAT, rowsDone::set);
            } catch (RuntimeException e) {
                failure.set(e);
            }
            interruptedAfter.set(Thread.currentThread().isInterrupted());
        });
        calling.await();
        Thread.sleep(300);
        long interrupted = System.nanoTime();
        worker.interrupt();
        worker.join(PROMPTLY);
        assertThat(worker.isAlive()).as("worker still in native code %s after the interrupt", PROMPTLY).isFalse();
        assertThat(Duration.ofNanos(System.nanoTime() - interrupted)).isLessThan(PROMPTLY);
        assertInterruptedInNative(failure.get());
        assertThat(interruptedAfter.get()).as("interrupt status kept").isTrue();
        assertThat(rowsDone.get()).isPositive().isLessThan(LONG_REPEAT * OUT);
    }

    /**
     * The predictor is called as docs/predictor-sdk.md says (invokeLong): twice as many long
     * convolutions as the virtual-thread scheduler has carriers, each forked from a virtual thread,
     * leave the carriers free, so an unrelated virtual thread still runs. Inline, each call would
     * hold its carrier until its cancel (the unrelated thread would wait for the cancel below).
     */
    @Test
    void longConvolutionsOnVirtualThreadsLeaveTheCarriersFree() throws Exception {
        int calls = 2 * CARRIERS;
        AtomicLong entered = new AtomicLong();
        try (CancellableContext request = Context.background().withCancel();
             var scope = StructuredTaskScope.open(Joiner.<Long>awaitAll())) {
            for (int i = 0; i < calls; i++) {
                Tensor output = zeros(ARENA, OUT, OUT);
                scope.fork(() -> {
                    entered.incrementAndGet();
                    return UserPredictor.conv2d(request, input, kernel, output, LONG_REPEAT, null);
                });
            }
            long deadline = System.nanoTime() + PROMPTLY.toNanos();
            while (entered.get() < calls && System.nanoTime() < deadline) { // inline, only one per carrier starts
                Thread.sleep(10);
            }
            Thread.sleep(200); // the forks are in native code by now
            CountDownLatch ran = new CountDownLatch(1);
            Thread.ofVirtual().start(ran::countDown);
            boolean unrelatedRan = ran.await(PROMPTLY.toSeconds(), TimeUnit.SECONDS);
            long forksStarted = entered.get();
            request.cancel();
            scope.join();
            assertThat(unrelatedRan).as("an unrelated virtual thread ran within %s while %d of %d long calls"
                    + " were forked", PROMPTLY, forksStarted, calls).isTrue();
            assertThat(forksStarted).as("forks that started before the cancel").isEqualTo(calls);
        }
    }

    @Test
    void deadlineStopsTheConvolution() {
        AtomicLong rowsDone = new AtomicLong(-1);
        long start = System.nanoTime();
        try (CancellableContext request = Context.background().withTimeout(Duration.ofMillis(300))) {
            Tensor output = zeros(ARENA, OUT, OUT);
            assertThatThrownBy(() -> UserPredictor.conv2d(request, input, kernel, output, LONG_REPEAT, rowsDone::set))
                    .isInstanceOf(DeadlineExceededException.class);
        }
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isGreaterThanOrEqualTo(Duration.ofMillis(300))
                .isLessThan(PROMPTLY);
        assertThat(rowsDone.get()).isPositive().isLessThan(LONG_REPEAT * OUT);
    }

    /**
     * The linking approach of docs/predictor-sdk.md: libuser_predictor.so needs libnativescope.so
     * by soname, without an rpath, and the dynamic loader satisfied that with the copy the Java
     * loader had mapped, so the process holds exactly one shim.
     */
    @Test
    void userLibraryReusesTheShimTheJavaLoaderLoaded() throws Exception {
        List<String> mappedShims = ProcSelf.mappings().stream()
                .filter(line -> line.contains("/libnativescope.so"))
                .map(line -> line.substring(line.indexOf('/')))
                .distinct().toList();
        assertThat(mappedShims).as("libnativescope.so files mapped").hasSize(1);
        assertThat(ProcSelf.mappings())
                .anySatisfy(line -> assertThat(line).contains("/libuser_predictor.so"));

        String dynamic = readelfDynamic(Path.of("target/classes", UserPredictor.RESOURCE));
        assertThat(dynamic).contains("(NEEDED)", "[libnativescope.so]").doesNotContain("RPATH", "RUNPATH");
    }

    private static String readelfDynamic(Path library) throws IOException, InterruptedException {
        Process readelf = new ProcessBuilder("readelf", "-d", library.toString()).redirectErrorStream(true).start();
        String output = new String(readelf.getInputStream().readAllBytes());
        assertThat(readelf.waitFor()).as("readelf -d %s: %s", library, output).isZero();
        return output;
    }

    private static <T> T record(AtomicReference<RuntimeException> failure, java.util.function.Supplier<T> call) {
        try {
            return call.get();
        } catch (RuntimeException e) {
            failure.set(e);
            throw e;
        }
    }

    private static void assertInterruptedInNative(RuntimeException failure) {
        assertThat(failure).as("what the call threw").isExactlyInstanceOf(CancellationException.class)
                .hasCauseInstanceOf(InterruptedException.class);
    }

    static void assertMatchesReference(Tensor output, Tensor in, Tensor k) {
        float[][] expected = Conv2dReference.conv2d(in, k);
        assertThat(output.shape()).containsExactly(expected.length, expected[0].length);
        for (int i = 0; i < expected.length; i++) {
            for (int j = 0; j < expected[i].length; j++) {
                if (Float.compare(expected[i][j], output.getFloat(i, j)) != 0) {
                    throw new AssertionError("output[" + i + "][" + j + "] = " + output.getFloat(i, j)
                            + ", the Java reference gives " + expected[i][j]);
                }
            }
        }
    }
}
