package dev.nativescope.tensor.safetensors;

import dev.nativescope.internal.json.JsonException;
import dev.nativescope.internal.json.JsonParser;
import dev.nativescope.tensor.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Interoperability with an independent implementation: {@code reference_io.py}, which uses only
 * Python's {@code struct} and {@code json}, writes a file that we map, and reads a file that we
 * write; its output (JSON on stdout) is compared here.
 */
class SafeTensorsPythonTest {
    private static final Path PYTHON = Path.of("/usr/bin/python3");

    @TempDir
    Path dir;

    private static Path script;

    @BeforeAll
    static void findPythonAndScript() throws URISyntaxException {
        assumeTrue(Files.isExecutable(PYTHON), "these tests run /usr/bin/python3 (apt-get install python3-minimal)");
        script = Path.of(SafeTensorsPythonTest.class.getResource("/safetensors/reference_io.py").toURI());
    }

    private static Map<String, Object> runPython(String mode, Path file) throws IOException, InterruptedException,
            JsonException {
        Process process = new ProcessBuilder(PYTHON.toString(), script.toString(), mode, file.toString())
                .redirectError(ProcessBuilder.Redirect.PIPE).start();
        byte[] stdout = process.getInputStream().readAllBytes();
        String stderr = new String(process.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(process.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(process.exitValue()).as("reference_io.py %s failed: %s", mode, stderr).isZero();
        @SuppressWarnings("unchecked")
        Map<String, Object> output = (Map<String, Object>) JsonParser.parse(new String(stdout, StandardCharsets.UTF_8),
                JsonParser.Limits.DEFAULT);
        return output;
    }

    @SuppressWarnings("unchecked")
    private static List<Map<String, Object>> tensorsOf(Map<String, Object> output) {
        return (List<Map<String, Object>>) output.get("tensors");
    }

    /** @return every element of {@code tensor} in row-major order, as reference_io.py prints it */
    private static List<String> valuesOf(Tensor tensor) {
        List<String> values = new ArrayList<>();
        long[] index = new long[tensor.rank()];
        for (long n = 0; n < tensor.elementCount(); n++) {
            values.add(switch (tensor.dtype()) {
                case FLOAT16, BFLOAT16, FLOAT32, FLOAT64 -> pythonRepr(tensor.getDouble(index));
                case UINT64 -> Long.toUnsignedString(tensor.getLong(index));
                default -> Long.toString(tensor.getLong(index));
            });
            SafeTensorsRoundTripTest.increment(index, tensor.shape());
        }
        return values;
    }

    /** Python's repr of a float, which is the shortest round-tripping form, like Java's; only spelled differently. */
    private static String pythonRepr(double value) {
        return pythonDouble(Double.toString(value));
    }

    private static String pythonDouble(String javaText) {
        if (javaText.equals("Infinity")) {
            return "inf";
        }
        if (javaText.equals("-Infinity")) {
            return "-inf";
        }
        return javaText;
    }

    /** Compares as numbers, since Python and Java spell exponents differently ("3e+38" vs "3.0E38"). */
    private static void assertSameValues(String what, List<String> actual, Object expected) {
        @SuppressWarnings("unchecked")
        List<String> expectedValues = (List<String>) expected;
        assertThat(actual).as(what).hasSameSizeAs(expectedValues);
        for (int i = 0; i < actual.size(); i++) {
            String a = actual.get(i);
            String e = expectedValues.get(i);
            if (a.equals(e)) {
                continue;
            }
            assertThat(Double.parseDouble(a.replace("inf", "Infinity")))
                    .as("%s[%d]: %s vs %s", what, i, a, e)
                    .isEqualTo(Double.parseDouble(e.replace("inf", "Infinity")));
        }
    }

    private static long[] shapeOf(Object shape) {
        return ((List<?>) shape).stream().mapToLong(dim -> (Long) dim).toArray();
    }

    @Test
    void aFileWrittenByPythonMapsToTheValuesItWrote() throws Exception {
        Path file = dir.resolve("python.safetensors");
        Map<String, Object> expected = runPython("write", file);
        try (Arena arena = Arena.ofConfined()) {
            SafeTensorsFile mapped = SafeTensors.map(file, arena);
            assertThat(mapped.metadata()).isEqualTo(expected.get("metadata"));
            List<Map<String, Object>> tensors = tensorsOf(expected);
            assertThat(mapped.tensors().keySet()).containsExactlyElementsOf(
                    tensors.stream().map(t -> (String) t.get("name")).toList());
            boolean sawMisaligned = false;
            for (Map<String, Object> want : tensors) {
                Tensor tensor = mapped.tensor((String) want.get("name"));
                assertThat(tensor.dtype().safetensorsName()).isEqualTo(want.get("dtype"));
                assertThat(tensor.shape()).isEqualTo(shapeOf(want.get("shape")));
                assertSameValues((String) want.get("name"), valuesOf(tensor), want.get("values"));
                sawMisaligned |= tensor.byteOffset() % tensor.dtype().byteSize() != 0;
            }
            assertThat(sawMisaligned).as("the Python file has misaligned tensors").isTrue();
        }
    }

    @Test
    void aFileWrittenByUsIsReadByPython() throws Exception {
        Path original = dir.resolve("python.safetensors");
        Path ours = dir.resolve("ours.safetensors");
        Map<String, Object> expected = runPython("write", original);
        try (Arena arena = Arena.ofConfined()) {
            SafeTensorsFile mapped = SafeTensors.map(original, arena);
            SequencedMap<String, Tensor> tensors = new LinkedHashMap<>(mapped.tensors());
            tensors.put("transposed", mapped.tensor("weight/f32").transpose(0, 1));
            SafeTensors.write(ours, tensors, mapped.metadata());
        }
        Map<String, Object> read = runPython("read", ours);

        assertThat((Long) read.get("header_length") % 8).isZero();
        assertThat(read.get("metadata")).isEqualTo(expected.get("metadata"));
        List<Map<String, Object>> got = tensorsOf(read);
        List<Map<String, Object>> want = new ArrayList<>(tensorsOf(expected));
        assertThat(got).hasSize(want.size() + 1);
        for (int i = 0; i < want.size(); i++) {
            Map<String, Object> g = got.get(i);
            Map<String, Object> w = want.get(i);
            assertThat(g.get("name")).isEqualTo(w.get("name"));
            assertThat(g.get("dtype")).isEqualTo(w.get("dtype"));
            assertThat(g.get("shape")).isEqualTo(w.get("shape"));
            assertThat(g.get("aligned")).as("%s is aligned", g.get("name")).isEqualTo(true);
            assertSameValues((String) g.get("name"), cast(g.get("values")), w.get("values"));
        }
        Map<String, Object> transposed = got.get(want.size());
        assertThat(transposed.get("name")).isEqualTo("transposed");
        assertThat(transposed.get("shape")).isEqualTo(List.of(3L, 2L));
        // weight/f32 is [[1.5, -2.25, 0.0], [-0.0, inf, ~3e38]]
        assertSameValues("transposed", cast(transposed.get("values")),
                List.of("1.5", "-0.0", "-2.25", "inf", "0.0", "3.0000000054977558e+38"));
    }

    @SuppressWarnings("unchecked")
    private static List<String> cast(Object values) {
        return (List<String>) values;
    }
}
