package dev.nativescope.exchange;

import static dev.nativescope.exchange.ExchangeDescriptor.*;

import dev.nativescope.tensor.DLPack;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Objects;

/**
 * The one producer of an exchange: {@link #claim claims} a slot, exposes it as a writable
 * {@link Tensor} (and DLPack {@code DLTensor}) over the shared mapping, so that native code writes
 * its output straight into shared memory, and {@link Slot#publish() publishes} it.
 *
 * <p>Publishing is: the slot's {@code seq} made even with a release store, {@code latest_slot} and
 * {@code latest_version} release-stored, {@code notify} incremented (seq_cst) and a {@code
 * FUTEX_WAKE} on it. Slots are used round-robin, skipping slots that a live consumer leased and
 * never reusing the newest tensor's slot while there is another.
 *
 * <p>Threading: one thread at a time (claims and publishes are not synchronised); at most one
 * slot is claimed at a time. {@link #close()} marks the exchange closed, wakes waiters, and unmaps
 * this process's mapping (the file stays; delete it with {@link TensorExchange#delete}).
 */
public final class Producer implements AutoCloseable {
    private final ExchangeFile file;
    private final int epoch;
    private Slot claimed;
    private boolean closed;

    Producer(ExchangeFile file) {
        this.file = file;
        this.epoch = file.intAcquire(PRODUCER_EPOCH_OFFSET);
    }

    /** @return the exchange file */
    public Path file() {
        return file.path;
    }

    /** @return how many producers have held this exchange, this one included (1 for its creator) */
    public int epoch() {
        return epoch;
    }

    /** @return the number of slots */
    public int slotCount() {
        return file.slotCount;
    }

    /** @return the capacity of each slot in bytes */
    public long slotCapacity() {
        return file.slotCapacity;
    }

    /** @return the whole mapping (for address checks; do not write the header) */
    public MemorySegment mapping() {
        return file.segment;
    }

    /**
     * Claims a slot for a C-contiguous tensor: the slot is marked as being written (odd {@code
     * seq}) until {@link Slot#publish()} or {@link Slot#abandon()}.
     *
     * @throws IllegalArgumentException when the tensor does not fit a slot or has more than
     *         {@value ExchangeDescriptor#MAX_NDIM} dimensions
     * @throws IllegalStateException when a slot is claimed already, the producer is closed, or
     *         every slot is leased by a consumer
     */
    public Slot claim(DType dtype, long... shape) {
        Objects.requireNonNull(dtype, "dtype");
        Objects.requireNonNull(shape, "shape");
        if (closed) {
            throw new IllegalStateException("the producer of " + file.path + " is closed");
        }
        if (claimed != null) {
            throw new IllegalStateException("slot " + claimed.index + " is claimed and not yet published or abandoned");
        }
        if (shape.length > MAX_NDIM) {
            throw new IllegalArgumentException("a tensor of " + shape.length + " dimensions; an exchange holds at most " + MAX_NDIM);
        }
        long bytes = dtype.byteSize();
        for (long n : shape) {
            if (n < 0) {
                throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
            }
            bytes = Math.multiplyHigh(bytes, n) != 0 ? Long.MAX_VALUE : bytes * n;
        }
        if (bytes > file.slotCapacity || bytes < 0) {
            throw new IllegalArgumentException(dtype.displayName() + " tensor of shape " + Arrays.toString(shape)
                    + " needs " + bytes + " bytes; the slots of " + file.path + " hold " + file.slotCapacity);
        }
        int latestSlot = file.intAcquire(LATEST_SLOT_OFFSET);
        boolean any = file.latestVersion() != 0;
        for (int k = 1; k <= file.slotCount; k++) {
            int i = (latestSlot + k) % file.slotCount;
            if (file.slotCount > 1 && any && i == latestSlot) {
                continue;
            }
            if (Leases.held(file, i)) {
                continue;
            }
            long seqOffset = slotMetaOffset(i) + SLOT_SEQ_OFFSET;
            int seq = file.intAcquire(seqOffset);
            // seq_cst: Dekker with a lease taker (stores its lease, then loads seq). Either it sees
            // the odd seq and gives up, or we see its lease below and back out.
            file.intVolatile(seqOffset, seq + 1);
            if (Leases.held(file, i)) {
                file.intVolatile(seqOffset, seq);
                continue;
            }
            VarHandle.storeStoreFence();
            MemorySegment data = file.segment.asSlice(file.slotDataStart(i), bytes);
            claimed = new Slot(i, seq + 2, dtype, shape.clone(), Tensor.of(data, dtype, shape));
            return claimed;
        }
        throw new IllegalStateException("every slot of " + file.path + " is leased by a consumer (or holds the newest tensor)");
    }

