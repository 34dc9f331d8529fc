package dev.nativescope.exchange;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.fail;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.DeadlineExceededException;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.SplittableRandom;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class TensorExchangeTest {
    private static final int STRESS_ITERATIONS = 1500;
    private Path file;

    @BeforeEach
    void name() {
        file = TensorExchange.defaultPath("nsc-test-" + ProcessHandle.current().pid() + "-" + System.nanoTime());
    }

    @AfterEach
    void delete() throws Exception {
        TensorExchange.delete(file);
    }

    @Test
    void createsAPrivateFileExclusivelyWithReservedStorage() throws Exception {
        try (Producer producer = TensorExchange.create(file, 4, 1000)) {
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(file))).isEqualTo("rw-------");
            assertThat(producer.slotCapacity()).isEqualTo(1024);
            assertThat(Files.size(file)).isEqualTo(ExchangeDescriptor.fileLength(4, 1024));
            assertThat(producer.mapping().address() % 4096).isZero();
            assertThat(producer.epoch()).isEqualTo(1);
            assertThatThrownBy(() -> TensorExchange.create(file, 4, 1000)).isInstanceOf(FileAlreadyExistsException.class);
        }
    }

    @Test
    void publishedTensorsAreReadInPlaceAndEqual() throws Exception {
        try (Producer producer = TensorExchange.create(file, 3, 8192);
             Consumer consumer = TensorExchange.openConsumer(file)) {
            assertThat(consumer.next().status()).isEqualTo(ReadStatus.EMPTY);
            assertThat(consumer.latest().status()).isEqualTo(ReadStatus.EMPTY);
            for (long v = 1; v <= 50; v++) {
                Producer.Slot slot = producer.claim(Pattern.dtype(v), Pattern.shape(v));
                Pattern.fill(slot.tensor().data(), v);
                assertThat(slot.publish()).isEqualTo(v);
                Received received = consumer.next();
                assertThat(received.status()).isEqualTo(ReadStatus.OK);
                Tensor t = received.tensor();
                assertThat(received.version()).isEqualTo(v);
                assertThat(t.dtype()).isEqualTo(Pattern.dtype(v));
                assertThat(t.shape()).isEqualTo(Pattern.shape(v));
                assertThat(Pattern.mismatch(t.data(), v)).isEqualTo(-1);
                assertThat(t.segment().isReadOnly()).isTrue();
                MemorySegment map = consumer.mapping();
                assertThat(t.data().address()).isBetween(map.address(), map.address() + map.byteSize() - t.byteSize());
                assertThat(received.isStillValid()).isTrue();
            }
            assertThat(consumer.next().status()).isEqualTo(ReadStatus.EMPTY);
            assertThat(consumer.latest().version()).isEqualTo(50);
        }
    }

    @Test
    void aLappedConsumerGetsOverrunThenTheOldestStillThere() throws Exception {
        try (Producer producer = TensorExchange.create(file, 3, 8192);
             Consumer consumer = TensorExchange.openConsumer(file)) {
            Received first = null;
            for (long v = 1; v <= 10; v++) {
                publish(producer, v);
                if (v == 1) {
                    first = consumer.next();
                }
            }
            assertThat(first.isStillValid()).isFalse();
            Received overrun = consumer.next();
            assertThat(overrun.status()).isEqualTo(ReadStatus.OVERRUN);
            // Slots hold 8, 9, 10: versions 2..7 were lost.
            assertThat(overrun.missed()).isEqualTo(6);
            assertThat(consumer.next().version()).isEqualTo(8);
            assertThat(consumer.next().version()).isEqualTo(9);
            assertThat(consumer.next().version()).isEqualTo(10);
        }
    }

    @Test
    void aLeaseKeepsItsSlotFromReuse() throws Exception {
        try (Producer producer = TensorExchange.create(file, 3, 8192);
             Consumer consumer = TensorExchange.openConsumer(file)) {
            publish(producer, 1);
            Received held = consumer.next();
            try (Lease lease = consumer.lease(held).orElseThrow()) {
                for (long v = 2; v <= 20; v++) {
                    publish(producer, v);
                }
                assertThat(held.isStillValid()).isTrue();
                assertThat(Pattern.mismatch(lease.received().tensor().data(), 1)).isEqualTo(-1);
            }
            publish(producer, 21);
            publish(producer, 22);
            assertThat(held.isStillValid()).isFalse();
        }
    }

    @Test
    void dlpackExportOfAClaimedSlotPointsIntoTheMapping() throws Exception {
        try (Producer producer = TensorExchange.create(file, 2, 8192); Arena arena = Arena.ofConfined()) {
            Producer.Slot slot = producer.claim(DType.FLOAT32, 4, 8);
            MemorySegment dl = slot.dlTensor(arena);
            long data = dl.get(java.lang.foreign.ValueLayout.ADDRESS, 0).address();
            assertThat(data).isEqualTo(slot.tensor().data().address());
            assertThat(data).isBetween(producer.mapping().address(), producer.mapping().address() + producer.mapping().byteSize());
            slot.abandon();
        }
    }

    @Test
    void aSecondProducerIsRefusedWhileTheFirstLives() throws Exception {
        try (Producer producer = TensorExchange.create(file, 2, 8192)) {
            assertThatThrownBy(() -> TensorExchange.takeOver(file)).isInstanceOf(ExchangeBusyException.class)
                    .hasMessageContaining("pid " + ProcessHandle.current().pid());
        }
        // Closed: it may be taken over, and the version count goes on.
        try (Producer second = TensorExchange.takeOver(file)) {
            assertThat(second.epoch()).isEqualTo(2);
            Producer.Slot slot = second.claim(DType.UINT8, 3);
            assertThat(slot.publish()).isEqualTo(1);
        }
    }

    @Test
    void takeOverRepairsAHalfWrittenSlot() throws Exception {
        Producer dying = TensorExchange.create(file, 2, 8192);
        publish(dying, 1);
        Producer.Slot half = dying.claim(DType.UINT8, 16);
        Pattern.fill(half.tensor().data(), 99);
        dying.abandonMapping();
        try (Consumer consumer = TensorExchange.openConsumer(file)) {
            assertThat(consumer.next().version()).isEqualTo(1);
            // Our own pid is alive: mark the exchange closed to stand for the dead producer.
            markClosed(file);
            try (Producer next = TensorExchange.takeOver(file)) {
                publish(next, 2);
                assertThat(consumer.next().version()).isEqualTo(2);
            }
        }
    }

    @Test
    void awaitNextWakesOnAPublicationFromAnotherThread() throws Exception {
        try (Producer producer = TensorExchange.create(file, 2, 8192);
             Consumer consumer = TensorExchange.openConsumer(file)) {
            CompletableFuture<Received> waiting = CompletableFuture.supplyAsync(() -> consumer.awaitNext(Duration.ofSeconds(30)));
            Thread.sleep(50);
            assertThat(waiting).isNotDone();
            publish(producer, 1);
            Received received = waiting.get(10, TimeUnit.SECONDS);
            assertThat(received.version()).isEqualTo(1);
            assertThat(Pattern.mismatch(received.tensor().data(), 1)).isEqualTo(-1);
        }
    }

    /** On a virtual thread the wait is offloaded to a native thread: the same outcomes, as promptly. */
    @ParameterizedTest(name = "virtual thread: {0}")
    @ValueSource(booleans = {false, true})
    void waitsEndPromptlyOnTimeoutCancelDeadlineInterruptAndClose(boolean virtual) throws Exception {
        ThreadFactory threads = virtual ? Thread.ofVirtual().factory() : Thread.ofPlatform().factory();
        try (Producer producer = TensorExchange.create(file, 2, 8192);
             Consumer consumer = TensorExchange.openConsumer(file);
             ExecutorService executor = Executors.newThreadPerTaskExecutor(threads)) {
            Future<Long> timed = executor.submit(() -> {
                long t0 = System.nanoTime();
                assertThat(consumer.awaitNext(Duration.ofMillis(30)).status()).isEqualTo(ReadStatus.TIMEOUT);
                return System.nanoTime() - t0;
            });
            assertThat(timed.get(10, TimeUnit.SECONDS)).isBetween(TimeUnit.MILLISECONDS.toNanos(30), TimeUnit.SECONDS.toNanos(5));

            try (CancellableContext ctx = Context.background().withCancel()) {
                Future<Received> waiting = executor.submit(() -> consumer.awaitNext(ctx, null));
                Thread.sleep(50);
                long c0 = System.nanoTime();
                ctx.cancel();
                assertThatThrownBy(() -> waiting.get(5, TimeUnit.SECONDS)).hasCauseInstanceOf(CancellationException.class);
                assertThat(System.nanoTime() - c0).isLessThan(TimeUnit.SECONDS.toNanos(5));
            }

            try (CancellableContext ctx = Context.background().withTimeout(Duration.ofMillis(40))) {
                Future<Received> deadline = executor.submit(() -> consumer.awaitNext(ctx, null));
                assertThatThrownBy(() -> deadline.get(5, TimeUnit.SECONDS)).hasCauseInstanceOf(DeadlineExceededException.class);
            }

            AtomicReference<Throwable> thrown = new AtomicReference<>();
            AtomicBoolean stillInterrupted = new AtomicBoolean();
            Thread waiter = threads.newThread(() -> {
                try {
                    consumer.awaitNext(Context.background(), null);
                } catch (Throwable e) {
                    thrown.set(e);
                    stillInterrupted.set(Thread.currentThread().isInterrupted());
                }
            });
            waiter.start();
            Thread.sleep(50);
            waiter.interrupt();
            waiter.join(5000);
            assertThat(waiter.isAlive()).isFalse();
            assertThat(thrown.get()).isInstanceOf(CancellationException.class);
            assertThat(stillInterrupted).isTrue();

            Future<Received> closedWait = executor.submit(() -> consumer.awaitNext(Duration.ofSeconds(30)));
            Thread.sleep(50);
            producer.close();
            assertThat(closedWait.get(5, TimeUnit.SECONDS).status()).isEqualTo(ReadStatus.PRODUCER_CLOSED);
        }
    }

    /**
     * The platform thread's direct wait ({@link PlatformWait}) raced against what ends it: a
     * publication, a cancel of the waiter's context, an interrupt of the waiter, each from another
     * thread after a random delay (0 to 300 us, so also before the wait blocks), and both a
     * publication and a cancel at once. No end is lost (every wait has a 10 s bound, which would show
     * as TIMEOUT), each ends with its own outcome, and a stop that runs late never spoils the next wait.
     */
    @Test
    void publicationsCancelsAndInterruptsRacingTheWaitAreNeverLost() throws Exception {
        long seed = System.nanoTime();
        SplittableRandom random = new SplittableRandom(seed);
        Thread waiter = Thread.currentThread();
        int[] outcomes = new int[4];
        try (Producer producer = TensorExchange.create(file, 4, 8192);
             Consumer consumer = TensorExchange.openConsumer(file);
             ExecutorService other = Executors.newSingleThreadExecutor()) {
            long version = 0;
            for (int i = 0; i < STRESS_ITERATIONS; i++) {
                int kind = random.nextInt(4);
                long delay = random.nextLong(300_000);
                String what = "iteration " + i + ", kind " + kind + ", delay " + delay + " ns, seed " + seed;
                try (CancellableContext ctx = Context.background().withCancel()) {
                    long next = version + 1;
                    Future<?> event = other.submit(() -> {
                        LockSupport.parkNanos(delay);
                        switch (kind) {
                            case 0 -> TensorExchangeTest.publish(producer, next);
                            case 1 -> ctx.cancel();
                            case 2 -> waiter.interrupt();
                            default -> {
                                TensorExchangeTest.publish(producer, next);
                                ctx.cancel();
                            }
                        }
                    });
                    Received received = null;
                    Throwable stopped = null;
                    try {
                        received = consumer.awaitNext(ctx, Duration.ofSeconds(10));
                    } catch (CancellationException e) {
                        stopped = e;
                    }
                    // Cleared for the next iteration (and for get()); in kind 2 only the interrupt ends the wait.
                    boolean interrupted = Thread.interrupted();
                    event.get(10, TimeUnit.SECONDS);
                    if (kind == 0 || kind == 3) {
                        version = next; // published either way; the cancel may win the race in kind 3
                    }
                    if (received != null) {
                        assertThat(received.status()).as(what).isEqualTo(ReadStatus.OK);
                        assertThat(received.version()).as(what).isEqualTo(next);
                        assertThat(kind == 0 || kind == 3).as(what + ": a tensor without a publication").isTrue();
                        outcomes[kind]++;
                    } else {
                        assertThat(kind).as(what + ": stopped without a stop").isIn(1, 2, 3);
                        if (kind == 2) {
                            assertThat(interrupted).as(what + ": the interrupt status stays set").isTrue();
                            assertThat(stopped.getCause()).as(what).isInstanceOf(InterruptedException.class);
                        }
                        outcomes[kind]++;
                    }
                    if (kind == 3 && received == null) {
                        consumer.seek(next); // the tensor came with the cancel: skip it
                    }
                }
            }
            assertThat(consumer.position()).isEqualTo(version);
            // A late stop of an earlier wait ends the next one early at most, which reads as "look again".
            TensorExchangeTest.publish(producer, version + 1);
            assertThat(consumer.awaitNext(Duration.ofSeconds(10)).version()).isEqualTo(version + 1);
        } catch (AssertionError e) {
            fail("seed " + seed + ": " + e.getMessage(), e);
        }
        assertThat(outcomes[0] + outcomes[1] + outcomes[2] + outcomes[3]).isEqualTo(STRESS_ITERATIONS);
    }

    @Test
    void spinningWaitSeesAPublication() throws Exception {
        try (Producer producer = TensorExchange.create(file, 2, 8192);
             Consumer consumer = TensorExchange.openConsumer(file).spinBeforeBlocking(Duration.ofMillis(200))) {
            CompletableFuture<Received> waiting = CompletableFuture.supplyAsync(() -> consumer.awaitNext(Duration.ofSeconds(30)));
            Thread.sleep(20);
            publish(producer, 1);
            assertThat(waiting.get(10, TimeUnit.SECONDS).version()).isEqualTo(1);
        }
    }

    static void publish(Producer producer, long v) {
        Producer.Slot slot = producer.claim(Pattern.dtype(v), Pattern.shape(v));
        Pattern.fill(slot.tensor().data(), v);
        slot.publish();
    }

    /** Publishes versions {@code from..to} (inclusive). */
    static void publish(Producer producer, long from, long to) {
        for (long v = from; v <= to; v++) {
            publish(producer, v);
        }
    }

    static void markClosed(Path file) throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = dev.nativescope.tensor.io.MappedFile.map(file, dev.nativescope.tensor.io.MappedFile.Mode.READ_WRITE, arena).segment();
            s.set(java.lang.foreign.ValueLayout.JAVA_INT, ExchangeDescriptor.CLOSED_OFFSET, 1);
        }
    }
}
