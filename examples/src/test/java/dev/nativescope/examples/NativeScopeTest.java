package dev.nativescope.examples;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;

import java.util.concurrent.TimeUnit;

/**
 * Base of the tests that run real native predictors under a {@code StructuredTaskScope}.
 *
 * <p>The timeout is a backstop for a cancel that does not land: an uncancelled predictor ends by
 * itself after 30+ s (a blocked one never does), so the test fails here first, in a separate thread
 * so that a scope stuck in {@code close()} cannot hold it, and JUnit prints a thread dump
 * (junit-platform.properties) that shows where the predictors are.
 */
@Timeout(value = 45, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
abstract class NativeScopeTest {
    @BeforeAll
    static void warmUpNativeCode() {
        NativeWork.warmUp();
    }
}