    /** Copies {@code source} into a new slot and publishes it. @return its version */
    public long publishCopy(Tensor source) {
        Slot slot = claim(source.dtype(), source.shape());
        try {
            source.copyTo(slot.tensor().data());
        } catch (RuntimeException | Error e) {
            slot.abandon();
            throw e;
        }
        return slot.publish();
    }

    /** A claimed slot; valid until published or abandoned. */
    public final class Slot {
        private final int index;
        private final int evenSeq;
        private final DType dtype;
        private final long[] shape;
        private final long[] strides;
        private final Tensor tensor;
        private boolean done;

        private Slot(int index, int evenSeq, DType dtype, long[] shape, Tensor tensor) {
            this.index = index;
            this.evenSeq = evenSeq;
            this.dtype = dtype;
            this.shape = shape;
            // At claim, not in publish: publish's stores until the newest version is visible are the
            // wake latency (BENCHMARKS.md section 26), the strides are known now.
            this.strides = Tensor.contiguousStrides(shape);
            this.tensor = tensor;
        }

        /** @return the slot index */
        public int index() {
            return index;
        }

        /** @return the writable tensor over the slot's shared memory (C-contiguous) */
        public Tensor tensor() {
            return tensor;
        }

        /** @return a DLPack {@code DLTensor} of {@link #tensor()}, allocated in {@code arena}, for native writers */
        public MemorySegment dlTensor(Arena arena) {
            return DLPack.export(tensor, arena);
        }

        /**
         * Publishes the slot: metadata written, then {@code seq} even (release), the header's
         * newest version updated (release), waiters woken.
         *
         * @return the version (1, 2, ... for the life of the file, across producers)
         */
        public long publish() {
            check();
            long base = slotMetaOffset(index);
            MemorySegment s = file.segment;
            long version = file.latestVersion() + 1;
            s.set(ValueLayout.JAVA_INT, base + SLOT_DTYPE_OFFSET, DTypes.word(dtype));
            s.set(ValueLayout.JAVA_INT, base + SLOT_NDIM_OFFSET, shape.length);
            s.set(ValueLayout.JAVA_INT, base + SLOT_FLAGS_OFFSET, 0);
            s.set(ValueLayout.JAVA_LONG, base + SLOT_DATA_OFFSET_OFFSET, file.slotDataStart(index));
            s.set(ValueLayout.JAVA_LONG, base + SLOT_BYTE_LENGTH_OFFSET, tensor.byteSize());
            for (int d = 0; d < shape.length; d++) {
                s.set(ValueLayout.JAVA_LONG, base + SLOT_SHAPE_OFFSET + 8L * d, shape[d]);
                s.set(ValueLayout.JAVA_LONG, base + SLOT_STRIDES_OFFSET + 8L * d, strides[d]);
            }
            s.set(ValueLayout.JAVA_LONG, base + SLOT_VERSION_OFFSET, version);
            long now = System.nanoTime();
            s.set(ValueLayout.JAVA_LONG, base + SLOT_PUBLISH_NS_OFFSET, now);
            file.intRelease(base + SLOT_SEQ_OFFSET, evenSeq);
            file.intRelease(LATEST_SLOT_OFFSET, index);
            file.longRelease(LATEST_VERSION_OFFSET, version);
            LONG.setOpaque(s, (long) HEARTBEAT_NS_OFFSET, now);
            done = true;
            claimed = null;
            ExchangeNative.notify(file.header);
            return version;
        }

        /** Gives the slot back unpublished: it reads as empty (version 0). */
        public void abandon() {
            check();
            Slots.markEmpty(file, index, evenSeq);
            done = true;
            claimed = null;
        }

        private void check() {
            if (done) {
                throw new IllegalStateException("slot " + index + " was already published or abandoned");
            }
            if (closed) {
                throw new IllegalStateException("the producer of " + file.path + " is closed");
            }
        }
    }

    /** Marks the exchange closed (consumers' waits end with PRODUCER_CLOSED) and unmaps it here. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        if (claimed != null) {
            claimed.abandon();
        }
        closed = true;
        file.intVolatile(CLOSED_OFFSET, 1);
        ExchangeNative.notify(file.header);
        file.close();
    }

    /** Test hook: leaves the mapping without closing the exchange, as a dying producer would. */
    void abandonMapping() {
        closed = true;
        file.close();
    }
}
