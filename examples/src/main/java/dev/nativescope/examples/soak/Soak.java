package dev.nativescope.examples.soak;

import ai.onnxruntime.OrtException;
import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.ContextKey;
import dev.nativescope.DeadlineExceededException;
import dev.nativescope.reference.EventFd;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.call.NativeResources;
import dev.nativescope.reference.PredictionStats;
import dev.nativescope.reference.ReferencePredictors;
import dev.nativescope.onnxruntime.OrtPredictor;
import dev.nativescope.onnxruntime.OrtResources;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.io.MappedFile;
import dev.nativescope.tensor.npy.Npy;
import dev.nativescope.tensor.npy.NpyFile;
import dev.nativescope.tensor.Tensor;
import dev.nativescope.testing.ProcSelf;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.lang.management.MemoryUsage;
import java.lang.management.ThreadMXBean;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.OptionalLong;
import java.util.concurrent.Callable;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.StructuredTaskScope;
import java.util.concurrent.StructuredTaskScope.Joiner;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;
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
 */
public final class Soak {
    static final ContextKey<String> TRACE_ID = ContextKey.ofString("trace-id");

    /** Workers: 3 keeps a 2-core machine busy without starving the sampler and the canceller. */
    private static final int WORKERS = 3;
    /** A cancelled call must be back within this long after its trigger (cancel, deadline, interrupt). */
    private static final long RETURN_BOUND_NANOS = TimeUnit.SECONDS.toNanos(5);
    /** Dense shape of the checked calls: small enough for many calls per second, big enough to tile. */
    private static final int N = 48;
    /** Dense repeat count of calls meant to be cancelled: far longer than any cancel delay. */
    private static final long LONG_REPEAT = 1_000_000;
    private static final int MAX_PRINTED_VIOLATIONS = 20;
    /** The longest delay before any trigger (a scope's timeout or failing sibling). */
    private static final long LONGEST_TRIGGER_MILLIS = 100;
    /** The longest delay before a cancel, deadline, interrupt or session close that stops a call mid-way. */
    private static final int MID_CALL_TRIGGER_MILLIS = 30;
    /** The shared ORT chain runs this long uncancelled (at the fastest node time): a completed run is a lost stop. */
    private static final long ORT_LONG_RUN_NANOS = TimeUnit.SECONDS.toNanos(3);
    /** The chain each close-churn operation opens: far longer than the close delay (below 30 ms), cheap to load. */
    private static final long ORT_CHURN_RUN_NANOS = TimeUnit.MILLISECONDS.toNanos(300);

    private final long endNanos;
    private final Path tmpDir;
    private final ScheduledThreadPoolExecutor scheduler;
    private final Arena shared = Arena.ofShared();
    private final MemorySegment x;
    private final MemorySegment w;
    private final MemorySegment bias;
    private final float[] reference;
    private final float[] xValues;
    private final SoakOrt ort;

    final LongAdder callsDone = new LongAdder();
    final LongAdder cancelsDone = new LongAdder();
    final AtomicLong violations = new AtomicLong();
    final LongAdder[] opCounts = new LongAdder[Op.values().length];
    /** Wall time spent in each operation, for the summary: what the mix's throughput goes into. */
    final LongAdder[] opNanos = new LongAdder[Op.values().length];
    private final AtomicLong fileSeq = new AtomicLong();
    private final AtomicLong traceSeq = new AtomicLong();

    /**
     * The operations, with their weight in the random draw. The nativescope-only operations weigh 2
     * each; the ONNX Runtime ones 9 in all (about a quarter of the draws): 2 for checked runs, 1 for
     * each way of stopping a run and for each kind of session churn, since a stopped chain run or a
     * session load costs far more than a checked MLP run.
     */
    enum Op {
        DENSE_OK(2), CANCEL_BEFORE(2), DEADLINE_BEFORE(2), CANCEL_MID(2), DEADLINE_MID(2), FD_SIGNALLED(2),
        FD_CANCELLED(2), FD_DEADLINE(2), INTERRUPT(2), TREE_CANCEL(2), SCOPE_TIMEOUT(2), SCOPE_SIBLING_FAILS(2),
        NPY_ROUNDTRIP(2),
        ORT_OK(2), ORT_CANCEL_MID(1), ORT_DEADLINE_MID(1), ORT_INTERRUPT(1), ORT_SCOPE_TIMEOUT(1),
        ORT_SCOPE_SIBLING_FAILS(1), ORT_SESSION_CHURN(1), ORT_CLOSE_MID(1);

        final int weight;

        Op(int weight) {
            this.weight = weight;
        }

        /**
         * Each operation {@code weight} times: a uniform draw from it is the weighted draw. The
         * system property {@code nsc.soak.ops} (comma-separated names) narrows the mix to those
         * operations, to find which one makes a resource grow.
         */
        static final Op[] DRAW = draw(System.getProperty("nsc.soak.ops", ""));

        static Op[] draw(String only) {
            List<Op> chosen = only.isBlank() ? List.of(values())
                    : Arrays.stream(only.split(",")).map(name -> valueOf(name.strip().toUpperCase(Locale.ROOT))).toList();
            return chosen.stream().flatMap(op -> Stream.generate(() -> op).limit(op.weight)).toArray(Op[]::new);
        }
    }

