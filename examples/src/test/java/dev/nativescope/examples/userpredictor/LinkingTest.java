package dev.nativescope.examples.userpredictor;

import dev.nativescope.library.NativeLibrary;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The linking rules of docs/predictor-sdk.md, checked in child JVMs (a wrong way kills the
 * process): a library linked with {@code -lnativescope} loads and calls the shim once
 * {@code NativeLibrary.load()} has run, fails to load before it, and a library that leaves the
 * shim's symbols unresolved instead of depending on it dies at its first call, because the JVM
 * opens libraries {@code RTLD_LOCAL}.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class LinkingTest {
    private static final Path SDK = Path.of("target/nativescope-sdk/META-INF/native");
    private static final String SOURCE = """
            #include <nativescope.h>
            __attribute__((visibility("default"))) int probe_abi(void) { return nsc_abi_version(); }
            """;

    @TempDir
    static Path dir;
    private static Path linked;
    private static Path unlinked;

    @BeforeAll
    static void buildProbes() throws Exception {
        Path source = dir.resolve("probe.c");
        Files.writeString(source, SOURCE);
        linked = dir.resolve("libprobe_linked.so");
        unlinked = dir.resolve("libprobe_unlinked.so");
        run(List.of("gcc", "-std=gnu11", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror",
                "-I" + SDK.resolve("include"), "-Wl,--no-undefined", "-o", linked.toString(), source.toString(),
                "-L" + SDK.resolve("linux-x86_64"), "-lnativescope"));
        run(List.of("gcc", "-std=gnu11", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror",
                "-I" + SDK.resolve("include"), "-Wl,--unresolved-symbols=ignore-all", "-o", unlinked.toString(),
                source.toString()));
    }

    @Test
    void linkedAgainstTheShimAndLoadedAfterItCallsIt() throws Exception {
        Result result = probe("shim-first", linked);
        assertThat(result.exitCode()).as(result.output()).isZero();
        assertThat(result.output()).contains("probe_abi=" + nativeAbiVersion());
    }

    @Test
    void linkedAgainstTheShimButLoadedBeforeItDoesNotLoad() throws Exception {
        Result result = probe("probe-first", linked);
        assertThat(result.exitCode()).as(result.output()).isZero();
        assertThat(result.output()).contains("UnsatisfiedLinkError").contains("libnativescope.so")
                .doesNotContain("probe_abi=");
    }

    @Test
    void unresolvedShimSymbolsKillTheProcessAtTheFirstCall() throws Exception {
        Result result = probe("shim-first", unlinked);
        assertThat(result.output()).contains("loaded").contains("symbol lookup error")
                .contains("undefined symbol: nsc_abi_version").doesNotContain("probe_abi=");
        assertThat(result.exitCode()).isNotZero();
    }

    private static int nativeAbiVersion() {
        NativeLibrary.load();
        return NativeLibrary.abiVersion();
    }

    private record Result(int exitCode, String output) {
    }

    private static Result probe(String order, Path library) throws Exception {
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        List<String> command = new ArrayList<>(List.of(java.toString(), "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), Probe.class.getName(), order, library.toString()));
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
        // Only the load order may decide whether libnativescope.so is found (it is not installed
        // system-wide; a search path pointing at a copy would hide a wrong order).
        builder.environment().remove("LD_LIBRARY_PATH");
        Process process = builder.start();
        String output = new String(process.getInputStream().readAllBytes());
        assertThat(process.waitFor(50, TimeUnit.SECONDS)).as("probe JVM ended").isTrue();
        return new Result(process.exitValue(), output);
    }

    private static void run(List<String> command) throws IOException, InterruptedException {
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes());
        assertThat(process.waitFor()).as("%s: %s", command, output).isZero();
    }

    /** The child JVM: loads the shim and the probe library in the given order, then calls probe_abi. */
    public static final class Probe {
        public static void main(String[] args) throws Throwable {
            Path library = Path.of(args[1]);
            try {
                if (args[0].equals("shim-first")) {
                    NativeLibrary.load();
                    System.load(library.toString());
                } else {
                    System.load(library.toString());
                    NativeLibrary.load();
                }
            } catch (UnsatisfiedLinkError e) {
                System.out.println("UnsatisfiedLinkError: " + e.getMessage());
                return;
            }
            System.out.println("loaded");
            System.out.flush();
            MemorySegment symbol = SymbolLookup.loaderLookup().find("probe_abi").orElseThrow();
            int abi = (int) Linker.nativeLinker().downcallHandle(symbol, FunctionDescriptor.of(ValueLayout.JAVA_INT))
                    .invokeExact();
            System.out.println("probe_abi=" + abi);
        }
    }
}
