package dev.nativescope.interop;

import dev.nativescope.childjvm.ChildJvm;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The two JVM crashes of issue 13, each in a child JVM so that a crash fails the test instead of
 * killing the suite: read-only memory handed to native code as an output, and a confined arena of
 * another thread closed under native code. Each must be refused before native code runs.
 */
class NativeMemoryCrashTest {
    @TempDir
    Path dir;

    private String output = "";

    private String outcome(String scenario) throws Exception {
        ChildJvm.Result result = ChildJvm.run(List.of("--enable-native-access=ALL-UNNAMED"), List.of(),
                NativeMemoryCrashChild.class.getName(), scenario, dir.toString());
        assertThat(result.exitCode()).as("child JVM exit code (a crash is 134); output:%n%s", result.output()).isZero();
        output = result.output();
        return result.output().lines().filter(line -> line.startsWith("outcome: ")).findFirst()
                .map(line -> line.substring("outcome: ".length()))
                .orElseThrow(() -> new AssertionError("no outcome line in:\n" + result.output()));
    }

    @Test
    void denseIntoAReadOnlyMappingIsRefused() throws Exception {
        String outcome = outcome("dense.readOnlyMapping");
        assertThat(outcome).as("output:%n%s", output).startsWith("IllegalArgumentException").contains("y")
                .contains("read-only");
    }

    @Test
    void denseThroughAsReadOnlyIsRefused() throws Exception {
        String outcome = outcome("dense.asReadOnly");
        assertThat(outcome).as("output:%n%s", output).startsWith("IllegalArgumentException").contains("y")
                .contains("read-only");
    }

    @Test
    void dlpackExportForWritingRefusesReadOnlyMemory() throws Exception {
        String outcome = outcome("dlpack.exportForWriting");
        assertThat(outcome).as("output:%n%s", output).startsWith("IllegalArgumentException").contains("read-only");
    }

    @Test
    void denseOverAnotherThreadsConfinedArenaIsRefused() throws Exception {
        String outcome = outcome("dense.confinedOtherThread");
        assertThat(outcome).as("output:%n%s", output).startsWith("WrongThreadException").contains("owner");
    }
}
