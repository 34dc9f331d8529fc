package dev.nativescope.benchmarks;

import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.npy.Npy;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Writes float32 {@code .npy} files for the tensor benchmarks: every element 1.0 except the last,
 * which is 42.0. The data is written through a channel (not a mapping), so making the file adds
 * nothing to this process's RSS; its pages end up in the page cache, as for a file just read.
 */
final class NpyBenchFiles {
    static final float LAST_VALUE = 42f;
    private static final int CHUNK = 1 << 20;

    private NpyBenchFiles() {
    }

    /** Creates {@code file} holding {@code elements} float32 values and returns its data offset. */
    static long write(Path file, long elements) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            Npy.create(file, DType.FLOAT32, new long[] {elements}, false, arena); // header and size; pages untouched
        }
        long offset = Npy.readHeader(file).dataOffset();
        ByteBuffer chunk = ByteBuffer.allocateDirect(CHUNK).order(ByteOrder.LITTLE_ENDIAN);
        while (chunk.hasRemaining()) {
            chunk.putFloat(1f);
        }
        long bytes = elements * Float.BYTES;
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
            for (long done = 0; done < bytes; ) {
                chunk.clear().limit((int) Math.min(CHUNK, bytes - done));
                done += channel.write(chunk, offset + done);
            }
            ByteBuffer last = ByteBuffer.allocate(Float.BYTES).order(ByteOrder.LITTLE_ENDIAN).putFloat(LAST_VALUE).flip();
            channel.write(last, offset + bytes - Float.BYTES);
        }
        return offset;
    }
}
