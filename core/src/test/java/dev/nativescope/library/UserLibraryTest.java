package dev.nativescope.library;

import dev.nativescope.childjvm.ChildJvm;

import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** {@link UserLibrary}: a library linked with -lnativescope loads from a jar after the shim; each failure says why. */
class UserLibraryTest {
    private static final String SHIM_DIR = System.getProperty("nsc.test.native.dir");
    private static final String USES_SHIM = """
            extern int nsc_abi_version(void);
            __attribute__((visibility("default"))) int user_library_test_abi(void) { return nsc_abi_version() + 1000; }
            """;

    @TempDir
    Path tmp;

    @Test
    void loadsFromTheAnchorsClassPathAfterTheShimAndLeavesNoFileBehind() throws Throwable {
        Path lib = compile("user_library_test", USES_SHIM, true);
        // On the test class path, as a user's jar would hold it under src/main/resources.
        Path classes = Path.of(UserLibraryTest.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        String resource = "META-INF/native/linux-x86_64/libuser_library_test.so";
        Path inJar = classes.resolve(resource);
        Files.createDirectories(inJar.getParent());
        Files.copy(lib, inJar, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        try {
            Path loaded = UserLibrary.load(UserLibraryTest.class, resource);
            assertThat(loaded).doesNotExist();
            assertThat(loaded.getParent()).doesNotExist();
            assertThat(UserLibrary.load(UserLibraryTest.class, "/" + resource)).as("loaded once").isEqualTo(loaded);
            // System.load registered it with this class loader: what jextract bindings look symbols up in.
            MethodHandle abi = Linker.nativeLinker().downcallHandle(
                    SymbolLookup.loaderLookup().find("user_library_test_abi").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT));
            assertThat((int) abi.invokeExact()).isEqualTo(NativeLibrary.abiVersion() + 1000);
        } finally {
            Files.deleteIfExists(inJar);
        }
    }

    @Test
    void loadsAFileAndKeepsIt() throws Exception {
        Path lib = compile("user_library_file", USES_SHIM.replace("user_library_test_abi", "user_library_file_abi"), true);
        assertThat(UserLibrary.load(lib)).isEqualTo(lib.toAbsolutePath());
        assertThat(lib).exists();
        assertThat(SymbolLookup.loaderLookup().find("user_library_file_abi")).isPresent();
    }

    @Test
    void missingResourceSaysWhereItWasLookedFor() {
        assertThatThrownBy(() -> UserLibrary.load(UserLibraryTest.class, "META-INF/native/linux-x86_64/libnot_there.so"))
                .isInstanceOf(NativeLibraryException.class)
                .hasMessageContaining("META-INF/native/linux-x86_64/libnot_there.so is not in the class path of "
                        + UserLibraryTest.class.getName())
                .hasMessageContaining("src/main/resources/");
    }

    @Test
    void missingFileIsNamed() {
        Path missing = tmp.resolve("libmissing.so");
        assertThatThrownBy(() -> UserLibrary.load(missing))
                .isInstanceOf(NativeLibraryException.class)
                .hasMessageContaining(missing + " does not exist or is not a regular file");
    }

    @Test
    void fileThatIsNotElfIsRejectedBeforeDlopen() throws IOException {
        Path text = Files.writeString(tmp.resolve("libtext.so"), "version https://git-lfs.github.com/spec/v1\n");
        assertThatThrownBy(() -> UserLibrary.load(text))
                .isInstanceOf(NativeLibraryException.class)
                .hasMessageContaining("is not an ELF shared library")
                .hasMessageContaining("Git LFS pointer");
    }

    @Test
    void libraryForAnotherArchitectureNamesIt() throws Exception {
        Path lib = compile("user_library_arm", "int f(void) { return 1; }\n", false);
        byte[] bytes = Files.readAllBytes(lib);
        bytes[18] = (byte) 183; // e_machine = EM_AARCH64
        bytes[19] = 0;
        Path arm = Files.write(tmp.resolve("libarm.so"), bytes);
        assertThatThrownBy(() -> UserLibrary.load(arm))
                .isInstanceOf(NativeLibraryException.class)
                .hasMessageContaining("is built for AArch64, 64-bit little-endian")
                .hasMessageContaining("build it for x86-64");
    }

    @Test
    void unresolvedSymbolIsReportedAtLoadNotAtTheFirstCall() throws Exception {
        // Linked without -lnativescope and without --no-undefined: lazy binding would load it and crash later.
        Path lib = compile("user_library_unlinked", """
                extern int nsc_symbol_nobody_defines(void);
                __attribute__((visibility("default"))) int unlinked(void) { return nsc_symbol_nobody_defines(); }
                """, false);
        assertThatThrownBy(() -> UserLibrary.load(lib))
                .isInstanceOf(NativeLibraryException.class)
                .hasMessageContaining("undefined symbol: nsc_symbol_nobody_defines")
                .hasMessageContaining("link the library with -lnativescope");
    }

    @Test
    void wrongLoadOrderIsExplainedInAFreshJvm() throws Exception {
        Path lib = compile("user_library_order", USES_SHIM, true);
        ChildJvm.Result result = ChildJvm.run(List.of("--enable-native-access=ALL-UNNAMED"), List.of(),
                UserLibraryOrderProbe.class.getName(), lib.toString());
        assertThat(result.output())
                .contains("PROBE-FAILED")
                .contains("libnativescope.so: cannot open shared object file")
                .contains("the load order is wrong")
                .contains("UserLibrary.load");
    }

    private Path compile(String name, String source, boolean linkShim) throws IOException, InterruptedException {
        Path c = Files.writeString(tmp.resolve(name + ".c"), source);
        Path so = tmp.resolve("lib" + name + ".so");
        List<String> command = new ArrayList<>(List.of("gcc", "-shared", "-fPIC", "-o", so.toString(), c.toString()));
        if (linkShim) {
            command.addAll(List.of("-Wl,--no-undefined", "-L" + SHIM_DIR, "-lnativescope"));
        }
        Process gcc = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(gcc.getInputStream().readAllBytes());
        assertThat(gcc.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(gcc.exitValue()).as("gcc output: %s", output).isZero();
        return so;
    }

}
