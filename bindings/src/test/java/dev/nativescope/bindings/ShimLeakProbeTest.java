package dev.nativescope.bindings;

import static dev.nativescope.testing.LeakyClassLauncher.failureOf;
import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;

/**
 * Proves that this module's test classes run under the leak check (autodetected through this
 * module's {@code junit-platform.properties}) and that {@link ShimLeakProbe} reads the shim's counters
 * through the bindings: a class that initialises an {@code nsc_context} and never destroys it fails
 * naming {@code shimLiveContexts}. Loads the shim built by the native-shim module
 * ({@code nsc.test.native.dir}), the only test here that does.
 */
class ShimLeakProbeTest {
    private static volatile Arena leakedArena;
    private static volatile MemorySegment leakedContext;

    @BeforeAll
    static void loadTheShim() {
        System.load(Path.of(System.getProperty("nsc.test.native.dir"), "libnativescope.so").toString());
    }

    @Test
    void aClassThatLeavesAContextInitialisedFailsWithTheShimsCounter() {
        try {
            Throwable failure = failureOf(LeavesAContextInitialised.class);
            assertThat(failure).isInstanceOf(AssertionError.class)
                    .hasMessageContaining(LeavesAContextInitialised.class.getName() + " leaked")
                    .hasMessageContaining("shimLiveContexts: before 0, after 1");
        } finally {
            assertThat(nativescope_h.nsc_context_destroy(leakedContext)).isEqualTo(nativescope_h.NSC_OK());
            leakedArena.close();
        }
    }

    @EnabledIf("dev.nativescope.testing.LeakyClassLauncher#launching")
    static class LeavesAContextInitialised {
        @Test
        void initialisesAContext() {
            leakedArena = Arena.ofShared();
            leakedContext = nsc_context.allocate(leakedArena);
            assertThat(nativescope_h.nsc_context_init(leakedContext, nativescope_h.NSC_NO_DEADLINE(), MemorySegment.NULL, 0))
                    .isEqualTo(nativescope_h.NSC_OK());
        }
    }
}
