package dev.nativescope.onnxruntime;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.nativescope.Context;
import dev.nativescope.tensor.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

/**
 * The direct run ({@link OrtDirectRun}: ORT's C Run by an FFM downcall that holds the tensors): in
 * use under the tests' flags (class path, {@code --enable-native-access=ALL-UNNAMED}), so every other
 * ORT test runs through it; a failure ORT reports comes back as the {@link OrtException} its JNI run
 * throws for the same mistake (code and ORT's message); and outputs match ORT's own Java run.
 */
class OrtDirectRunTest {
    static Path model;

    @BeforeAll
    static void writeTheMlp(@TempDir Path tmp) throws Exception {
        model = OrtModels.mlp(tmp);
    }

    @Test
    void theDirectRunIsUsedUnderTheTestsFlags() {
        assertThat(OrtDirectRun.available()).as("unavailable because: %s", OrtDirectRun.unavailableBecause()).isTrue();
    }

    @Test
    void anOrtFailureIsTheExceptionOrtsJniRunThrows() throws Exception {
        try (OrtSession.SessionOptions options = OrtModels.singleThreaded();
             OrtPredictor predictor = OrtPredictor.open(model, options);
             Arena arena = Arena.ofShared()) {
            Tensor x = OrtModels.tensor(arena, new float[OrtModels.MLP_BATCH * OrtModels.MLP_IN],
                    OrtModels.MLP_BATCH, OrtModels.MLP_IN);
            // An output one row short: ORT refuses the pre-allocated output's shape.
            Tensor wrong = OrtModels.nanTensor(arena, OrtModels.MLP_BATCH - 1, OrtModels.MLP_OUT);
            OrtException direct = catchThrowableOfType(OrtException.class,
                    () -> predictor.run(Context.background(), Map.of("x", x), Map.of("y", wrong)));
            OrtException jni = jniRunFailure(predictor, x, wrong);
            assertThat(direct.getCode()).isEqualTo(jni.getCode());
            assertThat(direct.getMessage()).isEqualTo(jni.getMessage());
        }
    }

    @Test
    void outputsMatchOrtsOwnJavaRun() throws Exception {
        try (OrtSession.SessionOptions options = OrtModels.singleThreaded();
             OrtPredictor predictor = OrtPredictor.open(model, options);
             Arena arena = Arena.ofShared()) {
            float[] values = OrtModels.randomFloats(new Random(7), OrtModels.MLP_BATCH * OrtModels.MLP_IN);
            Tensor x = OrtModels.tensor(arena, values, OrtModels.MLP_BATCH, OrtModels.MLP_IN);
            Tensor y = OrtModels.nanTensor(arena, OrtModels.MLP_BATCH, OrtModels.MLP_OUT);
            predictor.run(Context.background(), Map.of("x", x), Map.of("y", y));
            OrtPredictorTest.assertOutput(y.toFloatArray(), ReferenceMlp.expected(values));
        }
    }

    /** The same run through ORT's Java API (its JNI run), on the predictor's session. */
    private static OrtException jniRunFailure(OrtPredictor predictor, Tensor x, Tensor y) throws Exception {
        OrtEnvironment environment = OrtEnvironment.getEnvironment();
        try (OnnxTensor in = view(environment, x);
             OnnxTensor out = view(environment, y);
             OrtSession.RunOptions options = new OrtSession.RunOptions()) {
            return catchThrowableOfType(OrtException.class,
                    () -> predictor.session().run(Map.of("x", in), Set.of(), Map.of("y", out), options));
        }
    }

    private static OnnxTensor view(OrtEnvironment environment, Tensor tensor) throws OrtException {
        return OnnxTensor.createTensor(environment, tensor.segment().asByteBuffer().order(ByteOrder.nativeOrder()),
                tensor.shape(), OnnxJavaType.FLOAT);
    }
}
