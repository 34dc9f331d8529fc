package dev.nativescope.inspect;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Comparator;
import java.util.stream.Stream;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import dev.nativescope.call.NativeThreads;
import org.junit.jupiter.api.Test;

/** {@code nativescope inspect <pid>} run as users run it (its own JVM) against child processes. */
class InspectTest {
    private static final String JAVA = Path.of(System.getProperty("java.home"), "bin", "java").toString();

    private record Result(int exitCode, String output) {
    }

    /** A child JVM running {@link StuckCallProbe}, once it printed READY. */
    private static Process startProbe(String... args) throws IOException {
        List<String> command = new ArrayList<>(List.of(JAVA, "--enable-native-access=ALL-UNNAMED",
                "-Dnativescope.diagnostics.values=true", "-cp", System.getProperty("java.class.path"),
                StuckCallProbe.class.getName()));
        command.addAll(List.of(args));
        Process child = new ProcessBuilder(command).redirectErrorStream(true).start();
        BufferedReader lines = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8));
        StringBuilder seen = new StringBuilder();
        for (String line; (line = lines.readLine()) != null; ) {
            if (line.equals("READY")) {
                return child;
            }
            seen.append(line).append('\n');
        }
        throw new AssertionError("the probe ended before READY:\n" + seen);
    }

    private static void stop(Process process) throws Exception {
        process.destroyForcibly();
        assertThat(process.waitFor(30, TimeUnit.SECONDS)).isTrue();
        process.getInputStream().close();
        process.getOutputStream().close();
        process.getErrorStream().close();
    }

    private static Path inspectClasses() throws Exception {
        return new File(Inspect.class.getProtectionDomain().getCodeSource().getLocation().toURI()).toPath();
    }

    private static Result inspect(List<String> launcher, long pid) throws Exception {
        return inspect(launcher, pid, inspectClasses().toString());
    }

    private static Result inspect(List<String> launcher, long pid, String classes) throws Exception {
        List<String> command = new ArrayList<>(launcher);
        command.addAll(List.of(JAVA, "-cp", classes, Inspect.class.getName(), Long.toString(pid)));
        Process tool = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(tool.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(tool.waitFor(60, TimeUnit.SECONDS)).isTrue();
        stop(tool);
        return new Result(tool.exitValue(), output);
    }

    @Test
    void printsTheBlockedCallItsValuesAndCauseAndFlagsItStuck() throws Exception {
        Process child = startProbe();
        try {
            Result result = inspect(List.of(), child.pid());
            assertThat(result.exitCode()).as(result.output()).isZero();
            assertThat(result.output())
                    .contains("nativescope: 1 cancellable call(s) in flight, 1 cancel(s) requested but not returned, 1 stuck")
                    .contains("legacy_resize", "STUCK", "request-worker", "tenant=acme", "client went away")
                    .contains("blocked in a wait that is not a context wait")
                    .contains("0 since the cancel");
        } finally {
            stop(child);
        }
    }

    @Test
    void showsBothThreadsOfACallOffloadedFromAVirtualThreadAndThatTheNativeThreadIsBlocked() throws Exception {
        Process child = startProbe("offloaded");
        try {
            Result result = inspect(List.of(), child.pid());
            assertThat(result.exitCode()).as(result.output()).isZero();
            assertThat(result.output())
                    .contains("nativescope: 1 cancellable call(s) in flight, 1 cancel(s) requested but not returned, 1 stuck")
                    .containsPattern("thread +VirtualThread\\[#\\d+,request-worker\\]\\S* \\(virtual\\), offloaded to Thread\\[#\\d+,"
                            + NativeThreads.THREAD_NAME_PREFIX + "\\d+")
                    .contains("blocked in a wait that is not a context wait");
        } finally {
            stop(child);
        }
    }

    @Test
    void aJvmWithoutNativescopeSaysSo() throws Exception {
        Process child = startProbe("idle");
        try {
            Result result = inspect(List.of(), child.pid());
            assertThat(result.exitCode()).as(result.output()).isEqualTo(Inspect.NO_NATIVESCOPE);
            assertThat(result.output()).contains("has no MBean dev.nativescope:type=Diagnostics",
                    "appears after the first call");
        } finally {
            stop(child);
        }
    }

    @Test
    void aProcessThatIsNotAJvmSaysSo() throws Exception {
        Process sleep = new ProcessBuilder("sleep", "60").start();
        try {
            Result result = inspect(List.of(), sleep.pid());
            assertThat(result.exitCode()).as(result.output()).isEqualTo(Inspect.FAILED);
            assertThat(result.output()).contains("pid " + sleep.pid() + " (sleep) is not a Java virtual machine");
        } finally {
            stop(sleep);
        }
    }

    @Test
    void aMissingProcessAndBadArgumentsSaySo() throws Exception {
        Process gone = new ProcessBuilder("true").start();
        gone.waitFor();
        stop(gone);
        Result result = inspect(List.of(), gone.pid());
        assertThat(result.exitCode()).isEqualTo(Inspect.FAILED);
        assertThat(result.output()).contains("no process with pid " + gone.pid());
        assertThat(Inspect.run(new String[] {"abc"}, System.out, new java.io.PrintStream(java.io.OutputStream.nullOutputStream())))
                .isEqualTo(Inspect.USAGE);
    }

    @Test
    void anotherUsersJvmSaysToRunAsThatUser() throws Exception {
        // As root, inspect as "nobody" against our own child JVM: the attach is refused.
        assumeTrue("root".equals(System.getProperty("user.name")) && new File("/usr/sbin/runuser").canExecute(),
                "needs root and runuser to play another user");
        // The tool's classes where "nobody" can read them: a clone or build directory may be private to root.
        Path readable = Files.createTempDirectory("nsc-inspect-classes",
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwxr-xr-x")));
        Process child = startProbe("idle");
        try {
            copyTree(inspectClasses(), readable);
            Result result = inspect(List.of("/usr/sbin/runuser", "-u", "nobody", "--"), child.pid(), readable.toString());
            assertThat(result.exitCode()).as(result.output()).isEqualTo(Inspect.FAILED);
            assertThat(result.output()).contains("belongs to user root", "run as that user");
        } finally {
            stop(child);
            try (Stream<Path> files = Files.walk(readable)) {
                for (Path file : files.sorted(Comparator.reverseOrder()).toList()) {
                    Files.delete(file);
                }
            }
        }
    }

    private static void copyTree(Path from, Path to) throws IOException {
        try (Stream<Path> files = Files.walk(from)) {
            for (Path file : files.toList()) {
                Path target = to.resolve(from.relativize(file).toString());
                if (Files.isDirectory(file)) {
                    Files.createDirectories(target);
                    Files.setPosixFilePermissions(target, PosixFilePermissions.fromString("rwxr-xr-x"));
                } else {
                    Files.copy(file, target);
                    Files.setPosixFilePermissions(target, PosixFilePermissions.fromString("rw-r--r--"));
                }
            }
        }
    }
}
