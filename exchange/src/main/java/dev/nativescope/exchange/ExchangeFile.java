package dev.nativescope.exchange;

import static dev.nativescope.exchange.ExchangeDescriptor.*;

import dev.nativescope.tensor.io.MappedFile;
import dev.nativescope.tensor.io.TensorFormatException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.EnumSet;

/**
 * One mapping of an exchange file (read-write, shared) and typed, ordered access to its fields.
 * The mapping belongs to a shared arena that {@link #close()} closes; views into it then fail with
 * {@link IllegalStateException} instead of reading unmapped memory. Thread-safe; the geometry is
 * read once, at open, and never again from the (hostile) file.
 */
final class ExchangeFile implements AutoCloseable {
    final Path path;
    final Arena arena;
    final MemorySegment segment;
    final MemorySegment header;
    final int slotCount;
    final long slotCapacity;
    final long dataOffset;

    private ExchangeFile(Path path, Arena arena, MemorySegment segment) {
        this.path = path;
        this.arena = arena;
        this.segment = segment;
        this.header = segment.asSlice(0, HEADER_LENGTH);
        this.slotCount = segment.get(ValueLayout.JAVA_INT, SLOT_COUNT_OFFSET);
        this.slotCapacity = segment.get(ValueLayout.JAVA_LONG, SLOT_CAPACITY_OFFSET);
        this.dataOffset = segment.get(ValueLayout.JAVA_LONG, DATA_OFFSET_OFFSET);
    }

