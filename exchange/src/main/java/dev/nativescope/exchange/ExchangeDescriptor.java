package dev.nativescope.exchange;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;

/**
 * The layout of an exchange file, in one place (as Agrona's {@code CncFileDescriptor} does for
 * Aeron's CnC file): every offset is a constant here, in {@code nsc_exchange.h} of the shim and in
 * {@code nativescope_exchange.py}. All integers are little-endian; offsets are from the start of the
 * file.
 *
 * <pre>
 * Header ({@value #HEADER_LENGTH} bytes)
 *
 *  0               8               16              24              32
 *  +-------------------------------+---------------+---------------+
 *  | magic "NSCXCHG\0"             | version (u32) | header_length |     version: published LAST
 *  +---------------+---------------+---------------+---------------+     (release store) by the creator
 *  | slot_count    | slot_meta_len | slot_capacity (u64)           | 32
 *  +---------------+---------------+-------------------------------+
 *  | data_offset (u64)             | file_length (u64)             | 48
 *  +---------------+---------------+-------------------------------+
 *  | max_ndim      | lease_count   | reserved                      | 64
 *  +---------------+---------------+-------------------------------+
 *  | producer_pid  | producer_epoch| producer_start (u64, ticks)   | 80    line 1: the producer
 *  +---------------+---------------+-------------------------------+
 *  | heartbeat_ns (u64)            | closed (u32)  | reserved      | 96..128
 *  +---------------+---------------+-------------------------------+
 *  | notify (u32)  | reserved      | latest_version (u64)          | 144   line 2: publication
 *  +---------------+---------------+-------------------------------+
 *  | latest_slot   | reserved ...                                  | 192
 *  +---------------+-----------------------------------------------+
 *  | leases[32]: { pid u32, slot u32, start u64 } (16 bytes each)  | 704
 *  +---------------------------------------------------------------+
 *  | reserved to 1024                                              |
 *  +---------------------------------------------------------------+
 *
 * Slot metadata i at HEADER_LENGTH + i * SLOT_META_LENGTH ({@value #SLOT_META_LENGTH} bytes)
 *
 *  0               4               8               16
 *  +---------------+---------------+---------------+
 *  | seq (u32)     | dtype (u32)   | version (u64) |   seq: seqlock and futex word, odd while written
 *  +---------------+---------------+---------------+
 *  | ndim (u32)    | flags (u32)   | data_offset   | 32  data_offset: file offset of element [0, ...]
 *  +---------------+---------------+---------------+
 *  | byte_length (u64)             | publish_ns    | 48
 *  +-------------------------------+---------------+
 *  | reserved (16)                                 | 64
 *  +-----------------------------------------------+
 *  | shape[16] (i64)                               | 192
 *  +-----------------------------------------------+
 *  | strides[16] (i64, in elements)                | 320
 *  +-----------------------------------------------+
 *
 * Slot i's data: [data_offset + i * slot_capacity, + slot_capacity), page-aligned.
 * dtype = DLPack code | bits &lt;&lt; 8 | lanes &lt;&lt; 16.
 * </pre>
 *
 * <p><b>Ordering.</b> The creator writes every field and then stores {@code version} with a release
 * store; an opener that reads it with an acquire load sees the rest. The slot protocol (seqlock,
 * leases, notify) is described on {@link TensorExchange}. Stateless; thread-safe.
 */
public final class ExchangeDescriptor {
    /** "NSCXCHG\0" as a little-endian u64. */
    public static final long MAGIC = 0x004748435843534EL;
    /** The layout version this code reads and writes. */
    public static final int LAYOUT_VERSION = 1;
    public static final int HEADER_LENGTH = 1024;
    public static final int SLOT_META_LENGTH = 320;
    public static final int MAX_NDIM = 16;
    public static final int LEASE_COUNT = 32;
    public static final int MAX_SLOTS = 1024;
    public static final int DATA_ALIGNMENT = 4096;

    public static final int MAGIC_OFFSET = 0;
    public static final int VERSION_OFFSET = 8;
    public static final int HEADER_LENGTH_OFFSET = 12;
    public static final int SLOT_COUNT_OFFSET = 16;
    public static final int SLOT_META_LENGTH_OFFSET = 20;
    public static final int SLOT_CAPACITY_OFFSET = 24;
    public static final int DATA_OFFSET_OFFSET = 32;
    public static final int FILE_LENGTH_OFFSET = 40;
    public static final int MAX_NDIM_OFFSET = 48;
    public static final int LEASE_COUNT_OFFSET = 52;
    public static final int PRODUCER_PID_OFFSET = 64;
    public static final int PRODUCER_EPOCH_OFFSET = 68;
    public static final int PRODUCER_START_OFFSET = 72;
    public static final int HEARTBEAT_NS_OFFSET = 80;
    public static final int CLOSED_OFFSET = 88;
    public static final int NOTIFY_OFFSET = 128;
    public static final int LATEST_VERSION_OFFSET = 136;
    public static final int LATEST_SLOT_OFFSET = 144;
    public static final int LEASES_OFFSET = 192;
    public static final int LEASE_LENGTH = 16;
    public static final int LEASE_PID_OFFSET = 0;
    public static final int LEASE_SLOT_OFFSET = 4;
    public static final int LEASE_START_OFFSET = 8;

