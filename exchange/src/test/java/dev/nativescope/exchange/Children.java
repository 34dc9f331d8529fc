package dev.nativescope.exchange;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** Starts child processes for the two-process tests: a JVM running {@link ExchangeChild}, or Python. */
final class Children {
    private Children() {
    }

    static Process jvm(String... args) throws IOException {
        return jvm(List.of(), ExchangeChild.class, args);
    }

    /** A JVM with extra options ({@code -Dkey=value}) running {@code main}. */
    static Process jvm(List<String> options, Class<?> main, String... args) throws IOException {
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.add("--enable-native-access=ALL-UNNAMED");
        command.addAll(options);
        String nativeDir = System.getProperty("nativescope.library.path");
        if (nativeDir != null) {
            command.add("-Dnativescope.library.path=" + nativeDir);
        }
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(main.getName());
        command.addAll(List.of(args));
        return new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start();
    }

    static Process python(String script, String... args) throws IOException {
        return python(Map.of(), script, args);
    }

    /** Python with extra environment variables (e.g. NSC_EXCHANGE_CAS). */
    static Process python(Map<String, String> env, String script, String... args) throws IOException {
        List<String> command = new ArrayList<>();
        command.add(System.getProperty("nsc.test.python", "python3"));
        command.add("-c");
        command.add(script);
        command.addAll(List.of(args));
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
        builder.environment().put("PYTHONPATH", System.getProperty("nsc.exchange.python.dir", "src/main/python"));
        builder.environment().put("PYTHONDONTWRITEBYTECODE", "1");
        builder.environment().putAll(env);
        return builder.start();
    }

    /** @return the child's first line of output */
    static String firstLine(Process process) throws IOException {
        BufferedReader reader = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
        String line = reader.readLine();
        if (line == null) {
            throw new IllegalStateException("the child ended without output, exit code " + waitQuietly(process));
        }
        return line;
    }

    private static int waitQuietly(Process process) {
        try {
            return process.waitFor();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return -1;
        }
    }
}
