package dev.nativescope.benchmarks;

import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * What the ONNX Runtime benchmarks share: models written by the onnxruntime module's
 * {@code make_models.py} (python3-onnx) and float32 inputs filled with a fixed pattern.
 *
 * <p>Stateless; called from a benchmark's setup thread.
 */
final class OrtBenchInputs {
    private static final String SCRIPT = System.getProperty("nsc.ort.makeModels",
            "onnxruntime/src/test/resources/dev/nativescope/onnxruntime/make_models.py");

    private OrtBenchInputs() {
    }

    /** {@return a float32 tensor of {@code shape} in {@code arena}, filled with (i % 7) / 7} */
    static Tensor filled(Arena arena, long... shape) {
        long count = 1;
        for (long dim : shape) {
            count = Math.multiplyExact(count, dim);
        }
        MemorySegment segment = arena.allocate(ValueLayout.JAVA_FLOAT, count);
        for (long i = 0; i < count; i++) {
            segment.setAtIndex(ValueLayout.JAVA_FLOAT, i, (i % 7) / 7.0f);
        }
        return Tensor.of(segment, DType.FLOAT32, shape);
    }

    /** {@return {@code dir/file}, a model of {@code kind} written by make_models.py with {@code args}} */
    static Path model(Path dir, String kind, String file, String... args) throws IOException, InterruptedException {
        Path out = dir.resolve(file);
        List<String> command = new ArrayList<>(List.of("/usr/bin/python3", SCRIPT, kind, out.toString()));
        command.addAll(List.of(args));
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (process.waitFor() != 0) {
            throw new IllegalStateException("make_models.py failed (run from the repository root, or set"
                    + " -Dnsc.ort.makeModels; install python3-onnx): " + output);
        }
        return out;
    }
}
