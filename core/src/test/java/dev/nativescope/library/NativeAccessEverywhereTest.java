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
 * child JVM running {@link FirstNativeUseProbe}. The bindings are jextract output with a load hook woven in by
 * their build: a binding called first loads the library, and under a denial its header class fails in its own
 * initialiser with the message that names the flag, on each use; {@link NativeLibrary#load()} then still names it.
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

    /**
     * The last four are bindings called first, with no NativeLibrary.load(): the load hook woven into jextract's
     * nativescope_h by the bindings' build loads the library, also for a function the core links as it loads (whose
     * holder then initialises on this thread while the load runs), and while another thread loads. Main failed
     * those: UnsatisfiedLinkError, then NoClassDefFoundError for the life of the JVM.
     */
    @ParameterizedTest
    @ValueSource(strings = {"Npy", "SafeTensors", "MappedFile", "DLPack", "NativeCall", "EventFd",
            "nativescope_h", "nativescope_h.nsc_monotonic_ns", "nativescope_h.nsc_context_init-then-NativeCall",
            "nativescope_h.nsc_context_init-racing-NativeLibrary.load"})
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

    /**
     * Under a denial, a binding called first fails in the bindings' header class initialiser, whose woven hook names
     * the flag: the first use's cause is the NativeLibraryException, and the second use's NoClassDefFoundError (the
     * class cannot initialise again) carries the same message in its cause. On the module path also when only the
     * core has access: the bindings' module is the one denied.
     */
    @Test
    void aBindingCalledFirstUnderADenialNamesTheFlagOnEachUse() throws Exception {
        ChildJvm.Result classPath = ChildJvm.run(List.of(denyNativeAccessFlag()), List.of(),
                FirstNativeUseProbe.class.getName(), "nativescope_h.nsc_monotonic_ns", "twice");
        assertNamesTheFlagTwice(classPath, CLASS_PATH_FLAG);
        ChildJvm.Result modulePath = onModulePath(List.of(denyNativeAccessFlag()), "nativescope_h.nsc_monotonic_ns", "twice");
        assertNamesTheFlagTwice(modulePath, MODULE_PATH_FLAG + " (add your own module too");
        if (Runtime.version().feature() >= 24) {
            ChildJvm.Result coreOnly = onModulePath(List.of(denyNativeAccessFlag(), "--enable-native-access=dev.nativescope.core"),
                    "nativescope_h.nsc_monotonic_ns", "twice");
            assertNamesTheFlagTwice(coreOnly, MODULE_PATH_FLAG + " (add your own module too");
            ChildJvm.Result bindingsOnly = onModulePath(List.of(denyNativeAccessFlag(), "--enable-native-access=dev.nativescope.bindings"),
                    "nativescope_h.nsc_monotonic_ns", "twice");
            assertNamesTheFlagTwice(bindingsOnly, MODULE_PATH_FLAG + " (add your own module too");
        }
    }

    /**
     * A load that fails for another reason (here a library path that names nothing) fails a binding called first with
     * the loader's message, and its second use with that message in the NoClassDefFoundError's cause.
     */
    @Test
    void aBindingCalledFirstWhenTheLoadFailsGivesTheLoadersMessageOnEachUse() throws Exception {
        ChildJvm.Result result = ChildJvm.run(List.of(CLASS_PATH_FLAG, "-Dnativescope.library.path=/nonexistent/libnativescope.so"),
                List.of(), FirstNativeUseProbe.class.getName(), "nativescope_h.nsc_monotonic_ns", "twice");
        assertEachUseCarries(result, NativeLibraryException.class.getName()
                + ": -Dnativescope.library.path=/nonexistent/libnativescope.so does not name a readable file");
    }

    private static void assertNamesTheFlagTwice(ChildJvm.Result result, String flag) {
        assertEachUseCarries(result, NativeLibraryException.class.getName() + ": nativescope needs native access");
        assertThat(result.output()).contains("run java with " + flag);
        assertThat(result.output().lines().filter(line -> line.contains("FAILED-CHAIN ") && line.contains("run java with " + flag)))
                .hasSize(2);
    }

    /**
     * The first use threw an ExceptionInInitializerError whose cause is {@code failure}; the second a
     * NoClassDefFoundError whose cause (the JDK's record of the first failure) names it.
     */
    private static void assertEachUseCarries(ChildJvm.Result result, String failure) {
        assertThat(result.output().lines().filter(line -> line.startsWith("PROBE-FAILED-CHAIN ")))
                .singleElement().asString()
                .startsWith("PROBE-FAILED-CHAIN java.lang.ExceptionInInitializerError: null <- " + failure);
        assertThat(result.output().lines().filter(line -> line.startsWith("PROBE-SECOND-FAILED-CHAIN ")))
                .singleElement().asString()
                .startsWith("PROBE-SECOND-FAILED-CHAIN java.lang.NoClassDefFoundError: Could not initialize class dev.nativescope.bindings.nativescope_h")
                .contains(" <- java.lang.ExceptionInInitializerError: Exception " + failure);
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
