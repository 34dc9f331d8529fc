package dev.nativescope.testing;

import static dev.nativescope.testing.LeakyClassLauncher.failureOf;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import org.junit.jupiter.api.io.TempDir;

/**
 * Proves that {@link LeakCheckExtension} fails a leaky class with a report of what leaked: each
 * test runs a deliberately leaky class through {@link LeakyClassLauncher}, reads the class's result,
 * then cleans up the leak so that this class itself passes its own check. The probe contract is
 * proven with this module's {@link CountingLeakProbe}; core's tests prove core's probe.
 */
class LeakCheckExtensionTest {
    private static volatile Path leakyFile;
    private static volatile FileChannel leakedChannel;
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

    @Test
    void aClassThatLeavesAFileOpenFailsNamingTheFile(@TempDir Path dir) throws IOException {
        leakyFile = Files.createFile(dir.resolve("leaky.bin"));
        try {
            Throwable failure = failureOf(LeavesAFileOpen.class);
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
    void aClassThatLeavesANonDaemonThreadRunningFailsNamingItAndItsStack() throws InterruptedException {
        assertThreadLeakReported(LeavesAThreadRunning.class,
                "non-daemon thread started and still alive: 'leaky-worker' (WAITING)",
                "at java.base/java.util.concurrent.CountDownLatch.await(");
    }

    @Test
    void aClassThatLeavesAnExtraNativescopeDaemonThreadFails() throws InterruptedException {
        assertThreadLeakReported(LeavesANativescopeThread.class,
                "nativescope threads (other than [" + CountingLeakProbe.SINGLETON_THREAD + "]): before ",
                "'nativescope-leaky' (WAITING)");
    }

    @Test
    void aProbesSingletonThreadMayStartOnceButNotTwice() throws InterruptedException {
        Throwable firstStart = failureOf(StartsTheSingletonThread.class);
        Thread singleton = leakedThread;
        try {
            assertThat(firstStart).as("the first start").isNull();
            assertThreadLeakReported(StartsTheSingletonThread.class,
                    "2 threads named " + CountingLeakProbe.SINGLETON_THREAD + ", which must be a singleton");
        } finally {
            releaseThreads.countDown();
            singleton.join();
        }
    }

    /** Runs a class that leaves {@link #leakedThread} waiting, checks the report, then ends the threads. */
    private static void assertThreadLeakReported(Class<?> leaky, String... reportParts) throws InterruptedException {
        try {
            Throwable failure = failureOf(leaky);
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
    void aClassThatLeavesAProbesCounterUpFailsWithTheCounterAndTheProbesCreationSite() {
        try {
            Throwable failure = failureOf(HoldsACountedResource.class);
            assertThat(failure).isInstanceOf(AssertionError.class)
                    .hasMessageContaining("countedHeld: before 0, after 1")
                    .hasMessageContaining("counted resource created at " + HoldsACountedResource.class.getSimpleName())
                    .hasMessageNotContaining("countedIdle");
        } finally {
            CountingLeakProbe.releaseAll();
        }
    }

    /**
     * jcmd makes the JVM start its attach listener, whose socket stays open for good, as when
     * Jazzer attaches its agent: that is the JVM's, not a leak of the class that ran first.
     */
    @Test
    void aToolAttachingToTheJvmIsNotBlamed() throws IOException {
        assertThat(failureOf(AttachesAToolToTheJvm.class)).isNull();
        try (var sockets = Files.lines(Path.of("/proc/net/unix"))) {
            assertThat(sockets.anyMatch(line -> line.contains("/.java_pid" + ProcessHandle.current().pid())))
                    .as("the attach listener is up, so its socket was open during the check").isTrue();
        }
    }

    @Test
    void aClassThatClosesWhatItOpensPasses() {
        assertThat(failureOf(ClosesWhatItOpens.class)).isNull();
    }

    @EnabledIf("dev.nativescope.testing.LeakyClassLauncher#launching")
    static class LeavesAFileOpen {
        @Test
        void opensAFileAndKeepsIt() throws IOException {
            leakedChannel = FileChannel.open(leakyFile);
        }
    }

    @EnabledIf("dev.nativescope.testing.LeakyClassLauncher#launching")
    static class LeavesAThreadRunning {
        @Test
        void startsAThreadThatWaits() {
            leakedThread = Thread.ofPlatform().name("leaky-worker").start(LeakCheckExtensionTest::awaitRelease);
        }
    }

    @EnabledIf("dev.nativescope.testing.LeakyClassLauncher#launching")
    static class LeavesANativescopeThread {
        @Test
        void startsADaemonThreadThatWaits() {
            leakedThread = Thread.ofPlatform().name("nativescope-leaky").daemon(true).start(LeakCheckExtensionTest::awaitRelease);
        }
    }

    /** Each run starts another thread with the singleton's name and leaves it waiting. */
    @EnabledIf("dev.nativescope.testing.LeakyClassLauncher#launching")
    static class StartsTheSingletonThread {
        @Test
        void startsADaemonThreadWithTheSingletonsName() {
            leakedThread = Thread.ofPlatform().name(CountingLeakProbe.SINGLETON_THREAD).daemon(true)
                    .start(LeakCheckExtensionTest::awaitRelease);
        }
    }

    @EnabledIf("dev.nativescope.testing.LeakyClassLauncher#launching")
    static class HoldsACountedResource {
        @Test
        void holdsOne() {
            CountingLeakProbe.hold(HoldsACountedResource.class.getSimpleName());
            // Idle, not held: the probe trims it before reading, so it must not appear in the report.
            CountingLeakProbe.IDLE.incrementAndGet();
        }
    }

    @EnabledIf("dev.nativescope.testing.LeakyClassLauncher#launching")
    static class AttachesAToolToTheJvm {
        @Test
        void runsJcmdOnThisJvm() throws Exception {
            Process jcmd = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "jcmd").toString(),
                    String.valueOf(ProcessHandle.current().pid()), "VM.version").redirectErrorStream(true).start();
            String output = new String(jcmd.getInputStream().readAllBytes());
            assertThat(jcmd.waitFor()).as(output).isZero();
        }
    }

    @EnabledIf("dev.nativescope.testing.LeakyClassLauncher#launching")
    static class ClosesWhatItOpens {
        @Test
        void opensAndCloses(@TempDir Path dir) throws IOException {
            try (FileChannel channel = FileChannel.open(Files.createFile(dir.resolve("closed.bin")))) {
                CountingLeakProbe.hold(ClosesWhatItOpens.class.getSimpleName());
                assertThat(channel.isOpen()).isTrue();
            } finally {
                CountingLeakProbe.releaseAll();
            }
        }
    }
}
