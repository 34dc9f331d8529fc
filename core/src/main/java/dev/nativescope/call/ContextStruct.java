package dev.nativescope.call;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The fields of {@code nsc_context} that the bridge reads and writes, at their offsets, as constants
 * beside their accessors. Not the generated {@code dev.nativescope.bindings.nsc_context}: its class
 * initialiser (jextract's output) builds an element VarHandle for each reserved array, which costs a
 * fresh JVM about 20 ms of its first native call (the {@code ColdStart} benchmark; BENCHMARKS.md
 * "Cold start"). The header stays the one description of the layout: {@code AbiConformanceTest}
 * checks {@code nsc_context} against it, and {@code ContextStructTest} checks every constant here
 * against {@code nsc_context}.
 *
 * <p>Stateless. The struct belongs to one call frame; the heartbeat fields are written by native
 * code concurrently (relaxed atomics), the others only while no native code runs on the struct.
 */
final class ContextStruct {
    /** {@code sizeof(nsc_context)}. */
    static final long SIZE = 128;
    /** {@code int32_t state}: the state word. */
    static final long STATE = 4;

    private ContextStruct() {
    }

    static int state(MemorySegment struct) {
        return struct.get(ValueLayout.JAVA_INT, STATE);
    }

    /** {@code int64_t deadline_ns}. */
    static final long DEADLINE_NS = 8;
    /** {@code const nsc_kv *values}. */
    static final long VALUES = 32;
    /** {@code uint64_t value_count}. */
    static final long VALUE_COUNT = 40;

    /** Arms a struct for a call: its deadline ({@code CLOCK_MONOTONIC} ns) and values. */
    static void arm(MemorySegment struct, long deadlineNs, MemorySegment values, long valueCount) {
        struct.set(ValueLayout.JAVA_LONG, DEADLINE_NS, deadlineNs);
        struct.set(ValueLayout.ADDRESS, VALUES, values);
        struct.set(ValueLayout.JAVA_LONG, VALUE_COUNT, valueCount);
    }

    /** {@code uint64_t heartbeat_count} (atomic). */
    static final long HEARTBEAT_COUNT = 64;
    /** {@code int64_t heartbeat_ns} (atomic). */
    static final long HEARTBEAT_NS = 72;

    /** Zeroes the heartbeat: plain stores, before native code runs on the struct. */
    static void resetHeartbeat(MemorySegment struct) {
        struct.set(ValueLayout.JAVA_LONG, HEARTBEAT_COUNT, 0L);
        struct.set(ValueLayout.JAVA_LONG, HEARTBEAT_NS, 0L);
    }

    /**
     * Reads a heartbeat field ({@link #HEARTBEAT_COUNT} or {@link #HEARTBEAT_NS}) that native code
     * writes with relaxed atomics. A plain read: an aligned 8-byte access is atomic on a 64-bit
     * platform (the access-mode table of {@code MemoryLayout.varHandle}), it is made once per dump or
     * cancel (never in a loop the JIT could hoist it out of), and a dump orders it with its seqlock's
     * fences. Not an opaque read through {@code JAVA_LONG.varHandle()}: creating that handle costs a
     * fresh JVM ~10 ms on its first call.
     */
    static long heartbeat(MemorySegment struct, long field) {
        return struct.get(ValueLayout.JAVA_LONG, field);
    }

    /** {@code nsc_hook_t *hooks}: the registered cancel hooks, NULL when none. */
    static final long HOOKS = 88;

    /**
     * {@return whether any cancel hook is registered} The pointer read as a raw word: no
     * MemorySegment for escape analysis to remove on every call.
     */
    static boolean hasHooks(MemorySegment struct) {
        return struct.get(ValueLayout.JAVA_LONG, HOOKS) != 0;
    }
}
