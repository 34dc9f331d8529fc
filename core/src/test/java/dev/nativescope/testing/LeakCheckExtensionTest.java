package dev.nativescope.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.platform.engine.discovery.DiscoverySelectors.selectClass;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.ContextKey;
import dev.nativescope.LeakSitesProbe;
import dev.nativescope.NativeCall;
import dev.nativescope.NativeResources;
import dev.nativescope.bindings.nativescope_h;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import org.junit.jupiter.api.io.TempDir;
import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.engine.support.descriptor.ClassSource;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;

/**
 * Proves that {@link LeakCheckExtension} fails a leaky class with a report of what leaked: each
 * test runs a deliberately leaky class (nested here, and enabled only while a test here launches it)
 * through the JUnit Platform launcher, reads the class's result, then cleans up the leak so that
 * this class itself passes its own check.
 */
class LeakCheckExtensionTest {
    private static final ContextKey<String> TRACE_ID = ContextKey.ofString("trace-id");
    private static volatile boolean launching;
    private static volatile Path leakyFile;
    private static volatile FileChannel leakedChannel;
    private static volatile CancellableContext leakedParent;
    private static volatile Context leakedValues;
    private static volatile CountDownLatch releaseThreads = new CountDownLatch(1);
    private static volatile Thread leakedThread;

    @BeforeEach
    void freshLatch() {
        releaseThreads = new CountDownLatch(1);
    }

    private static void awaitRelease() {
        try {
            releaseThreads.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    static boolean launchedByTheProof() {
        return launching;
    }

    @Test
    void aClassThatLeavesAFileOpenFailsNamingTheFile(@TempDir Path dir) throws IOException {
        leakyFile = Files.createFile(dir.resolve("leaky.bin"));
        try {
            Throwable failure = runAndGetFailure(LeavesAFileOpen.class);
            assertThat(failure).isInstanceOf(AssertionError.class)
                    .hasMessageContaining(LeavesAFileOpen.class.getName() + " leaked")
                    .hasMessageContaining("open file descriptors: before ")
                    .hasMessageContaining("-> " + leakyFile.toRealPath())
                    .hasMessageNotContaining("-> /proc/" + ProcessHandle.current().pid() + "/fd");
        } finally {
            leakedChannel.close();
        }
    }

    @Test
    void aClassThatLeavesANativeValuesBlockFailsWithTheCounterAndItsCreationSite() {
        LeakSitesProbe.paranoid(true);
        try {
            Throwable failure = runAndGetFailure(LeavesANativeValuesBlock.class);
            assertThat(failure).isInstanceOf(AssertionError.class)
                    .hasMessageMatching("(?s).*liveValueBlocks: before (\\d+), after (?!\\1)\\d+.*")
                    .hasMessageContaining("javaNativeBytes: before ")
                    .hasMessageContaining("native values block (1 values) still live, created at:")
                    .hasMessageContaining("at " + LeavesANativeValuesBlock.class.getName() + ".makesANativeCallWithValues(");
        } finally {
            LeakSitesProbe.paranoid(false);
            leakedParent.cancel();
            leakedValues = null;
        }
        NativeResources.trimIdle();
        assertThat(LeakSitesProbe.createdSince(0)).as("creation sites kept after the block and frames were freed").isEmpty();
    }

    @Test
    void aClassThatLeavesANonDaemonThreadRunningFailsNamingItAndItsStack() throws InterruptedException {
        assertThreadLeakReported(LeavesAThreadRunning.class,
                "non-daemon thread started and still alive: 'leaky-worker' (WAITING)",
                "at java.base/java.util.concurrent.CountDownLatch.await(");
    }

    @Test
    void aClassThatLeavesAnExtraNativescopeDaemonThreadFails() throws InterruptedException {
        assertThreadLeakReported(LeavesANativescopeThread.class,
                "nativescope threads (other than ", "'nativescope-leaky' (WAITING)");
    }

    /** Runs a class that leaves {@link #leakedThread} waiting, checks the report, then ends the thread. */
    private static void assertThreadLeakReported(Class<?> leaky, String... reportParts) throws InterruptedException {
        try {
            Throwable failure = runAndGetFailure(leaky);
            assertThat(failure).isInstanceOf(AssertionError.class);
            for (String part : reportParts) {
                assertThat(failure).hasMessageContaining(part);
            }
        } finally {
            releaseThreads.countDown();
            leakedThread.join();
        }
    }

    @Test
    void aClassThatClosesWhatItOpensPasses() {
        assertThat(runAndGetFailure(ClosesWhatItOpens.class)).isNull();
    }

    /** Runs {@code testClass} with the extension autodetected; returns why the class failed, or null. */
    private static Throwable runAndGetFailure(Class<?> testClass) {
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
                    .configurationParameter("junit.jupiter.extensions.autodetection.enabled", "true")
                    .configurationParameter(LeakCheckExtension.SETTLE_PARAMETER, "300")
                    .build(), listener);
        } finally {
            launching = false;
        }
        TestExecutionResult result = classResult.get();
        assertThat(result).as("result of " + testClass.getSimpleName()).isNotNull();
        return result.getThrowable().orElse(null);
    }

    @EnabledIf("dev.nativescope.testing.LeakCheckExtensionTest#launchedByTheProof")
    static class LeavesAFileOpen {
        @Test
        void opensAFileAndKeepsIt() throws IOException {
            leakedChannel = FileChannel.open(leakyFile);
        }
    }

    @EnabledIf("dev.nativescope.testing.LeakCheckExtensionTest#launchedByTheProof")
    static class LeavesANativeValuesBlock {
        @Test
        void makesANativeCallWithValues() {
            leakedParent = Context.background().withCancel();
            leakedValues = leakedParent.withValue(TRACE_ID, "leaked");
            NativeCall.invoke(leakedValues, nativescope_h::nsc_noop_ctx);
        }
    }

    @EnabledIf("dev.nativescope.testing.LeakCheckExtensionTest#launchedByTheProof")
    static class LeavesAThreadRunning {
        @Test
        void startsAThreadThatWaits() {
            leakedThread = Thread.ofPlatform().name("leaky-worker").start(LeakCheckExtensionTest::awaitRelease);
        }
    }

    @EnabledIf("dev.nativescope.testing.LeakCheckExtensionTest#launchedByTheProof")
    static class LeavesANativescopeThread {
        @Test
        void startsADaemonThreadThatWaits() {
            leakedThread = Thread.ofPlatform().name("nativescope-leaky").daemon(true).start(LeakCheckExtensionTest::awaitRelease);
        }
    }

    @EnabledIf("dev.nativescope.testing.LeakCheckExtensionTest#launchedByTheProof")
    static class ClosesWhatItOpens {
        @Test
        void opensAndCloses(@TempDir Path dir) throws IOException {
            try (FileChannel channel = FileChannel.open(Files.createFile(dir.resolve("closed.bin")));
                 CancellableContext parent = Context.background().withCancel()) {
                NativeCall.invoke(parent.withValue(TRACE_ID, "closed"), nativescope_h::nsc_noop_ctx);
                assertThat(channel.isOpen()).isTrue();
            }
        }
    }
}