    /** Thrown by checks; counted as a violation by the worker loop. */
    static final class Violation extends RuntimeException {
        Violation(String message) {
            super(message);
        }
    }

    private Soak(long endNanos, Path tmpDir, SoakOrt ort) {
        this.endNanos = endNanos;
        this.tmpDir = tmpDir;
        this.ort = ort;
        // One scheduler thread fires every cancel, signal and interrupt from outside the worker.
        this.scheduler = new ScheduledThreadPoolExecutor(1, r -> Thread.ofPlatform().daemon().name("soak-trigger").unstarted(r));
        this.scheduler.setRemoveOnCancelPolicy(true);
        for (int i = 0; i < opCounts.length; i++) {
            opCounts[i] = new LongAdder();
            opNanos[i] = new LongAdder();
        }
        // Fixed input (seeded), so every completed call must reproduce the same output.
        java.util.Random random = new java.util.Random(7);
        xValues = new float[N * N];
        float[] wValues = new float[N * N];
        float[] bValues = new float[N];
        for (int i = 0; i < N * N; i++) {
            xValues[i] = random.nextFloat() - 0.5f;
            wValues[i] = random.nextFloat() - 0.5f;
        }
        for (int i = 0; i < N; i++) {
            bValues[i] = random.nextFloat() - 0.5f;
        }
        x = shared.allocateFrom(ValueLayout.JAVA_FLOAT, xValues);
        w = shared.allocateFrom(ValueLayout.JAVA_FLOAT, wValues);
        bias = shared.allocateFrom(ValueLayout.JAVA_FLOAT, bValues);
        // The reference is computed in Java (double accumulation): independent of the native code.
        reference = new float[N * N];
        for (int r = 0; r < N; r++) {
            for (int c = 0; c < N; c++) {
                double sum = bValues[c];
                for (int k = 0; k < N; k++) {
                    sum += (double) xValues[r * N + k] * wValues[k * N + c];
                }
                reference[r * N + c] = (float) Math.max(0.0, sum);
            }
        }
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
        if (ort.longChainNanos() < 4 * TimeUnit.MILLISECONDS.toNanos(LONGEST_TRIGGER_MILLIS)
                || ort.churnChainNanos() < 4 * TimeUnit.MILLISECONDS.toNanos(MID_CALL_TRIGGER_MILLIS)) {
            System.out.println("[soak] the ORT chains run too briefly to tell a stop from a completion (triggers come"
                    + " up to " + LONGEST_TRIGGER_MILLIS + " ms into a run of the long chain and up to "
                    + MID_CALL_TRIGGER_MILLIS + " ms into one of the churn chain)");
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
            workers.add(Thread.ofPlatform().name("soak-worker-" + i).start(this::workerLoop));
        }
        Path csv = outDir.resolve("soak.csv");
        List<long[]> samples = new ArrayList<>();
        ThreadMXBean threads = ManagementFactory.getThreadMXBean();
        MemoryMXBean memory = ManagementFactory.getMemoryMXBean();
        try (PrintWriter out = new PrintWriter(Files.newBufferedWriter(csv, StandardCharsets.UTF_8))) {
            out.println(String.join(",", COLUMNS));
            long next = start;
            int second = 0;
            while (true) {
                next += 1_000_000_000L;
                long sleep = next - System.nanoTime();
                if (sleep > 0) {
                    TimeUnit.NANOSECONDS.sleep(sleep);
                }
                second++;
                // An occasional full GC so that value blocks retired by cleaners and the heap are
                // measured settled at least every 30 s, not only when the young generation fills.
                // The same for native memory: glibc keeps what threads free in their arenas, and the
                // scopes' short-lived threads running ONNX Runtime spread that over many arenas, so
                // RSS crept up by 0.3 MB/s with malloc's in-use bytes flat. malloc_trim hands the
                // free part back; the malloc columns show both parts either way.
                if (second % 30 == 0) {
                    System.gc();
                    GlibcMalloc.trim();
                }
                NativeResources res = NativeResources.snapshot();
                OrtResources ortRes = OrtResources.snapshot();
                MemoryUsage heap = memory.getHeapMemoryUsage();
                GlibcMalloc.Usage malloc = GlibcMalloc.usage();
                long[] row = {second, rssKib(), heap.getUsed() / 1024, heap.getCommitted() / 1024, countFds(),
                    threads.getThreadCount(), res.javaNativeBytes(), res.liveCallFrames(), res.liveValueBlocks(),
                    res.shimLiveFds(), res.shimLiveHooks(), ortRes.openRunObjects(), ortRes.openPredictors(),
                    callsDone.sum(), cancelsDone.sum(), violations.get(), malloc.inUseBytes() / 1024,
                    malloc.freeBytes() / 1024};
                samples.add(row);
                out.println(Arrays.stream(row).mapToObj(Long::toString).reduce((a, b) -> a + "," + b).orElseThrow());
                out.flush();
                if (second % 10 == 0) {
                    System.out.printf(Locale.ROOT, "[soak] %4d s: calls %d, cancels %d, violations %d | rss %d MiB,"
                                    + " malloc %d MiB in use + %d MiB free, heap %d of %d MiB, fds %d, threads %d, native %d B, frames %d, value blocks %d,"
                                    + " shim fds %d, hooks %d, ort run objects %d, ort predictors %d%n", row[0],
                            row[CALLS_DONE], row[CANCELS_DONE], row[VIOLATIONS], row[RSS_KIB] / 1024,
                            row[MALLOC_IN_USE_KIB] / 1024, row[MALLOC_FREE_KIB] / 1024, row[HEAP_USED_KIB] / 1024, row[HEAP_COMMITTED_KIB] / 1024, row[FDS], row[THREADS], row[JAVA_NATIVE_BYTES],
                            row[LIVE_CALL_FRAMES], row[LIVE_VALUE_BLOCKS], row[SHIM_LIVE_FDS], row[SHIM_LIVE_HOOKS],
                            row[ORT_OPEN_RUN_OBJECTS], row[ORT_OPEN_PREDICTORS]);
                }
                if (System.nanoTime() >= endNanos) {
                    break;
                }
            }
        }
        for (Thread worker : workers) {
            // Each worker ends after its current operation; a cancelled one is bounded by 5 s.
            worker.join(TimeUnit.SECONDS.toMillis(30));
            if (worker.isAlive()) {
                violation("worker " + worker.getName() + " did not finish within 30 s of the end");
            }
        }
        scheduler.shutdownNow();
        checkOrtClosedEverything();
        Path svg = outDir.resolve("soak.svg");
        Files.writeString(svg, Svg.render(samples));
        System.out.println();
        System.out.println("[soak] operations (count, mean ms): " + Arrays.stream(Op.values())
                .map(op -> String.format(Locale.ROOT, "%s=%d (%.1f)", op.name().toLowerCase(Locale.ROOT),
                        opCounts[op.ordinal()].sum(),
                        opNanos[op.ordinal()].sum() / 1e6 / Math.max(1, opCounts[op.ordinal()].sum())))
                .reduce((a, b) -> a + " " + b).orElse(""));
        System.out.printf(Locale.ROOT, "[soak] calls %d, cancelled %d, violations %d%n", callsDone.sum(),
                cancelsDone.sum(), violations.get());
        boolean grew = Growth.report(samples);
        System.out.println("[soak] csv: " + csv.toAbsolutePath());
        System.out.println("[soak] svg: " + svg.toAbsolutePath());
        boolean ok = violations.get() == 0 && !grew;
        System.out.println("[soak] result: " + (ok ? "PASS" : "FAIL")
                + (violations.get() > 0 ? " (" + violations.get() + " invariant violations)" : "")
                + (grew ? " (resource growth)" : ""));
        return ok ? 0 : 1;
    }

