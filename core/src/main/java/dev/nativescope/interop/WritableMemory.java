package dev.nativescope.interop;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * The write-permission check for memory native code is about to write (outputs of a run, DLPack
 * exports meant for writing): FFM refuses writes through a read-only segment from Java, but native
 * code gets a raw address and would either crash the JVM (a {@code READ_ONLY} mapping: SIGSEGV) or
 * silently write through a read-only view ({@code segment.asReadOnly()}).
 *
 * <p><b>Threading.</b> Stateless and thread-safe; a segment's read-only property never changes, so
 * a check made before the native call stays true during it.
 */
public final class WritableMemory {
    private WritableMemory() {
    }

    /**
     * @param what names the tensor in the message, e.g. {@code "output 'y'"}
     * @param segment the memory native code will write
     * @throws IllegalArgumentException when {@code segment} is read-only
     */
    public static void require(String what, MemorySegment segment) {
        Objects.requireNonNull(segment, "segment");
        if (segment.isReadOnly()) {
            throw new IllegalArgumentException(what + " is read-only memory (a READ_ONLY mapping or asReadOnly()) but"
                    + " native code would write it; pass a writable tensor (memory from an Arena, or a file mapped"
                    + " READ_WRITE or PRIVATE)");
        }
    }
}
