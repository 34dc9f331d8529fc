package dev.nativescope.testing;

import static org.junit.platform.engine.discovery.DiscoverySelectors.selectClass;

import java.util.concurrent.atomic.AtomicReference;

import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.engine.support.descriptor.ClassSource;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;

/**
 * For the tests that prove {@link LeakCheckExtension} (and a module's {@link LeakProbe}) catches a
 * leak: runs a deliberately leaky test class through the JUnit Platform launcher, in this JVM and
 * with the module's own {@code junit-platform.properties}, so the run also proves that the module
 * has the extension autodetected. The leaky classes are nested in the proving test and annotated
 * {@code @EnabledIf("dev.nativescope.testing.LeakyClassLauncher#launching")}, so the module's normal
 * test run skips them; the proving test cleans up each leak afterwards, so that it passes its own
 * check.
 *
 * <p>Needs {@code org.junit.platform:junit-platform-launcher} on the test class path (an optional
 * dependency of this module). Threading: one launch at a time, from the test's thread; the leaky
 * class runs in that thread too.
 */
public final class LeakyClassLauncher {
    /** Short: every proof waits this long for a leak that does not go away. */
    private static final String PROOF_SETTLE_MILLIS = "300";
    private static volatile boolean launching;

    private LeakyClassLauncher() {
    }

    /** {@return whether a launch is under way: the condition that enables the leaky classes} */
    public static boolean launching() {
        return launching;
    }

    /**
     * Runs {@code testClass} with the leak check's settle time shortened.
     *
     * @return why the class failed (the leak report is an {@link AssertionError}), or null if it passed
     */
    public static Throwable failureOf(Class<?> testClass) {
        AtomicReference<TestExecutionResult> classResult = new AtomicReference<>();
        TestExecutionListener listener = new TestExecutionListener() {
            @Override
            public void executionFinished(TestIdentifier identifier, TestExecutionResult result) {
                if (identifier.getSource().orElse(null) instanceof ClassSource source
                        && source.getJavaClass().equals(testClass)) {
                    classResult.set(result);
                }
            }
        };
        launching = true;
        try {
            LauncherFactory.create().execute(LauncherDiscoveryRequestBuilder.request()
                    .selectors(selectClass(testClass))
                    .configurationParameter(LeakCheckExtension.SETTLE_PARAMETER, PROOF_SETTLE_MILLIS)
                    .build(), listener);
        } finally {
            launching = false;
        }
        TestExecutionResult result = classResult.get();
        if (result == null) {
            throw new AssertionError(testClass.getName() + " did not run: is it a static nested class with "
                    + "@EnabledIf(\"dev.nativescope.testing.LeakyClassLauncher#launching\")?");
        }
        return result.getThrowable().orElse(null);
    }
}