    static final String[] COLUMNS = {"time_s", "rss_kib", "heap_used_kib", "heap_committed_kib", "fds", "threads",
        "java_native_bytes",
        "live_call_frames", "live_value_blocks", "shim_live_fds", "shim_live_hooks", "ort_open_run_objects",
        "ort_open_predictors", "calls_done", "cancels_done", "violations", "malloc_in_use_kib", "malloc_free_kib"};
    static final int RSS_KIB = 1;
    static final int HEAP_USED_KIB = 2;
    /** Part of RSS once touched: heap growth shows in RSS without being a native leak. */
    static final int HEAP_COMMITTED_KIB = 3;
    static final int FDS = 4;
    static final int THREADS = 5;
    static final int JAVA_NATIVE_BYTES = 6;
    static final int LIVE_CALL_FRAMES = 7;
    static final int LIVE_VALUE_BLOCKS = 8;
    static final int SHIM_LIVE_FDS = 9;
    static final int SHIM_LIVE_HOOKS = 10;
    static final int ORT_OPEN_RUN_OBJECTS = 11;
    static final int ORT_OPEN_PREDICTORS = 12;
    static final int CALLS_DONE = 13;
    static final int CANCELS_DONE = 14;
    static final int VIOLATIONS = 15;
    /** glibc malloc: bytes handed out and not freed, what a native leak (ours or ONNX Runtime's) grows. */
    static final int MALLOC_IN_USE_KIB = 16;
    /** glibc malloc: freed bytes its arenas keep; between trims this shows in RSS without being a leak. */
    static final int MALLOC_FREE_KIB = 17;

    /**
     * Once every run has ended, the per-run ORT objects must all be closed: exactly, not as a trend.
     * Then the shared predictors close, and with them the last session: every churned one was closed.
     */
    private void checkOrtClosedEverything() throws OrtException {
        long openRunObjects = OrtResources.snapshot().openRunObjects();
        if (openRunObjects != 0) {
            violation(openRunObjects + " per-run ORT objects still open after every run ended");
        }
        ort.close();
        long openPredictors = OrtResources.snapshot().openPredictors();
        if (openPredictors != 0) {
            violation(openPredictors + " ORT predictors (sessions) still open after the soak closed its own");
        }
    }

    // ---------------------------------------------------------------- workers

    /** What a worker's scheduled interrupt may hit: only the operation it was scheduled for. */
    static final class InterruptGuard {
        private final Thread thread;
        private long armedOp = -1;

        InterruptGuard(Thread thread) {
            this.thread = thread;
        }

        synchronized void arm(long op) {
            armedOp = op;
        }

        synchronized boolean interruptIf(long op) {
            if (armedOp != op) {
                return false;
            }
            thread.interrupt();
            return true;
        }

        void disarm() {
            synchronized (this) {
                armedOp = -1;
            }
            // An interrupt that landed after the call returned must not leak into the next operation.
            Thread.interrupted();
        }
    }

