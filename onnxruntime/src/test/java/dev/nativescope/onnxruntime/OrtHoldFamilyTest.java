package dev.nativescope.onnxruntime;

import dev.nativescope.childjvm.ChildJvm;
import dev.nativescope.testing.ArenaCloseInterrupts;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The ONNX Runtime leg of issue 13's randomized family, in a child JVM (a crash fails the test, not
 * the suite): arena kind (global, auto, confined owner, confined other thread, shared) x access
 * (read-only mapping, asReadOnly, writable) x consumer ({@code run} with the access on the output,
 * on the input, {@code runAllocating}), with concurrent close attempts. See {@link OrtHoldFamilyChild};
 * core's HoldFamilyTest covers the bridge and DLPack. Both ways a run reaches ORT: its C Run by a
 * downcall that holds the segments ({@link OrtDirectRun}, the default here) and its JNI run inside a
 * segment hold ({@code -Dnativescope.onnxruntime.directRun=false}).
 */
class OrtHoldFamilyTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void everyCombinationRunsCorrectlyOrIsRefusedBeforeOrtRuns(boolean directRun) throws Exception {
        long seed = System.nanoTime();
        // 16 identity MatMuls of 32 x 32: a run long enough (tens of us) for closes to land during it.
        Path model = OrtModels.chain(dir, 16, OrtHoldFamilyChild.N);
        Path jvmLog = dir.resolve("exceptions.log");
        ChildJvm.Result result = ChildJvm.run(List.of("--enable-native-access=ALL-UNNAMED",
                "-D" + OrtDirectRun.PROPERTY + "=" + directRun, ArenaCloseInterrupts.jvmLogOption(jvmLog)), List.of(),
                OrtHoldFamilyChild.class.getName(), dir.toString(), model.toString(), "12", Long.toString(seed));
        assertThat(result.exitCode()).as("seed %d, exit code (a crash is 134); output:%n%s", seed, result.output())
                .isZero();
        assertThat(result.output()).as("seed %d", seed).doesNotContain("FAILURE").contains("done: ")
                .contains("direct run: " + directRun);
        // Every interrupt the child cleared in its shared-arena rounds was sent by the JVM when a close
        // installed its exception on the child's main thread (see ArenaCloseInterrupts).
        assertThat((long) ArenaCloseInterrupts.reported(result.output())).as("seed %d: interrupts cleared", seed)
                .isBetween(0L, ArenaCloseInterrupts.installsLogged(jvmLog));
        System.out.println(result.output().lines().filter(line -> line.startsWith("done: ")).findFirst().orElseThrow());
    }
}
