/**
 * nativescope for ONNX Runtime: {@link dev.nativescope.onnxruntime.OrtPredictor} runs an
 * {@code OrtSession} under a nativescope {@code Context} over zero-copy tensors.
 *
 * <p>ONNX Runtime's Java jar has no module descriptor; it is the automatic module
 * {@code com.microsoft.onnxruntime} (its manifest's {@code Automatic-Module-Name}). Both it and
 * the core are required transitively, since the API shows their types ({@code Context},
 * {@code Tensor}, {@code OrtSession}, {@code OrtException}). ONNX Runtime loads its own native
 * library through JNI, which needs no {@code --enable-native-access} for this module. With it
 * ({@code --enable-native-access=dev.nativescope.onnxruntime}), runs with pre-allocated outputs call
 * ORT's C API by an FFM downcall instead of its JNI run, which is faster (see {@code OrtPredictor}).
 */
module dev.nativescope.onnxruntime {
    requires transitive dev.nativescope.core;
    requires transitive com.microsoft.onnxruntime;

    exports dev.nativescope.onnxruntime;
}
