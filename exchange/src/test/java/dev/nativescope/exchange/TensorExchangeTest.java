package dev.nativescope.exchange;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

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
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class TensorExchangeTest {
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

    static void markClosed(Path file) throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = dev.nativescope.tensor.io.MappedFile.map(file, dev.nativescope.tensor.io.MappedFile.Mode.READ_WRITE, arena).segment();
            s.set(java.lang.foreign.ValueLayout.JAVA_INT, ExchangeDescriptor.CLOSED_OFFSET, 1);
        }
    }
}
