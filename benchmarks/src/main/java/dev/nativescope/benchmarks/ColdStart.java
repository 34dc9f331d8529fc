package dev.nativescope.benchmarks;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The cold-start benchmark (issue 12 item 6): what the first {@code NativeLibrary.load()}, the first
 * context with a deadline and the first bridged call cost in a fresh JVM. Not JMH: each sample is a
 * new JVM running {@link ColdStartChild}, which times its phases with {@link System#nanoTime()}; this
 * launcher starts them round after round, interleaving the variants (and rotating their order per
 * round, so that none always runs right after another), and prints the median and 90th percentile
 * of every phase plus the process time (start to exit, seen from here).
 *
 * <p>Every run measures its floors beside the library: {@code nothing} (a JVM that only prints) and
 * {@code bare} (a JVM that makes one plain FFM downcall of libc's {@code getpid}, the cost every FFM
 * library pays for its first call). Several library builds can be compared side by side: each
 * {@code --variant name=classpath} is a class path holding nativescope's core, bindings and
 * native-shim jars (e.g. one built from main in a temporary directory and one from a branch).
 * {@code --classes} adds one run per variant under {@code -Xlog:class+load} that counts the classes
 * each phase loads (any thread's, attributed to the phase during which they were logged).
 *
 * <pre>
 * java -cp benchmarks/target/classes dev.nativescope.benchmarks.ColdStart --runs 20 --classes \
 *     --variant before=/tmp/before/core.jar:/tmp/before/bindings.jar:/tmp/before/shim.jar \
 *     --variant after=core/target/...jar:bindings/target/...jar:native-shim/target/...jar
 * </pre>
 * ({@code benchmarks/cold_start.sh} builds those class paths.) Single-threaded.
 */
public final class ColdStart {
    private static final String[] PHASES = {"load", "context", "call", "total", "process"};
    private static final String CHILD = ColdStartChild.class.getName();

    private ColdStart() {
    }

    /** One kind of child JVM: a floor or a library build. */
    private record Variant(String name, String mode, String classPath) {
    }

    public static void main(String[] args) throws Exception {
        int runs = 20;
        boolean classes = false;
        List<String> jvmArgs = new ArrayList<>();
        List<Variant> variants = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--runs" -> runs = Integer.parseInt(args[++i]);
                case "--classes" -> classes = true;
                case "--jvm-arg" -> jvmArgs.add(args[++i]);
                case "--variant" -> {
                    String spec = args[++i];
                    int eq = spec.indexOf('=');
                    if (eq <= 0) {
                        throw new IllegalArgumentException("--variant name=classpath, not " + spec);
                    }
                    variants.add(new Variant(spec.substring(0, eq), "library", spec.substring(eq + 1)));
                }
                default -> throw new IllegalArgumentException("unknown argument " + args[i]
                        + "; usage: ColdStart [--runs N] [--classes] [--jvm-arg ARG]... --variant name=classpath...");
            }
        }
        if (variants.isEmpty()) {
            throw new IllegalArgumentException("give at least one --variant name=classpath (core, bindings and native-shim jars)");
        }
        Path childDir = writeChildClass();
        try {
            run(runs, classes, jvmArgs, variants, childDir);
        } finally {
            try (var paths = Files.walk(childDir)) {
                for (Path p : paths.sorted(java.util.Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(p);
                }
            }
        }
    }

    private static void run(int runs, boolean classes, List<String> jvmArgs, List<Variant> variants, Path childDir)
            throws IOException, InterruptedException {
        List<Variant> all = new ArrayList<>();
        all.add(new Variant("floor: nothing", "nothing", ""));
        all.add(new Variant("floor: bare FFM getpid", "bare", ""));
        all.addAll(variants);

        Map<Variant, Map<String, List<Long>>> samples = new LinkedHashMap<>();
        for (Variant v : all) {
            samples.put(v, new LinkedHashMap<>());
        }
        System.out.printf(Locale.ROOT, "cold start: %d runs of %d variants, java %s, load average %s%n",
                runs, all.size(), System.getProperty("java.version"), loadAverage());
        for (int round = 0; round < runs; round++) {
            for (int k = 0; k < all.size(); k++) {
                Variant v = all.get((k + round) % all.size());
                Map<String, Long> result = runChild(childDir, v, jvmArgs, false).values;
                result.forEach((phase, nanos) -> samples.get(v).computeIfAbsent(phase, p -> new ArrayList<>()).add(nanos));
            }
        }
        System.out.printf(Locale.ROOT, "load average after: %s%n%n", loadAverage());
        report(all, samples);
        if (classes) {
            System.out.println();
            System.out.println("| classes loaded (-Xlog:class+load) | before main | load | context | call | phases total |");
            System.out.println("| --- | ---: | ---: | ---: | ---: | ---: |");
            for (Variant v : all) {
                Map<String, Long> counts = runChild(childDir, v, jvmArgs, true).classCounts;
                long phases = counts.getOrDefault("load", 0L) + counts.getOrDefault("context", 0L)
                        + counts.getOrDefault("call", 0L);
                System.out.printf(Locale.ROOT, "| %s | %d | %s | %s | %s | %d |%n", v.name, counts.getOrDefault("start", 0L),
                        count(counts, "load"), count(counts, "context"), count(counts, "call"), phases);
            }
        }
    }

    private static String count(Map<String, Long> counts, String phase) {
        Long n = counts.get(phase);
        return n == null ? "" : Long.toString(n);
    }

    private static void report(List<Variant> all, Map<Variant, Map<String, List<Long>>> samples) {
        System.out.println("Wall clock, median (p90) in ms; x bare = median total / the bare FFM floor's median total");
        table(all, samples, "", true);
        System.out.println();
        System.out.println("CPU time of the main thread (/proc/thread-self/schedstat), median (p90) in ms;"
                + " process: every thread's, until the phases ended (/proc/self/stat, 10 ms ticks)");
        table(all, samples, "cpu.", false);
        if (all.size() > 3) {
            System.out.println();
            Variant first = all.get(2);
            for (Variant v : all.subList(3, all.size())) {
                for (String prefix : new String[] {"", "cpu."}) {
                    StringBuilder line = new StringBuilder(first.name + " / " + v.name
                            + (prefix.isEmpty() ? " (wall, medians):" : " (cpu, medians):"));
                    for (String phase : PHASES) {
                        List<Long> a = samples.get(first).get(prefix + phase);
                        List<Long> b = samples.get(v).get(prefix + phase);
                        if (a != null && b != null) {
                            line.append(String.format(Locale.ROOT, " %s %.2fx", phase, median(a) / median(b)));
                        }
                    }
                    System.out.println(line);
                }
            }
        }
    }

    private static void table(List<Variant> all, Map<Variant, Map<String, List<Long>>> samples, String prefix, boolean process) {
        double bareTotal = median(samples.get(all.get(1)).get(prefix + "total"));
        System.out.println("| variant | load | first deadline context | first call | total | x bare"
                + (process ? " | process (start to exit) |" : " | process |"));
        System.out.println("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        for (Variant v : all) {
            Map<String, List<Long>> s = samples.get(v);
            StringBuilder row = new StringBuilder("| ").append(v.name);
            for (String phase : new String[] {"load", "context", "call", "total"}) {
                row.append(" | ").append(cell(s.get(prefix + phase)));
            }
            row.append(" | ").append(String.format(Locale.ROOT, "%.2f", median(s.get(prefix + "total")) / bareTotal));
            row.append(" | ").append(cell(s.get(process ? "process" : "cpu.process")));
            System.out.println(row.append(" |"));
        }
    }

    private static String cell(List<Long> values) {
        return values == null ? "" : String.format(Locale.ROOT, "%.1f (%.1f)", median(values) / 1e6, percentile(values, 0.9) / 1e6);
    }

    private record ChildResult(Map<String, Long> values, Map<String, Long> classCounts) {
    }

    private static ChildResult runChild(Path childDir, Variant v, List<String> jvmArgs, boolean countClasses)
            throws IOException, InterruptedException {
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.add("--enable-native-access=ALL-UNNAMED");
        command.addAll(jvmArgs);
        if (countClasses) {
            command.add("-Xlog:class+load=info:stdout");
        }
        command.add("-cp");
        command.add(v.classPath.isEmpty() ? childDir.toString() : childDir + java.io.File.pathSeparator + v.classPath);
        command.add(CHILD);
        command.add(v.mode);
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
        long start = System.nanoTime();
        Process process = builder.start();
        byte[] out;
        try (InputStream in = process.getInputStream()) {
            out = in.readAllBytes();
        }
        if (!process.waitFor(60, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new IllegalStateException(v.name + ": child did not exit within 60 s");
        }
        long processNanos = System.nanoTime() - start;
        String text = new String(out, StandardCharsets.UTF_8);
        if (process.exitValue() != 0) {
            throw new IllegalStateException(v.name + ": child exited with " + process.exitValue() + ":\n" + text);
        }
        Map<String, Long> values = new LinkedHashMap<>();
        Map<String, Long> counts = new LinkedHashMap<>();
        String phase = "start";
        for (String line : text.split("\n")) {
            if (line.startsWith("@")) {
                String marker = line.substring(1).split(" ")[0];
                // The first phase begins right after "@start", without a marker of its own.
                phase = !marker.equals("start") ? marker
                        : v.mode.equals("library") ? "load" : v.mode.equals("bare") ? "call" : "end";
            } else if (line.startsWith("RESULT ")) {
                for (String pair : line.substring("RESULT ".length()).trim().split(" ")) {
                    int eq = pair.indexOf('=');
                    values.put(pair.substring(0, eq), Long.parseLong(pair.substring(eq + 1)));
                }
            } else if (countClasses && line.contains(" source: ")) {
                // Classes logged before "@start" belong to the JVM's start and the child's own class.
                counts.merge(phase, 1L, Long::sum);
            }
        }
        if (!values.containsKey("total")) {
            throw new IllegalStateException(v.name + ": no RESULT line in the child's output:\n" + text);
        }
        values.put("process", processNanos);
        return new ChildResult(values, counts);
    }

    /** The child runs from a directory holding only its own classes, ahead of the variant's jars. */
    private static Path writeChildClass() throws IOException {
        Path dir = Files.createTempDirectory("nsc-coldstart-");
        for (String name : new String[] {CHILD, CHILD + "$Library"}) {
            String resource = name.replace('.', '/') + ".class";
            Path file = dir.resolve(resource);
            Files.createDirectories(file.getParent());
            try (InputStream in = ColdStart.class.getClassLoader().getResourceAsStream(resource)) {
                if (in == null) {
                    throw new IllegalStateException(resource + " not found next to " + ColdStart.class.getName());
                }
                Files.copy(in, file);
            }
        }
        return dir;
    }

    private static String loadAverage() {
        try {
            String[] fields = Files.readString(Path.of("/proc/loadavg")).trim().split(" ");
            return fields[0] + " " + fields[1] + " " + fields[2];
        } catch (IOException e) {
            return "?";
        }
    }

    static double median(List<Long> values) {
        return percentile(values, 0.5);
    }

    /** Nearest-rank percentile; the median of an even count is the mean of the middle two. */
    static double percentile(List<Long> values, double p) {
        long[] sorted = values.stream().mapToLong(Long::longValue).sorted().toArray();
        if (p == 0.5) {
            int n = sorted.length;
            return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0;
        }
        int rank = (int) Math.ceil(p * sorted.length);
        return sorted[Math.max(0, Math.min(sorted.length - 1, rank - 1))];
    }
}
