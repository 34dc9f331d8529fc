package dev.nativescope.onnxruntime;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CancellationException;

import static dev.nativescope.onnxruntime.OrtModels.MLP_BATCH;
import static dev.nativescope.onnxruntime.OrtModels.MLP_IN;
import static dev.nativescope.onnxruntime.OrtModels.MLP_OUT;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The public counters that monitors outside the package (the soak run) read. */
class OrtResourcesTest {
    @TempDir
    static Path dir;

    @Test
    void predictorsAreCountedOpenUntilTheirFirstClose() throws Exception {
        Path mlp = OrtModels.mlp(dir);
        long before = OrtResources.snapshot().openPredictors();
        OrtPredictor first = OrtModels.open(mlp);
        OrtPredictor second = OrtModels.open(mlp);
        assertThat(OrtResources.snapshot().openPredictors()).isEqualTo(before + 2);
        first.close();
        first.close();
        assertThat(OrtResources.snapshot().openPredictors()).as("a second close counts nothing").isEqualTo(before + 1);
        second.close();
        assertThat(OrtResources.snapshot().openPredictors()).isEqualTo(before);
    }

    @Test
    void runsCreateRunObjectsAndCloseThemCompletedOrStopped() throws Exception {
        try (OrtPredictor predictor = OrtModels.open(OrtModels.mlp(dir)); Arena arena = Arena.ofConfined()) {
            Tensor x = OrtModels.tensor(arena, OrtModels.randomFloats(new Random(3), MLP_BATCH * MLP_IN), MLP_BATCH, MLP_IN);
            Tensor y = OrtModels.nanTensor(arena, MLP_BATCH, MLP_OUT);
            OrtResources before = OrtResources.snapshot();
            predictor.run(Context.background(), Map.of("x", x), Map.of("y", y));
            OrtResources afterRun = OrtResources.snapshot();
            assertThat(afterRun.createdRunObjects() - before.createdRunObjects())
                    .as("RunOptions plus one view per input and output").isEqualTo(3);
            assertThat(afterRun.openRunObjects()).isEqualTo(before.openRunObjects());

            // A context cancelled before the run stops it before any ORT object exists.
            CancellableContext cancelled = Context.background().withCancel();
            cancelled.cancel();
            assertThatThrownBy(() -> predictor.run(cancelled, Map.of("x", x), Map.of("y", y)))
                    .isInstanceOf(CancellationException.class);
            assertThat(OrtResources.snapshot().openRunObjects()).isEqualTo(before.openRunObjects());
        }
    }
}