    public static final int SLOT_SEQ_OFFSET = 0;
    public static final int SLOT_DTYPE_OFFSET = 4;
    public static final int SLOT_VERSION_OFFSET = 8;
    public static final int SLOT_NDIM_OFFSET = 16;
    public static final int SLOT_FLAGS_OFFSET = 20;
    public static final int SLOT_DATA_OFFSET_OFFSET = 24;
    public static final int SLOT_BYTE_LENGTH_OFFSET = 32;
    public static final int SLOT_PUBLISH_NS_OFFSET = 40;
    public static final int SLOT_SHAPE_OFFSET = 64;
    public static final int SLOT_STRIDES_OFFSET = 192;

    /*
     * The shim's exchange outcomes (nsc_exchange.h: NSC_XCHG_PRODUCER_DEAD ...), kept out of enum
     * nsc_status's range. nsc_exchange_wait returns the first two to Java; the rest are C API results.
     */
    /** The producer process is gone (or its pid now names another process). */
    public static final int STATUS_PRODUCER_DEAD = 101;
    /** The producer closed the exchange. */
    public static final int STATUS_PRODUCER_CLOSED = 102;
    /** The consumer was lapped. */
    public static final int STATUS_OVERRUN = 103;
    /** Nothing (new) published yet. */
    public static final int STATUS_EMPTY = 104;
    /** A live producer holds the exchange, or every slot is leased. */
    public static final int STATUS_BUSY = 105;
    /** Not an exchange file, an unknown version, bad sizes or metadata. */
    public static final int STATUS_ERR_FORMAT = -101;

    static final VarHandle INT = ValueLayout.JAVA_INT.varHandle();
    static final VarHandle LONG = ValueLayout.JAVA_LONG.varHandle();

    private ExchangeDescriptor() {
    }

    /** @return the file offset of slot {@code slot}'s metadata */
    public static long slotMetaOffset(int slot) {
        return HEADER_LENGTH + (long) slot * SLOT_META_LENGTH;
    }

    /** @return the file offset of the first slot's data for {@code slotCount} slots (page-aligned) */
    public static long dataOffset(int slotCount) {
        long metaEnd = HEADER_LENGTH + (long) slotCount * SLOT_META_LENGTH;
        return (metaEnd + DATA_ALIGNMENT - 1) / DATA_ALIGNMENT * DATA_ALIGNMENT;
    }

    /** @return the file length for a geometry, or -1 when it overflows */
    public static long fileLength(int slotCount, long slotCapacity) {
        try {
            return Math.addExact(dataOffset(slotCount), Math.multiplyExact(slotCapacity, (long) slotCount));
        } catch (ArithmeticException e) {
            return -1;
        }
    }

    /**
     * Checks the header in {@code file} (the whole mapped file).
     *
     * @return null when it is a valid exchange of this layout version, else what is wrong
     */
    public static String validate(MemorySegment file) {
        long length = file.byteSize();
        if (length < HEADER_LENGTH) {
            return "the file has " + length + " bytes, fewer than the " + HEADER_LENGTH + "-byte header";
        }
        long magic = file.get(ValueLayout.JAVA_LONG_UNALIGNED, MAGIC_OFFSET);
        if (magic != MAGIC) {
            return String.format("bad magic 0x%016x (expected 0x%016x, \"NSCXCHG\\0\"): not an exchange file", magic, MAGIC);
        }
        int version = (int) INT.getAcquire(file, (long) VERSION_OFFSET);
        if (version != LAYOUT_VERSION) {
            return "layout version " + Integer.toUnsignedString(version) + " is not the supported version "
                    + LAYOUT_VERSION + (version == 0 ? " (the creator has not finished, or died, creating it)"
                    : "; use a nativescope-exchange of that version");
        }
        int headerLength = getInt(file, HEADER_LENGTH_OFFSET);
        int metaLength = getInt(file, SLOT_META_LENGTH_OFFSET);
        int maxNdim = getInt(file, MAX_NDIM_OFFSET);
        int leases = getInt(file, LEASE_COUNT_OFFSET);
        if (headerLength != HEADER_LENGTH || metaLength != SLOT_META_LENGTH || maxNdim != MAX_NDIM || leases != LEASE_COUNT) {
            return "header geometry (header " + headerLength + ", slot metadata " + metaLength + ", max ndim " + maxNdim
                    + ", leases " + leases + ") does not match layout version " + LAYOUT_VERSION;
        }
        int slots = getInt(file, SLOT_COUNT_OFFSET);
        long capacity = file.get(ValueLayout.JAVA_LONG_UNALIGNED, SLOT_CAPACITY_OFFSET);
        if (slots < 1 || slots > MAX_SLOTS) {
            return "slot count " + Integer.toUnsignedString(slots) + " is outside 1.." + MAX_SLOTS;
        }
        if (capacity <= 0 || capacity % 64 != 0) {
            return "slot capacity " + Long.toUnsignedString(capacity) + " is not a positive multiple of 64";
        }
        long need = fileLength(slots, capacity);
        if (need < 0) {
            return "slot count " + slots + " times capacity " + capacity + " overflows";
        }
        long dataOffset = file.get(ValueLayout.JAVA_LONG_UNALIGNED, DATA_OFFSET_OFFSET);
        long recorded = file.get(ValueLayout.JAVA_LONG_UNALIGNED, FILE_LENGTH_OFFSET);
        if (dataOffset != dataOffset(slots)) {
            return "data offset " + Long.toUnsignedString(dataOffset) + " is not " + dataOffset(slots);
        }
        if (recorded != need) {
            return "recorded file length " + Long.toUnsignedString(recorded) + " is not the " + need + " bytes its geometry needs";
        }
        if (length != need) {
            return "the file has " + length + " bytes but its header describes " + need
                    + " (truncated or resized after it was created)";
        }
        return null;
    }

