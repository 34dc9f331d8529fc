package dev.nativescope.call;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The fields of {@code nsc_context} that the bridge reads and writes, at their offsets, as constants
 * beside their accessors. Not the generated {@code dev.nativescope.bindings.nsc_context}: its class
 * initialiser (jextract's output) builds an element VarHandle for each reserved array, which costs a
 * fresh JVM about 20 ms of its first native call (the {@code ColdStart} benchmark; BENCHMARKS.md
 * "Cold start"). The header stays the one description of the layout: {@code AbiConformanceTest}
 * checks {@code nsc_context} against it, and {@code ContextStructTest} checks every constant here
 * against {@code nsc_context}.
 *
 * <p>The accessors work on a {@linkplain #view direct-buffer view} of the struct, one per frame, not
 * on the segment: the first {@code MemorySegment.get}/{@code set} with a value layout builds that
 * layout's {@code VarHandle} (lambda forms spun at run time), about 3 ms of a fresh JVM's first call
 * per layout, and the bridge used three (an int, a long, an address); a direct buffer's accessors
 * are plain code of classes the JDK's CDS archive holds. Pointers are stored as 64-bit addresses
 * (nativescope is built for 64-bit platforms; {@code ContextStructTest} checks the fields' sizes).
 *
 * <p>Stateless. The struct belongs to one call frame; the heartbeat fields are written by native
 * code concurrently (relaxed atomics), the others only while no native code runs on the struct.
 * Every field is naturally aligned, so each read or write below is one access of its size, atomic
 * on a 64-bit platform, as the segment accessors' plain mode was.
 */
final class ContextStruct {
    /** {@code sizeof(nsc_context)}. */
    static final long SIZE = 128;
    /** {@code int32_t state}: the state word. */
    static final int STATE = 4;

    private ContextStruct() {
    }

    /**
     * {@return the view the accessors take: {@code struct} (a segment of {@link #SIZE} bytes) as a
     * direct buffer in native byte order} Made once per frame; it keeps no memory alive beyond the
     * segment's (the frame frees the block itself).
     */
    static ByteBuffer view(MemorySegment struct) {
        return struct.asByteBuffer().order(ByteOrder.nativeOrder());
    }

    static int state(ByteBuffer struct) {
        return struct.getInt(STATE);
    }

    /** {@code int64_t deadline_ns}. */
    static final int DEADLINE_NS = 8;
    /** {@code const nsc_kv *values}. */
    static final int VALUES = 32;
    /** {@code uint64_t value_count}. */
    static final int VALUE_COUNT = 40;

    /** Arms a struct for a call: its deadline ({@code CLOCK_MONOTONIC} ns) and values. */
    static void arm(ByteBuffer struct, long deadlineNs, MemorySegment values, long valueCount) {
        struct.putLong(DEADLINE_NS, deadlineNs);
        struct.putLong(VALUES, values.address());
        struct.putLong(VALUE_COUNT, valueCount);
    }

    /** {@code uint64_t heartbeat_count} (atomic). */
    static final int HEARTBEAT_COUNT = 64;
    /** {@code int64_t heartbeat_ns} (atomic). */
    static final int HEARTBEAT_NS = 72;

    /** Zeroes the heartbeat: plain stores, before native code runs on the struct. */
    static void resetHeartbeat(ByteBuffer struct) {
        struct.putLong(HEARTBEAT_COUNT, 0L);
        struct.putLong(HEARTBEAT_NS, 0L);
    }

    /**
     * Reads a heartbeat field ({@link #HEARTBEAT_COUNT} or {@link #HEARTBEAT_NS}) that native code
     * writes with relaxed atomics. A plain read: an aligned 8-byte access is atomic on a 64-bit
     * platform (the access-mode table of {@code MemoryLayout.varHandle}), it is made once per dump or
     * cancel (never in a loop the JIT could hoist it out of), and a dump orders it with its seqlock's
     * fences. Not an opaque read through {@code JAVA_LONG.varHandle()}: creating that handle costs a
     * fresh JVM ~10 ms on its first call.
     */
    static long heartbeat(ByteBuffer struct, int field) {
        return struct.getLong(field);
    }

    /** {@code nsc_hook_t *hooks}: the registered cancel hooks, NULL when none. */
    static final int HOOKS = 88;

    /**
     * {@return whether any cancel hook is registered} The pointer read as a raw word: no
     * MemorySegment for escape analysis to remove on every call.
     */
    static boolean hasHooks(ByteBuffer struct) {
        return struct.getLong(HOOKS) != 0;
    }
}
