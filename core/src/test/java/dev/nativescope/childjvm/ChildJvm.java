package dev.nativescope.childjvm;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs a main class in a child JVM of the same JDK with the test class path, and captures its output. */
public final class ChildJvm {
    private static final long TIMEOUT_SECONDS = 120;

    private ChildJvm() {
    }

    /** The output (stdout and stderr together) and exit code of a child JVM. */
    public record Result(int exitCode, String output) {
    }

    /** @return the entries of this JVM's class path */
    public static List<String> classPathEntries() {
        return Arrays.stream(System.getProperty("java.class.path").split(java.io.File.pathSeparator))
                .filter(entry -> !entry.isBlank())
                .toList();
    }

    /**
     * @param jvmOptions options before the main class
     * @param excludeFromClassPath class path entries to leave out (e.g. those put on the module path)
     * @param mainClass the main class
     * @param args its arguments
     */
    public static Result run(List<String> jvmOptions, List<String> excludeFromClassPath, String mainClass,
                             String... args) throws IOException, InterruptedException {
        return runUnder(List.of(), jvmOptions, excludeFromClassPath, mainClass, args);
    }

    /**
     * Like {@link #run}, with the {@code java} command given as arguments to {@code launcher}: a
     * command that sets up the child's environment and then runs its arguments (e.g. {@code
     * prlimit --nofile=256 --}, or {@code sh -c 'ulimit -v 1000000 && exec "$0" "$@"'}).
     */
    public static Result runUnder(List<String> launcher, List<String> jvmOptions, List<String> excludeFromClassPath,
                                  String mainClass, String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(launcher);
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.addAll(jvmOptions);
        List<String> classPath = new ArrayList<>(classPathEntries());
        classPath.removeAll(excludeFromClassPath);
        command.add("-cp");
        command.add(String.join(java.io.File.pathSeparator, classPath));
        command.add(mainClass);
        command.addAll(List.of(args));
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        // Read before waiting: a child that fills the pipe would otherwise block forever.
        byte[] output = process.getInputStream().readAllBytes();
        if (!process.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new AssertionError("child JVM did not finish within " + TIMEOUT_SECONDS + " s: " + command);
        }
        return new Result(process.exitValue(), new String(output, StandardCharsets.UTF_8));
    }
}
