package dev.nativescope.tensor.npy;

import dev.nativescope.tensor.Tensor;
import dev.nativescope.tensor.io.MappedFile;
import dev.nativescope.tensor.io.TensorFormatException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * The property every fuzz input must satisfy: the .npy reader either returns a tensor whose data
 * lies inside the input (and whose first and last elements can be read), or throws
 * {@link TensorFormatException} naming the source. Anything else (another exception, an error) is
 * a bug and propagates. Shared by the seeded regression fuzzer and the Jazzer fuzz test.
 */
final class NpyFuzzTarget {
    static final Path SOURCE = Path.of("fuzz-input.npy");

    private NpyFuzzTarget() {
    }

    /** Checks {@link Npy#view} on {@code input}; @return the header when it parsed, else null. */
    static NpyHeader checkView(byte[] input) {
        MemorySegment bytes = MemorySegment.ofArray(input);
        NpyFile npy;
        try {
            npy = Npy.view(bytes, SOURCE);
        } catch (TensorFormatException refused) {
            if (!refused.getMessage().startsWith(SOURCE + ": ") || !SOURCE.equals(refused.file())) {
                throw new AssertionError("message does not name the source: " + refused.getMessage(), refused);
            }
            return null;
        }
        verify(npy, bytes, input.length);
        return npy.header();
    }

    /**
     * Writes {@code input} to {@code file}, maps it with {@link Npy#map} and checks that it agrees with
     * {@link Npy#view}: the same header, or a refusal with the same problem.
     */
    static void checkFile(byte[] input, Path file) throws IOException {
        NpyHeader viewed = checkView(input);
        Files.write(file, input);
        try (Arena arena = Arena.ofConfined()) {
            NpyFile mapped;
            try {
                mapped = Npy.map(file, MappedFile.Mode.READ_ONLY, arena);
            } catch (TensorFormatException refused) {
                if (viewed != null) {
                    throw new AssertionError("view accepted " + viewed + " but map refused: " + refused.getMessage(), refused);
                }
                return;
            }
            if (!mapped.header().equals(viewed)) {
                throw new AssertionError("map gave " + mapped.header() + " but view gave " + viewed);
            }
            verify(mapped, mapped.tensor().segment(), input.length);
        }
    }

    /** @param container memory the tensor must lie in; @param fileSize the input's size */
    private static void verify(NpyFile npy, MemorySegment container, long fileSize) {
        Tensor tensor = npy.tensor();
        NpyHeader header = npy.header();
        MemorySegment data = tensor.segment();
        long start = data.address() - container.address();
        if (!data.heapBase().equals(container.heapBase()) || start < 0 || start > container.byteSize() - data.byteSize()) {
            throw new AssertionError("tensor segment " + tensor.segment() + " is not inside " + container);
        }
        if (header.dataOffset() + header.dataByteSize() > fileSize) {
            throw new AssertionError(header + " reaches beyond the " + fileSize + "-byte input");
        }
        if (tensor.byteSize() != header.dataByteSize() || !Arrays.equals(tensor.shape(), header.shape())) {
            throw new AssertionError("tensor " + tensor + " does not match " + header);
        }
        if (tensor.elementCount() > 0) {
            long[] first = new long[tensor.rank()];
            long[] last = tensor.shape();
            for (int i = 0; i < last.length; i++) {
                last[i]--;
            }
            tensor.getDouble(first);
            tensor.getDouble(last);
        }
    }
}
