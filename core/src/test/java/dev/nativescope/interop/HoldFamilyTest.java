package dev.nativescope.interop;

import dev.nativescope.childjvm.ChildJvm;
import dev.nativescope.testing.ArenaCloseInterrupts;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The randomized family of issue 13 in a child JVM (a crash fails the test, not the suite): arena
 * kind (global, auto, confined owner, confined other thread, shared) x output access (read-only
 * mapping, asReadOnly, writable) x consumer (the bridge's dense, denseDLPack), with concurrent close
 * attempts. See {@link HoldFamilyChild}. ONNX Runtime is covered by the onnxruntime module's
 * OrtMemorySafetyTest (read-only outputs) and OrtCancellationTest (closes during a run).
 */
class HoldFamilyTest {
    @TempDir
    Path dir;

    @Test
    void everyCombinationRunsCorrectlyOrIsRefusedBeforeNativeCode() throws Exception {
        long seed = System.nanoTime();
        Path jvmLog = dir.resolve("exceptions.log");
        ChildJvm.Result result = ChildJvm.run(List.of("--enable-native-access=ALL-UNNAMED",
                ArenaCloseInterrupts.jvmLogOption(jvmLog)), List.of(),
                HoldFamilyChild.class.getName(), dir.toString(), "20", Long.toString(seed));
        assertThat(result.exitCode()).as("seed %d, exit code (a crash is 134); output:%n%s", seed, result.output())
                .isZero();
        assertThat(result.output()).as("seed %d", seed).doesNotContain("FAILURE").contains("done: ");
        // Every interrupt the child cleared in its shared-arena rounds was sent by the JVM when a close
        // installed its exception on the child's main thread (see ArenaCloseInterrupts).
        assertThat((long) ArenaCloseInterrupts.reported(result.output())).as("seed %d: interrupts cleared", seed)
                .isBetween(0L, ArenaCloseInterrupts.installsLogged(jvmLog));
    }
}