    private void workerLoop() {
        InterruptGuard guard = new InterruptGuard(Thread.currentThread());
        long opSeq = 0;
        while (System.nanoTime() < endNanos) {
            Op op = Op.DRAW[ThreadLocalRandom.current().nextInt(Op.DRAW.length)];
            opSeq++;
            long began = System.nanoTime();
            try {
                runOp(op, guard, opSeq);
                opCounts[op.ordinal()].increment();
                opNanos[op.ordinal()].add(System.nanoTime() - began);
            } catch (Violation v) {
                violation(op + ": " + v.getMessage());
            } catch (Throwable t) {
                violation(op + ": unexpected " + t);
                if (violations.get() <= MAX_PRINTED_VIOLATIONS) {
                    t.printStackTrace(System.out);
                }
            } finally {
                guard.disarm();
            }
        }
    }

    void violation(String message) {
        long n = violations.incrementAndGet();
        if (n <= MAX_PRINTED_VIOLATIONS) {
            System.out.println("[soak] VIOLATION " + n + ": " + message);
        }
    }

    private void runOp(Op op, InterruptGuard guard, long opSeq) throws Exception {
        ThreadLocalRandom random = ThreadLocalRandom.current();
        String trace = "t-" + traceSeq.incrementAndGet();
        Context base = Context.background().withValue(TRACE_ID, trace);
        switch (op) {
            case DENSE_OK -> {
                // Random depth of cancellable and value layers above the call; nothing cancels it.
                try (CancellableContext ctx = randomTree(base, random).withTimeout(Duration.ofSeconds(60))) {
                    Context leaf = ctx.withValue(TRACE_ID, trace + "-leaf");
                    denseChecked(leaf, x, trace + "-leaf");
                }
            }
            case CANCEL_BEFORE -> {
                try (CancellableContext ctx = base.withCancel()) {
                    Context child = ctx.withValue(TRACE_ID, trace + "-child").withCancel();
                    ctx.cancel();
                    expectCancelled(child, false, System.nanoTime(), trace + "-child", (c, r) -> dense(c, LONG_REPEAT, r));
                }
            }
            case DEADLINE_BEFORE -> {
                try (CancellableContext ctx = base.withDeadlineNanoTime(System.nanoTime() - 1)) {
                    expectCancelled(ctx, true, System.nanoTime(), trace, (c, r) -> dense(c, LONG_REPEAT, r));
                }
            }
            case CANCEL_MID -> {
                try (CancellableContext ctx = base.withCancel()) {
                    AtomicLong firedAt = cancelLater(ctx, random.nextInt(0, MID_CALL_TRIGGER_MILLIS));
                    expectCancelled(ctx, false, firedAt, trace, (c, r) -> dense(c, LONG_REPEAT, r));
                }
            }
            case DEADLINE_MID -> {
                try (CancellableContext ctx = base.withTimeout(
                        Duration.ofMillis(random.nextInt(1, MID_CALL_TRIGGER_MILLIS)))) {
                    long deadline = ctx.deadlineNanoTime().orElseThrow();
                    expectCancelled(ctx, true, deadline, trace,
                            (c, r) -> ReferencePredictors.spin(c, null, r));
                }
            }
            case FD_SIGNALLED -> {
                try (EventFd fd = EventFd.create();
                     CancellableContext ctx = base.withTimeout(Duration.ofSeconds(60))) {
                    long value = random.nextLong(1, 1000);
                    scheduler.schedule(() -> fd.signal(value), random.nextInt(0, 20), TimeUnit.MILLISECONDS);
                    PredictionStats[] stats = new PredictionStats[1];
                    OptionalLong read = ReferencePredictors.awaitFd(ctx, fd.fd(), null, s -> stats[0] = s);
                    callsDone.increment();
                    if (read.isEmpty() || read.getAsLong() != value) {
                        throw new Violation("awaitFd read " + read + ", signalled " + value);
                    }
                    checkTrace(stats[0], trace);
                    // The wait returned only after the one signal task wrote, so closing the fd here
                    // cannot race with it.
                }
            }
            case FD_CANCELLED -> {
                try (EventFd fd = EventFd.create(); CancellableContext ctx = base.withCancel()) {
                    AtomicLong firedAt = cancelLater(ctx, random.nextInt(0, MID_CALL_TRIGGER_MILLIS));
                    expectCancelled(ctx, false, firedAt, trace, (c, r) -> ReferencePredictors.awaitFd(c, fd.fd(), null, r));
                }
            }
            case FD_DEADLINE -> {
                try (EventFd fd = EventFd.create();
                     CancellableContext ctx = base.withTimeout(
                             Duration.ofMillis(random.nextInt(1, MID_CALL_TRIGGER_MILLIS)))) {
                    long deadline = ctx.deadlineNanoTime().orElseThrow();
                    expectCancelled(ctx, true, deadline, trace, (c, r) -> ReferencePredictors.awaitFd(c, fd.fd(), null, r));
                }
            }
            case INTERRUPT -> interruptMid(guard, opSeq, base, random, "spin", false,
                    () -> ReferencePredictors.spin(Context.current(), null, null));
            case TREE_CANCEL -> {
                // root -> (value) -> withCancel -> withTimeout(long) -> (value) -> leaf; cancelling
                // the root from another thread must reach the call running in the leaf.
                try (CancellableContext root = base.withCancel()) {
                    CancellableContext mid = root.withValue(TRACE_ID, trace + "-mid").withCancel();
                    CancellableContext deep = mid.withTimeout(Duration.ofSeconds(60));
                    Context leaf = deep.withValue(TRACE_ID, trace + "-leaf");
                    AtomicLong firedAt = cancelLater(root, random.nextInt(0, MID_CALL_TRIGGER_MILLIS));
                    expectCancelled(leaf, false, firedAt, trace + "-leaf", (c, r) -> dense(c, LONG_REPEAT, r));
                    if (!mid.isDone() || !deep.isDone() || deep.cause() != root.cause()) {
                        throw new Violation("a descendant of a cancelled root is not done with the root's cause");
                    }
                    deep.close();
                    mid.close();
                }
            }
            case SCOPE_TIMEOUT, SCOPE_SIBLING_FAILS -> scope(op == Op.SCOPE_SIBLING_FAILS, false, base, trace, random);
            case NPY_ROUNDTRIP -> npyRoundTrip(trace);
            case ORT_OK -> {
                // The shared MLP session under a random tree: the run registers on every layer and must
                // leave nothing behind, and its output must match the Java reference.
                try (CancellableContext ctx = randomTree(base, random).withTimeout(Duration.ofSeconds(60))) {
                    ort.mlpChecked(ort.mlp, ctx);
                    callsDone.increment();
                }
            }
            case ORT_CANCEL_MID -> {
                try (CancellableContext ctx = base.withCancel()) {
                    AtomicLong firedAt = cancelLater(ctx, random.nextInt(0, MID_CALL_TRIGGER_MILLIS));
                    CancellationException e = expectCancelled(ctx, false, firedAt, trace, (c, r) -> ortLongChain(c));
                    // OrtPredictor's contract: the exception's cause is the context's cause.
                    if (e.getCause() != ctx.cause()) {
                        throw new Violation("cancelled ORT run's cause is " + e.getCause() + ", the context's "
                                + ctx.cause());
                    }
                }
            }
            case ORT_DEADLINE_MID -> {
                try (CancellableContext ctx = base.withTimeout(
                        Duration.ofMillis(random.nextInt(1, MID_CALL_TRIGGER_MILLIS)))) {
                    long deadline = ctx.deadlineNanoTime().orElseThrow();
                    expectCancelled(ctx, true, deadline, trace, (c, r) -> ortLongChain(c));
                }
            }
            case ORT_INTERRUPT -> interruptMid(guard, opSeq, base, random, "ORT run", true,
                    () -> ortLongChain(Context.current()));
            case ORT_SCOPE_TIMEOUT, ORT_SCOPE_SIBLING_FAILS ->
                    scope(op == Op.ORT_SCOPE_SIBLING_FAILS, true, base, trace, random);
            case ORT_SESSION_CHURN -> {
                // A session of its own, opened, run (checked) and closed; after the close it must refuse runs.
                OrtPredictor own = ort.openMlp();
                try {
                    ort.mlpChecked(own, base);
                    callsDone.increment();
                } finally {
                    own.close();
                }
                try {
                    ort.mlpChecked(own, base);
                    throw new Violation("a closed OrtPredictor ran");
                } catch (IllegalStateException expected) {
                    // the contract: runs started after close() throw IllegalStateException
                }
            }
            case ORT_CLOSE_MID -> closeMid(base, random);
        }
    }

