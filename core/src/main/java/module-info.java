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

    exports dev.nativescope;
    exports dev.nativescope.tensor;
}
