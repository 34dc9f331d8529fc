package dev.nativescope.tensor.safetensors;

import dev.nativescope.tensor.DType;
import dev.nativescope.testing.ProcSelf;
import dev.nativescope.tensor.Tensor;
import dev.nativescope.tensor.io.TensorFormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

/**
 * Every kind of malformed, truncated or hostile file is a {@link TensorFormatException} naming the
 * file and the problem; nothing is mapped for it and no file descriptor stays open. Also: what a
 * file that shrinks under its mapping does (an {@link InternalError}, not a crash).
 */
class SafeTensorsBadInputTest {
    private static final String F32_2 = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";

    @TempDir
    Path dir;

    private static String entry(String name, String dtype, String shape, String offsets) {
        return "\"" + name + "\":{\"dtype\":" + dtype + ",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
    }

    private static byte[] header(String json, int dataSize) {
        return SafeTensorsBytes.file(json, dataSize);
    }

    private static byte[] withDtype(String dtype) {
        return header("{" + entry("w", dtype, "[2]", "[0,8]") + "}", 8);
    }

    private static byte[] withShape(String shape, String offsets, int dataSize) {
        return header("{" + entry("w", "\"F32\"", shape, offsets) + "}", dataSize);
    }

    private static byte[] withOffsets(String offsets, int dataSize) {
        return withShape("[2]", offsets, dataSize);
    }

    private static byte[] headerBytes(byte[] json, int dataSize) {
        return SafeTensorsBytes.file(json.length, json, new byte[dataSize]);
    }

