package dev.nativescope.exchange;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.lang.reflect.Field;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The three copies of the exchange layout agree: {@link ExchangeDescriptor}'s constants, the
 * {@code NSC_XCHG_*} macros of the shim's {@code nsc_exchange.h} (as gcc evaluates them: a probe
 * generated from every {@code #define NSC_XCHG_} of the header prints their values) and the
 * constants of {@code nativescope_exchange.py} (printed by python3). A value that differs, or a
 * constant one side has and the other lacks, fails. The names are mapped by rule (see
 * {@link #cNameOf}), with an ambiguity check, so a renamed constant is reported, not guessed.
 */
class ExchangeLayoutConformanceTest {
    private static final Pattern DEFINE = Pattern.compile("^\\s*#\\s*define\\s+(NSC_XCHG_\\w+)\\s+\\S", Pattern.MULTILINE);
    /** Java names whose C names are not derived by the rules. */
    private static final Map<String, String> JAVA_TO_C = Map.of("LEASE_COUNT", "NSC_XCHG_LEASES",
            "DATA_ALIGNMENT", "NSC_XCHG_DATA_ALIGN");
    /** C names whose Python names are not derived by the rules. */
    private static final Map<String, String> C_TO_PYTHON = Map.of("NSC_XCHG_LEASES", "LEASE_COUNT",
            "NSC_XCHG_DATA_ALIGN", "DATA_ALIGNMENT");

    @TempDir
    static Path work;
    private static Map<String, Long> c;
    private static Set<String> cNames;

    static Path header() {
        return Path.of(System.getProperty("nsc.test.shim.include", "../native-shim/src/main/c"))
                .resolve("nsc_exchange.h").toAbsolutePath().normalize();
    }

    @BeforeAll
    static void probeTheHeader() throws Exception {
        Path header = header();
        String text = Files.readString(header);
        cNames = new TreeSet<>();
        Matcher m = DEFINE.matcher(text);
        while (m.find()) {
            cNames.add(m.group(1));
        }
        assertThat(cNames).as("NSC_XCHG_ macros in %s", header).hasSizeGreaterThan(40);
        StringBuilder probe = new StringBuilder("#include \"nsc_exchange.h\"\n#include <stdio.h>\nint main(void)\n{\n");
        for (String name : cNames) {
            probe.append("    printf(\"%s %lld\\n\", \"").append(name).append("\", (long long) (").append(name).append("));\n");
        }
        probe.append("    return 0;\n}\n");
        Path source = work.resolve("xchg_probe.c");
        Path binary = work.resolve("xchg_probe");
        Files.writeString(source, probe);
        run(List.of("gcc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-I" + header.getParent(), "-o", binary.toString(),
                source.toString()));
        c = parse(run(List.of(binary.toString())));
        assertThat(c.keySet()).isEqualTo(cNames);
    }

    /** The C macro a constant of ExchangeDescriptor stands for. */
    static String cNameOf(String java) {
        if (JAVA_TO_C.containsKey(java)) {
            return JAVA_TO_C.get(java);
        }
        if (java.startsWith("STATUS_")) {
            return "NSC_XCHG_" + java.substring("STATUS_".length());
        }
        if (!java.endsWith("_OFFSET")) {
            return "NSC_XCHG_" + java;
        }
        String stem = java.substring(0, java.length() - "_OFFSET".length());
        String header = "NSC_XCHG_OFF_" + stem;
        String inRecord = null;
        for (String record : List.of("SLOT_", "LEASE_")) {
            if (stem.startsWith(record)) {
                inRecord = "NSC_XCHG_" + record + "OFF_" + stem.substring(record.length());
            }
        }
        if (inRecord != null && cNames.contains(inRecord)) {
            assertThat(cNames).as("%s maps to both %s and %s", java, inRecord, header).doesNotContain(header);
            return inRecord;
        }
        return header;
    }

    /** The Python constant a C macro stands for. */
    static String pythonNameOf(String cName) {
        if (C_TO_PYTHON.containsKey(cName)) {
            return C_TO_PYTHON.get(cName);
        }
        String name = cName.substring("NSC_XCHG_".length());
        return name.startsWith("SLOT_OFF_") ? "SLOT_" + name.substring("SLOT_OFF_".length()) : name;
    }

    static Map<String, Long> javaConstants() throws IllegalAccessException {
        Map<String, Long> java = new TreeMap<>();
        for (Field f : ExchangeDescriptor.class.getDeclaredFields()) {
            int mod = f.getModifiers();
            if (Modifier.isStatic(mod) && Modifier.isFinal(mod) && Modifier.isPublic(mod)
                    && (f.getType() == int.class || f.getType() == long.class)) {
                java.put(f.getName(), ((Number) f.get(null)).longValue());
            }
        }
        return java;
    }

    @Test
    void everyConstantOfExchangeDescriptorIsTheHeadersValue() throws Exception {
        Map<String, Long> java = javaConstants();
        assertThat(java).as("public int/long constants of ExchangeDescriptor").hasSizeGreaterThan(40);
        List<String> problems = new ArrayList<>();
        Set<String> covered = new TreeSet<>();
        java.forEach((name, value) -> {
            String cName = cNameOf(name);
            covered.add(cName);
            Long cValue = c.get(cName);
            if (cValue == null) {
                problems.add("ExchangeDescriptor." + name + " = " + value + " has no " + cName + " in nsc_exchange.h");
            } else if (!cValue.equals(value)) {
                problems.add("ExchangeDescriptor." + name + " = " + value + " but " + cName + " = " + cValue);
            }
        });
        for (String cName : cNames) {
            if (!covered.contains(cName)) {
                problems.add(cName + " = " + c.get(cName) + " has no constant in ExchangeDescriptor");
            }
        }
        assertThat(problems).as("ExchangeDescriptor vs %s", header()).isEmpty();
        // The magic is the ASCII the diagrams name, read as a little-endian u64.
        byte[] magic = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(ExchangeDescriptor.MAGIC).array();
        assertThat(new String(magic, StandardCharsets.US_ASCII)).isEqualTo("NSCXCHG\0");
        assertThat(c.get("NSC_XCHG_PRODUCER_DEAD")).isEqualTo((long) ExchangeNative.PRODUCER_DEAD);
        assertThat(c.get("NSC_XCHG_PRODUCER_CLOSED")).isEqualTo((long) ExchangeNative.PRODUCER_CLOSED);
    }

    @Test
    void thePythonModulesConstantsAreTheHeadersValues() throws Exception {
        String script = """
                import nativescope_exchange as nx
                for k, v in sorted(vars(nx).items()):
                    if k.isupper() and not k.startswith("_") and type(v) is int:
                        print(k, v)
                    elif k.isupper() and type(v) is str and v == k:
                        print(k, "status")
                """;
        Process python = Children.python(script);
        String out = new String(python.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(python.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(python.exitValue()).as(out).isZero();
        Map<String, Long> py = new TreeMap<>();
        Set<String> pyStatuses = new TreeSet<>();
        for (String line : out.strip().split("\n")) {
            String[] p = line.split(" ");
            if (p[1].equals("status")) {
                pyStatuses.add(p[0]);
            } else {
                py.put(p[0], Long.parseLong(p[1]));
            }
        }
        List<String> problems = new ArrayList<>();
        Set<String> covered = new TreeSet<>();
        Set<String> statusMacros = javaConstants().keySet().stream().filter(n -> n.startsWith("STATUS_"))
                .map(ExchangeLayoutConformanceTest::cNameOf).collect(Collectors.toSet());
        for (String cName : cNames) {
            if (statusMacros.contains(cName)) {
                continue; // outcomes: Python names them by string (checked below)
            }
            String name = pythonNameOf(cName);
            covered.add(name);
            Long value = py.get(name);
            if (value == null) {
                problems.add(cName + " = " + c.get(cName) + " has no " + name + " in nativescope_exchange.py");
            } else if (!value.equals(c.get(cName))) {
                problems.add("nativescope_exchange." + name + " = " + value + " but " + cName + " = " + c.get(cName));
            }
        }
        // Python's own helper ints (syscall numbers...) start with "_"; every public one must be a layout constant.
        for (String name : py.keySet()) {
            if (!covered.contains(name)) {
                problems.add("nativescope_exchange." + name + " = " + py.get(name) + " has no NSC_XCHG_ macro");
            }
        }
        assertThat(problems).as("nativescope_exchange.py vs %s", header()).isEmpty();
        assertThat(pyStatuses).as("Python's outcome strings vs ReadStatus")
                .isEqualTo(Arrays.stream(ReadStatus.values()).map(Enum::name).collect(Collectors.toCollection(TreeSet::new)));
        // The outcomes the C side numbers and Java and Python name must be named alike.
        for (String cName : statusMacros) {
            String suffix = cName.substring("NSC_XCHG_".length());
            if (!suffix.equals("BUSY") && !suffix.equals("ERR_FORMAT")) {
                assertThat(ReadStatus.valueOf(suffix)).as(cName).isNotNull();
            }
        }
    }

    private static Map<String, Long> parse(String out) {
        Map<String, Long> values = new TreeMap<>();
        for (String line : out.strip().split("\n")) {
            String[] p = line.split(" ");
            values.put(p[0], Long.parseLong(p[1]));
        }
        return values;
    }

    private static String run(List<String> command) throws IOException, InterruptedException {
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(process.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(process.exitValue()).as("%s%n%s", String.join(" ", command), out).isZero();
        return out;
    }
}
