package dev.nativescope.library;

import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.childjvm.ChildJvm;
import dev.nativescope.childjvm.NativeAccessProbe;

import java.io.IOException;
import java.lang.module.ModuleFinder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class LibraryLoaderTest {
    @TempDir
    Path tmp;

    @Test
    void loadsTheBundledLibraryAndLeavesNoFileBehind() {
        NativeLibrary.load();
        assertThat(NativeLibrary.abiVersion()).isEqualTo(nativescope_h.NSC_ABI_VERSION());
        // Extracted into a private temp directory and deleted once mapped.
        assertThat(NativeLibrary.path()).doesNotExist();
        assertThat(NativeLibrary.path().getParent()).doesNotExist();
        // On Linux System.nanoTime() is CLOCK_MONOTONIC: no conversion.
        assertThat(NativeLibrary.toMonotonicNanos(12345L)).isEqualTo(12345L);
        long nano = System.nanoTime();
        long monotonic = nativescope_h.nsc_monotonic_ns();
        assertThat(Math.abs(monotonic - nano)).isLessThan(TimeUnit.SECONDS.toNanos(1));
    }

    @Test
    void missingLibraryFileNamesThePropertyAndTheFix() {
        String previous = System.getProperty(LibraryLoader.LIBRARY_PATH_PROPERTY);
        System.setProperty(LibraryLoader.LIBRARY_PATH_PROPERTY, tmp.resolve("nope/libnativescope.so").toString());
        try {
            assertThatThrownBy(() -> LibraryLoader.loadConfigured(1))
                    .isInstanceOf(NativeLibraryException.class)
                    .hasMessageContaining("-Dnativescope.library.path=")
                    .hasMessageContaining("does not name a readable file")
                    .hasMessageContaining("remove the property to use the library bundled in the native-shim jar");
        } finally {
            restore(LibraryLoader.LIBRARY_PATH_PROPERTY, previous);
        }
    }

    @Test
    void wrongAbiVersionNamesBothVersionsAndTheFix() throws Exception {
        Path lib = compile("wrong-abi", """
                #include <stdint.h>
                #include <time.h>
                __attribute__((visibility("default"))) int nsc_abi_version(void) { return 999; }
                __attribute__((visibility("default"))) int64_t nsc_monotonic_ns(void) {
                    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
                    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
                }
                """);
        assertThatThrownBy(() -> LibraryLoader.open(lib, 1, false))
                .isInstanceOf(NativeLibraryException.class)
                .hasMessageContaining("has native ABI version 999 but this nativescope needs ABI version 1")
                .hasMessageContaining("use the native-shim jar of the same nativescope release as core");
    }

    @Test
    void libraryWithoutTheAbiSymbolIsRejected() throws Exception {
        Path lib = compile("not-nativescope", "int something_else(void) { return 1; }\n");
        assertThatThrownBy(() -> LibraryLoader.open(lib, 1, false))
                .isInstanceOf(NativeLibraryException.class)
                .hasMessageContaining("does not export nsc_abi_version")
                .hasMessageContaining("not a libnativescope.so");
    }

    @Test
    void fileThatIsNotASharedLibraryIsRejected() throws Exception {
        Path garbage = Files.writeString(tmp.resolve("libnativescope.so"), "this is not an ELF file");
        assertThatThrownBy(() -> LibraryLoader.open(garbage, 1, false))
                .isInstanceOf(NativeLibraryException.class)
                .hasMessageContaining("cannot open " + garbage + " as a shared library");
    }

    @Test
    void deniedNativeAccessOnTheClassPathNamesAllUnnamed() throws Exception {
        ChildJvm.Result result = ChildJvm.run(List.of(denyNativeAccessFlag()), List.of(),
                NativeAccessProbe.class.getName());
        assertThat(result.output())
                .contains("PROBE-FAILED")
                .contains("run java with --enable-native-access=ALL-UNNAMED")
                .contains("Enable-Native-Access: ALL-UNNAMED");
    }

    @Test
    void deniedNativeAccessOnTheModulePathNamesTheModules() throws Exception {
        List<String> modulePath = nativescopeModules();
        assertThat(modulePath).hasSize(3); // native-shim, bindings, core
        ChildJvm.Result result = ChildJvm.run(
                List.of(denyNativeAccessFlag(), "--module-path", String.join(":", modulePath),
                        "--add-modules", "dev.nativescope.core"),
                modulePath, NativeAccessProbe.class.getName());
        assertThat(result.output())
                .contains("PROBE-FAILED")
                .contains("run java with --enable-native-access=dev.nativescope.core,dev.nativescope.bindings");
    }

    @Test
    void grantedNativeAccessOnTheModulePathLoads() throws Exception {
        List<String> modulePath = nativescopeModules();
        ChildJvm.Result result = ChildJvm.run(
                List.of("--enable-native-access=dev.nativescope.core,dev.nativescope.bindings",
                        "--module-path", String.join(":", modulePath), "--add-modules", "dev.nativescope.core"),
                modulePath, NativeAccessProbe.class.getName());
        assertThat(result.output()).contains("PROBE-LOADED abi=" + nativescope_h.NSC_ABI_VERSION());
        assertThat(result.exitCode()).isZero();
    }

    /** @return the class path entries (jars or class directories) that hold our named modules */
    private static List<String> nativescopeModules() {
        return ChildJvm.classPathEntries().stream()
                .filter(entry -> ModuleFinder.of(Path.of(entry)).findAll().stream()
                        .anyMatch(module -> !module.descriptor().isAutomatic()
                                && module.descriptor().name().startsWith("dev.nativescope.")))
                .toList();
    }

    /** JDK 24 made "warn" the default for code without native access; "deny" turns it into an error. */
    private static String denyNativeAccessFlag() {
        return Runtime.version().feature() >= 24
                ? "--illegal-native-access=deny"
                : "--enable-native-access=java.base";
    }

    private Path compile(String name, String source) throws IOException, InterruptedException {
        Path c = Files.writeString(tmp.resolve(name + ".c"), source);
        Path so = tmp.resolve("lib" + name + ".so");
        Process gcc = new ProcessBuilder("gcc", "-shared", "-fPIC", "-o", so.toString(), c.toString())
                .redirectErrorStream(true).start();
        String output = new String(gcc.getInputStream().readAllBytes());
        assertThat(gcc.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(gcc.exitValue()).as("gcc output: %s", output).isZero();
        return so;
    }

    private static void restore(String key, String previous) {
        if (previous == null) {
            System.clearProperty(key);
        } else {
            System.setProperty(key, previous);
        }
    }
}