    /** The shared long chain, which only a stop ends within seconds; ORT failing otherwise is a violation. */
    private Object ortLongChain(Context ctx) {
        try {
            ort.longChainRun(ctx);
        } catch (OrtException e) {
            throw new Violation("ORT failed instead of being stopped: " + e);
        }
        return "a completed ORT chain run";
    }

    /**
     * Interrupts this worker from the trigger thread 0-30 ms into {@code call}, which only an
     * interrupt ends: it must end with a {@link CancellationException} caused by an
     * {@link InterruptedException}, within the bound. For ORT, whose contract says so, the thread's
     * interrupt status must still be set afterwards.
     */
    private void interruptMid(InterruptGuard guard, long opSeq, Context base, ThreadLocalRandom random, String what,
                              boolean keepsInterruptStatus, Callable<Object> call) throws Exception {
        AtomicLong firedAt = new AtomicLong(Long.MAX_VALUE);
        guard.arm(opSeq);
        scheduler.schedule(() -> {
            long now = System.nanoTime();
            if (guard.interruptIf(opSeq)) {
                firedAt.set(now);
            }
        }, random.nextInt(0, MID_CALL_TRIGGER_MILLIS), TimeUnit.MILLISECONDS);
        long began = System.nanoTime();
        try {
            base.call(call::call);
            throw new Violation(what + " returned normally although only an interrupt could stop it");
        } catch (DeadlineExceededException e) {
            throw new Violation("interrupted " + what + " ended with a deadline: " + e);
        } catch (CancellationException e) {
            callsDone.increment();
            cancelsDone.increment();
            if (!(e.getCause() instanceof InterruptedException)) {
                throw new Violation("interrupted " + what + " ended with cause " + e.getCause());
            }
            if (keepsInterruptStatus && !Thread.currentThread().isInterrupted()) {
                throw new Violation("interrupted " + what + " cleared the thread's interrupt status");
            }
            long late = System.nanoTime() - Math.min(firedAt.get(), System.nanoTime());
            if (late > RETURN_BOUND_NANOS || System.nanoTime() - began > RETURN_BOUND_NANOS + 100_000_000L) {
                throw new Violation("interrupted " + what + " returned " + late / 1_000_000 + " ms after the interrupt");
            }
        } finally {
            guard.disarm();
        }
    }