    /** Creates the file O_EXCL with mode 0600, reserves its storage, maps it and writes the header (version last). */
    static ExchangeFile create(Path path, int slotCount, long slotCapacity) throws IOException {
        if (slotCount < 1 || slotCount > MAX_SLOTS) {
            throw new IllegalArgumentException("slot count " + slotCount + " is outside 1.." + MAX_SLOTS);
        }
        if (slotCapacity <= 0) {
            throw new IllegalArgumentException("slot capacity " + slotCapacity + " is not positive");
        }
        long capacity = (slotCapacity + 63) / 64 * 64;
        long length = fileLength(slotCount, capacity);
        if (length < 0 || capacity < slotCapacity) {
            throw new IllegalArgumentException(slotCount + " slots of " + slotCapacity + " bytes overflow a file length");
        }
        Files.createFile(path, PosixFilePermissions.asFileAttribute(
                EnumSet.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE)));
        Arena arena = Arena.ofShared();
        boolean success = false;
        try {
            // grow: posix_fallocate (a full /dev/shm fails here, not with SIGBUS later), and the
            // writable-by-others check of the file actually opened.
            MemorySegment segment = MappedFile.grow(path, length, arena).segment();
            segment.set(ValueLayout.JAVA_LONG, MAGIC_OFFSET, MAGIC);
            segment.set(ValueLayout.JAVA_INT, HEADER_LENGTH_OFFSET, HEADER_LENGTH);
            segment.set(ValueLayout.JAVA_INT, SLOT_COUNT_OFFSET, slotCount);
            segment.set(ValueLayout.JAVA_INT, SLOT_META_LENGTH_OFFSET, SLOT_META_LENGTH);
            segment.set(ValueLayout.JAVA_LONG, SLOT_CAPACITY_OFFSET, capacity);
            segment.set(ValueLayout.JAVA_LONG, DATA_OFFSET_OFFSET, ExchangeDescriptor.dataOffset(slotCount));
            segment.set(ValueLayout.JAVA_LONG, FILE_LENGTH_OFFSET, length);
            segment.set(ValueLayout.JAVA_INT, MAX_NDIM_OFFSET, MAX_NDIM);
            segment.set(ValueLayout.JAVA_INT, LEASE_COUNT_OFFSET, LEASE_COUNT);
            for (int i = 0; i < LEASE_COUNT; i++) {
                segment.set(ValueLayout.JAVA_INT, LEASES_OFFSET + (long) i * LEASE_LENGTH + LEASE_SLOT_OFFSET, -1);
            }
            segment.set(ValueLayout.JAVA_LONG, PRODUCER_START_OFFSET, ProcessIdentity.selfStart());
            segment.set(ValueLayout.JAVA_INT, PRODUCER_EPOCH_OFFSET, 1);
            segment.set(ValueLayout.JAVA_LONG, HEARTBEAT_NS_OFFSET, System.nanoTime());
            INT.setRelease(segment, (long) PRODUCER_PID_OFFSET, ProcessIdentity.selfPid());
            // Published last: an opener that reads the version (acquire) sees every field above.
            INT.setRelease(segment, (long) VERSION_OFFSET, LAYOUT_VERSION);
            success = true;
            return new ExchangeFile(path, arena, segment);
        } finally {
            if (!success) {
                arena.close();
                Files.deleteIfExists(path);
            }
        }
    }

    /**
     * Maps an existing exchange file read-write (refusing files other users can write, as
     * {@link MappedFile} does) and validates its header.
     *
     * @throws TensorFormatException when it is not a valid exchange of this layout version
     */
    static ExchangeFile open(Path path) throws IOException {
        Arena arena = Arena.ofShared();
        boolean success = false;
        try {
            MemorySegment segment = MappedFile.map(path, MappedFile.Mode.READ_WRITE, arena).segment();
            String problem = ExchangeDescriptor.validate(segment);
            if (problem != null) {
                throw new TensorFormatException(path, problem);
            }
            if (segment.address() % DATA_ALIGNMENT != 0) {
                throw new IllegalStateException("the mapping of " + path + " is not page-aligned");
            }
            success = true;
            return new ExchangeFile(path, arena, segment);
        } finally {
            if (!success) {
                arena.close();
            }
        }
    }

    static FileAlreadyExistsException exists(Path path) {
        return new FileAlreadyExistsException(path.toString(), null,
                "an exchange file exists there; open it (TensorExchange.openConsumer) or take it over (TensorExchange.takeOver)");
    }

    // --- header fields, by memory order (the width is the field's; the order is the protocol's) ---

    // Acquire loads: read a field a release store published, and everything written before it.

    int intAcquire(long offset) {
        return (int) INT.getAcquire(segment, offset);
    }

    long longAcquire(long offset) {
        return (long) LONG.getAcquire(segment, offset);
    }

    // Volatile (seq_cst) loads and stores: the Dekker pair of a lease and a slot's seq (see Leases),
    // the lease entries and the producer's words (pid, start, epoch, closed, heartbeat) at take-over and close.

    int intVolatile(long offset) {
        return (int) INT.getVolatile(segment, offset);
    }

    long longVolatile(long offset) {
        return (long) LONG.getVolatile(segment, offset);
    }

    void intVolatile(long offset, int value) {
        INT.setVolatile(segment, offset, value);
    }

    void longVolatile(long offset, long value) {
        LONG.setVolatile(segment, offset, value);
    }

    // Release stores: publish a field after everything written before it (a slot, the latest pointer).

    void intRelease(long offset, int value) {
        INT.setRelease(segment, offset, value);
    }

    void longRelease(long offset, long value) {
        LONG.setRelease(segment, offset, value);
    }

    // Compare-and-set (seq_cst): take a word from one owner to the next (a lease entry, the producer pid).

    boolean intCas(long offset, int expected, int value) {
        return INT.compareAndSet(segment, offset, expected, value);
    }

    int notifyWord() {
        return intAcquire(NOTIFY_OFFSET);
    }

    long latestVersion() {
        return longAcquire(LATEST_VERSION_OFFSET);
    }

    long slotDataStart(int slot) {
        return dataOffset + slot * slotCapacity;
    }

    /** @return the producer as the header names it: ALIVE, DEAD or CLOSED */
    ProducerState producerState() {
        if (intAcquire(CLOSED_OFFSET) != 0) {
            return ProducerState.CLOSED;
        }
        int pid = intAcquire(PRODUCER_PID_OFFSET);
        long start = longAcquire(PRODUCER_START_OFFSET);
        return ProcessIdentity.isAlive(pid, start) ? ProducerState.ALIVE : ProducerState.DEAD;
    }

    /** Seqlock read of slot {@code i}'s metadata. @return the copy, or null while it is being written or empty */
    ExchangeDescriptor.SlotMeta readSlot(int i) {
        long base = slotMetaOffset(i);
        for (int attempt = 0; attempt < 64; attempt++) {
            int s1 = (int) INT.getAcquire(segment, base + SLOT_SEQ_OFFSET);
            if ((s1 & 1) != 0) {
                Thread.onSpinWait();
                continue;
            }
            int dtype = segment.get(ValueLayout.JAVA_INT, base + SLOT_DTYPE_OFFSET);
            long version = segment.get(ValueLayout.JAVA_LONG, base + SLOT_VERSION_OFFSET);
            int ndim = segment.get(ValueLayout.JAVA_INT, base + SLOT_NDIM_OFFSET);
            long dataOff = segment.get(ValueLayout.JAVA_LONG, base + SLOT_DATA_OFFSET_OFFSET);
            long byteLength = segment.get(ValueLayout.JAVA_LONG, base + SLOT_BYTE_LENGTH_OFFSET);
            long publishNs = segment.get(ValueLayout.JAVA_LONG, base + SLOT_PUBLISH_NS_OFFSET);
            int n = Math.max(0, Math.min(ndim, MAX_NDIM));
            long[] shape = new long[n];
            long[] strides = new long[n];
            for (int d = 0; d < n; d++) {
                shape[d] = segment.get(ValueLayout.JAVA_LONG, base + SLOT_SHAPE_OFFSET + 8L * d);
                strides[d] = segment.get(ValueLayout.JAVA_LONG, base + SLOT_STRIDES_OFFSET + 8L * d);
            }
            // Seqlock: the plain reads above must not move below the second read of seq.
            VarHandle.loadLoadFence();
            if ((int) INT.getAcquire(segment, base + SLOT_SEQ_OFFSET) == s1) {
                return version == 0 ? null : new ExchangeDescriptor.SlotMeta(i, s1, dtype, version, ndim, dataOff,
                        byteLength, publishNs, shape, strides);
            }
        }
        return null;
    }

    int slotSeq(int slot) {
        return (int) INT.getAcquire(segment, slotMetaOffset(slot) + SLOT_SEQ_OFFSET);
    }

    @Override
    public void close() {
        arena.close();
    }
}
