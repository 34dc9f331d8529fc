package dev.nativescope.exchange;

import static dev.nativescope.exchange.ExchangeDescriptor.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.nativescope.fuzz.FuzzMutator;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.io.TensorFormatException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Random;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class ExchangeBadInputTest {
    private Path file;

    @BeforeEach
    void name() throws Exception {
        file = TensorExchange.defaultPath("nsc-testbad-" + ProcessHandle.current().pid() + "-" + System.nanoTime());
        try (Producer producer = TensorExchange.create(file, 3, 8192)) {
            for (long v = 1; v <= 4; v++) {
                TensorExchangeTest.publish(producer, v);
            }
        }
    }

    @AfterEach
    void delete() throws Exception {
        TensorExchange.delete(file);
    }

    private void patch(long offset, Consumer<ByteBuffer> writer, int length) throws Exception {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ByteBuffer buffer = ByteBuffer.allocate(length).order(ByteOrder.LITTLE_ENDIAN);
            writer.accept(buffer);
            buffer.flip();
            channel.write(buffer, offset);
        }
    }

    private int latestSlot() throws Exception {
        return ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN).getInt(LATEST_SLOT_OFFSET);
    }

    @Test
    void wrongMagic() throws Exception {
        patch(MAGIC_OFFSET, b -> b.putLong(0x1234), 8);
        assertThatThrownBy(() -> TensorExchange.openConsumer(file)).isInstanceOf(TensorFormatException.class)
                .hasMessageContaining("bad magic");
        assertThatThrownBy(() -> TensorExchange.takeOver(file)).isInstanceOf(TensorFormatException.class);
    }

    @Test
    void unknownVersion() throws Exception {
        patch(VERSION_OFFSET, b -> b.putInt(7), 4);
        assertThatThrownBy(() -> TensorExchange.openConsumer(file)).isInstanceOf(TensorFormatException.class)
                .hasMessageContaining("layout version 7");
        patch(VERSION_OFFSET, b -> b.putInt(0), 4);
        assertThatThrownBy(() -> TensorExchange.openConsumer(file)).hasMessageContaining("has not finished");
    }

    @Test
    void truncatedOrResizedFile() throws Exception {
        long size = Files.size(file);
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
            channel.truncate(size - 4096);
        }
        assertThatThrownBy(() -> TensorExchange.openConsumer(file)).isInstanceOf(TensorFormatException.class)
                .hasMessageContaining("truncated or resized");
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
            channel.truncate(100);
        }
        assertThatThrownBy(() -> TensorExchange.openConsumer(file)).isInstanceOf(TensorFormatException.class)
                .hasMessageContaining("fewer than");
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
            channel.write(ByteBuffer.allocate(1), size + 10);
        }
        assertThatThrownBy(() -> TensorExchange.openConsumer(file)).isInstanceOf(TensorFormatException.class);
    }

    @Test
    void slotMetadataPointingOutsideTheSlot() throws Exception {
        int latest = latestSlot();
        patch(slotMetaOffset(latest) + SLOT_DATA_OFFSET_OFFSET, b -> b.putLong(Long.MAX_VALUE - 7), 8);
        try (dev.nativescope.exchange.Consumer consumer = TensorExchange.openConsumer(file)) {
            assertThatThrownBy(consumer::latest).isInstanceOf(CorruptExchangeException.class)
                    .hasMessageContaining("outside the slot");
        }
    }

    @Test
    void overflowingShapes() throws Exception {
        int latest = latestSlot();
        patch(slotMetaOffset(latest) + SLOT_NDIM_OFFSET, b -> b.putInt(3), 4);
        patch(slotMetaOffset(latest) + SLOT_SHAPE_OFFSET, b -> b.putLong(1L << 40).putLong(1L << 40).putLong(1L << 40), 24);
        try (dev.nativescope.exchange.Consumer consumer = TensorExchange.openConsumer(file)) {
            assertThatThrownBy(consumer::latest).isInstanceOf(CorruptExchangeException.class).hasMessageContaining("overflows");
        }
        patch(slotMetaOffset(latest) + SLOT_NDIM_OFFSET, b -> b.putInt(99), 4);
        try (dev.nativescope.exchange.Consumer consumer = TensorExchange.openConsumer(file)) {
            assertThatThrownBy(consumer::latest).isInstanceOf(CorruptExchangeException.class).hasMessageContaining("ndim 99");
        }
    }

    /**
     * The consumer reuses a validated view while a slot's layout words are unchanged: a word changed
     * in place afterwards (even with seq left as it was, as a hostile writer may) must be validated
     * afresh, on the wake path (next) and on the scan path (latest).
     */
    @Test
    void aLayoutChangedAfterACachedViewIsValidatedAgain() throws Exception {
        TensorExchange.delete(file);
        try (Producer producer = TensorExchange.create(file, 2, 4096);
             dev.nativescope.exchange.Consumer consumer = TensorExchange.openConsumer(file)) {
            for (long v = 1; v <= 3; v++) {
                Producer.Slot slot = producer.claim(DType.INT64, 4);
                slot.tensor().data().set(java.lang.foreign.ValueLayout.JAVA_LONG, 0, v);
                slot.publish();
                Received r = consumer.next();
                assertThat(r.version()).isEqualTo(v);
                assertThat(r.tensor().shape()).containsExactly(4);
                assertThat(r.tensor().getLong(0)).isEqualTo(v);
            }
            int slot = latestSlot(); // version 3, its view cached since version 1 used the same slot and layout
            var mapping = consumer.mapping();
            long meta = slotMetaOffset(slot);
            mapping.set(java.lang.foreign.ValueLayout.JAVA_LONG, meta + SLOT_SHAPE_OFFSET, 1L << 40);
            consumer.seek(2);
            assertThatThrownBy(consumer::next).isInstanceOf(CorruptExchangeException.class).hasMessageContaining("outside");
            assertThatThrownBy(consumer::latest).isInstanceOf(CorruptExchangeException.class).hasMessageContaining("outside");
            mapping.set(java.lang.foreign.ValueLayout.JAVA_LONG, meta + SLOT_SHAPE_OFFSET, 4);
            mapping.set(java.lang.foreign.ValueLayout.JAVA_LONG, meta + SLOT_STRIDES_OFFSET, -1);
            consumer.seek(2);
            assertThatThrownBy(consumer::next).isInstanceOf(CorruptExchangeException.class).hasMessageContaining("outside");
            // A valid change (two of the four elements): the new shape, not the cached one.
            mapping.set(java.lang.foreign.ValueLayout.JAVA_LONG, meta + SLOT_STRIDES_OFFSET, 1);
            mapping.set(java.lang.foreign.ValueLayout.JAVA_LONG, meta + SLOT_SHAPE_OFFSET, 2);
            consumer.seek(2);
            Received r = consumer.next();
            assertThat(r.version()).isEqualTo(3);
            assertThat(r.tensor().shape()).containsExactly(2);
            assertThat(r.tensor().segment().isReadOnly()).isTrue();
            mapping.set(java.lang.foreign.ValueLayout.JAVA_LONG, meta + SLOT_DATA_OFFSET_OFFSET, 8);
            assertThatThrownBy(consumer::latest).isInstanceOf(CorruptExchangeException.class).hasMessageContaining("outside");
        }
    }

    @Test
    void aFileOtherUsersCanWriteIsRefused() throws Exception {
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-rw-rw-"));
        assertThatThrownBy(() -> TensorExchange.openConsumer(file)).isInstanceOf(AccessDeniedException.class);
        assertThatThrownBy(() -> TensorExchange.takeOver(file)).isInstanceOf(AccessDeniedException.class);
    }

    @Test
    void tooBigOrTooManyDimensionsAreRefusedByTheProducer() throws Exception {
        TensorExchange.delete(file);
        try (Producer producer = TensorExchange.create(file, 2, 64)) {
            assertThatThrownBy(() -> producer.claim(DType.FLOAT32, 17)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("hold 64");
            assertThatThrownBy(() -> producer.claim(DType.UINT8, new long[17])).hasMessageContaining("at most 16");
            assertThatThrownBy(() -> producer.claim(DType.UINT8, Long.MAX_VALUE, 4)).isInstanceOf(IllegalArgumentException.class);
        }
    }

    /** Seeded mutations of a valid file: every outcome is a tensor inside the mapping or one of our exceptions. */
    @Test
    void mutatedHeadersAndSlotsNeverEscapeTheParser() throws Exception {
        byte[] valid = Files.readAllBytes(file);
        long seed = Long.getLong("nsc.fuzz.seed", 1616);
        int iterations = Integer.getInteger("nsc.fuzz.iterations", 3000);
        Random random = new Random(seed);
        FuzzMutator mutator = new FuzzMutator(random);
        int opened = 0;
        int tensors = 0;
        for (int i = 0; i < iterations; i++) {
            byte[] bytes = valid.clone();
            int region = slotMetaOffset(3) > bytes.length ? bytes.length : (int) slotMetaOffset(3);
            switch (random.nextInt(4)) {
                case 0 -> bytes = mutator.mutateBytes(bytes);
                default -> {
                    // Structure-aware: overwrite an aligned word of the header or slot metadata with an edge value.
                    int at = random.nextInt(region / 4) * 4;
                    long[] edges = {0, 1, -1, 2, 3, 16, 17, 64, 1L << 31, 1L << 32, 1L << 48, Long.MAX_VALUE, Long.MIN_VALUE,
                            4096, 8192, random.nextLong()};
                    long value = edges[random.nextInt(edges.length)];
                    ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putInt(at, (int) value);
                    if (at + 8 <= region && random.nextBoolean()) {
                        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putLong(at, value);
                    }
                }
            }
            Files.write(file, bytes);
            dev.nativescope.exchange.Consumer consumer;
            try {
                consumer = TensorExchange.openConsumer(file);
            } catch (TensorFormatException expected) {
                continue;
            }
            opened++;
            try (consumer) {
                for (int k = 0; k < 6; k++) {
                    Received r;
                    try {
                        r = k == 0 ? consumer.latest() : consumer.next();
                    } catch (CorruptExchangeException expected) {
                        continue;
                    }
                    if (r.isOk()) {
                        tensors++;
                        var t = r.tensor();
                        long first = t.segment().address() + t.byteOffset();
                        assertThat(first).isBetween(consumer.mapping().address(), consumer.mapping().address() + consumer.mapping().byteSize());
                        if (t.elementCount() > 0) {
                            long[] last = new long[t.rank()];
                            for (int d = 0; d < last.length; d++) {
                                last[d] = t.dim(d) - 1;
                            }
                            t.getDouble(last);
                            t.getDouble(new long[t.rank()]);
                        }
                    }
                }
            }
        }
        System.out.printf("seed %d: %d mutations, %d opened, %d tensors read%n", seed, iterations, opened, tensors);
        assertThat(opened).isPositive();
        assertThat(tensors).isPositive();
    }
}
