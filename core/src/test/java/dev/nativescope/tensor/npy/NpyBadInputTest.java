package dev.nativescope.tensor.npy;

import dev.nativescope.tensor.io.MappedFile;
import dev.nativescope.tensor.io.TensorFormatException;
import dev.nativescope.testing.ProcSelf;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import static dev.nativescope.tensor.npy.NpyBytes.dict;
import static dev.nativescope.tensor.npy.NpyBytes.npy;
import static dev.nativescope.tensor.npy.NpyBytes.raw;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Every kind of bad .npy file is a {@link TensorFormatException} naming the file and the problem,
 * from {@link Npy#map}, {@link Npy#readHeader} and {@link Npy#view} alike, and a failed map leaves
 * no file descriptor and no mapping behind.
 */
class NpyBadInputTest {
    @TempDir
    Path dir;

    private static byte[] ascii(String text) {
        return text.getBytes(StandardCharsets.ISO_8859_1);
    }

    private static byte[] zeros(int count) {
        return new byte[count];
    }

    private static String spaces(int count) {
        return " ".repeat(count);
    }

    static Stream<Arguments> badFiles() {
        String ok = dict("<f4", false, "(2,)");
        List<Arguments> cases = new ArrayList<>();
        cases.add(Arguments.of("empty", new byte[0], "truncated .npy file: 0 bytes"));
        cases.add(Arguments.of("magic-only-part", new byte[] {(byte) 0x93, 'N', 'U', 'M'}, "truncated .npy file: 4 bytes"));
        cases.add(Arguments.of("not-npy", ascii("PK\u0003\u0004 this is a zip"), "not a .npy file: it starts with 504b0304"));
        cases.add(Arguments.of("no-length", Arrays.copyOf(npy(ok, zeros(8)), 9), "truncated .npy file: 9 bytes"));
        cases.add(Arguments.of("version-4", raw(4, 0, 54, ascii(spaces(54)), zeros(8)), "unsupported .npy format version 4.0"));
        cases.add(Arguments.of("version-1.1", raw(1, 1, 54, ascii(spaces(54)), zeros(8)), "unsupported .npy format version 1.1"));
        cases.add(Arguments.of("version-0", raw(0, 0, 54, ascii(spaces(54)), zeros(8)), "version 0.0"));
        cases.add(Arguments.of("v2-short", Arrays.copyOf(raw(2, 0, 0, new byte[0], new byte[0]), 11), "12-byte fixed header"));
        cases.add(Arguments.of("header-beyond-file", raw(1, 0, 4000, ascii(ok), new byte[0]),
                "header length 4000 reaches byte 4010 but the file has only"));
        cases.add(Arguments.of("header-huge", raw(2, 0, 0xffff_ffffL, ascii(ok), new byte[0]),
                "header length 4294967295 exceeds the limit"));
        cases.add(Arguments.of("misaligned", raw(1, 0, ok.length() + 1, ascii(ok + "\n"), zeros(8)),
                "is not a multiple of 16"));
        cases.add(Arguments.of("shape-overflow", npy(dict("<f4", false, "(4611686018427387904, 4)"), zeros(8)),
                "has more than 2^63 bytes"));
        cases.add(Arguments.of("shape-overflow-bytes", npy(dict("<f8", false, "(2305843009213693952,)"), zeros(8)),
                "has more than 2^63 bytes"));
        cases.add(Arguments.of("shape-overflow-beside-zero", npy(dict("<f4", false, "(0, 4294967296, 4294967296)"), zeros(0)),
                "has more than 2^63 bytes"));
        cases.add(Arguments.of("dim-beyond-64-bits", npy(dict("<f4", false, "(99999999999999999999999,)"), zeros(8)),
                "does not fit in 64 bits"));
        cases.add(Arguments.of("negative-dim", npy(dict("<f4", false, "(-1,)"), zeros(8)), "negative dimension -1"));
        cases.add(Arguments.of("rank-65", npy(dict("<f4", false, "(" + "1, ".repeat(65) + ")"), zeros(8)),
                "at most 64"));
        cases.add(Arguments.of("absurd-dim", npy(dict("<f4", false, "(1000000000000,)"), zeros(8)),
                "needs 4000000000000 data bytes at offset 128 but the file has only 8"));
        cases.add(Arguments.of("data-short", npy(dict("<i8", false, "(2, 1)"), zeros(15)),
                "needs 16 data bytes at offset 128 but the file has only 15 (truncated?)"));
        cases.add(Arguments.of("complex", npy(dict("<c8", false, "(2,)"), zeros(16)), "unsupported dtype descr \"<c8\""));
        cases.add(Arguments.of("unicode", npy(dict("<U5", false, "(2,)"), zeros(40)), "unsupported dtype descr"));
        cases.add(Arguments.of("object", npy(dict("|O", false, "(2,)"), zeros(16)), "unsupported dtype descr"));
        cases.add(Arguments.of("big-endian", npy(dict(">f4", false, "(2,)"), zeros(8)),
                "big-endian data (descr '>f4') is not supported; convert it with NumPy first"));
        cases.add(Arguments.of("native-order", npy(dict("=f4", false, "(2,)"), zeros(8)), "'=' (the writer's native order)"));
        cases.add(Arguments.of("pipe-multibyte", npy(dict("|f4", false, "(2,)"), zeros(8)), "only valid for one-byte types"));
        cases.add(Arguments.of("no-order-char", npy(dict("f4", false, "(2,)"), zeros(8)), "byte-order character"));
        cases.add(Arguments.of("empty-descr", npy(dict("", false, "(2,)"), zeros(8)), "too short"));
        cases.add(Arguments.of("structured", npy("{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (2,), }",
                zeros(16)), "structured dtypes are not supported"));
        byte[] v3 = npy(3, ok, 64, zeros(8));
        v3[12 + ok.indexOf("<f4")] = (byte) 0xff;
        cases.add(Arguments.of("v3-not-utf8", v3, "the version 3.0 header is not valid UTF-8"));
        byte[] latin = npy(ok, zeros(8));
        latin[10 + ok.length() + 2] = (byte) 0xe9;
        cases.add(Arguments.of("latin1-in-padding", latin, "found U+00E9"));
        cases.add(Arguments.of("unclosed-dict", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", zeros(8)),
                "expected ',' or '}'"));
        cases.add(Arguments.of("unclosed-string", npy("{'descr: '<f4', 'fortran_order': False, 'shape': (2,), }", zeros(8)),
                "expected ':'"));
        cases.add(Arguments.of("duplicate-key", npy("{'descr': '<f4', 'descr': '<f8', 'fortran_order': False, 'shape': (2,), }",
                zeros(16)), "duplicate key 'descr'"));
        cases.add(Arguments.of("missing-key", npy("{'descr': '<f4', 'shape': (2,), }", zeros(8)),
                "has keys [descr, shape]; a .npy header has exactly"));
        cases.add(Arguments.of("extra-key", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': True}",
                zeros(8)), "has keys"));
        cases.add(Arguments.of("fortran-not-bool", npy("{'descr': '<f4', 'fortran_order': 'no', 'shape': (2,), }", zeros(8)),
                "'fortran_order' must be True or False, found the string \"no\""));
        cases.add(Arguments.of("fortran-lowercase", npy("{'descr': '<f4', 'fortran_order': false, 'shape': (2,), }", zeros(8)),
                "expected a string, True, False or a tuple"));
        cases.add(Arguments.of("descr-not-string", npy("{'descr': True, 'fortran_order': False, 'shape': (2,), }", zeros(8)),
                "'descr' must be a type string"));
        cases.add(Arguments.of("shape-int", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", zeros(8)),
                "'(2)' is a parenthesised integer, not a tuple"));
        cases.add(Arguments.of("shape-list", npy("{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", zeros(8)),
                "'shape' must be a tuple of integers, found the list \"[2]\""));
        cases.add(Arguments.of("shape-string", npy("{'descr': '<f4', 'fortran_order': False, 'shape': '2', }", zeros(8)),
                "'shape' must be a tuple"));
        cases.add(Arguments.of("shape-float", npy(dict("<f4", false, "(2.0,)"), zeros(8)), "expected ',' or ')' in the tuple"));
        cases.add(Arguments.of("leading-zero", npy(dict("<f4", false, "(02,)"), zeros(8)), "leading zero"));
        cases.add(Arguments.of("escape", npy(dict("<f\\x34", false, "(2,)"), zeros(8)), "unsupported character '\\'"));
        cases.add(Arguments.of("trailing-garbage", npy(ok + " x", zeros(8)), "only spaces and a final newline after the dict"));
        cases.add(Arguments.of("tab", npy("{'descr':\t'<f4', 'fortran_order': False, 'shape': (2,), }", zeros(8)),
                "found U+0009"));
        cases.add(Arguments.of("not-a-dict", npy("('<f4', False, (2,))", zeros(8)), "expected '{'"));
        cases.add(Arguments.of("empty-header", raw(1, 0, 6, ascii("     \n"), zeros(0)), "expected '{'"));
        cases.add(Arguments.of("nested-tuple", npy(dict("<f4", false, "((2,),)"), zeros(8)), "expected an integer"));
        return cases.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badFiles")
    void eachBadFileIsATensorFormatExceptionNamingTheFileAndProblem(String name, byte[] bytes, String problem)
            throws IOException {
        Path file = Files.write(dir.resolve(name + ".npy"), bytes);
        try (Arena arena = Arena.ofShared()) {
            assertThatThrownBy(() -> Npy.map(file, MappedFile.Mode.READ_ONLY, arena))
                    .isExactlyInstanceOf(TensorFormatException.class)
                    .hasMessageStartingWith(file + ": ")
                    .hasMessageContaining(problem)
                    .satisfies(e -> assertThat(((TensorFormatException) e).file()).isEqualTo(file));
            assertThatThrownBy(() -> Npy.map(file, MappedFile.Mode.READ_WRITE, arena))
                    .isExactlyInstanceOf(TensorFormatException.class).hasMessageContaining(problem);
        }
        assertThatThrownBy(() -> Npy.readHeader(file)).isExactlyInstanceOf(TensorFormatException.class)
                .hasMessageContaining(problem);
        Path source = Path.of("memory:" + name);
        assertThatThrownBy(() -> Npy.view(MemorySegment.ofArray(bytes), source))
                .isExactlyInstanceOf(TensorFormatException.class)
                .hasMessageStartingWith(source + ": ").hasMessageContaining(problem);
    }

    @Test
    void failedMapsLeaveNoFileDescriptorAndNoMapping() throws IOException {
        List<Path> files = new ArrayList<>();
        for (Arguments arguments : badFiles().toList()) {
            Object[] values = arguments.get();
            files.add(Files.write(dir.resolve(values[0] + ".npy"), (byte[]) values[1]));
        }
        long fdsBefore = ProcSelf.openDescriptorCount();
        try (Arena arena = Arena.ofShared()) {
            for (int round = 0; round < 20; round++) {
                for (Path file : files) {
                    for (MappedFile.Mode mode : MappedFile.Mode.values()) {
                        assertThatThrownBy(() -> Npy.map(file, mode, arena)).isInstanceOf(TensorFormatException.class);
                    }
                }
            }
            assertThat(ProcSelf.mappingsUnder(dir)).as("failed maps must not map anything into the caller's arena").isEmpty();
            assertThat(ProcSelf.openDescriptorCount()).isEqualTo(fdsBefore);
            // A successful map in the same arena does map, and closing the arena unmaps it.
            Path good = Files.write(dir.resolve("good.npy"), npy(dict("<f4", false, "(1024,)"), zeros(4096)));
            Npy.map(good, MappedFile.Mode.READ_ONLY, arena);
            assertThat(ProcSelf.mappingsUnder(dir)).hasSize(1);
        }
        assertThat(ProcSelf.mappingsUnder(dir)).isEmpty();
        assertThat(ProcSelf.openDescriptorCount()).isEqualTo(fdsBefore);
    }

    @Test
    void fileSystemFailuresKeepTheirOwnTypes() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            assertThatThrownBy(() -> Npy.map(dir.resolve("missing.npy"), MappedFile.Mode.READ_ONLY, arena))
                    .isInstanceOf(java.nio.file.NoSuchFileException.class).hasMessageContaining("missing.npy");
            assertThatThrownBy(() -> Npy.map(dir, MappedFile.Mode.READ_ONLY, arena))
                    .isInstanceOf(java.nio.file.FileSystemException.class).hasMessageContaining("is a directory");
        }
    }

    @Test
    void aHeaderOfExactlyTheLimitIsStillParsed() throws IOException {
        String dict = dict("<f4", false, "(1,)");
        int headerLength = NpyHeader.MAX_HEADER_BYTES - 12; // 12 + length is a multiple of 16
        byte[] header = ascii(dict + spaces(headerLength - dict.length() - 1) + "\n");
        byte[] bytes = raw(2, 0, headerLength, header, ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(3).array());
        assertThat(Npy.view(MemorySegment.ofArray(bytes), Path.of("big-header")).tensor().getFloat(0)).isEqualTo(3f);
        byte[] over = raw(2, 0, headerLength + 16, ascii(dict + spaces(headerLength + 15 - dict.length()) + "\n"), zeros(4));
        assertThatThrownBy(() -> Npy.view(MemorySegment.ofArray(over), Path.of("too-big-header")))
                .isInstanceOf(TensorFormatException.class).hasMessageContaining("exceeds the limit");
    }
}
