package dev.nativescope.examples.vendor;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.DeadlineExceededException;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.time.Duration;
import java.util.SplittableRandom;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.StructuredTaskScope;
import java.util.concurrent.StructuredTaskScope.Joiner;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The vendor example ({@code examples/vendor-library}): an unmodified C library with a fixed API,
 * wrapped by a few lines of C glue that poll {@code nsc_current()} from its step callback and call
 * its own terminate function from a cancel hook. Its results match the Java reference when nothing
 * stops it; a scope's timeout, a failing sibling, a deadline and an interrupt each stop its long call
 * (hours uncancelled) within a generous bound, whichever way the stop reaches it: the callback, the
 * hook alone (a call in the vendor's preparation, which calls no callback), both, or a callback on
 * the vendor's own thread that got the context at registration.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class VendorModelTest {
    private static final Duration PROMPTLY = Duration.ofSeconds(10);
    private static final int SIZE = 4096;
    /** 10^9 steps over 4096 floats: hours on any core. */
    private static final long LONG_STEPS = 1_000_000_000L;

    @BeforeAll
    static void load() throws Exception {
        VendorModel.load();
        // Warm up the scope, fork and offload paths: a fork that has not started when a scope's timeout
        // fires never runs, so the first timed scope must not spend its time loading classes.
        try (VendorModel model = VendorModel.create(16, 1, 0, VendorModel.Stop.CALLBACK_AND_HOOK);
             var scope = StructuredTaskScope.open(Joiner.<float[]>anySuccessfulResultOrThrow())) {
            scope.fork(() -> model.predict(Context.current(), new float[16]));
            scope.join();
        }
    }

    /**
     * A model whose predict runs for hours. For {@link VendorModel.Stop#HOOK} it spends them in the
     * preparation, where the vendor calls no callback: only vendor_terminate, from the hook, ends it.
     */
    private static VendorModel longModel(VendorModel.Stop stop) {
        return VendorModel.create(SIZE, LONG_STEPS, stop == VendorModel.Stop.HOOK ? LONG_STEPS : 0, stop);
    }

    private static float[] input(int size, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        float[] x = new float[size];
        for (int i = 0; i < size; i++) {
            x[i] = (float) random.nextDouble(-1, 1);
        }
        return x;
    }

    @ParameterizedTest
    @EnumSource(VendorModel.Stop.class)
    void resultsMatchTheReferenceWhenNothingStopsTheCall(VendorModel.Stop stop) throws Exception {
        float[] in = input(257, 18);
        try (VendorModel model = VendorModel.create(257, 300, 10, stop)) {
            float[] expected = VendorModel.reference(in, 300);
            // Platform thread: inline, the context current on the caller.
            assertThat(model.predict(Context.background(), in)).containsExactly(expected);
            try (CancellableContext live = Context.background().withTimeout(Duration.ofMinutes(5))) {
                assertThat(model.predict(live, in)).containsExactly(expected);
            }
            // Virtual thread: offloaded, the context current on a native thread.
            try (var scope = StructuredTaskScope.open(Joiner.<float[]>anySuccessfulResultOrThrow())) {
                scope.fork(() -> model.predict(Context.current(), in));
                assertThat(scope.join()).containsExactly(expected);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(VendorModel.Stop.class)
    void aScopeTimeoutStopsTheLongCall(VendorModel.Stop stop) throws Exception {
        AtomicReference<RuntimeException> failure = new AtomicReference<>();
        float[] in = input(SIZE, 1);
        try (VendorModel model = longModel(stop)) {
            long opened = System.nanoTime();
            try (var scope = StructuredTaskScope.open(Joiner.awaitAll(), cf -> cf.withTimeout(Duration.ofMillis(500)))) {
                scope.fork(() -> record(failure, () -> model.predict(Context.current(), in)));
                assertThatThrownBy(scope::join).isInstanceOf(StructuredTaskScope.TimeoutException.class);
            }
            assertThat(Duration.ofNanos(System.nanoTime() - opened)).as("join + close").isLessThan(PROMPTLY);
            assertThat(failure.get()).isExactlyInstanceOf(CancellationException.class)
                    .hasCauseInstanceOf(InterruptedException.class);
        }
    }

    @ParameterizedTest
    @EnumSource(VendorModel.Stop.class)
    void aFailingSiblingStopsTheLongCall(VendorModel.Stop stop) throws Exception {
        AtomicReference<RuntimeException> failure = new AtomicReference<>();
        IllegalStateException siblingFailure = new IllegalStateException("the feature store went away");
        CountDownLatch started = new CountDownLatch(1);
        float[] in = input(SIZE, 2);
        try (VendorModel model = longModel(stop)) {
            long opened = System.nanoTime();
            try (var scope = StructuredTaskScope.open(Joiner.awaitAllSuccessfulOrThrow())) {
                scope.fork(() -> {
                    started.countDown();
                    return record(failure, () -> model.predict(Context.current(), in));
                });
                scope.fork(() -> {
                    started.await();
                    Thread.sleep(300); // the predict is deep in the vendor's loop by now
                    throw siblingFailure;
                });
                assertThatThrownBy(scope::join).isInstanceOf(StructuredTaskScope.FailedException.class)
                        .hasCause(siblingFailure);
            }
            assertThat(Duration.ofNanos(System.nanoTime() - opened)).as("join + close").isLessThan(PROMPTLY);
            assertThat(failure.get()).isExactlyInstanceOf(CancellationException.class);
        }
    }

    @ParameterizedTest
    @EnumSource(VendorModel.Stop.class)
    void aDeadlineStopsTheLongCall(VendorModel.Stop stop) {
        float[] in = input(SIZE, 3);
        try (VendorModel model = longModel(stop)) {
            long start = System.nanoTime();
            try (CancellableContext context = Context.background().withTimeout(Duration.ofMillis(200))) {
                assertThatThrownBy(() -> model.predict(context, in)).isInstanceOf(DeadlineExceededException.class);
            }
            Duration took = Duration.ofNanos(System.nanoTime() - start);
            assertThat(took).isGreaterThanOrEqualTo(Duration.ofMillis(200)).isLessThan(PROMPTLY);
        }
    }

    @ParameterizedTest
    @EnumSource(VendorModel.Stop.class)
    void anInterruptStopsTheLongCall(VendorModel.Stop stop) throws Exception {
        float[] in = input(SIZE, 4);
        try (VendorModel model = longModel(stop)) {
            AtomicReference<RuntimeException> failure = new AtomicReference<>();
            AtomicReference<Boolean> interruptedAfter = new AtomicReference<>();
            Thread caller = Thread.ofPlatform().start(() -> {
                record(failure, () -> {
                    try {
                        return model.predict(Context.background(), in);
                    } finally {
                        interruptedAfter.set(Thread.currentThread().isInterrupted());
                    }
                });
            });
            Thread.sleep(300);
            long interruptedAt = System.nanoTime();
            caller.interrupt();
            assertThat(caller.join(PROMPTLY)).as("stopped").isTrue();
            assertThat(Duration.ofNanos(System.nanoTime() - interruptedAt)).isLessThan(PROMPTLY);
            assertThat(failure.get()).isExactlyInstanceOf(CancellationException.class)
                    .hasCauseInstanceOf(InterruptedException.class);
            assertThat(interruptedAfter.get()).as("interrupt status kept").isTrue();
        }
    }

    private static <T> T record(AtomicReference<RuntimeException> failure, java.util.function.Supplier<T> call) {
        try {
            return call.get();
        } catch (RuntimeException e) {
            failure.set(e);
            throw e;
        }
    }
}
