package dev.nativescope.tensor.safetensors;

import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;
import dev.nativescope.tensor.TensorSpec;
import dev.nativescope.tensor.io.IfExists;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.SequencedMap;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Files written by {@link SafeTensors#write} and {@link SafeTensors#create} map back to the same tensors. */
class SafeTensorsRoundTripTest {
    @TempDir
    Path dir;

    static Stream<Arguments> dtypesAndShapes() {
        long[][] shapes = {{}, {0}, {5}, {2, 3}, {3, 0, 2}, {2, 3, 4}, {1, 1, 1, 7}};
        return Arrays.stream(DType.values())
                .flatMap(dtype -> Arrays.stream(shapes).map(shape -> Arguments.of(dtype, shape)));
    }

    /** A value every dtype holds exactly. */
    static double sample(DType dtype, long i) {
        return switch (dtype) {
            case FLOAT16, BFLOAT16, FLOAT32, FLOAT64 -> (i - 3) * 0.5;
            case INT8, INT16, INT32, INT64 -> i % 100 - 50;
            case BOOL -> i % 2;
            default -> i % 200;
        };
    }

    static Tensor filled(Arena arena, DType dtype, long... shape) {
        TensorSpec spec = TensorSpec.of(dtype, shape);
        Tensor tensor = Tensor.of(arena.allocate(Math.max(1, spec.byteSize())), dtype, shape);
        long[] index = new long[shape.length];
        for (long n = 0; n < tensor.elementCount(); n++) {
            tensor.setDouble(sample(dtype, n), index);
            increment(index, shape);
        }
        return tensor;
    }

    static void increment(long[] index, long[] shape) {
        for (int i = index.length - 1; i >= 0; i--) {
            if (++index[i] < shape[i]) {
                return;
            }
            index[i] = 0;
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("dtypesAndShapes")
    void everyDtypeAndShapeRoundTrips(DType dtype, long[] shape) throws IOException {
        Path file = dir.resolve("t.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            Tensor source = filled(arena, dtype, shape);
            SequencedMap<String, Tensor> tensors = new LinkedHashMap<>();
            tensors.put("t", source);
            SafeTensors.write(file, tensors, Map.of("format", "pt"));

            SafeTensorsFile mapped = SafeTensors.map(file, arena);
            Tensor read = mapped.tensor("t");
            assertThat(read.dtype()).isEqualTo(dtype);
            assertThat(read.shape()).isEqualTo(shape);
            assertThat(read.isContiguous()).isTrue();
            assertThat(mapped.metadata()).containsExactly(Map.entry("format", "pt"));
            assertThat(read.data().toArray(ValueLayout.JAVA_BYTE)).isEqualTo(source.data().toArray(ValueLayout.JAVA_BYTE));
            long[] index = new long[shape.length];
            for (long n = 0; n < read.elementCount(); n++) {
                assertThat(read.getDouble(index)).isEqualTo(sample(dtype, n));
                increment(index, shape);
            }
            assertThat(Files.size(file)).isEqualTo(mapped.dataStart() + source.byteSize());
        }
    }

    @Test
    void nonContiguousSourcesAreWrittenInRowMajorOrder() throws IOException {
        Path file = dir.resolve("t.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            Tensor matrix = filled(arena, DType.INT32, 2, 3); // [[-50, -49, -48], [-47, -46, -45]]
            SequencedMap<String, Tensor> tensors = new LinkedHashMap<>();
            tensors.put("transposed", matrix.transpose(0, 1));
            tensors.put("column", matrix.select(1, 2));
            tensors.put("every_other", matrix.slice(1, 0, 3, 2));
            SafeTensors.write(file, tensors, Map.of());

            SafeTensorsFile mapped = SafeTensors.map(file, arena);
            assertThat(mapped.tensor("transposed").shape()).containsExactly(3, 2);
            assertThat(mapped.tensor("transposed").toFloatArray()).containsExactly(-50, -47, -49, -46, -48, -45);
            assertThat(mapped.tensor("column").toFloatArray()).containsExactly(-48, -45);
            assertThat(mapped.tensor("every_other").toFloatArray()).containsExactly(-50, -48, -47, -45);
        }
    }

    @Test
    void headerKeepsTheCallersOrderIsPaddedAndTensorsAreAligned() throws IOException {
        Path file = dir.resolve("t.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            SequencedMap<String, Tensor> tensors = new LinkedHashMap<>();
            tensors.put("z_byte", filled(arena, DType.UINT8, 3));
            tensors.put("a_double", filled(arena, DType.FLOAT64, 2));
            tensors.put("m_half", filled(arena, DType.FLOAT16, 3));
            tensors.put("b_int", filled(arena, DType.INT32, 1));
            SafeTensors.write(file, tensors, Map.of());

            SafeTensorsFile mapped = SafeTensors.map(file, arena);
            assertThat(mapped.tensors().keySet()).containsExactly("z_byte", "a_double", "m_half", "b_int");
            assertThat(mapped.dataStart() % 8).isZero();
            for (Tensor tensor : mapped.tensors().values()) {
                assertThat(tensor.byteOffset() % tensor.dtype().byteSize()).as(tensor.toString()).isZero();
            }
            long headerLength = mapped.segment().get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
            String header = new String(mapped.segment().asSlice(8, headerLength).toArray(ValueLayout.JAVA_BYTE),
                    StandardCharsets.UTF_8);
            assertThat(header).startsWith("{\"z_byte\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[")
                    .doesNotContain("__metadata__");
            assertThat(header.length() % 8).isZero();
            assertThat(header.stripTrailing()).endsWith("}");
        }
    }

    @Test
    void metadataRoundTripsWithUnicodeAndEscapes() throws IOException {
        Path file = dir.resolve("t.safetensors");
        Map<String, String> metadata = new LinkedHashMap<>();
        metadata.put("format", "pt");
        metadata.put("na\u00efve \ud83d\ude00", "line\nbreak \"quoted\" \\ tab\t \u0001");
        metadata.put("", "");
        try (Arena arena = Arena.ofConfined()) {
            SequencedMap<String, Tensor> tensors = new LinkedHashMap<>();
            tensors.put("\u20ac/weight \"1\"", filled(arena, DType.BFLOAT16, 2));
            SafeTensors.write(file, tensors, metadata);

            SafeTensorsFile mapped = SafeTensors.map(file, arena);
            assertThat(mapped.metadata()).containsExactlyEntriesOf(metadata);
            assertThat(mapped.tensors()).containsOnlyKeys("\u20ac/weight \"1\"");
        }
    }

    @Test
    void aFileWithoutTensorsIsValid() throws IOException {
        Path file = dir.resolve("empty.safetensors");
        SafeTensors.write(file, new LinkedHashMap<>(), Map.of());
        assertThat(Files.readAllBytes(file)).isEqualTo(SafeTensorsBytes.file("{}      ", 0));
        try (Arena arena = Arena.ofConfined()) {
            SafeTensorsFile mapped = SafeTensors.map(file, arena);
            assertThat(mapped.tensors()).isEmpty();
            assertThat(mapped.metadata()).isEmpty();
            assertThatThrownBy(() -> mapped.tensor("w")).isInstanceOf(NoSuchElementException.class)
                    .hasMessageContaining("has no tensor named \"w\"; it has no tensors");
        }
    }

    @Test
    void anExistingFileIsNotOverwrittenByDefault() throws IOException {
        Path file = dir.resolve("t.safetensors");
        Files.writeString(file, "precious");
        try (Arena arena = Arena.ofConfined()) {
            SequencedMap<String, Tensor> tensors = new LinkedHashMap<>();
            tensors.put("t", filled(arena, DType.FLOAT32, 2));
            assertThatThrownBy(() -> SafeTensors.write(file, tensors, Map.of()))
                    .isInstanceOf(FileAlreadyExistsException.class);
            assertThatThrownBy(() -> SafeTensors.create(file, new LinkedHashMap<>(), Map.of(), arena))
                    .isInstanceOf(FileAlreadyExistsException.class);
        }
        assertThat(Files.readString(file)).isEqualTo("precious");
    }

    @Test
    void replaceRenamesANewFileOverTheOldWhoseMappingStaysReadable() throws IOException {
        Path file = dir.resolve("t.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            SequencedMap<String, Tensor> first = new LinkedHashMap<>();
            first.put("t", filled(arena, DType.FLOAT32, 4));
            SafeTensors.write(file, first, Map.of("version", "1"));
            SafeTensorsFile old = SafeTensors.map(file, arena);

            // the new file is made from views of the one it replaces
            SequencedMap<String, Tensor> second = new LinkedHashMap<>();
            second.put("t", old.tensor("t").slice(0, 1, 4));
            second.put("u", old.tensor("t"));
            SafeTensors.write(file, second, Map.of("version", "2"), IfExists.REPLACE);

            assertThat(old.tensor("t").toFloatArray()).containsExactly(-1.5f, -1f, -0.5f, 0f);
            SafeTensorsFile replaced = SafeTensors.map(file, arena);
            assertThat(replaced.metadata()).containsEntry("version", "2");
            assertThat(replaced.tensor("t").toFloatArray()).containsExactly(-1f, -0.5f, 0f);
            assertThat(replaced.tensor("u").toFloatArray()).containsExactly(-1.5f, -1f, -0.5f, 0f);
        }
        try (Stream<Path> files = Files.list(dir)) {
            assertThat(files).containsExactly(file);
        }
    }

    @Test
    void newFilesAreNotWritableByGroupOrOthers() throws IOException {
        Path file = dir.resolve("t.safetensors");
        SafeTensors.write(file, new LinkedHashMap<>(), Map.of());
        assertThat(PosixFilePermissions.fromString("rw-r--r--")).containsAll(Files.getPosixFilePermissions(file));
        assertThat(Files.getPosixFilePermissions(file)).doesNotContain(PosixFilePermission.OWNER_EXECUTE);
    }

    @Test
    void createGivesWritableViewsThatOtherMappingsSee() throws IOException {
        Path file = dir.resolve("t.safetensors");
        SequencedMap<String, TensorSpec> specs = new LinkedHashMap<>();
        specs.put("logits", TensorSpec.of(DType.FLOAT32, 2, 2));
        specs.put("ids", TensorSpec.of(DType.INT64, 3));
        specs.put("scalar", TensorSpec.of(DType.FLOAT16));
        try (Arena arena = Arena.ofConfined()) {
            SafeTensorsFile created = SafeTensors.create(file, specs, Map.of("producer", "test"), arena);
            assertThat(created.isReadOnly()).isFalse();
            assertThat(created.tensors().keySet()).containsExactly("logits", "ids", "scalar");
            assertThat(created.tensor("logits").toFloatArray()).containsOnly(0f);
            created.tensor("logits").setDouble(2.5, 1, 0);
            created.tensor("ids").setDouble(-7, 2);
            created.tensor("scalar").setDouble(0.75);
            created.force();

            SafeTensorsFile mapped = SafeTensors.map(file, arena);
            assertThat(mapped.isReadOnly()).isTrue();
            assertThat(mapped.tensor("logits").toFloatArray()).containsExactly(0f, 0f, 2.5f, 0f);
            assertThat(mapped.tensor("ids").getLong(2)).isEqualTo(-7);
            assertThat(mapped.tensor("scalar").getDouble()).isEqualTo(0.75);
            assertThat(mapped.metadata()).containsEntry("producer", "test");
            assertThatThrownBy(() -> mapped.tensor("ids").setDouble(1, 0)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("read-only");
        }
    }

    @Test
    void invalidNamesAreRejectedBeforeAFileIsCreated() {
        Path file = dir.resolve("t.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            SequencedMap<String, TensorSpec> reserved = new LinkedHashMap<>();
            reserved.put("__metadata__", TensorSpec.of(DType.FLOAT32, 1));
            assertThatThrownBy(() -> SafeTensors.create(file, reserved, Map.of(), arena))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("reserves it for the metadata");
            SequencedMap<String, TensorSpec> surrogate = new LinkedHashMap<>();
            surrogate.put("bad \ud800", TensorSpec.of(DType.FLOAT32, 1));
            assertThatThrownBy(() -> SafeTensors.create(file, surrogate, Map.of(), arena))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("unpaired surrogate");
            assertThatThrownBy(() -> SafeTensors.create(file, new LinkedHashMap<>(), Map.of("k", "\udfff"), arena))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("unpaired surrogate");
        }
        assertThat(file).doesNotExist();
    }

    @Test
    void aFailedWriteLeavesNoFileBehind() throws IOException {
        Path file = dir.resolve("t.safetensors");
        Tensor closed;
        try (Arena arena = Arena.ofConfined()) {
            closed = filled(arena, DType.FLOAT32, 4);
        }
        SequencedMap<String, Tensor> tensors = new LinkedHashMap<>();
        tensors.put("t", closed);
        assertThatThrownBy(() -> SafeTensors.write(file, tensors, Map.of())).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> SafeTensors.write(file, tensors, Map.of(), IfExists.REPLACE))
                .isInstanceOf(IllegalStateException.class);
        try (Stream<Path> files = Files.list(dir)) {
            assertThat(files).isEmpty();
        }
    }

    @Test
    void specsCheckTheirShape() {
        assertThat(TensorSpec.of(DType.FLOAT32, 2, 3).byteSize()).isEqualTo(24);
        assertThat(TensorSpec.of(DType.FLOAT32).elementCount()).isEqualTo(1);
        assertThat(TensorSpec.of(DType.INT8, 2, 0)).isEqualTo(TensorSpec.of(DType.INT8, 2, 0)).hasToString("int8[2, 0]");
        assertThatThrownBy(() -> TensorSpec.of(DType.FLOAT32, -1)).hasMessageContaining("negative dimension -1");
        assertThatThrownBy(() -> TensorSpec.of(DType.FLOAT32, 1L << 62)).hasMessageContaining("more than 2^63-1 bytes");
    }

    @Test
    void theMappingIsOneSegmentOfTheWholeFile() throws IOException {
        Path file = dir.resolve("t.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            SequencedMap<String, Tensor> tensors = new LinkedHashMap<>();
            tensors.put("a", filled(arena, DType.FLOAT32, 8));
            tensors.put("b", filled(arena, DType.UINT16, 8));
            SafeTensors.write(file, tensors, Map.of());
            SafeTensorsFile mapped = SafeTensors.map(file, arena);
            MemorySegment whole = mapped.segment();
            assertThat(whole.byteSize()).isEqualTo(Files.size(file));
            assertThat(whole.isMapped()).isTrue();
            for (Tensor tensor : mapped.tensors().values()) {
                assertThat(tensor.segment()).isSameAs(whole);
            }
            assertThatThrownBy(() -> mapped.tensors().put("c", null)).isInstanceOf(UnsupportedOperationException.class);
        }
    }
}
