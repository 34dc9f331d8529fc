package dev.nativescope.tensor.npy;

import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;
import dev.nativescope.tensor.io.IfExists;
import dev.nativescope.tensor.io.MappedFile;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Writing and mapping .npy files: headers, orders, versions, modes, in-memory views. */
class NpyTest {
    @TempDir
    Path dir;

    private static byte[] floats(float... values) {
        ByteBuffer buffer = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float value : values) {
            buffer.putFloat(value);
        }
        return buffer.array();
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = "BFLOAT16", mode = EnumSource.Mode.EXCLUDE)
    void createThenMapRoundTripsEveryNumpyDType(DType dtype) throws IOException {
        Path file = dir.resolve(dtype.displayName() + ".npy");
        long[] shape = {3, 5};
        try (Arena arena = Arena.ofConfined()) {
            Tensor t = Npy.create(file, dtype, shape, false, arena);
            for (long i = 0; i < 3; i++) {
                for (long j = 0; j < 5; j++) {
                    t.setLong((i * 5 + j) % 2 == 0 || dtype != DType.BOOL ? i * 5 + j : 0, i, j);
                }
            }
        }
        assertThat(Files.size(file)).isEqualTo(128 + 15L * dtype.byteSize());
        try (Arena arena = Arena.ofConfined()) {
            NpyFile npy = Npy.map(file, MappedFile.Mode.READ_ONLY, arena);
            assertThat(npy.header().dtype()).isEqualTo(dtype);
            assertThat(npy.header().descr()).isEqualTo(dtype.numpyDescr().orElseThrow());
            assertThat(npy.header().shape()).containsExactly(shape);
            assertThat(npy.header().version()).isEqualTo("1.0");
            assertThat(npy.header().dataOffset()).isEqualTo(128);
            assertThat(npy.tensor().shape()).containsExactly(shape);
            assertThat(npy.tensor().segment().byteSize()).isEqualTo(15L * dtype.byteSize());
            for (long i = 0; i < 3; i++) {
                for (long j = 0; j < 5; j++) {
                    double expected = dtype == DType.BOOL ? ((i * 5 + j) % 2 == 0 && i * 5 + j != 0 ? 1 : 0) : i * 5 + j;
                    assertThat(npy.tensor().getDouble(i, j)).isEqualTo(expected);
                }
            }
        }
    }

    @Test
    void writtenHeaderIsExactlyWhatNumpyWrites() throws IOException {
        Path file = dir.resolve("h.npy");
        try (Arena arena = Arena.ofConfined()) {
            Npy.create(file, DType.FLOAT32, new long[] {2, 3}, false, arena);
        }
        byte[] bytes = Files.readAllBytes(file);
        assertThat(bytes).hasSize(128 + 24);
        assertThat(Arrays.copyOf(bytes, 8)).containsExactly(0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0);
        assertThat(bytes[8] & 0xff | (bytes[9] & 0xff) << 8).isEqualTo(118);
        String header = new String(bytes, 10, 118, StandardCharsets.ISO_8859_1);
        assertThat(header).startsWith("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }").endsWith(" \n");
        assertThat(header.strip()).isEqualTo("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }");
        assertThat(NpyHeader.of(DType.INT8, new long[] {7}, true).encode())
                .asString(StandardCharsets.ISO_8859_1).contains("{'descr': '|i1', 'fortran_order': True, 'shape': (7,), }");
        assertThat(NpyHeader.of(DType.BOOL, new long[0], false).encode())
                .asString(StandardCharsets.ISO_8859_1).contains("'shape': (), }");
    }

    @Test
    void fortranOrderUsesColumnMajorStrides() throws IOException {
        Path file = dir.resolve("f.npy");
        try (Arena arena = Arena.ofConfined()) {
            Tensor t = Npy.create(file, DType.FLOAT32, new long[] {2, 3}, true, arena);
            assertThat(t.strides()).containsExactly(1, 2);
            t.setDouble(5, 1, 0);
            t.setDouble(7, 0, 1);
        }
        byte[] bytes = Files.readAllBytes(file);
        assertThat(new String(bytes, 0, 128, StandardCharsets.ISO_8859_1)).contains("'fortran_order': True");
        ByteBuffer data = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        assertThat(data.getFloat(128 + 4)).as("element [1, 0] is second in memory").isEqualTo(5f);
        assertThat(data.getFloat(128 + 8)).as("element [0, 1] is third").isEqualTo(7f);
        try (Arena arena = Arena.ofConfined()) {
            NpyFile npy = Npy.map(file, MappedFile.Mode.READ_ONLY, arena);
            assertThat(npy.header().fortranOrder()).isTrue();
            assertThat(npy.tensor().toFloatArray()).containsExactly(0, 7, 0, 5, 0, 0);
            assertThat(npy.tensor().transpose(0, 1).isContiguous()).isTrue();
        }
    }

    @Test
    void zeroDimensionalAndEmptyArrays() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            Npy.create(dir.resolve("scalar.npy"), DType.FLOAT64, new long[0], false, arena).setDouble(2.5);
            Npy.create(dir.resolve("empty.npy"), DType.INT32, new long[] {0, 4}, false, arena);
        }
        assertThat(Files.size(dir.resolve("empty.npy"))).isEqualTo(128);
        try (Arena arena = Arena.ofConfined()) {
            NpyFile scalar = Npy.map(dir.resolve("scalar.npy"), MappedFile.Mode.READ_ONLY, arena);
            assertThat(scalar.tensor().rank()).isZero();
            assertThat(scalar.tensor().getDouble()).isEqualTo(2.5);
            NpyFile empty = Npy.map(dir.resolve("empty.npy"), MappedFile.Mode.READ_WRITE, arena);
            assertThat(empty.tensor().shape()).containsExactly(0, 4);
            assertThat(empty.tensor().elementCount()).isZero();
            assertThat(empty.tensor().toFloatArray()).isEmpty();
        }
    }

    @Test
    void mapModesControlWhereWritesGo() throws IOException {
        Path file = Files.write(dir.resolve("m.npy"), NpyBytes.npy(NpyBytes.dict("<f4", false, "(3,)"), floats(1, 2, 3)));
        try (Arena arena = Arena.ofConfined()) {
            Tensor readOnly = Npy.map(file, MappedFile.Mode.READ_ONLY, arena).tensor();
            assertThatThrownBy(() -> readOnly.setDouble(9, 0)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("read-only");
            Tensor cow = Npy.map(file, MappedFile.Mode.PRIVATE, arena).tensor();
            cow.setDouble(9, 0);
            assertThat(cow.getFloat(0)).isEqualTo(9f);
            assertThat(readOnly.getFloat(0)).isEqualTo(1f);
            Tensor shared = Npy.map(file, MappedFile.Mode.READ_WRITE, arena).tensor();
            shared.setDouble(8, 2);
            assertThat(readOnly.getFloat(2)).as("shared mappings see each other").isEqualTo(8f);
        }
        assertThat(ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN).getFloat(128 + 8)).isEqualTo(8f);
    }

    @Test
    void createIsExclusiveUnlessReplacing() throws IOException {
        Path file = dir.resolve("x.npy");
        try (Arena arena = Arena.ofConfined()) {
            Npy.create(file, DType.UINT8, new long[] {4}, false, arena).setLong(1, 0);
            assertThatThrownBy(() -> Npy.create(file, DType.UINT8, new long[] {4}, false, arena))
                    .isInstanceOf(FileAlreadyExistsException.class).hasMessageContaining(file.toString());
            Tensor replaced = Npy.create(file, DType.INT16, new long[] {2, 2}, false, IfExists.REPLACE, arena);
            replaced.setLong(-2, 1, 1);
        }
        try (Arena arena = Arena.ofConfined()) {
            NpyFile npy = Npy.map(file, MappedFile.Mode.READ_ONLY, arena);
            assertThat(npy.header().dtype()).isEqualTo(DType.INT16);
            assertThat(npy.tensor().getLong(1, 1)).isEqualTo(-2);
        }
    }

    @Test
    void createRefusesWhatNumpyCannotHoldAndLeavesNoFileOnFailure() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            assertThatThrownBy(() -> Npy.create(dir.resolve("b.npy"), DType.BFLOAT16, new long[] {2}, false, arena))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("bfloat16 has no NumPy equivalent");
            assertThatThrownBy(() -> Npy.create(dir.resolve("n.npy"), DType.FLOAT32, new long[] {-2}, false, arena))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("negative dimension");
            assertThatThrownBy(() -> Npy.create(dir.resolve("o.npy"), DType.FLOAT64, new long[] {1L << 31, 1L << 31}, false, arena))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("2^63 bytes");
            assertThatThrownBy(() -> Npy.create(dir.resolve("r.npy"), DType.FLOAT64, new long[65], false, arena))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("at most 64");
            // 32 TiB: beyond what the file system can size (ext4: 16 TiB); the half-made file is removed.
            Path tooBig = dir.resolve("too-big.npy");
            assertThatThrownBy(() -> Npy.create(tooBig, DType.FLOAT64, new long[] {1L << 42}, false, arena))
                    .isInstanceOf(IOException.class).hasMessageContaining(tooBig.toString());
            assertThat(tooBig).doesNotExist();
        }
        try (var listing = Files.list(dir)) {
            assertThat(listing).isEmpty();
        }
    }

    @Test
    void readsVersions2And3SixteenByteAlignmentPython2LongsAndOneByteOrderCharacters() throws IOException {
        String[][] cases = {
                {"1", "16", "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 1L), }"},
                {"2", "64", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1), }"},
        };
        try (Arena arena = Arena.ofConfined()) {
            for (int i = 0; i < cases.length; i++) {
                byte[] bytes = NpyBytes.npy(Integer.parseInt(cases[i][0]), cases[i][2], Integer.parseInt(cases[i][1]),
                        floats(4, 5));
                NpyFile npy = Npy.view(MemorySegment.ofArray(bytes), Path.of("case" + i));
                assertThat(npy.tensor().toFloatArray()).containsExactly(4, 5);
                assertThat(npy.header().majorVersion()).isEqualTo(Integer.parseInt(cases[i][0]));
            }
            // Version 3.0 (a UTF-8 header), keys in another order, no trailing comma.
            byte[] v3 = NpyBytes.npy(3, "{'shape': (2,), 'fortran_order': False, 'descr': '<f4'}", 64, floats(6, 7));
            NpyFile npy = Npy.view(MemorySegment.ofArray(v3), Path.of("v3"));
            assertThat(npy.header().version()).isEqualTo("3.0");
            assertThat(npy.tensor().toFloatArray()).containsExactly(6, 7);
            for (String descr : new String[] {"|u1", "<u1", ">u1"}) {
                byte[] bytes = NpyBytes.npy(NpyBytes.dict(descr, false, "(2,)"), new byte[] {(byte) 200, 3});
                assertThat(Npy.view(MemorySegment.ofArray(bytes), Path.of(descr)).tensor().getLong(0)).isEqualTo(200);
            }
            // Double quotes, no trailing comma, no newline, extra bytes after the data.
            byte[] loose = NpyBytes.npy("{\"descr\": \"<i2\", \"fortran_order\": False, \"shape\": (1,)}",
                    new byte[] {1, 0, 99, 99, 99});
            assertThat(Npy.view(MemorySegment.ofArray(loose), Path.of("loose")).tensor().getLong(0)).isEqualTo(1);
        }
    }

    @Test
    void mapAndReadHeaderAgreeAndTheTensorCoversOnlyTheData() throws IOException {
        Path file = Files.write(dir.resolve("d.npy"), NpyBytes.npy(NpyBytes.dict("<f4", false, "(2, 2)"),
                floats(1, 2, 3, 4)));
        NpyHeader header = Npy.readHeader(file);
        assertThat(header.toString()).isEqualTo("NpyHeader[version 1.0, descr '<f4', fortran_order false, shape (2, 2), data at 128]");
        assertThat(header.elementCount()).isEqualTo(4);
        assertThat(header.dataByteSize()).isEqualTo(16);
        try (Arena arena = Arena.ofConfined()) {
            NpyFile npy = Npy.map(file, MappedFile.Mode.READ_ONLY, arena);
            assertThat(npy.header()).isEqualTo(header).hasSameHashCodeAs(header);
            assertThat(npy.file()).isEqualTo(file);
            assertThat(npy.tensor().data().toArray(ValueLayout.JAVA_FLOAT)).containsExactly(1, 2, 3, 4);
            assertThat(npy.tensor().byteOffset()).isZero();
        }
    }
}
