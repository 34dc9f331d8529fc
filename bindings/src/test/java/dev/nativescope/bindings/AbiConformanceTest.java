package dev.nativescope.bindings;

import static java.lang.foreign.MemoryLayout.PathElement.groupElement;
import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;
import static org.assertj.core.api.Assertions.tuple;

import java.io.IOException;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.PaddingLayout;
import java.lang.foreign.StructLayout;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Checks the jextract bindings against what a C compiler makes of native-shim's public headers:
 * nativescope.h (the contract) and the headers shipped beside it, all of which jextract reads
 * through the umbrella header {@code jextract-config/nativescope_bindings.h}
 * ({@code nsc.bindings.header}). The public headers are the {@code .h} files of
 * {@code nsc.header.dir} but {@link #INTERNAL_HEADERS}; the umbrella must include exactly those, and
 * the native-shim jar must ship exactly those ({@code nsc.shipped.include.dir}).
 *
 * <p>A C probe program is generated from the Java layouts: it prints, for every struct, its
 * size and alignment, for every named field its offset and size, and the value of every
 * constant the header class exposes. gcc compiles it against the header in
 * {@code nsc.header.dir}; its output must match the Java side exactly. A header change that
 * moves a field, resizes a struct or renumbers a status without the bindings being
 * regenerated fails here. The headers are also scanned so that a struct, function or constant
 * added to one without being added to the bindings fails too.
 *
 * <p>nativescope.h includes {@code <dlpack/dlpack.h>}: the DLPack structs it uses are compared the
 * same way, and the dlpack.h that gcc actually includes (found with {@code gcc -M}) is scanned for
 * structs and enum constants.
 *
 * <p>The statuses are listed once, in the header's {@code NSC_STATUS_LIST}. A second probe,
 * {@code src/test/c/nsc_status_probe.c}, prints that list linked against the shim
 * ({@code nsc.test.native.dir}): every listed status must be a constant of the bindings with the
 * same value, and the library's {@code nsc_status_name} and {@code nsc_strerror} must say the
 * list's name and description.
 */
class AbiConformanceTest {

    /** Every struct binding class. Its simple name is the C struct (and typedef) name. */
    static final List<Class<?>> STRUCT_CLASSES = List.of(
            DLDataType.class,
            DLDevice.class,
            DLTensor.class,
            nsc_checker.class,
            nsc_context.class,
            nsc_kv.class,
            nsc_predict_stats.class,
            nsc_stats.class);

    /**
     * Declared in the header but deliberately without bindings: jextract 0b89a46 skips an
     * incomplete struct ("type Declared(nsc_hook) is not supported") and its typedef; the
     * bindings pass it around as a plain pointer.
     */
    static final Set<String> OPAQUE_STRUCTS = Set.of("nsc_hook");

    /**
     * Structs of dlpack.h deliberately without bindings: nativescope borrows {@code DLTensor}
     * descriptors for the length of a call and never takes ownership, so it neither builds nor
     * releases a {@code DLManagedTensor}.
     */
    static final Set<String> UNBOUND_DLPACK_STRUCTS = Set.of("DLManagedTensor");

    /** Headers of native-shim's sources that are neither shipped nor bound: the library's own internals. */
    static final Set<String> INTERNAL_HEADERS = Set.of("nsc_internal.h");

    /**
     * Public headers that are shipped but not bound here: the exchange's file layout and C API, which
     * the exchange module lays out in Java itself ({@code ExchangeDescriptor}) and checks against this
     * header in its own tests.
     */
    static final Set<String> UNBOUND_HEADERS = Set.of("nsc_exchange.h");

    /** The contract; every other public header includes it. */
    static final String CONTRACT_HEADER = "nativescope.h";

    /** Name prefixes of the constants the header class exposes: ours, and DLPack's enum values. */
    static final List<String> CONSTANT_PREFIXES = List.of("NSC_", "kDL");

    /** Prints NSC_STATUS_LIST and what the linked library says about each status (see the file). */
    static final Path STATUS_PROBE_SOURCE = Path.of("src", "test", "c", "nsc_status_probe.c");

    private static final long PROCESS_TIMEOUT_SECONDS = 60;

    private static Path headerDir;
    private static Path workDir;
    private static List<String> publicHeaders;
    /** The text of every public header, one after the other: what the scans read. */
    private static String headerText;
    private static String contractText;
    private static Path dlpackHeader;
    private static String dlpackText;
    private static CReport cReport;
    private static List<StatusRow> statusRows;

    @BeforeAll
    static void compileAndRunProbe() throws Exception {
        headerDir = Path.of(System.getProperty("nsc.header.dir",
                Path.of("..", "native-shim", "src", "main", "c").toString())).toAbsolutePath().normalize();
        workDir = Path.of(System.getProperty("nsc.abi.work.dir",
                Path.of("target", "abi-test").toString())).toAbsolutePath().normalize();
        Path header = headerDir.resolve(CONTRACT_HEADER);
        assertThat(header).as("%s (nsc.header.dir=%s)", CONTRACT_HEADER, headerDir).isRegularFile();
        contractText = Files.readString(header, UTF_8);
        publicHeaders = umbrellaIncludes(Files.readString(umbrellaHeader(), UTF_8));
        StringBuilder texts = new StringBuilder();
        for (String name : publicHeaders) {
            texts.append(Files.readString(headerDir.resolve(name), UTF_8)).append('\n');
        }
        headerText = texts.toString();
        Files.createDirectories(workDir);

        Path source = workDir.resolve("abi_probe.c");
        Path binary = workDir.resolve("abi_probe");
        Files.writeString(source,
                probeSource(publicHeaders, javaStructLayouts(), javaIntConstants(), javaStringConstants()), UTF_8);
        Files.deleteIfExists(binary);

        run(workDir.resolve("gcc.log"), List.of("gcc", "-std=gnu11", "-Wall", "-Wextra", "-Werror",
                "-I" + headerDir, "-o", binary.toString(), source.toString()));
        String dependencies = run(workDir.resolve("gcc-deps.log"), List.of("gcc", "-std=gnu11", "-I" + headerDir,
                "-M", source.toString()));
        dlpackHeader = dlpackHeaderOf(dependencies);
        dlpackText = Files.readString(dlpackHeader, UTF_8);
        String output = run(workDir.resolve("abi_probe.out"), List.of(binary.toString()));
        cReport = CReport.parse(output);

        Path nativeDir = Path.of(System.getProperty("nsc.test.native.dir")).toAbsolutePath().normalize();
        Path statusProbe = workDir.resolve("nsc_status_probe");
        Files.deleteIfExists(statusProbe);
        run(workDir.resolve("gcc-status.log"), List.of("gcc", "-std=gnu11", "-Wall", "-Wextra", "-Werror",
                "-I" + headerDir, "-o", statusProbe.toString(), STATUS_PROBE_SOURCE.toAbsolutePath().toString(),
                "-L" + nativeDir, "-lnativescope", "-Wl,-rpath," + nativeDir));
        statusRows = StatusRow.parse(run(workDir.resolve("nsc_status_probe.out"), List.of(statusProbe.toString())));
    }

    @Test
    void theUmbrellaHeaderIncludesEveryPublicHeader() throws IOException {
        assertThat(publicHeaders)
                .as("headers included by %s vs the .h files of %s but %s and %s", umbrellaHeader(), headerDir,
                        INTERNAL_HEADERS, UNBOUND_HEADERS)
                .startsWith(CONTRACT_HEADER)
                .doesNotHaveDuplicates()
                .containsExactlyInAnyOrderElementsOf(boundHeaderFileNames(headerDir));
    }

    /** What predictor authors get: the native-shim build's META-INF/native/include holds every public header. */
    @Test
    void theShimJarShipsEveryPublicHeader() throws IOException {
        Path shipped = Path.of(System.getProperty("nsc.shipped.include.dir")).toAbsolutePath().normalize();
        List<String> expected = new java.util.ArrayList<>(publicHeaders);
        expected.addAll(UNBOUND_HEADERS);
        assertThat(headerFileNames(shipped)).as("headers in %s", shipped)
                .containsExactlyInAnyOrderElementsOf(expected);
    }

    /** Each companion header builds on the contract: it includes nativescope.h and defines no status of its own. */
    @Test
    void companionHeadersIncludeTheContractAndDefineNoStatus() throws IOException {
        for (String name : publicHeaders.subList(1, publicHeaders.size())) {
            String text = stripComments(Files.readString(headerDir.resolve(name), UTF_8));
            assertThat(text).as(name).contains("#include \"" + CONTRACT_HEADER + "\"").doesNotContain("enum");
        }
    }

    /** A user includes one header without the others: each must compile alone. */
    @Test
    void everyPublicHeaderCompilesOnItsOwn() throws Exception {
        for (String name : publicHeaders) {
            Path source = workDir.resolve("alone_" + name.replace(".h", ".c"));
            Files.writeString(source, "#include \"" + name + "\"\n", UTF_8);
            run(workDir.resolve("gcc-alone-" + name + ".log"), List.of("gcc", "-std=gnu11", "-Wall", "-Wextra",
                    "-Werror", "-fsyntax-only", "-I" + headerDir, source.toString()));
        }
    }

    @Test
    void structLayoutsMatchTheCCompiler() {
        List<String> mismatches = compareStructs(javaStructLayouts(), cReport);
        assertThat(mismatches)
                .as("struct layouts of the bindings vs gcc on %s; regenerate the bindings "
                        + "(jextract-config/regenerate.sh), and bump NSC_ABI_VERSION if the ABI changed",
                        headerDir)
                .isEmpty();
        assertThat(cReport.structs().keySet()).containsExactlyInAnyOrderElementsOf(javaStructLayouts().keySet());
    }

    @Test
    void constantsMatchTheCCompiler() {
        List<String> mismatches = compareConstants(javaIntConstants(), javaStringConstants(), cReport);
        assertThat(mismatches).as("constants of nativescope_h vs gcc on %s", headerDir).isEmpty();
        assertThat(cReport.intConstants()).containsKeys("NSC_OK", "NSC_CANCELED", "NSC_NO_DEADLINE");
        assertThat(cReport.stringConstants()).containsKey("NSC_TRACE_ID_KEY");
    }

    @Test
    void everyListedStatusIsAConstantOfTheBindingsWithItsValue() {
        assertThat(compareStatuses(statusRows, javaIntConstants()))
                .as("NSC_STATUS_LIST of %s vs the constants of nativescope_h and the names and descriptions "
                        + "of the shim in %s", headerDir, System.getProperty("nsc.test.native.dir"))
                .isEmpty();
        assertThat(statusRows).extracting(StatusRow::name)
                .as("statuses printed by the probe vs NSC_STATUS_LIST as the header scan reads it")
                .containsExactlyInAnyOrderElementsOf(statusListNames(headerText));
    }

    /** Names and descriptions identify a status; the state word's three values are fixed by the ABI. */
    @Test
    void statusListIsWellFormed() {
        assertThat(statusRows).extracting(StatusRow::name).doesNotHaveDuplicates().allMatch(n -> n.startsWith("NSC_"));
        assertThat(statusRows).extracting(StatusRow::value).doesNotHaveDuplicates();
        assertThat(statusRows).extracting(StatusRow::description).doesNotHaveDuplicates().noneMatch(String::isBlank);
        assertThat(statusRows).extracting(StatusRow::name, StatusRow::value)
                .startsWith(tuple("NSC_OK", 0), tuple("NSC_CANCELED", 1), tuple("NSC_DEADLINE_EXCEEDED", 2));
    }

    /** The status comparison must be able to fail: a renumbered, an unbound and a misnamed status are reported. */
    @Test
    void comparisonReportsAWrongStatus() {
        List<StatusRow> rows = new ArrayList<>(List.of(
                new StatusRow("NSC_OK", 0, "success", "NSC_OK", "success"),
                new StatusRow("NSC_CANCELED", 1, "cancelled", "NSC_CANCELED", "cancelled")));
        Map<String, Long> ints = new TreeMap<>(Map.of("NSC_OK", 0L, "NSC_CANCELED", 1L, "NSC_NO_DEADLINE", Long.MAX_VALUE));
        assertThat(compareStatuses(rows, ints)).isEmpty();

        ints.put("NSC_CANCELED", 7L);
        rows.set(0, new StatusRow("NSC_OK", 0, "success", "NSC_OKAY", "success!"));
        rows.add(new StatusRow("NSC_NEW", 9, "new", "NSC_UNKNOWN", "unknown status"));
        assertThat(compareStatuses(rows, ints)).containsExactlyInAnyOrder(
                "NSC_OK: nsc_status_name(0) is \"NSC_OKAY\"",
                "NSC_OK: nsc_strerror(0) is \"success!\" vs the list's \"success\"",
                "NSC_CANCELED: C value 1 vs Java 7",
                "NSC_NEW: no such constant in nativescope_h",
                "NSC_NEW: nsc_status_name(9) is \"NSC_UNKNOWN\"",
                "NSC_NEW: nsc_strerror(9) is \"unknown status\" vs the list's \"new\"");
    }

    @Test
    void everyStructOfTheHeaderHasABindingClass() {
        Set<String> headerStructs = headerStructNames(headerText);
        Set<String> dlpackStructs = headerStructNames(dlpackText);
        Set<String> bound = new TreeSet<>();
        STRUCT_CLASSES.forEach(c -> bound.add(c.getSimpleName()));
        Set<String> expected = new TreeSet<>(headerStructs);
        expected.removeAll(OPAQUE_STRUCTS);
        expected.addAll(dlpackStructs);
        expected.removeAll(UNBOUND_DLPACK_STRUCTS);
        assertThat(bound)
                .as("struct binding classes (STRUCT_CLASSES) vs structs defined in %s and %s "
                        + "(minus OPAQUE_STRUCTS and UNBOUND_DLPACK_STRUCTS)", publicHeaders, dlpackHeader)
                .containsExactlyInAnyOrderElementsOf(expected);
        for (String name : expected) {
            assertThat(classExists("dev.nativescope.bindings." + name))
                    .as("binding class for struct %s", name).isTrue();
        }
    }

    @Test
    void everyFunctionOfTheHeaderHasABinding() {
        Set<String> headerFunctions = headerFunctionNames(headerText);
        Set<String> bound = new TreeSet<>();
        for (Method m : nativescope_h.class.getDeclaredMethods()) {
            if (Modifier.isPublic(m.getModifiers()) && m.getName().endsWith("$handle")) {
                bound.add(m.getName().substring(0, m.getName().length() - "$handle".length()));
            }
        }
        assertThat(headerFunctions).as("NSC_API functions parsed from %s", publicHeaders)
                .contains("nsc_context_init", "nsc_predict_dense", "nsc_stats_get", "nsc_hold_segments");
        assertThat(bound)
                .as("functions bound in nativescope_h vs NSC_API functions of %s "
                        + "(static inline functions have no symbol and are not bound)", publicHeaders)
                .containsExactlyInAnyOrderElementsOf(headerFunctions);
    }

    @Test
    void everyConstantOfTheHeaderHasABinding() {
        Set<String> headerConstants = headerConstantNames(headerText);
        headerConstants.addAll(enumeratorNames(dlpackText));
        Set<String> bound = new TreeSet<>(javaIntConstants().keySet());
        bound.addAll(javaStringConstants().keySet());
        assertThat(bound)
                .as("constants exposed by nativescope_h vs NSC_ macros, enum values and NSC_STATUS_LIST of %s "
                        + "and enum values of %s (its macros are not bound: DLPACK_VERSION does not exist in "
                        + "DLPack 1.x)", publicHeaders, dlpackHeader)
                .containsExactlyInAnyOrderElementsOf(headerConstants);
    }

    /**
     * The DLPack side of the coverage checks scans the dlpack.h that gcc includes; the scan must
     * find what nativescope.h relies on, or the checks above would pass vacuously.
     */
    @Test
    void dlpackHeaderScanFindsTheDescriptorTypes() {
        assertThat(dlpackHeader.getFileName()).hasToString("dlpack.h");
        assertThat(headerStructNames(dlpackText)).contains("DLDataType", "DLDevice", "DLTensor", "DLManagedTensor");
        assertThat(enumeratorNames(dlpackText)).contains("kDLCPU", "kDLCUDA", "kDLInt", "kDLUInt", "kDLFloat", "kDLBfloat");
        assertThat(contractText).contains("#include <dlpack/dlpack.h>");
        assertThat(cReport.fields()).containsKeys("DLTensor.data", "DLTensor.device", "DLTensor.ndim", "DLTensor.dtype",
                "DLTensor.shape", "DLTensor.strides", "DLTensor.byte_offset", "DLDevice.device_type",
                "DLDevice.device_id", "DLDataType.code", "DLDataType.bits", "DLDataType.lanes");
        assertThat(cReport.intConstants()).containsEntry("kDLCPU", 1L).containsEntry("kDLFloat", 2L);
    }

    /**
     * The comparison must be able to fail: a copy of nsc_context with one field shifted by 8
     * bytes is compared with what a C compiler agreeing with the real bindings prints (the
     * probe output rendered from the real layouts, so this holds whatever the header says).
     */
    @Test
    void comparisonReportsAShiftedField() {
        Map<String, StructLayout> layouts = javaStructLayouts();
        CReport conforming = CReport.parse(conformingProbeOutput(layouts, javaIntConstants(), javaStringConstants()));
        assertThat(compareStructs(layouts, conforming)).isEmpty();

        StructLayout real = layouts.get("nsc_context");
        List<MemoryLayout> members = new ArrayList<>();
        for (MemoryLayout member : real.memberLayouts()) {
            if (member.name().equals(Optional.of("deadline_ns"))) {
                members.add(MemoryLayout.paddingLayout(8));
            }
            members.add(member);
        }
        StructLayout shifted = MemoryLayout.structLayout(members.toArray(MemoryLayout[]::new)).withName("nsc_context");
        layouts.put("nsc_context", shifted);

        List<String> mismatches = compareStructs(layouts, conforming);

        long deadline = real.byteOffset(groupElement("deadline_ns"));
        long reserved1 = real.byteOffset(groupElement("reserved1"));
        assertThat(mismatches)
                .contains("nsc_context.deadline_ns: C offset " + deadline + " vs Java " + (deadline + 8))
                .contains("nsc_context.reserved1: C offset " + reserved1 + " vs Java " + (reserved1 + 8))
                .contains("nsc_context: C size " + real.byteSize() + " vs Java " + shifted.byteSize())
                .noneMatch(m -> m.startsWith("nsc_context.abi_version:") || m.startsWith("nsc_context.state:")
                        || m.startsWith("nsc_kv"));
    }

    /** The comparison must be able to fail: a wrong constant, a resized and an unknown field are reported. */
    @Test
    void comparisonReportsAWrongConstantAndAnUnknownField() {
        CReport conforming = CReport.parse(
                conformingProbeOutput(javaStructLayouts(), javaIntConstants(), javaStringConstants()));
        Map<String, Long> ints = javaIntConstants();
        long canceled = ints.get("NSC_CANCELED");
        ints.put("NSC_CANCELED", canceled + 6);
        Map<String, String> strings = javaStringConstants();
        String traceKey = strings.get("NSC_TRACE_ID_KEY");
        strings.put("NSC_TRACE_ID_KEY", traceKey + "x");
        assertThat(compareConstants(ints, strings, conforming)).containsExactlyInAnyOrder(
                "NSC_CANCELED: C value " + canceled + " vs Java " + (canceled + 6),
                "NSC_TRACE_ID_KEY: C value \"" + traceKey + "\" vs Java \"" + traceKey + "x\"");

        Map<String, StructLayout> layouts = javaStructLayouts();
        StructLayout stats = layouts.get("nsc_stats");
        layouts.put("nsc_stats", MemoryLayout.structLayout(
                nativescope_h.C_LONG.withName("live_contexts"),
                nativescope_h.C_INT.withName("live_fds"),
                MemoryLayout.paddingLayout(4),
                nativescope_h.C_LONG.withName("live_threads")).withName("nsc_stats"));
        assertThat(compareStructs(layouts, conforming)).containsExactlyInAnyOrder(
                "nsc_stats: C size " + stats.byteSize() + " vs Java 24",
                "nsc_stats.live_fds: C size " + stats.select(groupElement("live_fds")).byteSize() + " vs Java 4",
                "nsc_stats.live_threads: no such field in the C output");
    }

    /** What the probe prints when the C compiler agrees with the given Java side. */
    static String conformingProbeOutput(Map<String, StructLayout> structs, Map<String, Long> ints,
                                        Map<String, String> strings) {
        StringBuilder out = new StringBuilder();
        structs.forEach((struct, layout) -> {
            out.append("struct ").append(struct).append(' ').append(layout.byteSize()).append(' ')
                    .append(layout.byteAlignment()).append('\n');
            for (MemoryLayout member : layout.memberLayouts()) {
                if (!(member instanceof PaddingLayout) && member.name().isPresent()) {
                    out.append("field ").append(struct).append('.').append(member.name().get()).append(' ')
                            .append(layout.byteOffset(groupElement(member.name().get()))).append(' ')
                            .append(member.byteSize()).append('\n');
                }
            }
        });
        ints.forEach((name, value) -> out.append("const ").append(name).append(' ').append(value).append('\n'));
        strings.forEach((name, value) -> out.append("string ").append(name).append(' ')
                .append(HexFormat.of().formatHex(value.getBytes(UTF_8))).append('\n'));
        return out.toString();
    }

    // ------------------------------------------------------------------ Java side

    /** Struct name to its layout, in STRUCT_CLASSES order; a fresh, mutable map. */
    static Map<String, StructLayout> javaStructLayouts() {
        Map<String, StructLayout> layouts = new LinkedHashMap<>();
        for (Class<?> c : STRUCT_CLASSES) {
            Object layout;
            try {
                layout = c.getMethod("layout").invoke(null);
            } catch (ReflectiveOperationException e) {
                throw new AssertionError(c.getName() + ".layout()", e);
            }
            assertThat(layout).as("%s.layout()", c.getSimpleName()).isInstanceOf(StructLayout.class);
            StructLayout struct = (StructLayout) layout;
            // A typedef of an anonymous struct (DLPack's DLTensor) has a layout named after its
            // source position ("$anon$137:9"); the C name is then the typedef, the class's name.
            assertThat(struct.name()).as("%s.layout().name()", c.getSimpleName())
                    .hasValueSatisfying(name -> assertThat(name.equals(c.getSimpleName()) || name.startsWith("$anon$"))
                            .as("layout name %s", name).isTrue());
            layouts.put(c.getSimpleName(), struct);
        }
        return layouts;
    }

    /** Public static no-arg int/long methods named NSC_* or kDL* of the header class; a fresh, mutable map. */
    static Map<String, Long> javaIntConstants() {
        Map<String, Long> constants = new TreeMap<>();
        for (Method m : constantMethods()) {
            Object value = invoke(m);
            if (m.getReturnType() == int.class) {
                constants.put(m.getName(), (long) (Integer) value);
            } else if (m.getReturnType() == long.class) {
                constants.put(m.getName(), (Long) value);
            }
        }
        return constants;
    }

    /** Public static no-arg MemorySegment methods named NSC_* (C string macros); a fresh, mutable map. */
    static Map<String, String> javaStringConstants() {
        Map<String, String> constants = new TreeMap<>();
        for (Method m : constantMethods()) {
            if (m.getReturnType() == MemorySegment.class) {
                constants.put(m.getName(), ((MemorySegment) invoke(m)).getString(0, UTF_8));
            }
        }
        return constants;
    }

    private static List<Method> constantMethods() {
        List<Method> methods = new ArrayList<>();
        for (Method m : nativescope_h.class.getDeclaredMethods()) {
            int mod = m.getModifiers();
            if (Modifier.isPublic(mod) && Modifier.isStatic(mod) && m.getParameterCount() == 0
                    && CONSTANT_PREFIXES.stream().anyMatch(m.getName()::startsWith)) {
                methods.add(m);
            }
        }
        return methods;
    }

    private static Object invoke(Method m) {
        try {
            return m.invoke(null);
        } catch (ReflectiveOperationException e) {
            throw new AssertionError("nativescope_h." + m.getName() + "()", e);
        }
    }

    private static boolean classExists(String name) {
        try {
            Class.forName(name, false, AbiConformanceTest.class.getClassLoader());
            return true;
        } catch (ClassNotFoundException e) {
            return false;
        }
    }

    // ------------------------------------------------------------------ comparison

    /** Every difference between the Java layouts and the C report, as "struct.field: C ... vs Java ...". */
    static List<String> compareStructs(Map<String, StructLayout> javaLayouts, CReport c) {
        List<String> mismatches = new ArrayList<>();
        for (Map.Entry<String, StructLayout> entry : javaLayouts.entrySet()) {
            String struct = entry.getKey();
            StructLayout layout = entry.getValue();
            long[] cStruct = c.structs().get(struct);
            if (cStruct == null) {
                mismatches.add(struct + ": no such struct in the C output");
                continue;
            }
            if (cStruct[0] != layout.byteSize()) {
                mismatches.add(struct + ": C size " + cStruct[0] + " vs Java " + layout.byteSize());
            }
            if (cStruct[1] != layout.byteAlignment()) {
                mismatches.add(struct + ": C alignment " + cStruct[1] + " vs Java " + layout.byteAlignment());
            }
            for (MemoryLayout member : layout.memberLayouts()) {
                if (member instanceof PaddingLayout || member.name().isEmpty()) {
                    continue;
                }
                String field = struct + "." + member.name().get();
                long[] cField = c.fields().get(field);
                if (cField == null) {
                    mismatches.add(field + ": no such field in the C output");
                    continue;
                }
                long javaOffset = layout.byteOffset(groupElement(member.name().get()));
                if (cField[0] != javaOffset) {
                    mismatches.add(field + ": C offset " + cField[0] + " vs Java " + javaOffset);
                }
                if (cField[1] != member.byteSize()) {
                    mismatches.add(field + ": C size " + cField[1] + " vs Java " + member.byteSize());
                }
            }
        }
        return mismatches;
    }

    static List<String> compareConstants(Map<String, Long> ints, Map<String, String> strings, CReport c) {
        List<String> mismatches = new ArrayList<>();
        ints.forEach((name, value) -> {
            Long cValue = c.intConstants().get(name);
            if (cValue == null) {
                mismatches.add(name + ": no such constant in the C output");
            } else if (!cValue.equals(value)) {
                mismatches.add(name + ": C value " + cValue + " vs Java " + value);
            }
        });
        strings.forEach((name, value) -> {
            String cValue = c.stringConstants().get(name);
            if (cValue == null) {
                mismatches.add(name + ": no such constant in the C output");
            } else if (!cValue.equals(value)) {
                mismatches.add(name + ": C value \"" + cValue + "\" vs Java \"" + value + "\"");
            }
        });
        return mismatches;
    }

    /** Every difference between the status list (with what the library says) and the Java constants. */
    static List<String> compareStatuses(List<StatusRow> rows, Map<String, Long> ints) {
        List<String> mismatches = new ArrayList<>();
        for (StatusRow row : rows) {
            Long javaValue = ints.get(row.name());
            if (javaValue == null) {
                mismatches.add(row.name() + ": no such constant in nativescope_h");
            } else if (javaValue != row.value()) {
                mismatches.add(row.name() + ": C value " + row.value() + " vs Java " + javaValue);
            }
            if (!row.libraryName().equals(row.name())) {
                mismatches.add(row.name() + ": nsc_status_name(" + row.value() + ") is \"" + row.libraryName() + "\"");
            }
            if (!row.libraryDescription().equals(row.description())) {
                mismatches.add(row.name() + ": nsc_strerror(" + row.value() + ") is \"" + row.libraryDescription()
                        + "\" vs the list's \"" + row.description() + "\"");
            }
        }
        return mismatches;
    }

    // ------------------------------------------------------------------ C side

    static String probeSource(List<String> headers, Map<String, StructLayout> structs, Map<String, Long> ints,
                              Map<String, String> strings) {
        StringBuilder c = new StringBuilder();
        c.append("/* Generated by AbiConformanceTest: the C compiler's view of the public headers. */\n");
        c.append("#include <stddef.h>\n#include <stdio.h>\n");
        headers.forEach(h -> c.append("#include \"").append(h).append("\"\n"));
        c.append('\n');
        c.append("static void print_string(const char *name, const char *s)\n{\n");
        c.append("    printf(\"string %s \", name);\n");
        c.append("    for (const unsigned char *p = (const unsigned char *) s; *p != 0; p++) {\n");
        c.append("        printf(\"%02x\", *p);\n    }\n    printf(\"\\n\");\n}\n\n");
        c.append("int main(void)\n{\n");
        structs.forEach((struct, layout) -> {
            c.append("    printf(\"struct %s %zu %zu\\n\", \"").append(struct).append("\", sizeof(")
                    .append(struct).append("), _Alignof(").append(struct).append("));\n");
            for (MemoryLayout member : layout.memberLayouts()) {
                if (member instanceof PaddingLayout || member.name().isEmpty()) {
                    continue;
                }
                String field = member.name().get();
                c.append("    printf(\"field %s.%s %zu %zu\\n\", \"").append(struct).append("\", \"").append(field)
                        .append("\", offsetof(").append(struct).append(", ").append(field)
                        .append("), sizeof(((").append(struct).append(" *) 0)->").append(field).append("));\n");
            }
        });
        ints.keySet().forEach(name -> c.append("    printf(\"const %s %lld\\n\", \"").append(name)
                .append("\", (long long) ").append(name).append(");\n"));
        strings.keySet().forEach(name -> c.append("    print_string(\"").append(name).append("\", ")
                .append(name).append(");\n"));
        c.append("    return 0;\n}\n");
        return c.toString();
    }

    /** What the probe printed. structs: {size, alignment}; fields ("struct.field"): {offset, size}. */
    record CReport(Map<String, long[]> structs, Map<String, long[]> fields,
                   Map<String, Long> intConstants, Map<String, String> stringConstants) {

        static CReport parse(String output) {
            Map<String, long[]> structs = new TreeMap<>();
            Map<String, long[]> fields = new TreeMap<>();
            Map<String, Long> ints = new TreeMap<>();
            Map<String, String> strings = new TreeMap<>();
            for (String line : output.split("\n")) {
                if (line.isBlank()) {
                    continue;
                }
                String[] p = line.split(" ", -1);
                switch (p[0]) {
                    case "struct" -> structs.put(p[1], new long[] {Long.parseLong(p[2]), Long.parseLong(p[3])});
                    case "field" -> fields.put(p[1], new long[] {Long.parseLong(p[2]), Long.parseLong(p[3])});
                    case "const" -> ints.put(p[1], Long.parseLong(p[2]));
                    case "string" -> strings.put(p[1], new String(HexFormat.of().parseHex(p[2]), UTF_8));
                    default -> throw new AssertionError("unexpected probe output line: " + line);
                }
            }
            return new CReport(structs, fields, ints, strings);
        }
    }

    /**
     * One line of {@code nsc_status_probe}: a status of NSC_STATUS_LIST (name, value, description) and
     * what the linked library's {@code nsc_status_name} and {@code nsc_strerror} return for its value.
     */
    record StatusRow(String name, int value, String description, String libraryName, String libraryDescription) {

        static List<StatusRow> parse(String output) {
            List<StatusRow> rows = new ArrayList<>();
            for (String line : output.split("\n")) {
                if (line.isEmpty()) {
                    continue;
                }
                String[] p = line.split("\t", -1);
                if (p.length != 5) {
                    throw new AssertionError("unexpected status probe line: " + line);
                }
                rows.add(new StatusRow(p[0], Integer.parseInt(p[1]), p[2], p[3], p[4]));
            }
            return rows;
        }
    }

    /** Runs a command with a timeout; returns its stdout; fails with its output if it fails. */
    private static String run(Path log, List<String> command) throws IOException, InterruptedException {
        Path err = Path.of(log + ".err");
        Process process = new ProcessBuilder(command)
                .directory(workDir.toFile())
                .redirectOutput(log.toFile())
                .redirectError(err.toFile())
                .start();
        if (!process.waitFor(PROCESS_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            fail("timed out after %d s: %s", PROCESS_TIMEOUT_SECONDS, String.join(" ", command));
        }
        String out = Files.readString(log, UTF_8);
        if (process.exitValue() != 0) {
            fail("exit status %d of: %s%n%s%s", process.exitValue(), String.join(" ", command), out,
                    Files.readString(err, UTF_8));
        }
        return out;
    }

    // ------------------------------------------------------------------ header scanning

    private static final Pattern COMMENTS = Pattern.compile("/\\*.*?\\*/|//[^\\n]*", Pattern.DOTALL);
    // struct definitions: "struct tag {" (named) or "typedef struct { ... } name;" (anonymous)
    private static final Pattern NAMED_STRUCT = Pattern.compile("\\bstruct\\s+(\\w+)\\s*\\{");
    private static final Pattern ANONYMOUS_STRUCT =
            Pattern.compile("\\btypedef\\s+struct\\s*\\{[^}]*\\}\\s*(\\w+)\\s*;");
    // opaque typedefs: "typedef struct tag name;"
    private static final Pattern INCOMPLETE_STRUCT = Pattern.compile("\\btypedef\\s+struct\\s+(\\w++)\\s+\\w+\\s*;");
    private static final Pattern FUNCTION = Pattern.compile("^\\s*NSC_API\\b[^;{]*?\\b(\\w+)\\s*\\(", Pattern.MULTILINE);
    private static final Pattern DEFINE =
            Pattern.compile("^\\s*#\\s*define\\s+(NSC_\\w+)(\\(?)[ \\t]*([^\\n]*)$", Pattern.MULTILINE);
    private static final Pattern ENUM_BODY = Pattern.compile("\\benum\\b\\s*\\w*\\s*\\{([^}]*)\\}");
    // an enumerator, or a macro that expands to enumerators (group 2 non-empty: an X-macro list)
    private static final Pattern ENUMERATOR = Pattern.compile("(?:^|,)\\s*(\\w+)\\s*(\\(?)");
    // the body of "#define NSC_STATUS_LIST(X)", continuation lines included, and its X(name, ...) entries
    private static final Pattern STATUS_LIST =
            Pattern.compile("^\\s*#\\s*define\\s+NSC_STATUS_LIST\\(\\s*(\\w+)\\s*\\)((?:[^\\n]*\\\\\\n)*[^\\n]*)",
                    Pattern.MULTILINE);

    private static final Pattern INCLUDE = Pattern.compile("^\\s*#\\s*include\\s*[<\"]([^>\"]+)[>\"]", Pattern.MULTILINE);

    static Path umbrellaHeader() {
        return Path.of(System.getProperty("nsc.bindings.header",
                Path.of("..", "jextract-config", "nativescope_bindings.h").toString())).toAbsolutePath().normalize();
    }

    /** The headers an umbrella header includes, in its order. */
    static List<String> umbrellaIncludes(String umbrella) {
        List<String> names = new ArrayList<>();
        Matcher m = INCLUDE.matcher(stripComments(umbrella));
        while (m.find()) {
            names.add(m.group(1));
        }
        return names;
    }

    /** The .h files of a directory, but INTERNAL_HEADERS. */
    static Set<String> headerFileNames(Path dir) throws IOException {
        Set<String> names = new TreeSet<>();
        try (var files = Files.list(dir)) {
            files.map(f -> f.getFileName().toString())
                    .filter(n -> n.endsWith(".h") && !INTERNAL_HEADERS.contains(n))
                    .forEach(names::add);
        }
        return names;
    }

    /** {@link #headerFileNames(Path)} without the {@link #UNBOUND_HEADERS}: what the bindings must cover. */
    static Set<String> boundHeaderFileNames(Path dir) throws IOException {
        Set<String> names = headerFileNames(dir);
        names.removeAll(UNBOUND_HEADERS);
        return names;
    }

    static String stripComments(String text) {
        return COMMENTS.matcher(text).replaceAll(" ");
    }

    /** Names of the structs the header defines with a body, plus the opaque ones it typedefs. */
    static Set<String> headerStructNames(String header) {
        String text = stripComments(header);
        Set<String> names = new TreeSet<>();
        Matcher m = NAMED_STRUCT.matcher(text);
        while (m.find()) {
            names.add(m.group(1));
        }
        m = ANONYMOUS_STRUCT.matcher(text);
        while (m.find()) {
            names.add(m.group(1));
        }
        m = INCOMPLETE_STRUCT.matcher(text);
        while (m.find()) {
            names.add(m.group(1));
        }
        return names;
    }

    /** Functions declared with NSC_API (static inline ones have no symbol and are not included). */
    static Set<String> headerFunctionNames(String header) {
        String text = stripComments(header);
        Set<String> names = new TreeSet<>();
        Matcher m = FUNCTION.matcher(text);
        while (m.find()) {
            names.add(m.group(1));
        }
        return names;
    }

    /** Object-like NSC_* macros with a value (not NSC_API) and the enumerators of every enum. */
    static Set<String> headerConstantNames(String header) {
        String text = stripComments(header);
        Set<String> names = new TreeSet<>();
        Matcher m = DEFINE.matcher(text);
        while (m.find()) {
            boolean functionLike = !m.group(2).isEmpty();
            String value = m.group(3).trim();
            if (!functionLike && !value.isEmpty() && !value.startsWith("__attribute__")) {
                names.add(m.group(1));
            }
        }
        names.addAll(enumeratorNames(header));
        names.addAll(statusListNames(header));
        return names;
    }

    /** The names of the X-macro NSC_STATUS_LIST, in the list's order (empty if the header has none). */
    static List<String> statusListNames(String header) {
        String text = stripComments(header);
        List<String> names = new ArrayList<>();
        Matcher m = STATUS_LIST.matcher(text);
        if (m.find()) {
            Matcher entry = Pattern.compile("\\b" + Pattern.quote(m.group(1)) + "\\s*\\(\\s*(\\w+)\\s*,").matcher(m.group(2));
            while (entry.find()) {
                names.add(entry.group(1));
            }
        }
        return names;
    }

    /** The enumerators written out in every enum of a header (an X-macro list is {@link #statusListNames}'). */
    static Set<String> enumeratorNames(String header) {
        String text = stripComments(header);
        Set<String> names = new TreeSet<>();
        Matcher m = ENUM_BODY.matcher(text);
        while (m.find()) {
            Matcher e = ENUMERATOR.matcher(m.group(1).replaceAll("=[^,]*", ""));
            while (e.find()) {
                if (e.group(2).isEmpty()) {
                    names.add(e.group(1));
                }
            }
        }
        return names;
    }

    /** The dlpack.h named in gcc -M output (make dependency syntax: paths separated by blanks and escaped newlines). */
    static Path dlpackHeaderOf(String dependencies) {
        for (String token : dependencies.replace("\\\n", " ").split("\\s+")) {
            if (token.endsWith("/dlpack/dlpack.h")) {
                return Path.of(token).toAbsolutePath().normalize();
            }
        }
        throw new AssertionError("gcc -M on the probe names no dlpack/dlpack.h (install libdlpack-dev):\n" + dependencies);
    }
}