    /**
     * Opens a session of its own on the churn chain and closes it from the trigger thread 0-30 ms
     * into a run: the run must end with a {@link CancellationException} within the bound, or, when
     * the close came first, be refused with an {@link IllegalStateException}. Catches sessions that
     * leak under create/close churn (the open-predictor count and RSS) and closes that lose a run.
     */
    private void closeMid(Context base, ThreadLocalRandom random) throws Exception {
        try (OrtPredictor own = ort.openChurnChain();
             CancellableContext ctx = base.withTimeout(Duration.ofSeconds(60))) {
            AtomicLong firedAt = new AtomicLong(Long.MAX_VALUE);
            scheduler.schedule(() -> {
                firedAt.set(System.nanoTime());
                try {
                    // Returns once the run in flight has returned: it is terminated, not waited out.
                    own.close();
                } catch (OrtException e) {
                    violation("ORT_CLOSE_MID: closing the session failed: " + e);
                }
            }, random.nextInt(0, MID_CALL_TRIGGER_MILLIS), TimeUnit.MILLISECONDS);
            try {
                ort.churnChainRun(own, ctx);
                callsDone.increment();
                throw new Violation("an ORT run completed although its session was closed during it (lost close)");
            } catch (CancellationException e) {
                long now = System.nanoTime();
                callsDone.increment();
                cancelsDone.increment();
                long fired = firedAt.get();
                if (e instanceof DeadlineExceededException || fired == Long.MAX_VALUE) {
                    throw new Violation("ORT run on a session being closed ended with " + e + " before the close");
                }
                if (now - fired > RETURN_BOUND_NANOS) {
                    throw new Violation("ORT run returned " + (now - fired) / 1_000_000 + " ms after its session's close");
                }
            } catch (IllegalStateException e) {
                if (firedAt.get() == Long.MAX_VALUE) {
                    throw new Violation("ORT run refused although its session was open: " + e);
                }
            }
        }
    }

    /** A chain of 0-3 random layers (cancel, long timeout, value) over {@code base}, ending cancellable. */
    private static CancellableContext randomTree(Context base, ThreadLocalRandom random) {
        Context ctx = base;
        int depth = random.nextInt(0, 4);
        for (int i = 0; i < depth; i++) {
            switch (random.nextInt(3)) {
                case 0 -> ctx = ctx.withCancel();
                case 1 -> ctx = ctx.withTimeout(Duration.ofSeconds(120));
                default -> ctx = ctx.withValue(TRACE_ID, ctx.value(TRACE_ID).orElse("?"));
            }
        }
        return ctx.withCancel();
    }

    /** Cancels {@code ctx} from the trigger thread after {@code delayMillis}; returns when it fired. */
    private AtomicLong cancelLater(CancellableContext ctx, long delayMillis) {
        AtomicLong firedAt = new AtomicLong(Long.MAX_VALUE);
        scheduler.schedule(() -> {
            firedAt.set(System.nanoTime());
            ctx.cancel();
        }, delayMillis, TimeUnit.MILLISECONDS);
        return firedAt;
    }

