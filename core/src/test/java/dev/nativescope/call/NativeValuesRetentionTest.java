package dev.nativescope.call;

import dev.nativescope.ContextProbe;
import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.ContextKey;
import static org.assertj.core.api.Assertions.assertThat;

import dev.nativescope.bindings.nativescope_h;

import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;

/**
 * What a long-lived context keeps of short-lived value children that made native calls: once
 * they are unreachable and their native values freed, nothing.
 */
class NativeValuesRetentionTest {
    private static final ContextKey<String> TRACE_ID = ContextKey.ofString("trace-id");

    @Test
    void droppedValueChildrenLeaveNoDoneActionOnTheirLiveAncestor() throws InterruptedException {
        try (CancellableContext parent = Context.background().withCancel()) {
            for (int i = 0; i < 1_000; i++) {
                NativeCall.invoke(parent.withValue(TRACE_ID, "req-" + i), nativescope_h::nsc_noop_ctx);
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (ContextProbe.pendingActionCount(parent) > 0 && System.nanoTime() - deadline < 0) {
                System.gc();
                Thread.sleep(20);
            }
            assertThat(ContextProbe.pendingActionCount(parent))
                    .as("done actions the live parent still holds for 1000 dropped value children")
                    .isZero();
        }
    }
}
