package dev.nativescope.onnxruntime;

import dev.nativescope.Context;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;
import dev.nativescope.tensor.io.MappedFile;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * Child JVM of {@link OrtMemorySafetyTest}: one run that crashed the JVM (or wrote read-only
 * memory) before issue 13; prints {@code outcome: <exception or OK>}.
 */
public final class OrtMemorySafetyChild {
    private OrtMemorySafetyChild() {
    }

    public static void main(String[] args) throws Exception {
        String outcome;
        Path model = Path.of(args[1]);
        try (OrtPredictor predictor = OrtModels.open(model); Arena arena = Arena.ofConfined()) {
            Tensor x = OrtModels.tensor(arena, new float[] {1, 2, 3, 4}, 1, 4);
            MemorySegment out;
            switch (args[0]) {
                case "readOnlyMapping" -> {
                    Path file = Path.of(args[2]).resolve("y.bin");
                    Files.write(file, new byte[4 * Float.BYTES]);
                    out = MappedFile.map(file, MappedFile.Mode.READ_ONLY, arena).segment();
                }
                case "asReadOnly" -> out = arena.allocate(4 * Float.BYTES, 64).asReadOnly();
                default -> throw new IllegalArgumentException(args[0]);
            }
            try {
                predictor.run(Context.background(), Map.of("x", x), Map.of("y", Tensor.of(out, DType.FLOAT32, 1, 4)));
                outcome = "OK (ORT wrote read-only memory)";
            } catch (Throwable e) {
                outcome = e.getClass().getSimpleName() + ": " + e.getMessage();
            }
        }
        System.out.println("outcome: " + outcome);
    }
}
