/**
 * nativescope: cancellation, deadlines and request values for native code called through the FFM
 * API, and zero-copy tensors.
 *
 * <p>The module makes restricted FFM calls: run with {@code --enable-native-access=dev.nativescope.core,dev.nativescope.bindings}
 * (or {@code ALL-UNNAMED} on the class path).
 */
module dev.nativescope.core {
    requires dev.nativescope.bindings;
    requires dev.nativescope.nativeshim;
    // Diagnostics: JFR events (loaded once JFR is initialised) and the platform MBean (a second after the first call).
    requires jdk.jfr;
    requires java.management;

    exports dev.nativescope;
    exports dev.nativescope.library;
    exports dev.nativescope.call;
    exports dev.nativescope.diagnostics;
    exports dev.nativescope.interop;
    exports dev.nativescope.tensor;
    exports dev.nativescope.tensor.io;
    exports dev.nativescope.tensor.npy;
    exports dev.nativescope.tensor.safetensors;
    exports dev.nativescope.reference;
    // For the bindings' load hook alone (woven into nativescope_h at build time): it calls the package-private
    // LoadHookEntry by reflection, since the bindings cannot depend on the core.
    opens dev.nativescope.library to dev.nativescope.bindings;
}
