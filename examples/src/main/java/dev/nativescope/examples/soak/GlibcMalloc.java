package dev.nativescope.examples.soak;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SegmentAllocator;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * What glibc's allocator holds, for telling a native leak from allocator retention: RSS grows both
 * when native code leaks and when malloc keeps freed memory in its per-thread arenas (which many
 * short-lived threads calling into native code, like the soak's scope forks running ONNX Runtime,
 * make common). {@code mallinfo2} splits the two; {@code malloc_trim} returns the free part to the
 * system, as {@code System.gc()} settles the Java heap before a sample. Thread-safe (glibc locks
 * each arena while it walks it).
 */
final class GlibcMalloc {
    /** {@code struct mallinfo2}: ten {@code size_t} fields. */
    private static final StructLayout MALLINFO2 = MemoryLayout.structLayout(
            ValueLayout.JAVA_LONG.withName("arena"), ValueLayout.JAVA_LONG.withName("ordblks"),
            ValueLayout.JAVA_LONG.withName("smblks"), ValueLayout.JAVA_LONG.withName("hblks"),
            ValueLayout.JAVA_LONG.withName("hblkhd"), ValueLayout.JAVA_LONG.withName("usmblks"),
            ValueLayout.JAVA_LONG.withName("fsmblks"), ValueLayout.JAVA_LONG.withName("uordblks"),
            ValueLayout.JAVA_LONG.withName("fordblks"), ValueLayout.JAVA_LONG.withName("keepcost"));
    private static final VarHandle MMAPPED = field("hblkhd");
    private static final VarHandle IN_USE = field("uordblks");
    private static final VarHandle FREE = field("fordblks");
    private static final Linker LINKER = Linker.nativeLinker();
    private static final MethodHandle MALLINFO2_CALL = LINKER.downcallHandle(
            LINKER.defaultLookup().find("mallinfo2").orElseThrow(), FunctionDescriptor.of(MALLINFO2));
    private static final MethodHandle MALLOC_TRIM = LINKER.downcallHandle(
            LINKER.defaultLookup().find("malloc_trim").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));

    private GlibcMalloc() {
    }

    private static VarHandle field(String name) {
        return MALLINFO2.varHandle(MemoryLayout.PathElement.groupElement(name));
    }

    /** Bytes handed out by malloc and not yet freed (arena chunks in use plus mmapped chunks). */
    record Usage(long inUseBytes, long freeBytes) {
    }

    static Usage usage() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment info = (MemorySegment) MALLINFO2_CALL.invokeExact((SegmentAllocator) arena);
            return new Usage((long) IN_USE.get(info, 0L) + (long) MMAPPED.get(info, 0L), (long) FREE.get(info, 0L));
        } catch (Throwable e) {
            throw new IllegalStateException("mallinfo2 failed", e);
        }
    }

    /** Returns the free memory of every arena to the system ({@code malloc_trim(0)}). */
    static void trim() {
        try {
            int ignored = (int) MALLOC_TRIM.invokeExact(0L);
        } catch (Throwable e) {
            throw new IllegalStateException("malloc_trim failed", e);
        }
    }
}
