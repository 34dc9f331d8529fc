package dev.nativescope.onnxruntime;

import dev.nativescope.childjvm.ChildJvm;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A read-only output handed to {@link OrtPredictor#run}: a {@code READ_ONLY} mapping crashed the
 * JVM inside libonnxruntime (SIGSEGV, SEGV_ACCERR), an {@code asReadOnly()} view was silently
 * written. Both must be refused with an IllegalArgumentException naming the output, in a child
 * JVM so that a crash fails the test instead of the suite.
 */
class OrtMemorySafetyTest {
    @TempDir
    static Path dir;
    static Path model;

    @BeforeAll
    static void makeModel() throws Exception {
        model = OrtModels.chain(dir, 1, 4);
    }

    private static void assertRefused(String scenario) throws Exception {
        ChildJvm.Result result = ChildJvm.run(List.of("--enable-native-access=ALL-UNNAMED"), List.of(),
                OrtMemorySafetyChild.class.getName(), scenario, model.toString(), dir.toString());
        assertThat(result.exitCode()).as("child JVM exit code (a crash is 134); output:%n%s", result.output()).isZero();
        assertThat(result.output()).as(result.output())
                .contains("outcome: IllegalArgumentException: output 'y' is read-only memory");
    }

    @Test
    void aReadOnlyMappingAsOutputIsRefused() throws Exception {
        assertRefused("readOnlyMapping");
    }

    @Test
    void anAsReadOnlyViewAsOutputIsRefused() throws Exception {
        assertRefused("asReadOnly");
    }
}
