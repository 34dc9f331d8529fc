package dev.nativescope.internal.posix;

import java.lang.foreign.MemorySegment;

/**
 * libc {@code malloc}/{@code free} for native blocks whose lifetime nativescope tracks itself (by
 * reference counts that keep a block alive for every native call that can read it), where an
 * {@code Arena} would add nothing but cost: closing a shared arena makes the JVM hand-shake every
 * thread, tens of microseconds per block.
 *
 * <p>The segments returned have the global scope: nothing stops a use after {@link #free}, so only
 * the owner's reference count may decide when to free. Thread-safe, like libc's allocator.
 */
public final class NativeHeap {
    private NativeHeap() {
    }

    /**
     * @return {@code bytes} bytes of uninitialised native memory, aligned for any C type
     * @throws OutOfMemoryError when malloc fails
     */
    public static MemorySegment allocate(long bytes) {
        MemorySegment block = Libc.malloc(Math.max(1L, bytes));
        if (block.equals(MemorySegment.NULL)) {
            throw new OutOfMemoryError("malloc(" + bytes + ") failed: native memory exhausted");
        }
        return block.reinterpret(bytes);
    }

    public static void free(MemorySegment block) {
        Libc.free(block);
    }
}
