package dev.nativescope.tensor;

import dev.nativescope.tensor.io.MappedFile;
import dev.nativescope.Context;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.reference.PredictionStats;
import dev.nativescope.reference.ReferencePredictors;

import java.io.RandomAccessFile;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * No 2 GiB limit: a 3 GiB tensor over a sparse file maps, indexes elements beyond 2^31 bytes, and
 * hands native code pointers beyond 2 GiB. Only the few touched pages take disk space.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class TensorBeyond2GiBTest {
    private static final long THREE_GIB = 3L << 30;
    private static final long FLOATS = THREE_GIB / Float.BYTES;

    @TempDir
    Path dir;

    @Test
    void threeGiBSparseFileMapsIndexesAndReachesNativeCode() throws Exception {
        Path file = dir.resolve("sparse-3g.bin");
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
            raf.setLength(THREE_GIB);
        }
        try {
            try (Arena arena = Arena.ofShared()) {
                MappedFile mapped = MappedFile.map(file, MappedFile.Mode.READ_WRITE, arena);
                assertThat(mapped.byteSize()).isEqualTo(THREE_GIB);
                Tensor all = Tensor.of(mapped.segment(), DType.FLOAT32, FLOATS);
                assertThat(all.byteSize()).isEqualTo(THREE_GIB);

                // Element access at the far end, beyond 2^31 bytes and beyond 2^31 elements' worth of int math.
                long last = FLOATS - 1;
                all.setDouble(1.5, last);
                assertThat(all.getFloat(last)).isEqualTo(1.5f);
                assertThat(mapped.segment().get(ValueLayout.JAVA_FLOAT_UNALIGNED, THREE_GIB - 4)).isEqualTo(1.5f);
                long beyond2g = (1L << 31) / Float.BYTES + 12345;
                all.setDouble(-7.25, beyond2g);
                assertThat(all.byteOffsetOf(beyond2g)).isGreaterThan(Integer.MAX_VALUE);

                // A 2-D view whose rows straddle 2^31 bytes.
                Tensor matrix = all.reshape(3, FLOATS / 3);
                long col = (FLOATS / 3) - 1;
                assertThat(matrix.getFloat(2, col)).isEqualTo(1.5f);
                assertThat(matrix.select(1, col).slice(0, 2, 3).toFloatArray()).containsExactly(1.5f);

                // Native code gets pointers beyond 2 GiB: y = relu(x * w) on 1x1x1 slices far in the file.
                NativeLibrary.load();
                long xAt = (5L << 29) + 4096;        // 2.5 GiB
                long wAt = THREE_GIB - 64;
                long yAt = (9L << 28) + 8;           // 2.25 GiB
                Tensor x = all.slice(0, xAt / 4, xAt / 4 + 1);
                Tensor w = all.slice(0, wAt / 4, wAt / 4 + 1);
                Tensor y = all.slice(0, yAt / 4, yAt / 4 + 1);
                x.setDouble(3, 0);
                w.setDouble(2.5, 0);
                y.setDouble(-1, 0);
                assertThat(x.data().address() - mapped.segment().address()).isEqualTo(xAt);
                PredictionStats stats = ReferencePredictors.dense(Context.background(), x.data(), w.data(),
                        MemorySegment.NULL, y.data(), 1, 1, 1, 1, null);
                assertThat(stats.status()).isZero();
                assertThat(y.getFloat(0)).isEqualTo(7.5f);
                assertThat(all.getFloat(yAt / 4)).isEqualTo(7.5f);
                mapped.force();
            }
            // The writes reached the file.
            try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "r")) {
                raf.seek((9L << 28) + 8);
                assertThat(Float.intBitsToFloat(Integer.reverseBytes(raf.readInt()))).isEqualTo(7.5f);
            }
            // Sparse: only touched pages hold blocks.
            long allocated = allocatedBytes(file);
            assertThat(allocated).isLessThan(64L << 20);
        } finally {
            Files.deleteIfExists(file);
        }
    }

    /** Blocks actually allocated, from {@code stat}, in bytes (512-byte blocks). */
    private static long allocatedBytes(Path file) throws Exception {
        Process stat = new ProcessBuilder("stat", "-c", "%b", file.toString()).redirectErrorStream(true).start();
        String out = new String(stat.getInputStream().readAllBytes()).trim();
        assertThat(stat.waitFor()).isZero();
        return Long.parseLong(out) * 512;
    }
}
