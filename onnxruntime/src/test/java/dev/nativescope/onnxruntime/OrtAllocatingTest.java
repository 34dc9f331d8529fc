package dev.nativescope.onnxruntime;

import ai.onnxruntime.OnnxTensor;
import dev.nativescope.Context;
import dev.nativescope.interop.SegmentHold;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * {@link OrtPredictor#runAllocating}: outputs ONNX Runtime allocates, seen in place. Integer
 * models, every element type ORT's Java API can express (and clear errors for the rest), outputs
 * whose shape depends on the input's values, many single-operator models checked against the
 * pinned-output run, the result's lifetime and 10^4 runs without a leaked ORT value.
 */
class OrtAllocatingTest {
    @TempDir
    static Path dir;
    static OrtPredictor ints;
    static OrtPredictor types;
    static OrtPredictor nonzero;
    static OrtPredictor slice;

    @BeforeAll
    static void openModels() throws Exception {
        ints = OrtModels.open(OrtModels.model(dir, "ints"));
        types = OrtModels.open(OrtModels.model(dir, "types"));
        nonzero = OrtModels.open(OrtModels.model(dir, "nonzero"));
        slice = OrtModels.open(OrtModels.model(dir, "slice"));
    }

    @AfterAll
    static void closeModels() throws Exception {
        for (OrtPredictor predictor : List.of(ints, types, nonzero, slice)) {
            predictor.close();
        }
        assertThat(OrtObjects.open()).as("ORT objects left open").isZero();
    }

    private static Tensor ints(Arena arena, DType dtype, long... values) {
        MemorySegment segment = arena.allocate((long) values.length * dtype.byteSize(), 8);
        for (int i = 0; i < values.length; i++) {
            switch (dtype) {
                case INT32 -> segment.setAtIndex(ValueLayout.JAVA_INT, i, (int) values[i]);
                case INT64 -> segment.setAtIndex(ValueLayout.JAVA_LONG, i, values[i]);
                case UINT8 -> segment.set(ValueLayout.JAVA_BYTE, i, (byte) values[i]);
                default -> throw new AssertionError(dtype);
            }
        }
        return Tensor.of(segment, dtype, values.length);
    }

    @Test
    void integerInputsAndOutputs() throws Exception {
        try (Arena arena = Arena.ofConfined();
             OrtResult result = ints.runAllocating(Context.background(),
                     Map.of("a", ints(arena, DType.INT32, 1, -2, 1_000_000),
                             "b", ints(arena, DType.INT64, 3, -4, 3_000_000_000L),
                             "c", ints(arena, DType.UINT8, 0, 200, 255)),
                     new LinkedHashSet<>(List.of("a2", "b2", "c2")))) {
            assertThat(result.tensors().keySet()).containsExactly("a2", "b2", "c2");
            Tensor a2 = result.get("a2");
            assertThat(a2.dtype()).isEqualTo(DType.INT32);
            assertThat(a2.shape()).containsExactly(3);
            assertThat(a2.data().toArray(ValueLayout.JAVA_INT)).containsExactly(2, -4, 2_000_000);
            Tensor b2 = result.get("b2");
            assertThat(b2.dtype()).isEqualTo(DType.INT64);
            assertThat(b2.data().toArray(ValueLayout.JAVA_LONG)).containsExactly(9, 16, 9_000_000_000_000_000_000L);
            Tensor c2 = result.get("c2");
            assertThat(c2.dtype()).isEqualTo(DType.UINT8);
            assertThat(c2.data().toArray(ValueLayout.JAVA_BYTE)).containsExactly((byte) 1, (byte) 201, (byte) 0);
        }
    }

    static final float[] X = {0, 1, -2, 3, 100, -100};

    @Test
    void everyElementTypeOfTheJavaApi() throws Exception {
        Set<String> supported = new LinkedHashSet<>(List.of("float", "double", "int8", "int16", "int32", "int64",
                "uint8", "uint16", "uint32", "uint64", "bool", "float16", "bfloat16"));
        try (Arena arena = Arena.ofConfined();
             OrtResult result = types.runAllocating(Context.background(), Map.of("x", OrtModels.tensor(arena, X, 2, 3)),
                     supported)) {
            Map<String, Tensor> out = result.tensors();
            for (Tensor tensor : out.values()) {
                assertThat(tensor.shape()).containsExactly(2, 3);
                assertThat(tensor.isContiguous()).isTrue();
                assertThat(tensor.data().isNative()).isTrue();
            }
            assertThat(out.get("float").dtype()).isEqualTo(DType.FLOAT32);
            assertThat(out.get("float").toFloatArray()).containsExactly(X);
            assertThat(out.get("double").dtype()).isEqualTo(DType.FLOAT64);
            assertThat(out.get("double").data().toArray(ValueLayout.JAVA_DOUBLE)).containsExactly(0, 1, -2, 3, 100, -100);
            assertThat(out.get("int8").dtype()).isEqualTo(DType.INT8);
            assertThat(out.get("int8").data().toArray(ValueLayout.JAVA_BYTE)).containsExactly(0, 1, 2, 3, 100, 100);
            assertThat(out.get("int16").dtype()).isEqualTo(DType.INT16);
            assertThat(out.get("int16").data().toArray(ValueLayout.JAVA_SHORT)).containsExactly(0, 1, 2, 3, 100, 100);
            assertThat(out.get("int32").dtype()).isEqualTo(DType.INT32);
            assertThat(out.get("int32").data().toArray(ValueLayout.JAVA_INT)).containsExactly(0, 1, 2, 3, 100, 100);
            assertThat(out.get("int64").dtype()).isEqualTo(DType.INT64);
            assertThat(out.get("int64").data().toArray(ValueLayout.JAVA_LONG)).containsExactly(0, 1, 2, 3, 100, 100);
            assertThat(out.get("uint8").dtype()).isEqualTo(DType.UINT8);
            assertThat(out.get("uint8").data().toArray(ValueLayout.JAVA_BYTE)).containsExactly(0, 1, 2, 3, 100, 100);
            // ORT's Java API calls these INT16/32/64; the element type says unsigned.
            assertThat(out.get("uint16").dtype()).isEqualTo(DType.UINT16);
            assertThat(out.get("uint16").data().toArray(ValueLayout.JAVA_SHORT)).containsExactly(0, 1, 2, 3, 100, 100);
            assertThat(out.get("uint32").dtype()).isEqualTo(DType.UINT32);
            assertThat(out.get("uint32").data().toArray(ValueLayout.JAVA_INT)).containsExactly(0, 1, 2, 3, 100, 100);
            assertThat(out.get("uint64").dtype()).isEqualTo(DType.UINT64);
            assertThat(out.get("uint64").data().toArray(ValueLayout.JAVA_LONG)).containsExactly(0, 1, 2, 3, 100, 100);
            assertThat(out.get("bool").dtype()).isEqualTo(DType.BOOL);
            assertThat(out.get("bool").data().toArray(ValueLayout.JAVA_BYTE)).containsExactly(0, 1, 1, 1, 1, 1);
            short[] half = new short[X.length];
            short[] brain = new short[X.length];
            for (int i = 0; i < X.length; i++) {
                half[i] = Float.floatToFloat16(X[i]);
                brain[i] = (short) (Float.floatToRawIntBits(X[i]) >>> 16); // exact for these small integers
            }
            assertThat(out.get("float16").dtype()).isEqualTo(DType.FLOAT16);
            assertThat(out.get("float16").data().toArray(ValueLayout.JAVA_SHORT)).containsExactly(half);
            assertThat(out.get("bfloat16").dtype()).isEqualTo(DType.BFLOAT16);
            assertThat(out.get("bfloat16").data().toArray(ValueLayout.JAVA_SHORT)).containsExactly(brain);
        }
    }

    @Test
    void typesTheJavaApiCannotExpressAreRefusedByNameBeforeTheRun() throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            Map<String, Tensor> inputs = Map.of("x", OrtModels.tensor(arena, X, 2, 3));
            long created = OrtObjects.created();
            try (OrtPredictor float8 = OrtModels.open(OrtModels.model(dir, "float8"))) {
                assertThatThrownBy(() -> float8.runAllocating(Context.background(), inputs, Set.of("y")))
                        .isInstanceOf(IllegalArgumentException.class)
                        .hasMessageContaining("output 'y' has element type float8e4m3fn")
                        .hasMessageContaining("ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT8E4M3FN")
                        .hasMessageContaining("cannot express");
            }
            assertThatThrownBy(() -> types.runAllocating(Context.background(), inputs, Set.of("string")))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("output 'string' has element type string");
            assertThatThrownBy(() -> types.runAllocating(Context.background(), inputs, Set.of("nope")))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("the model has no output 'nope'");
            assertThatThrownBy(() -> types.runAllocating(Context.background(), inputs, Set.of()))
                    .isInstanceOf(IllegalArgumentException.class);
            assertThat(OrtObjects.created()).as("no ORT object made for a refused run").isEqualTo(created);
        }
    }

    @Test
    void outputShapesKnownOnlyAfterTheRun() throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            try (OrtResult result = nonzero.runAllocating(Context.background(),
                    Map.of("x", OrtModels.tensor(arena, new float[] {0, 3, 0, 5, 1}, 5)), Set.of("y"))) {
                Tensor y = result.get("y");
                assertThat(y.dtype()).isEqualTo(DType.INT64);
                assertThat(y.shape()).containsExactly(1, 3);
                assertThat(y.data().toArray(ValueLayout.JAVA_LONG)).containsExactly(1, 3, 4);
            }
            try (OrtResult result = nonzero.runAllocating(Context.background(),
                    Map.of("x", OrtModels.tensor(arena, new float[] {0, 0}, 2)), Set.of("y"))) {
                assertThat(result.get("y").shape()).containsExactly(1, 0);
                assertThat(result.get("y").elementCount()).isZero();
            }
            float[] x = {1, 2, 3, 4, 5, 6, 7, 8};
            for (long n : new long[] {3, 8, 0, 1}) {
                try (OrtResult result = slice.runAllocating(Context.background(),
                        Map.of("x", OrtModels.tensor(arena, x, 8), "n", ints(arena, DType.INT64, n)), Set.of("y"))) {
                    Tensor y = result.get("y");
                    assertThat(y.shape()).containsExactly(n);
                    assertThat(y.toFloatArray()).containsExactly(java.util.Arrays.copyOf(x, (int) n));
                }
            }
        }
    }

    /**
     * No copy: the view's address is the one ORT's JNI side hands out for the value's data, the same
     * at every look, and a write through the view shows in ORT's own (copying) getter.
     */
    @Test
    void theViewIsOrtsOwnMemory() throws Exception {
        try (Arena arena = Arena.ofConfined();
             OrtResult result = types.runAllocating(Context.background(), Map.of("x", OrtModels.tensor(arena, X, 2, 3)),
                     Set.of("float", "int64"))) {
            Tensor y = result.get("float");
            OnnxTensor ort = result.ortTensor("float");
            long address = y.data().address();
            assertThat(result.get("float").data().address()).isEqualTo(address);
            assertThat(ort.getByteBuffer().isDirect()).as("ORT's public getter copies into a heap buffer").isFalse();
            y.data().setAtIndex(ValueLayout.JAVA_FLOAT, 4, 42.5f);
            assertThat(ort.getFloatBuffer().get(4)).as("written through the view, read by ORT").isEqualTo(42.5f);
            result.get("int64").data().setAtIndex(ValueLayout.JAVA_LONG, 0, -7);
            assertThat(result.ortTensor("int64").getLongBuffer().get(0)).isEqualTo(-7);
            assertThat(address).isNotEqualTo(result.get("int64").data().address());
        }
    }

    @Test
    void theTensorsLiveUntilTheResultIsClosed() throws Exception {
        Tensor kept;
        OrtResult result;
        try (Arena arena = Arena.ofConfined()) {
            OrtPredictor predictor = OrtModels.open(dir.resolve("types.onnx"));
            result = predictor.runAllocating(Context.background(), Map.of("x", OrtModels.tensor(arena, X, 2, 3)),
                    Set.of("float"));
            predictor.close();
        }
        kept = result.get("float");
        assertThat(kept.toFloatArray()).as("after the predictor and the input's arena closed").containsExactly(X);
        assertThat(OrtObjects.open()).as("the result's value is counted open").isEqualTo(1);
        Tensor slice = kept.slice(0, 1, 2);
        result.close();
        assertThat(result.isClosed()).isTrue();
        assertThat(OrtObjects.open()).isZero();
        assertThatThrownBy(() -> kept.data().get(ValueLayout.JAVA_FLOAT, 0)).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(kept::toFloatArray).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(slice::toFloatArray).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> result.get("float")).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("closed");
        assertThatThrownBy(result::tensors).isInstanceOf(IllegalStateException.class);
        result.close(); // idempotent
    }

    /** A view held by a native call cannot be released under it: close is refused, and works afterwards. */
    @Test
    void closingWhileAViewIsHeldIsRefused() throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            OrtResult result = types.runAllocating(Context.background(), Map.of("x", OrtModels.tensor(arena, X, 2, 3)),
                    Set.of("float"));
            Tensor y = result.get("float");
            SegmentHold.call(List.of(y.segment()), () -> {
                assertThatThrownBy(result::close).isInstanceOf(IllegalStateException.class);
                return null;
            });
            assertThat(result.isClosed()).isFalse();
            assertThat(y.toFloatArray()).containsExactly(X);
            result.close();
            assertThat(OrtObjects.open()).isZero();
        }
    }

    /**
     * 10^4 runs, each result closed: no ORT value, run option or tensor view left open, each counted;
     * the input views are made once and reused (the same tensors every run).
     */
    @Test
    void tenThousandRunsLeakNoOrtValue() throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            Map<String, Tensor> inputs = Map.of("x", OrtModels.tensor(arena, new float[] {1, 2, 3, 4, 5, 6, 7, 8}, 8),
                    "n", ints(arena, DType.INT64, 5));
            long created = OrtObjects.created();
            float sum = 0;
            for (int i = 0; i < 10_000; i++) {
                try (OrtResult result = slice.runAllocating(Context.background(), inputs, Set.of("y"))) {
                    sum += result.get("y").data().getAtIndex(ValueLayout.JAVA_FLOAT, 4);
                }
                assertThat(OrtObjects.open()).isZero();
            }
            assertThat(sum).isEqualTo(50_000f);
            // Per run: 1 RunOptions, 1 output value; the 2 input views once, by the first run.
            assertThat(OrtObjects.created() - created).isEqualTo(2 * 10_000L + 2);
        }
    }

    /**
     * The many-operators test: one float input, one output per model (float, int64, bool, double and
     * float16 outputs, static and data-dependent shapes); the ORT-allocated output must equal, bit for
     * bit, what the same model writes into a pinned output of that shape.
     */
    @Test
    void manyOperatorsAllocatedEqualsPinned() throws Exception {
        Path opsDir = Files.createDirectories(dir.resolve("ops"));
        Map<String, Path> models = OrtModels.ops(opsDir);
        assertThat(models).hasSizeGreaterThanOrEqualTo(35);
        float[] x = OrtModels.randomFloats(new Random(13), 24);
        x[5] = 0; // NonZero and Greater see a zero
        List<String> checked = new ArrayList<>();
        try (Arena arena = Arena.ofConfined()) {
            Tensor input = OrtModels.tensor(arena, x, 2, 3, 4);
            for (Map.Entry<String, Path> model : models.entrySet()) {
                try (OrtPredictor predictor = OrtModels.open(model.getValue());
                     OrtResult result = predictor.runAllocating(Context.background(), Map.of("x", input), Set.of("y"))) {
                    Tensor allocated = result.get("y");
                    MemorySegment pinnedMemory = arena.allocate(Math.max(1, allocated.byteSize()), 64);
                    pinnedMemory.fill((byte) 0x5a);
                    Tensor pinned = Tensor.of(pinnedMemory.asSlice(0, allocated.byteSize()), allocated.dtype(),
                            allocated.shape());
                    predictor.run(Context.background(), Map.of("x", input), Map.of("y", pinned));
                    assertThat(allocated.data().toArray(ValueLayout.JAVA_BYTE))
                            .as("op %s: %s", model.getKey(), allocated)
                            .containsExactly(pinned.data().toArray(ValueLayout.JAVA_BYTE));
                    checked.add(model.getKey() + ":" + allocated.dtype().displayName());
                }
            }
        }
        System.out.println("allocated == pinned for " + checked.size() + " operators: " + checked);
        assertThat(checked).anyMatch(op -> op.startsWith("nonzero:")).anyMatch(op -> op.startsWith("greater:"));
    }
}
