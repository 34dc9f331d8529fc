package dev.nativescope.library;

import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.childjvm.ChildJvm;
import dev.nativescope.childjvm.FirstNativeUseProbe;
import dev.nativescope.tensor.DLPack;

import java.lang.module.ModuleFinder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Whichever class a program touches first, a JVM that denies native access gets the {@link NativeLibraryException}
 * that names the flag to add (class path: ALL-UNNAMED; module path: the modules), never a raw
 * {@code ExceptionInInitializerError} or {@code IllegalCallerException}; and with access granted, the first use
 * loads the library before any binding class initialises, so the bindings work after it. Each case is a fresh
 * child JVM running {@link FirstNativeUseProbe}. (The bindings' header class itself is jextract output: touched
 * first, under a denial, it fails in its own initialiser; {@link NativeLibrary#load()} then still names the flag.)
 */
class NativeAccessEverywhereTest {
    private static final String CLASS_PATH_FLAG = "--enable-native-access=ALL-UNNAMED";
    private static final String MODULE_PATH_FLAG = "--enable-native-access=dev.nativescope.core,dev.nativescope.bindings";

    @ParameterizedTest
    @ValueSource(strings = {"Npy", "SafeTensors", "MappedFile", "DLPack", "NativeCall", "ReferencePredictors", "EventFd", "NativeLibrary"})
    void deniedOnTheClassPathNamesAllUnnamed(String firstUse) throws Exception {
        ChildJvm.Result result = ChildJvm.run(List.of(denyNativeAccessFlag()), List.of(),
                FirstNativeUseProbe.class.getName(), firstUse);
        assertThat(result.output())
                .contains("PROBE-FAILED " + NativeLibraryException.class.getName())
                .contains("run java with " + CLASS_PATH_FLAG)
                .doesNotContain("ExceptionInInitializerError");
    }

    @ParameterizedTest
    @ValueSource(strings = {"Npy", "SafeTensors", "MappedFile", "DLPack", "NativeCall", "ReferencePredictors", "EventFd", "NativeLibrary"})
    void deniedOnTheModulePathNamesTheModules(String firstUse) throws Exception {
        ChildJvm.Result result = onModulePath(List.of(denyNativeAccessFlag()), firstUse);
        assertThat(result.output())
                .contains("PROBE-FAILED " + NativeLibraryException.class.getName())
                .contains("run java with " + MODULE_PATH_FLAG + " (add your own module too")
                .doesNotContain("ExceptionInInitializerError");
    }

    @ParameterizedTest
    @ValueSource(strings = {"Npy", "SafeTensors", "MappedFile", "DLPack", "NativeCall", "EventFd"})
    void theFirstUseLoadsTheLibraryBeforeAnyBindingInitialises(String firstUse) throws Exception {
        ChildJvm.Result classPath = ChildJvm.run(List.of(CLASS_PATH_FLAG), List.of(),
                FirstNativeUseProbe.class.getName(), firstUse, "then-bind");
        assertThat(classPath.output()).contains("PROBE-OK").contains("PROBE-THEN abi=" + nativescope_h.NSC_ABI_VERSION());
        ChildJvm.Result modulePath = onModulePath(List.of(MODULE_PATH_FLAG), firstUse, "then-bind");
        assertThat(modulePath.output()).contains("PROBE-OK").contains("PROBE-THEN abi=" + nativescope_h.NSC_ABI_VERSION());
    }

    @Test
    void theLoaderStillNamesTheFlagAfterTheBindingsFailedFirst() throws Exception {
        // nativescope_h touched first fails in its own (generated) initialiser; the loader afterwards says why.
        ChildJvm.Result load = ChildJvm.run(List.of(denyNativeAccessFlag()), List.of(),
                FirstNativeUseProbe.class.getName(), "nativescope_h-then-NativeLibrary");
        assertThat(load.output())
                .contains("PROBE-FAILED " + NativeLibraryException.class.getName())
                .contains("run java with " + CLASS_PATH_FLAG);
    }

    @Test
    void dlpackMaxNdimIsTheHeaders() {
        assertThat(DLPack.MAX_NDIM).isEqualTo(nativescope_h.NSC_DL_MAX_NDIM());
    }

    private static ChildJvm.Result onModulePath(List<String> flags, String... args) throws Exception {
        List<String> modulePath = ChildJvm.classPathEntries().stream()
                .filter(entry -> ModuleFinder.of(Path.of(entry)).findAll().stream()
                        .anyMatch(module -> !module.descriptor().isAutomatic()
                                && module.descriptor().name().startsWith("dev.nativescope.")))
                .toList();
        assertThat(modulePath).hasSize(3); // native-shim, bindings, core
        List<String> options = new ArrayList<>(flags);
        options.addAll(List.of("--module-path", String.join(":", modulePath), "--add-modules", "dev.nativescope.core"));
        return ChildJvm.run(options, modulePath, FirstNativeUseProbe.class.getName(), args);
    }

    /** JDK 24 made "warn" the default for code without native access; "deny" turns it into an error. */
    private static String denyNativeAccessFlag() {
        return Runtime.version().feature() >= 24
                ? "--illegal-native-access=deny"
                : "--enable-native-access=java.base";
    }
}
