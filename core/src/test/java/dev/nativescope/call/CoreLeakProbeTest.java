package dev.nativescope.call;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.ContextKey;
import static dev.nativescope.testing.LeakyClassLauncher.failureOf;
import static org.assertj.core.api.Assertions.assertThat;

import dev.nativescope.bindings.nativescope_h;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;

/**
 * Proves that core's tests run under the leak check with {@link CoreLeakProbe}: a class that leaves
 * a native values block alive fails with the counters and, in paranoid mode, where the block was
 * created; one that leaves a context with a deadline open fails on the pending deadline; a class that makes native calls and closes its contexts passes. The generic checks (fds,
 * threads) are proven in the testing module; each leaky class here is run through
 * {@link dev.nativescope.testing.LeakyClassLauncher}, then its leak is cleaned up.
 */
class CoreLeakProbeTest {
    private static final ContextKey<String> TRACE_ID = ContextKey.ofString("trace-id");
    private static volatile CancellableContext leakedParent;
    private static volatile Context leakedValues;

    @Test
    void aClassThatLeavesANativeValuesBlockFailsWithTheCounterAndItsCreationSite() {
        boolean wasParanoid = LeakSites.paranoid();
        CoreLeakProbe.paranoid(true);
        try {
            Throwable failure = failureOf(LeavesANativeValuesBlock.class);
            assertThat(failure).isInstanceOf(AssertionError.class)
                    .hasMessageMatching("(?s).*liveValueBlocks: before (\\d+), after (?!\\1)\\d+.*")
                    .hasMessageContaining("javaNativeBytes: before ")
                    .hasMessageContaining("native values block (1 values) still live, created at:")
                    .hasMessageContaining("at " + LeavesANativeValuesBlock.class.getName() + ".makesANativeCallWithValues(");
        } finally {
            CoreLeakProbe.paranoid(wasParanoid);
            leakedParent.cancel();
            leakedValues = null;
        }
        NativeResources.trimIdle();
        assertThat(CoreLeakProbe.createdSince(0)).as("creation sites kept after the block and frames were freed").isEmpty();
    }

    @Test
    void withoutParanoidModeTheReportSaysHowToGetCreationSites() {
        boolean wasParanoid = LeakSites.paranoid();
        CoreLeakProbe.paranoid(false);
        try {
            assertThat(failureOf(LeavesANativeValuesBlock.class)).isInstanceOf(AssertionError.class)
                    .hasMessageContaining("liveValueBlocks: before ")
                    .hasMessageContaining("(run with -D" + LeakSites.PROPERTY + "=paranoid to see where");
        } finally {
            CoreLeakProbe.paranoid(wasParanoid);
            leakedParent.cancel();
            leakedValues = null;
        }
    }

    @Test
    void aClassThatLeavesAContextWithADeadlineOpenFails() {
        try {
            assertThat(failureOf(LeavesADeadlineContextOpen.class)).isInstanceOf(AssertionError.class)
                    .hasMessageMatching("(?s).*pendingDeadlines: before (\\d+), after (?!\\1)\\d+.*");
        } finally {
            leakedParent.close();
        }
    }

    @Test
    void aClassThatClosesItsContextsAfterNativeCallsPasses() {
        assertThat(failureOf(ClosesItsContexts.class)).isNull();
    }

    @EnabledIf("dev.nativescope.testing.LeakyClassLauncher#launching")
    static class LeavesANativeValuesBlock {
        @Test
        void makesANativeCallWithValues() {
            leakedParent = Context.background().withCancel();
            leakedValues = leakedParent.withValue(TRACE_ID, "leaked");
            NativeCall.invoke(leakedValues, nativescope_h::nsc_noop_ctx);
        }
    }

    @EnabledIf("dev.nativescope.testing.LeakyClassLauncher#launching")
    static class LeavesADeadlineContextOpen {
        @Test
        void opensAContextWithAnHourToGo() {
            leakedParent = Context.background().withTimeout(java.time.Duration.ofHours(1));
        }
    }

    @EnabledIf("dev.nativescope.testing.LeakyClassLauncher#launching")
    static class ClosesItsContexts {
        @Test
        void makesANativeCallWithValuesAndCancels() {
            try (CancellableContext parent = Context.background().withCancel()) {
                NativeCall.invoke(parent.withValue(TRACE_ID, "closed"), nativescope_h::nsc_noop_ctx);
            }
        }
    }
}