    private PredictionStats dense(Context ctx, long repeat, java.util.function.Consumer<PredictionStats> onReturn) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment y = arena.allocate(ValueLayout.JAVA_FLOAT, (long) N * N);
            return ReferencePredictors.dense(ctx, x, w, bias, y, N, N, N, repeat, onReturn);
        }
    }

    /** Runs a dense call that nothing cancels and checks its output and the trace id it read. */
    private void denseChecked(Context ctx, MemorySegment input, String expectedTrace) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment y = arena.allocate(ValueLayout.JAVA_FLOAT, (long) N * N);
            long repeat = ThreadLocalRandom.current().nextLong(1, 4);
            PredictionStats stats = ReferencePredictors.dense(ctx, input, w, bias, y, N, N, N, repeat, null);
            callsDone.increment();
            checkTrace(stats, expectedTrace);
            float[] got = y.toArray(ValueLayout.JAVA_FLOAT);
            for (int i = 0; i < got.length; i++) {
                if (Math.abs(got[i] - reference[i]) > 1e-4f * Math.max(1f, Math.abs(reference[i]))) {
                    throw new Violation("dense output " + i + " = " + got[i] + ", reference " + reference[i]);
                }
            }
        }
    }

    private static void checkTrace(PredictionStats stats, String expected) {
        String seen = stats == null ? null : stats.traceId().orElse(null);
        if (!expected.equals(seen)) {
            throw new Violation("native code saw trace id " + seen + ", bound " + expected);
        }
    }

    @FunctionalInterface
    interface NativeOp {
        Object run(Context ctx, java.util.function.Consumer<PredictionStats> onReturn);
    }

    /**
     * The call must end cancelled (with a deadline exactly when {@code deadline}), within the bound
     * after {@code trigger}, and the native code must have seen the bound trace id if it ran at all.
     */
    private CancellationException expectCancelled(Context ctx, boolean deadline, long triggerNanos, String trace,
                                                  NativeOp op) {
        return expectCancelled(ctx, deadline, new AtomicLong(triggerNanos), trace, op);
    }

    private CancellationException expectCancelled(Context ctx, boolean deadline, AtomicLong trigger, String trace,
                                                  NativeOp op) {
        boolean doneBefore = ctx.isDone();
        PredictionStats[] stats = new PredictionStats[1];
        CancellationException cancelled;
        try {
            Object result = op.run(ctx, s -> stats[0] = s);
            callsDone.increment();
            throw new Violation("call returned " + result + (doneBefore ? " although its context was done before entry"
                    : " although its context was cancelled (lost cancel)"));
        } catch (CancellationException e) {
            long now = System.nanoTime();
            cancelled = e;
            callsDone.increment();
            cancelsDone.increment();
            if ((e instanceof DeadlineExceededException) != deadline) {
                throw new Violation("expected " + (deadline ? "a deadline" : "a cancellation") + ", got " + e);
            }
            long fired = trigger.get();
            if (fired == Long.MAX_VALUE) {
                throw new Violation("call ended cancelled before its trigger fired: " + e);
            }
            if (now - fired > RETURN_BOUND_NANOS) {
                throw new Violation("cancelled call returned " + (now - fired) / 1_000_000 + " ms after its trigger");
            }
        }
        // When the native code ran before the cancel, it must have read the bound trace id.
        String seen = stats[0] == null ? null : stats[0].traceId().orElse(null);
        if (seen != null && !seen.equals(trace)) {
            throw new Violation("cancelled call's native code saw trace id " + seen + ", bound " + trace);
        }
        return cancelled;
    }

    /**
     * A scope of two spinning predictors, or with {@code withOrt} two runs of the shared ORT long chain
     * (platform threads: a pinned virtual thread would starve its siblings), plus one checked call
     * that completes (dense, or an ORT MLP run), stopped by the scope's timeout or by a failing
     * sibling. The scope interrupts its forks, so the long ones must end cancelled by an interrupt.
     * The forks inherit the caller's context, so the native code must see its trace id.
     */
    private void scope(boolean siblingFails, boolean withOrt, Context base, String trace, ThreadLocalRandom random)
            throws Exception {
        long timeoutMillis = random.nextInt(20, (int) LONGEST_TRIGGER_MILLIS);
        ConcurrentLinkedQueue<String> problems = new ConcurrentLinkedQueue<>();
        AtomicLong trigger = new AtomicLong(Long.MAX_VALUE);
        AtomicReference<Long> closedAt = new AtomicReference<>();
        base.call(() -> {
            long opened = System.nanoTime();
            try (var scope = StructuredTaskScope.open(Joiner.<Object>awaitAllSuccessfulOrThrow(),
                    cf -> cf.withThreadFactory(Thread.ofPlatform().name("soak-fork-", 0).factory())
                            .withTimeout(Duration.ofMillis(siblingFails ? 60_000 : timeoutMillis)))) {
                for (int i = 0; i < 2; i++) {
                    scope.fork(() -> {
                        PredictionStats[] stats = new PredictionStats[1];
                        try {
                            if (withOrt) {
                                ortLongChain(Context.current());
                                problems.add("an ORT run in a scope completed");
                            } else {
                                ReferencePredictors.spin(Context.current(), null, s -> stats[0] = s);
                                problems.add("a spin in a scope completed");
                            }
                        } catch (CancellationException expected) {
                            cancelsDone.increment();
                            if (withOrt && !(expected.getCause() instanceof InterruptedException)) {
                                problems.add("an ORT run in a scope ended with cause " + expected.getCause()
                                        + ", not the scope's interrupt");
                            }
                            // Absent when the cancel came before native entry; if present, it must match.
                            if (stats[0] != null && stats[0].traceId().isPresent()
                                    && !trace.equals(stats[0].traceId().get())) {
                                problems.add("a fork's native code saw " + stats[0].traceId() + ", bound " + trace);
                            }
                        } catch (Violation v) {
                            problems.add(v.getMessage());
                        } finally {
                            callsDone.increment();
                        }
                        return null;
                    });
                }
                scope.fork(() -> {
                    if (withOrt) {
                        ort.mlpChecked(ort.mlp, Context.current());
                        callsDone.increment();
                    } else {
                        denseChecked(Context.current(), x, trace);
                    }
                    return null;
                });
                if (siblingFails) {
                    scope.fork(() -> {
                        Thread.sleep(timeoutMillis);
                        trigger.set(System.nanoTime());
                        throw new IllegalStateException("sibling failed on purpose");
                    });
                }
                try {
                    scope.join();
                    problems.add("scope joined successfully although its spins never end");
                } catch (StructuredTaskScope.TimeoutException e) {
                    if (siblingFails) {
                        problems.add("scope timed out although a sibling failed first");
                    }
                    trigger.compareAndSet(Long.MAX_VALUE, opened + TimeUnit.MILLISECONDS.toNanos(timeoutMillis));
                } catch (StructuredTaskScope.FailedException e) {
                    if (!siblingFails || !(e.getCause() instanceof IllegalStateException)) {
                        problems.add("scope failed with " + e.getCause());
                    }
                }
            }
            closedAt.set(System.nanoTime());
            return null;
        });
        if (!problems.isEmpty()) {
            throw new Violation(String.join("; ", problems));
        }
        long fired = trigger.get();
        if (fired != Long.MAX_VALUE && closedAt.get() - fired > RETURN_BOUND_NANOS) {
            throw new Violation("scope closed " + (closedAt.get() - fired) / 1_000_000 + " ms after its trigger");
        }
    }

    /**
     * Creates an {@code .npy} file holding the fixed input, maps it read-only, checks the header and
     * the values, runs the checked dense call straight on the mapping (zero copy), then deletes it.
     */
    private void npyRoundTrip(String trace) throws IOException {
        Path file = tmpDir.resolve("x-" + fileSeq.incrementAndGet() + ".npy");
        try {
            try (Arena arena = Arena.ofConfined()) {
                Tensor created = Npy.create(file, DType.FLOAT32, new long[] {N, N}, false, arena);
                MemorySegment.copy(xValues, 0, created.data(), ValueLayout.JAVA_FLOAT, 0, xValues.length);
            }
            try (Arena arena = Arena.ofShared()) {
                NpyFile npy = Npy.map(file, MappedFile.Mode.READ_ONLY, arena);
                Tensor t = npy.tensor();
                if (t.dtype() != DType.FLOAT32 || !Arrays.equals(t.shape(), new long[] {N, N}) || !t.isContiguous()) {
                    throw new Violation("mapped .npy has " + t);
                }
                if (!Arrays.equals(t.toFloatArray(), xValues)) {
                    throw new Violation("mapped .npy values differ from what was written");
                }
                denseChecked(Context.background().withValue(TRACE_ID, trace), t.data(), trace);
            }
        } finally {
            Files.deleteIfExists(file);
        }
    }

    // ---------------------------------------------------------------- sampling

    private static long rssKib() {
        try {
            return ProcSelf.rssKib().orElse(-1);
        } catch (UncheckedIOException | NumberFormatException e) {
            return -1; // -1 marks a missing reading in the CSV
        }
    }

    /** Open fds, less the one this listing itself holds open. */
    private static long countFds() {
        try {
            return ProcSelf.openDescriptorCount() - 1;
        } catch (UncheckedIOException e) {
            return -1;
        }
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

    // ---------------------------------------------------------------- growth verdicts

    /** Compares the median of the last third of the samples against the middle third, per column. */
    static final class Growth {
        private Growth() {
        }

        /** Column index, name, absolute tolerance, relative tolerance (0 = none); -1 absolute = report only. */
        record Check(int column, long absolute, double relative) {
        }

        static final Check[] CHECKS = {
            new Check(FDS, 8, 0),
            new Check(THREADS, 4, 0),
            new Check(JAVA_NATIVE_BYTES, 256 * 1024, 0),
            new Check(LIVE_CALL_FRAMES, 8, 0),
            new Check(LIVE_VALUE_BLOCKS, 64, 0),     // cleaners retire them after GC
            new Check(SHIM_LIVE_FDS, 8, 0),
            new Check(SHIM_LIVE_HOOKS, 8, 0),
            new Check(ORT_OPEN_RUN_OBJECTS, 8, 0),   // 3 per run in flight (RunOptions, input and output views)
            new Check(ORT_OPEN_PREDICTORS, 2, 0),    // the 2 shared ones plus churned sessions in their operation
            new Check(RSS_KIB, 64 * 1024, 0.20),     // the larger of +64 MiB and +20 %
            new Check(MALLOC_IN_USE_KIB, 32 * 1024, 0.10), // the larger of +32 MiB and +10 %
            new Check(MALLOC_FREE_KIB, -1, 0),       // allocator retention, reported only
            new Check(HEAP_USED_KIB, -1, 0),         // GC-driven, reported only
            new Check(HEAP_COMMITTED_KIB, -1, 0),    // the heap's share of RSS growth, reported only
        };

        static boolean report(List<long[]> samples) {
            if (samples.size() < 6) {
                System.out.println("[soak] too few samples (" + samples.size() + ") for growth verdicts");
                return false;
            }
            int third = samples.size() / 3;
            List<long[]> middle = samples.subList(third, 2 * third);
            List<long[]> last = samples.subList(samples.size() - third, samples.size());
            boolean grew = false;
            System.out.println("[soak] growth, median of the last third vs the middle third (first third is warm-up):");
            for (Check check : CHECKS) {
                long mid = median(middle, check.column());
                long end = median(last, check.column());
                long max = samples.stream().mapToLong(r -> r[check.column()]).max().orElse(0);
                String verdict;
                long allowed;
                if (check.absolute() < 0) {
                    verdict = "info";
                    allowed = 0;
                } else {
                    allowed = Math.max(check.absolute(), (long) (mid * check.relative()));
                    boolean ok = end - mid <= allowed;
                    verdict = ok ? "ok" : "GROWTH";
                    grew |= !ok;
                }
                System.out.printf(Locale.ROOT, "[soak]   %-20s middle %12d  last %12d  delta %+11d  max %12d  %s%s%n",
                        COLUMNS[check.column()], mid, end, end - mid, max, verdict,
                        check.absolute() < 0 ? "" : " (allowed +" + allowed + ")");
            }
            return grew;
        }

        static long median(List<long[]> rows, int column) {
            long[] values = rows.stream().mapToLong(r -> r[column]).sorted().toArray();
            return values[values.length / 2];
        }
    }
}
