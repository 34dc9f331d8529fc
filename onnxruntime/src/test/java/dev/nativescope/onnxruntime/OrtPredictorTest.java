package dev.nativescope.onnxruntime;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.io.IfExists;
import dev.nativescope.tensor.io.MappedFile;
import dev.nativescope.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CancellationException;

import static dev.nativescope.onnxruntime.OrtModels.MLP_BATCH;
import static dev.nativescope.onnxruntime.OrtModels.MLP_IN;
import static dev.nativescope.onnxruntime.OrtModels.MLP_OUT;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/** The MLP model: results against a Java reference, inputs read in place, outputs written in place. */
class OrtPredictorTest {
    @TempDir
    static Path dir;
    static Path mlp;
    static OrtPredictor predictor;

    @BeforeAll
    static void openModel() throws Exception {
        mlp = OrtModels.mlp(dir);
        predictor = OrtModels.open(mlp);
    }

    @AfterAll
    static void closeModel() throws OrtException {
        predictor.close();
        assertThat(OrtObjects.open()).as("per-run ORT objects left open").isZero();
    }

    @Test
    void mlpMatchesTheJavaReference() throws OrtException {
        Random random = new Random(42);
        try (Arena arena = Arena.ofConfined()) {
            for (int trial = 0; trial < 20; trial++) {
                float[] x = OrtModels.randomFloats(random, MLP_BATCH * MLP_IN);
                Tensor y = OrtModels.nanTensor(arena, MLP_BATCH, MLP_OUT);
                predictor.run(Context.background(), Map.of("x", OrtModels.tensor(arena, x, MLP_BATCH, MLP_IN)), Map.of("y", y));
                assertOutput(y.toFloatArray(), ReferenceMlp.expected(x));
            }
        }
    }

    /**
     * The proof that ORT reads our memory and not a copy: one OnnxTensor over the segment, two
     * runs, the segment changed between them through the segment alone: the second output follows
     * the new memory.
     */
    @Test
    void inputsAreReadInPlace() throws OrtException {
        Random random = new Random(7);
        OrtEnvironment environment = OrtEnvironment.getEnvironment();
        try (Arena arena = Arena.ofConfined()) {
            float[] first = OrtModels.randomFloats(random, MLP_BATCH * MLP_IN);
            Tensor x = OrtModels.tensor(arena, first, MLP_BATCH, MLP_IN);
            OnnxTensor input = OrtObjects.view(environment, "input", "x", x);
            try {
                assertThat(input.ownsBuffer()).as("ORT copied the input").isFalse();
                float[] out1 = runDirect(input);
                assertOutput(out1, ReferenceMlp.expected(first));

                float[] second = OrtModels.randomFloats(random, MLP_BATCH * MLP_IN);
                x.segment().copyFrom(MemorySegment.ofArray(second)); // the OnnxTensor is not touched
                float[] out2 = runDirect(input);
                assertOutput(out2, ReferenceMlp.expected(second));
                assertThat(out2).isNotEqualTo(out1);
            } finally {
                OrtObjects.close(input);
            }
        }
    }

    private static float[] runDirect(OnnxTensor input) throws OrtException {
        try (OrtSession.Result result = predictor.session().run(Map.of("x", input))) {
            float[][] y = (float[][]) result.get(0).getValue();
            float[] flat = new float[MLP_BATCH * MLP_OUT];
            for (int b = 0; b < MLP_BATCH; b++) {
                System.arraycopy(y[b], 0, flat, b * MLP_OUT, MLP_OUT);
            }
            return flat;
        }
    }

    /** Outputs are pinned: ORT writes into the pre-allocated segment, here a file mapping. */
    @Test
    void outputsAreWrittenIntoTheGivenMemoryEvenAFileMapping() throws Exception {
        Random random = new Random(9);
        try (Arena arena = Arena.ofShared()) {
            float[] x = OrtModels.randomFloats(random, MLP_BATCH * MLP_IN);
            MappedFile file = MappedFile.create(dir.resolve("y.bin"), (long) MLP_BATCH * MLP_OUT * Float.BYTES,
                    IfExists.REPLACE, arena);
            MemorySegment mapped = file.segment();
            mapped.fill((byte) 0x7f); // not a value the MLP produces
            Tensor y = Tensor.of(mapped, DType.FLOAT32, MLP_BATCH, MLP_OUT);
            predictor.run(Context.background(), Map.of("x", OrtModels.tensor(arena, x, MLP_BATCH, MLP_IN)), Map.of("y", y));
            float[] inMapping = mapped.toArray(ValueLayout.JAVA_FLOAT);
            assertOutput(inMapping, ReferenceMlp.expected(x));
        }
    }