    static Stream<Arguments> badFiles() {
        List<Arguments> cases = new ArrayList<>();
        // the length field
        cases.add(Arguments.of("empty file", new byte[0], "the file has 0 bytes"));
        cases.add(Arguments.of("5 bytes", new byte[5], "the file has 5 bytes"));
        cases.add(Arguments.of("header length beyond the file",
                SafeTensorsBytes.file(1000, "{}".getBytes(StandardCharsets.UTF_8), new byte[0]),
                "header length is 1000 bytes, but only 2 bytes follow"));
        cases.add(Arguments.of("header length 0", SafeTensorsBytes.file(0, new byte[0], new byte[8]),
                "header length is 0 bytes, too short"));
        cases.add(Arguments.of("header length 1", SafeTensorsBytes.file(1, new byte[] {'{'}, new byte[0]),
                "header length is 1 bytes, too short"));
        cases.add(Arguments.of("header length above 100 MB",
                SafeTensorsBytes.file(100_000_001, new byte[16], new byte[0]), "100000001 bytes, above the limit"));
        cases.add(Arguments.of("header length 2^64-1", SafeTensorsBytes.file(-1, new byte[16], new byte[0]),
                "18446744073709551615 bytes, above the limit"));
        cases.add(Arguments.of("truncated data section", header(F32_2, 4), "beyond the data section of 4 bytes"));
        // encoding and JSON grammar
        byte[] notUtf8 = "{\"w\u00ff\":{}}".getBytes(StandardCharsets.ISO_8859_1);
        cases.add(Arguments.of("Latin-1 header", headerBytes(notUtf8, 0), "not valid UTF-8"));
        cases.add(Arguments.of("overlong UTF-8", headerBytes(new byte[] {'{', '"', (byte) 0xc0, (byte) 0xaf, '"',
            ':', '1', '}'}, 0), "not valid UTF-8"));
        cases.add(Arguments.of("encoded surrogate", headerBytes(new byte[] {'{', '"', (byte) 0xed, (byte) 0xa0,
            (byte) 0x80, '"', ':', '1', '}'}, 0), "not valid UTF-8"));
        cases.add(Arguments.of("unclosed object", header(F32_2.substring(0, F32_2.length() - 1), 8), "not valid JSON"));
        cases.add(Arguments.of("trailing comma", header("{" + entry("w", "\"F32\"", "[2]", "[0,8]") + ",}", 8),
                "expected a string key"));
        cases.add(Arguments.of("single quotes", header("{'w':1}", 0), "expected a string key"));
        cases.add(Arguments.of("NaN in a shape", withShape("[NaN]", "[0,8]", 8), "expected a value"));
        cases.add(Arguments.of("lone surrogate escape", header("{\"\\ud800\":1}", 0), "high surrogate"));
        cases.add(Arguments.of("nesting too deep", header("{\"__metadata__\":" + "[".repeat(70) + "]".repeat(70) + "}", 0),
                "nested deeper than 64"));
        cases.add(Arguments.of("duplicate tensor name",
                header("{" + entry("w", "\"U8\"", "[1]", "[0,1]") + "," + entry("w", "\"U8\"", "[1]", "[1,2]") + "}", 2),
                "duplicate key \"w\""));
        cases.add(Arguments.of("duplicate entry key",
                header("{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8),
                "duplicate key \"dtype\""));
        cases.add(Arguments.of("duplicate metadata key", header("{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}", 0),
                "duplicate key \"a\""));
        cases.add(Arguments.of("trailing garbage", header("{} x", 0), "trailing garbage"));
        cases.add(Arguments.of("two objects", header("{}{}", 0), "trailing garbage"));
        cases.add(Arguments.of("NUL padding", header("{}\0\0", 0), "trailing garbage"));
        cases.add(Arguments.of("leading space", header(" {}", 0), "does not start with '{'"));
        cases.add(Arguments.of("byte-order mark", header("\ufeff{}", 0), "does not start with '{'"));
        cases.add(Arguments.of("array header", header("[]", 0), "does not start with '{'"));
        // entries
        for (String dtype : List.of("\"F8_E4M3\"", "\"f32\"", "\"\"", "\"I4\"", "\"float32\"", "\"C64\"")) {
            cases.add(Arguments.of("dtype " + dtype, withDtype(dtype), "unsupported dtype " + dtype
                    + "; supported dtypes: F16, BF16, F32, F64, I8, I16, I32, I64, U8, U16, U32, U64, BOOL"));
        }
        cases.add(Arguments.of("numeric dtype", withDtype("32"), "a dtype that is the number 32"));
        cases.add(Arguments.of("entry is an array", header("{\"w\":[1]}", 0), "tensor \"w\" is an array"));
        cases.add(Arguments.of("missing shape", header("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8),
                "tensor \"w\" has no \"shape\""));
        cases.add(Arguments.of("unknown key", header("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],"
                + "\"offsets\":[0,8]}}", 8), "unknown key \"offsets\""));
        cases.add(Arguments.of("negative dimension", withShape("[-1]", "[0,8]", 8), "dimension 0 is -1; it must not be negative"));
        cases.add(Arguments.of("dimension beyond 64 bits", withShape("[2,9223372036854775808]", "[0,8]", 8),
                "dimension 1 is 9223372036854775808, beyond the 64-bit range"));
        cases.add(Arguments.of("fractional dimension", withShape("[1.5]", "[0,8]", 8), "non-negative integer literal"));
        cases.add(Arguments.of("exponent dimension", withShape("[2e0]", "[0,8]", 8), "non-negative integer literal"));
        cases.add(Arguments.of("string dimension", withShape("[\"2\"]", "[0,8]", 8), "dimension 0 is the string \"2\""));
        cases.add(Arguments.of("shape not an array", withShape("2", "[0,8]", 8), "shape that is the number 2"));
        cases.add(Arguments.of("element count overflows", withShape("[4294967296,4294967296]", "[0,8]", 8),
                "byte size overflows 64 bits"));
        cases.add(Arguments.of("byte size overflows", withShape("[2305843009213693952]", "[0,8]", 8),
                "byte size overflows 64 bits"));
        // offsets
        cases.add(Arguments.of("offsets beyond the data", withOffsets("[8,16]", 8), "beyond the data section of 8 bytes"));
        cases.add(Arguments.of("offsets beyond 2^63", withOffsets("[0,9223372036854775808]", 8), "beyond the 64-bit range"));
        cases.add(Arguments.of("reversed offsets", withOffsets("[8,0]", 8), "reversed data_offsets [8, 0]"));
        cases.add(Arguments.of("size mismatch", withOffsets("[0,4]", 8), "holding 4 bytes, but dtype F32 with shape [2] needs 8"));
        cases.add(Arguments.of("one offset", withOffsets("[0]", 8), "must be an array [begin, end]"));
        cases.add(Arguments.of("three offsets", withOffsets("[0,8,8]", 8), "must be an array [begin, end]"));
        cases.add(Arguments.of("negative offset", withOffsets("[-1,7]", 8), "begin that is -1"));
        cases.add(Arguments.of("float offset", withOffsets("[0,8.0]", 8), "non-negative integer literal"));
        cases.add(Arguments.of("overlap", header("{" + entry("a", "\"F32\"", "[2]", "[0,8]") + ","
                + entry("b", "\"F32\"", "[2]", "[4,12]") + "}", 12), "tensor \"b\" at data_offsets [4, 12] overlaps tensor \"a\""));
        cases.add(Arguments.of("empty tensor inside another", header("{" + entry("a", "\"F32\"", "[2]", "[0,8]") + ","
                + entry("e", "\"F32\"", "[0]", "[4,4]") + "}", 8), "overlaps"));
        cases.add(Arguments.of("hole between tensors", header("{" + entry("a", "\"F32\"", "[2]", "[0,8]") + ","
                + entry("b", "\"F32\"", "[2]", "[12,20]") + "}", 20), "bytes [8, 12) of the data section belong to no tensor"));
        cases.add(Arguments.of("hole at the start", withOffsets("[4,12]", 12), "bytes [0, 4) of the data section"));
        cases.add(Arguments.of("trailing data", header(F32_2, 12), "bytes [8, 12) at the end of the data section"));
        // metadata
        cases.add(Arguments.of("metadata number", header("{\"__metadata__\":{\"a\":1}}", 0),
                "\"__metadata__\" maps \"a\" to the number 1; safetensors metadata values must be strings"));
        cases.add(Arguments.of("metadata null", header("{\"__metadata__\":{\"a\":null}}", 0), "maps \"a\" to null"));
        cases.add(Arguments.of("metadata object", header("{\"__metadata__\":{\"a\":{}}}", 0), "maps \"a\" to an object"));
        cases.add(Arguments.of("metadata array", header("{\"__metadata__\":[]}", 0), "\"__metadata__\" is an array"));
        return cases.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badFiles")
    void badFilesAreRejectedWithAMessageNamingFileAndProblem(String what, byte[] bytes, String problem) throws IOException {
        Path file = dir.resolve("bad.safetensors");
        Files.write(file, bytes);
        try (Arena arena = Arena.ofShared()) {
            TensorFormatException rejected = catchThrowableOfType(TensorFormatException.class,
                    () -> SafeTensors.map(file, arena));
            assertThat(rejected).as(what).isNotNull();
            assertThat(rejected.file()).isEqualTo(file);
            assertThat(rejected.getMessage()).startsWith(file + ": ").contains(problem);
            // the header is validated before anything is mapped, and the channel is closed
            assertThat(ProcSelf.mappingsOf(file)).isEmpty();
            assertThat(ProcSelf.descriptorsOf(file)).isEmpty();
        }
    }

    @Test
    void rejectingEveryBadFileLeaksNoDescriptorAndNoMapping() throws IOException {
        Path file = dir.resolve("bad.safetensors");
        long descriptorsBefore = ProcSelf.openDescriptorCount();
        for (int round = 0; round < 3; round++) {
            for (Arguments badFile : badFiles().toList()) {
                Files.write(file, (byte[]) badFile.get()[1]);
                try (Arena arena = Arena.ofShared()) {
                    assertThatThrownBy(() -> SafeTensors.map(file, arena)).isInstanceOf(TensorFormatException.class);
                }
            }
        }
        assertThat(ProcSelf.openDescriptorCount()).isEqualTo(descriptorsBefore);
        assertThat(ProcSelf.mappingsOf(file)).isEmpty();
    }

    @Test
    void aValidFileIsUnmappedWhenItsArenaCloses() throws IOException {
        Path file = dir.resolve("good.safetensors");
        Files.write(file, header(F32_2, 8));
        long descriptorsBefore = ProcSelf.openDescriptorCount();
        try (Arena arena = Arena.ofShared()) {
            SafeTensors.map(file, arena);
            assertThat(ProcSelf.mappingsOf(file)).hasSize(1);
            assertThat(ProcSelf.descriptorsOf(file)).isEmpty();
        }
        assertThat(ProcSelf.mappingsOf(file)).isEmpty();
        assertThat(ProcSelf.openDescriptorCount()).isEqualTo(descriptorsBefore);
    }

    @Test
    void whatTheFormatAllowsIsAccepted() throws IOException {
        Path file = dir.resolve("edge.safetensors");
        // unpadded header, shuffled keys, an empty tensor between others, misaligned F32 after 3 bytes
        String json = "{ \"f\" : {\"data_offsets\":[3,7],\"shape\":[],\"dtype\":\"F32\"},\n"
                + "\"__metadata__\":{}, \"e\":{\"shape\":[0,9223372036854775807],\"dtype\":\"F64\",\"data_offsets\":[3,3]},"
                + "\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}}\t";
        byte[] data = {1, 2, (byte) 255, 0, 0, (byte) 0xc0, 0x3f}; // U8 [1, 2, 255], F32 1.5f
        Files.write(file, SafeTensorsBytes.file(json, data));
        try (Arena arena = Arena.ofConfined()) {
            SafeTensorsFile mapped = SafeTensors.map(file, arena);
            assertThat(mapped.tensors().keySet()).containsExactly("f", "e", "b");
            assertThat(mapped.tensor("f").getFloat()).isEqualTo(1.5f);
            assertThat(mapped.tensor("f").byteOffset() % 4).isNotZero();
            assertThat(mapped.tensor("b").toFloatArray()).containsExactly(1, 2, 255);
            assertThat(mapped.tensor("e").elementCount()).isZero();
            assertThat(mapped.tensor("e").data().byteSize()).isZero();
            assertThat(mapped.metadata()).isEmpty();
        }
    }

    @Test
    void fileSystemErrorsStayPlainIOExceptions() {
        try (Arena arena = Arena.ofConfined()) {
            assertThatThrownBy(() -> SafeTensors.map(dir.resolve("missing.safetensors"), arena))
                    .isInstanceOf(NoSuchFileException.class);
        }
    }

    /**
     * POSIX: touching a mapped page past the end of a file that shrank raises SIGBUS. The JDK
     * (checked on 25) turns it into an InternalError thrown from the access, in interpreted and
     * compiled code alike, and the JVM goes on.
     */
    @Test
    void aFileThatShrinksUnderItsMappingThrowsInternalErrorInsteadOfCrashing() throws IOException {
        Path file = dir.resolve("shrinking.safetensors");
        int elements = 1 << 18; // 1 MiB of F32: many pages
        SequencedMap<String, Tensor> tensors = new LinkedHashMap<>();
        try (Arena source = Arena.ofConfined()) {
            tensors.put("w", Tensor.of(source.allocate(4L * elements), DType.FLOAT32, elements));
            SafeTensors.write(file, tensors, Map.of());
        }
        try (Arena arena = Arena.ofShared()) {
            Tensor mapped = SafeTensors.map(file, arena).tensor("w");
            assertThat(mapped.getFloat(elements - 1)).isZero();
            try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
                channel.truncate(4096);
            }
            int faults = 0;
            for (int i = 0; i < 20_000; i++) {
                try {
                    mapped.getFloat(elements - 1 - (i % 1000));
                } catch (InternalError expected) {
                    assertThat(expected).hasMessageContaining("fault occurred in an unsafe memory access");
                    faults++;
                }
            }
            assertThat(faults).isEqualTo(20_000);
            assertThatThrownBy(mapped::toFloatArray).isInstanceOf(InternalError.class);
            // the pages still inside the file stay readable
            assertThat(mapped.getFloat(0)).isZero();
        }
    }
}
