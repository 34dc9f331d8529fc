package dev.nativescope.onnxruntime.probe;

import dev.nativescope.Context;
import dev.nativescope.onnxruntime.OrtPredictor;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

/**
 * Run by {@code OrtModulePathTest} in a child JVM whose module path holds nativescope's modules
 * and ONNX Runtime's jar (its own package, since the module owns {@code dev.nativescope.onnxruntime}):
 * prints the modules the classes were loaded from and the MLP's output for x = 0.5 everywhere, from
 * {@code run} and from {@code runAllocating}.
 */
public final class OrtModulePathProbe {
    private OrtModulePathProbe() {
    }

    public static void main(String[] args) throws Exception {
        System.out.println("PROBE-MODULES " + OrtPredictor.class.getModule().getName() + " "
                + ai.onnxruntime.OrtSession.class.getModule().getName() + " " + Context.class.getModule().getName());
        try (OrtPredictor predictor = OrtPredictor.open(Path.of(args[0])); Arena arena = Arena.ofConfined()) {
            var xs = arena.allocate(ValueLayout.JAVA_FLOAT, 4 * 8);
            for (int i = 0; i < 4 * 8; i++) {
                xs.setAtIndex(ValueLayout.JAVA_FLOAT, i, 0.5f);
            }
            Tensor y = Tensor.of(arena.allocate(ValueLayout.JAVA_FLOAT, 4 * 3), DType.FLOAT32, 4, 3);
            predictor.run(Context.background(), Map.of("x", Tensor.of(xs, DType.FLOAT32, 4, 8)), Map.of("y", y));
            System.out.println("PROBE-OUTPUT " + Arrays.toString(y.toFloatArray()));
            // runAllocating reaches ORT's private OnnxTensor.getBuffer(): ORT's automatic module opens its packages.
            try (var result = predictor.runAllocating(Context.background(), Map.of("x", Tensor.of(xs, DType.FLOAT32, 4, 8)),
                    java.util.Set.of("y"))) {
                System.out.println("PROBE-ALLOCATED " + Arrays.toString(result.get("y").toFloatArray()));
            }
        }
    }
}