    @Test
    void sameOutputTensorIsRewrittenByEveryRun() throws OrtException {
        Random random = new Random(11);
        try (Arena arena = Arena.ofConfined()) {
            Tensor y = OrtModels.nanTensor(arena, MLP_BATCH, MLP_OUT);
            for (int trial = 0; trial < 5; trial++) {
                float[] x = OrtModels.randomFloats(random, MLP_BATCH * MLP_IN);
                predictor.run(Context.background(), Map.of("x", OrtModels.tensor(arena, x, MLP_BATCH, MLP_IN)), Map.of("y", y));
                assertOutput(y.toFloatArray(), ReferenceMlp.expected(x));
            }
        }
    }

    @Test
    void rejectsWhatOrtCannotUseInPlace() {
        try (Arena arena = Arena.ofConfined()) {
            Tensor x = OrtModels.tensor(arena, new float[MLP_BATCH * MLP_IN], MLP_BATCH, MLP_IN);
            Tensor y = OrtModels.nanTensor(arena, MLP_BATCH, MLP_OUT);
            Tensor transposed = OrtModels.tensor(arena, new float[MLP_BATCH * MLP_IN], MLP_IN, MLP_BATCH).transpose(0, 1);
            assertThatThrownBy(() -> predictor.run(Context.background(), Map.of("x", transposed), Map.of("y", y)))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("not contiguous");
            Tensor onHeap = Tensor.of(MemorySegment.ofArray(new float[MLP_BATCH * MLP_IN]), DType.FLOAT32, MLP_BATCH, MLP_IN);
            assertThatThrownBy(() -> predictor.run(Context.background(), Map.of("x", onHeap), Map.of("y", y)))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("heap");
            Tensor wrongShape = OrtModels.nanTensor(arena, MLP_BATCH, MLP_OUT + 1);
            assertThatThrownBy(() -> predictor.run(Context.background(), Map.of("x", x), Map.of("y", wrongShape)))
                    .isInstanceOf(OrtException.class);
            assertThatThrownBy(() -> predictor.run(Context.background(), Map.of("x", x), Map.of()))
                    .isInstanceOf(IllegalArgumentException.class);
        }
        assertThat(OrtObjects.open()).isZero();
    }

    @Test
    void runsUnderTheCurrentContext() throws Exception {
        try (Arena arena = Arena.ofConfined(); CancellableContext ctx = Context.background().withCancel()) {
            float[] values = OrtModels.randomFloats(new Random(13), MLP_BATCH * MLP_IN);
            Tensor x = OrtModels.tensor(arena, values, MLP_BATCH, MLP_IN);
            Tensor y = OrtModels.nanTensor(arena, MLP_BATCH, MLP_OUT);
            ctx.call(() -> {
                predictor.run(Map.of("x", x), Map.of("y", y));
                return null;
            });
            assertOutput(y.toFloatArray(), ReferenceMlp.expected(values));
            IllegalStateException why = new IllegalStateException("no longer wanted");
            ctx.cancel(why);
            assertThatThrownBy(() -> ctx.call(() -> {
                predictor.run(Map.of("x", x), Map.of("y", y));
                return null;
            })).isInstanceOf(CancellationException.class).hasCause(why);
        }
        assertThat(OrtObjects.open()).isZero();
    }

    @Test
    void closedPredictorRefusesRuns() throws Exception {
        OrtPredictor closed = OrtModels.open(mlp);
        closed.close();
        closed.close(); // idempotent
        try (Arena arena = Arena.ofConfined()) {
            Tensor x = OrtModels.tensor(arena, new float[MLP_BATCH * MLP_IN], MLP_BATCH, MLP_IN);
            Tensor y = OrtModels.nanTensor(arena, MLP_BATCH, MLP_OUT);
            assertThatThrownBy(() -> closed.run(Context.background(), Map.of("x", x), Map.of("y", y)))
                    .isInstanceOf(IllegalStateException.class).hasMessageContaining("closed");
        }
    }

    static void assertOutput(float[] actual, float[] expected) {
        assertThat(actual).hasSameSizeAs(expected);
        for (int i = 0; i < expected.length; i++) {
            assertThat(actual[i]).as("output element %d", i).isCloseTo(expected[i], within(1e-4f));
        }
    }
}
