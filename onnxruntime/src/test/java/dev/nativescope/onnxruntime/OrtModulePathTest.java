package dev.nativescope.onnxruntime;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.File;
import java.lang.module.ModuleFinder;
import java.lang.module.ModuleReference;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The module descriptor works with ONNX Runtime as the automatic module
 * {@code com.microsoft.onnxruntime}: a child JVM with nativescope's modules and ORT's jar on the
 * module path resolves {@code dev.nativescope.onnxruntime} and runs a model: without native access
 * for that module (ORT's JNI run) and with it (ORT's C run by a downcall, {@link OrtDirectRun}).
 */
class OrtModulePathTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"dev.nativescope.core,dev.nativescope.bindings",
            "dev.nativescope.core,dev.nativescope.bindings,dev.nativescope.onnxruntime"})
    void runsAModelFromTheModulePath(String nativeAccess) throws Exception {
        Path model = OrtModels.mlp(dir);
        List<String> modulePath = new ArrayList<>();
        List<String> classPath = new ArrayList<>();
        for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
            Optional<String> module = ModuleFinder.of(Path.of(entry)).findAll().stream().findFirst()
                    .map(ModuleReference::descriptor).map(descriptor -> descriptor.name());
            boolean ours = module.isPresent() && module.get().startsWith("dev.nativescope.")
                    && !entry.contains("test-classes");
            if (ours || module.filter("com.microsoft.onnxruntime"::equals).isPresent()) {
                modulePath.add(entry);
            } else {
                classPath.add(entry);
            }
        }
        assertThat(modulePath).as("module path").hasSize(5); // native-shim, bindings, core, onnxruntime, ORT
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process process = new ProcessBuilder(java.toString(),
                "--enable-native-access=" + nativeAccess,
                "--module-path", String.join(File.pathSeparator, modulePath),
                "--add-modules", "dev.nativescope.onnxruntime",
                "-cp", String.join(File.pathSeparator, classPath),
                dev.nativescope.onnxruntime.probe.OrtModulePathProbe.class.getName(), model.toString())
                .redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(process.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(process.exitValue()).as(output).isZero();
        // Without native access the direct run is not tried, so the JDK warns of no restricted call of ours
        // (ORT's own System.load is warned about: ORT's module is not given native access here).
        assertThat(output).doesNotContain("called by dev.nativescope.onnxruntime");
        assertThat(output).contains("PROBE-MODULES dev.nativescope.onnxruntime com.microsoft.onnxruntime dev.nativescope.core");
        String actual = output.lines().filter(line -> line.startsWith("PROBE-OUTPUT ")).findFirst().orElseThrow();
        float[] x = new float[OrtModels.MLP_BATCH * OrtModels.MLP_IN];
        Arrays.fill(x, 0.5f);
        float[] want = ReferenceMlp.expected(x);
        float[] got = parse(actual.substring("PROBE-OUTPUT ".length()));
        OrtPredictorTest.assertOutput(got, want);
        String allocated = output.lines().filter(line -> line.startsWith("PROBE-ALLOCATED ")).findFirst().orElseThrow();
        assertThat(allocated.substring("PROBE-ALLOCATED ".length())).isEqualTo(actual.substring("PROBE-OUTPUT ".length()));
    }

    private static float[] parse(String list) {
        String[] parts = list.substring(1, list.length() - 1).split(", ");
        float[] values = new float[parts.length];
        for (int i = 0; i < parts.length; i++) {
            values[i] = Float.parseFloat(parts[i]);
        }
        return values;
    }
}
