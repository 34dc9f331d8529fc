package dev.nativescope.examples.soak;

import dev.nativescope.library.NativeLibrary;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * {@code ./run soak [minutes]}: a randomized mix of contexts, native calls, ONNX Runtime runs,
 * interrupts, structured task scopes and mapped tensors for a given time, checking invariants after
 * every operation and sampling the process's resources once per second. It exits non-zero when an
 * invariant failed or a resource kept growing (last third of the run against the middle third; the
 * first third is warm-up: JIT, pools and the heap settle there), and with 2 when the ONNX models
 * cannot be written (python3-onnx missing).
 *
 * <p>Output: {@code soak.csv} (one row per second) and {@code soak.svg} (one panel per resource)
 * in the directory given as second argument.
 *
 * <p>The parts: {@link Op} (the mix) and {@link Operations} (running and checking each, with
 * {@link DenseCalls}, {@link CancelChecks}, {@link ScopeOperation} and {@link SoakOrt}), {@link Tally}
 * (the counts), {@link Sampler} (the once-a-second resource rows), {@link Growth} (the verdicts) and
 * {@link Svg} (the chart); this class starts the workers and reports.
 */
public final class Soak {
    /** Workers: 3 keeps a 2-core machine busy without starving the sampler and the canceller. */
    private static final int WORKERS = 3;
    /** The shared ORT chain runs this long uncancelled (at the fastest node time): a completed run is a lost stop. */
    private static final long ORT_LONG_RUN_NANOS = TimeUnit.SECONDS.toNanos(3);
    /** The chain each close-churn operation opens: far longer than the close delay (below 30 ms), cheap to load. */
    private static final long ORT_CHURN_RUN_NANOS = TimeUnit.MILLISECONDS.toNanos(300);

    private final long endNanos;
    private final Tally tally = new Tally();
    private final Operations operations;

    private Soak(long endNanos, Path tmpDir, SoakOrt ort) {
        this.endNanos = endNanos;
        this.operations = new Operations(endNanos, tmpDir, ort, tally);
    }

    public static void main(String[] args) throws Exception {
        double minutes = args.length > 0 ? Double.parseDouble(args[0]) : 10;
        Path outDir = Path.of(args.length > 1 ? args[1] : "target/soak/" + System.currentTimeMillis());
        Files.createDirectories(outDir);
        Path tmpDir = Files.createDirectories(outDir.resolve("npy-tmp"));
        Path modelDir = Files.createDirectories(outDir.resolve("onnx-models"));
        NativeLibrary.load();
        SoakOrt ort;
        try {
            ort = SoakOrt.open(modelDir, ORT_LONG_RUN_NANOS, ORT_CHURN_RUN_NANOS);
        } catch (SoakOrt.SetupException e) {
            System.out.println("[soak] cannot set up the ONNX Runtime operations: " + e.getMessage());
            System.exit(2);
            return;
        }
        System.out.printf(Locale.ROOT, "[soak] ONNX Runtime: one %dx%<d MatMul node %.3f ms (%.3f ms at %d rows);"
                        + " shared long chain %d nodes (>= %.1f s uncancelled), churn chain %d nodes (>= %d ms)%n",
                SoakOrt.CHAIN_SIZE, ort.nodeNanos / 1e6, ort.churnNodeNanos / 1e6, SoakOrt.CHURN_ROWS,
                ort.longChainNodes, ort.longChainNanos() / 1e9, ort.churnChainNodes, ort.churnChainNanos() / 1_000_000);
        // A chain that could complete before its trigger would make a timely stop look like a lost one.
        if (ort.longChainNanos() < 4 * TimeUnit.MILLISECONDS.toNanos(Operations.LONGEST_TRIGGER_MILLIS)
                || ort.churnChainNanos() < 4 * TimeUnit.MILLISECONDS.toNanos(Operations.MID_CALL_TRIGGER_MILLIS)) {
            System.out.println("[soak] the ORT chains run too briefly to tell a stop from a completion (triggers come"
                    + " up to " + Operations.LONGEST_TRIGGER_MILLIS + " ms into a run of the long chain and up to "
                    + Operations.MID_CALL_TRIGGER_MILLIS + " ms into one of the churn chain)");
            ort.close();
            System.exit(2);
        }
        long durationNanos = (long) (minutes * 60e9);
        long start = System.nanoTime();
        Soak soak = new Soak(start + durationNanos, tmpDir, ort);
        System.out.printf(Locale.ROOT, "[soak] %.1f min, %d workers, %d CPUs, JDK %s; output in %s%n", minutes, WORKERS,
                Runtime.getRuntime().availableProcessors(), Runtime.version(), outDir.toAbsolutePath());
        int exit = soak.runAll(start, outDir);
        deleteTree(tmpDir);
        deleteTree(modelDir);
        System.exit(exit);
    }

    private int runAll(long start, Path outDir) throws Exception {
        List<Thread> workers = new ArrayList<>();
        for (int i = 0; i < WORKERS; i++) {
            workers.add(Thread.ofPlatform().name("soak-worker-" + i).start(operations::workerLoop));
        }
        Path csv = outDir.resolve("soak.csv");
        List<long[]> samples = Sampler.run(start, endNanos, csv, tally);
        for (Thread worker : workers) {
            // Each worker ends after its current operation; a cancelled one is bounded by 5 s.
            worker.join(TimeUnit.SECONDS.toMillis(30));
            if (worker.isAlive()) {
                tally.violation("worker " + worker.getName() + " did not finish within 30 s of the end");
            }
        }
        operations.shutdown();
        operations.checkOrtClosedEverything();
        Path svg = outDir.resolve("soak.svg");
        Files.writeString(svg, Svg.render(samples));
        System.out.println();
        tally.printSummary();
        boolean grew = Growth.report(samples);
        System.out.println("[soak] csv: " + csv.toAbsolutePath());
        System.out.println("[soak] svg: " + svg.toAbsolutePath());
        boolean ok = tally.violations.get() == 0 && !grew;
        System.out.println("[soak] result: " + (ok ? "PASS" : "FAIL")
                + (tally.violations.get() > 0 ? " (" + tally.violations.get() + " invariant violations)" : "")
                + (grew ? " (resource growth)" : ""));
        return ok ? 0 : 1;
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(dir)) {
            for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