    private static int getInt(MemorySegment file, long offset) {
        return file.get(ValueLayout.JAVA_INT_UNALIGNED, offset);
    }

    /** A private copy of one slot's metadata, read under the seqlock. */
    record SlotMeta(int slot, int seq, int dtypeWord, long version, int ndim, long dataOffset, long byteLength,
                    long publishNanos, long[] shape, long[] strides) {
    }

    /**
     * Validates slot metadata against the file's geometry: known dtype, ndim within bounds, no
     * negative or overflowing dimension, every byte the indices address inside the slot's data.
     *
     * @return null when valid, else what is wrong
     */
    static String validateSlot(SlotMeta meta, int slotCount, long slotCapacity, long firstDataOffset) {
        if (meta.slot() < 0 || meta.slot() >= slotCount) {
            return "slot " + meta.slot() + " is outside 0.." + (slotCount - 1);
        }
        if (meta.ndim() < 0 || meta.ndim() > MAX_NDIM) {
            return "slot " + meta.slot() + ": ndim " + Integer.toUnsignedString(meta.ndim()) + " is outside 0.." + MAX_NDIM;
        }
        var dtype = DTypes.ofWord(meta.dtypeWord());
        if (dtype == null) {
            return String.format("slot %d: unknown dtype word 0x%08x", meta.slot(), meta.dtypeWord());
        }
        long elem = dtype.byteSize();
        long limit = 1L << 48;
        long lo = 0;
        long hi = 0;
        long count = 1;
        for (int d = 0; d < meta.ndim(); d++) {
            long n = meta.shape()[d];
            long s = meta.strides()[d];
            if (n < 0 || n > limit || s > limit || s < -limit) {
                return "slot " + meta.slot() + ": dimension " + d + " (size " + n + ", stride " + s + ") is negative or too large";
            }
            if (Math.multiplyHigh(count, n) != 0 || count * n > (1L << 62)) {
                return "slot " + meta.slot() + ": the element count overflows";
            }
            count *= n;
            if (n > 0) {
                // |n - 1| <= 2^48 and |s| <= 2^48 and elem <= 8: the product needs 2^99: check with multiplyHigh.
                long a = (n - 1) * elem;
                if (Math.multiplyHigh(a, s) != 0 && Math.multiplyHigh(a, s) != -1) {
                    return "slot " + meta.slot() + ": dimension " + d + " reaches beyond 2^63 bytes";
                }
                long reach = a * s;
                if (reach < 0) {
                    lo += reach;
                } else {
                    hi += reach;
                }
                if (lo < -(1L << 62) || hi > (1L << 62)) {
                    return "slot " + meta.slot() + ": the strides reach beyond 2^62 bytes";
                }
            }
        }
        long slotLo = firstDataOffset + meta.slot() * slotCapacity;
        long slotHi = slotLo + slotCapacity;
        long first = meta.dataOffset();
        if (first < slotLo || first > slotHi) {
            return "slot " + meta.slot() + ": data offset " + Long.toUnsignedString(first) + " is outside the slot's data ["
                    + slotLo + ", " + slotHi + ")";
        }
        if (count == 0) {
            return meta.byteLength() == 0 ? null : "slot " + meta.slot() + ": an empty tensor with byte length " + meta.byteLength();
        }
        long begin = first + lo;
        long end = first + hi + elem;
        if (begin < slotLo || end > slotHi) {
            return "slot " + meta.slot() + ": the tensor's bytes [" + begin + ", " + end + ") are outside the slot's data ["
                    + slotLo + ", " + slotHi + ")";
        }
        if (meta.byteLength() < 0 || meta.byteLength() > slotCapacity || meta.byteLength() < end - begin) {
            return "slot " + meta.slot() + ": byte length " + Long.toUnsignedString(meta.byteLength())
                    + " does not cover the tensor's " + (end - begin) + " bytes or exceeds the capacity";
        }
        if (first % elem != 0) {
            return "slot " + meta.slot() + ": data offset " + first + " is not aligned to the element size " + elem;
        }
        return null;
    }
}
