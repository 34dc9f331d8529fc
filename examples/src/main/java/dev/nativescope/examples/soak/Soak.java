package dev.nativescope.examples.soak;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.ContextKey;
import dev.nativescope.DeadlineExceededException;
import dev.nativescope.EventFd;
import dev.nativescope.NativeLibrary;
import dev.nativescope.NativeResources;
import dev.nativescope.PredictionStats;
import dev.nativescope.ReferencePredictors;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.MappedFile;
import dev.nativescope.tensor.Npy;
import dev.nativescope.tensor.NpyFile;
import dev.nativescope.tensor.Tensor;

import java.io.IOException;
import java.io.PrintWriter;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
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
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ScheduledFuture;
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
 * {@code ./run soak [minutes]}: a randomized mix of contexts, native calls, interrupts, structured
 * task scopes and mapped tensors for a given time, checking invariants after every operation and
 * sampling the process's resources once per second. It exits non-zero when an invariant failed or a
 * resource kept growing (last third of the run against the middle third; the first third is
 * warm-up: JIT, pools and the heap settle there).
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

    private final long endNanos;
    private final Path tmpDir;
    private final ScheduledThreadPoolExecutor scheduler;
    private final Arena shared = Arena.ofShared();
    private final MemorySegment x;
    private final MemorySegment w;
    private final MemorySegment bias;
    private final float[] reference;
    private final float[] xValues;

    final LongAdder callsDone = new LongAdder();
    final LongAdder cancelsDone = new LongAdder();
    final AtomicLong violations = new AtomicLong();
    final LongAdder[] opCounts = new LongAdder[Op.values().length];
    private final AtomicLong fileSeq = new AtomicLong();
    private final AtomicLong traceSeq = new AtomicLong();

    enum Op { DENSE_OK, CANCEL_BEFORE, DEADLINE_BEFORE, CANCEL_MID, DEADLINE_MID, FD_SIGNALLED, FD_CANCELLED,
        FD_DEADLINE, INTERRUPT, TREE_CANCEL, SCOPE_TIMEOUT, SCOPE_SIBLING_FAILS, NPY_ROUNDTRIP }

    /** Thrown by checks; counted as a violation by the worker loop. */
    static final class Violation extends RuntimeException {
        Violation(String message) {
            super(message);
        }
    }

    private Soak(long endNanos, Path tmpDir) {
        this.endNanos = endNanos;
        this.tmpDir = tmpDir;
        // One scheduler thread fires every cancel, signal and interrupt from outside the worker.
        this.scheduler = new ScheduledThreadPoolExecutor(1, r -> Thread.ofPlatform().daemon().name("soak-trigger").unstarted(r));
        this.scheduler.setRemoveOnCancelPolicy(true);
        for (int i = 0; i < opCounts.length; i++) {
            opCounts[i] = new LongAdder();
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
        NativeLibrary.load();
        long durationNanos = (long) (minutes * 60e9);
        long start = System.nanoTime();
        Soak soak = new Soak(start + durationNanos, tmpDir);
        System.out.printf(Locale.ROOT, "[soak] %.1f min, %d workers, %d CPUs, JDK %s; output in %s%n", minutes, WORKERS,
                Runtime.getRuntime().availableProcessors(), Runtime.version(), outDir.toAbsolutePath());
        int exit = soak.runAll(start, outDir);
        deleteTree(tmpDir);
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
                if (second % 30 == 0) {
                    System.gc();
                }
                NativeResources res = NativeResources.snapshot();
                long[] row = {second, rssKib(), memory.getHeapMemoryUsage().getUsed() / 1024, countFds(),
                    threads.getThreadCount(), res.javaNativeBytes(), res.liveCallFrames(), res.liveValueBlocks(),
                    res.shimLiveFds(), res.shimLiveHooks(), callsDone.sum(), cancelsDone.sum(), violations.get()};
                samples.add(row);
                out.println(Arrays.stream(row).mapToObj(Long::toString).reduce((a, b) -> a + "," + b).orElseThrow());
                out.flush();
                if (second % 10 == 0) {
                    System.out.printf(Locale.ROOT, "[soak] %4d s: calls %d, cancels %d, violations %d | rss %d MiB,"
                                    + " heap %d MiB, fds %d, threads %d, native %d B, frames %d, value blocks %d,"
                                    + " shim fds %d, hooks %d%n", row[0], row[10], row[11], row[12], row[1] / 1024,
                            row[2] / 1024, row[3], row[4], row[5], row[6], row[7], row[8], row[9]);
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
        Path svg = outDir.resolve("soak.svg");
        Files.writeString(svg, Svg.render(samples));
        System.out.println();
        System.out.println("[soak] operations: " + Arrays.stream(Op.values())
                .map(op -> op.name().toLowerCase(Locale.ROOT) + "=" + opCounts[op.ordinal()].sum())
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

    static final String[] COLUMNS = {"time_s", "rss_kib", "heap_used_kib", "fds", "threads", "java_native_bytes",
        "live_call_frames", "live_value_blocks", "shim_live_fds", "shim_live_hooks", "calls_done", "cancels_done",
        "violations"};

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
            Op op = Op.values()[ThreadLocalRandom.current().nextInt(Op.values().length)];
            opSeq++;
            try {
                runOp(op, guard, opSeq);
                opCounts[op.ordinal()].increment();
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
                    AtomicLong firedAt = cancelLater(ctx, random.nextInt(0, 30));
                    expectCancelled(ctx, false, firedAt, trace, (c, r) -> dense(c, LONG_REPEAT, r));
                }
            }
            case DEADLINE_MID -> {
                try (CancellableContext ctx = base.withTimeout(Duration.ofMillis(random.nextInt(1, 30)))) {
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
                    AtomicLong firedAt = cancelLater(ctx, random.nextInt(0, 30));
                    expectCancelled(ctx, false, firedAt, trace, (c, r) -> ReferencePredictors.awaitFd(c, fd.fd(), null, r));
                }
            }
            case FD_DEADLINE -> {
                try (EventFd fd = EventFd.create();
                     CancellableContext ctx = base.withTimeout(Duration.ofMillis(random.nextInt(1, 30)))) {
                    long deadline = ctx.deadlineNanoTime().orElseThrow();
                    expectCancelled(ctx, true, deadline, trace, (c, r) -> ReferencePredictors.awaitFd(c, fd.fd(), null, r));
                }
            }
            case INTERRUPT -> {
                AtomicLong firedAt = new AtomicLong(Long.MAX_VALUE);
                guard.arm(opSeq);
                scheduler.schedule(() -> {
                    long now = System.nanoTime();
                    if (guard.interruptIf(opSeq)) {
                        firedAt.set(now);
                    }
                }, random.nextInt(0, 30), TimeUnit.MILLISECONDS);
                long began = System.nanoTime();
                try {
                    base.call(() -> ReferencePredictors.spin(Context.current(), null, null));
                    throw new Violation("spin returned normally although only an interrupt could stop it");
                } catch (DeadlineExceededException e) {
                    throw new Violation("interrupted spin ended with a deadline: " + e);
                } catch (CancellationException e) {
                    callsDone.increment();
                    cancelsDone.increment();
                    if (!(e.getCause() instanceof InterruptedException)) {
                        throw new Violation("interrupted spin ended with cause " + e.getCause());
                    }
                    long late = System.nanoTime() - Math.min(firedAt.get(), System.nanoTime());
                    if (late > RETURN_BOUND_NANOS || System.nanoTime() - began > RETURN_BOUND_NANOS + 100_000_000L) {
                        throw new Violation("interrupted spin returned " + late / 1_000_000 + " ms after the interrupt");
                    }
                } finally {
                    guard.disarm();
                }
            }
            case TREE_CANCEL -> {
                // root -> (value) -> withCancel -> withTimeout(long) -> (value) -> leaf; cancelling
                // the root from another thread must reach the call running in the leaf.
                try (CancellableContext root = base.withCancel()) {
                    CancellableContext mid = root.withValue(TRACE_ID, trace + "-mid").withCancel();
                    CancellableContext deep = mid.withTimeout(Duration.ofSeconds(60));
                    Context leaf = deep.withValue(TRACE_ID, trace + "-leaf");
                    AtomicLong firedAt = cancelLater(root, random.nextInt(0, 30));
                    expectCancelled(leaf, false, firedAt, trace + "-leaf", (c, r) -> dense(c, LONG_REPEAT, r));
                    if (!mid.isDone() || !deep.isDone() || deep.cause() != root.cause()) {
                        throw new Violation("a descendant of a cancelled root is not done with the root's cause");
                    }
                    deep.close();
                    mid.close();
                }
            }
            case SCOPE_TIMEOUT, SCOPE_SIBLING_FAILS -> scope(op == Op.SCOPE_SIBLING_FAILS, base, trace, random);
            case NPY_ROUNDTRIP -> npyRoundTrip(trace);
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
    private void expectCancelled(Context ctx, boolean deadline, long triggerNanos, String trace, NativeOp op) {
        expectCancelled(ctx, deadline, new AtomicLong(triggerNanos), trace, op);
    }

    private void expectCancelled(Context ctx, boolean deadline, AtomicLong trigger, String trace, NativeOp op) {
        boolean doneBefore = ctx.isDone();
        PredictionStats[] stats = new PredictionStats[1];
        try {
            Object result = op.run(ctx, s -> stats[0] = s);
            callsDone.increment();
            throw new Violation("call returned " + result + (doneBefore ? " although its context was done before entry"
                    : " although its context was cancelled (lost cancel)"));
        } catch (CancellationException e) {
            long now = System.nanoTime();
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
    }

    /**
     * A scope of two spinning predictors (platform threads: a pinned virtual thread would starve its
     * siblings) plus one dense call that completes, stopped by the scope's timeout or by a failing
     * sibling. The forks inherit the caller's context, so the native code must see its trace id.
     */
    private void scope(boolean siblingFails, Context base, String trace, ThreadLocalRandom random) throws Exception {
        long timeoutMillis = random.nextInt(20, 100);
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
                            ReferencePredictors.spin(Context.current(), null, s -> stats[0] = s);
                            problems.add("a spin in a scope completed");
                        } catch (CancellationException expected) {
                            cancelsDone.increment();
                            // Absent when the cancel came before native entry; if present, it must match.
                            if (stats[0] != null && stats[0].traceId().isPresent()
                                    && !trace.equals(stats[0].traceId().get())) {
                                problems.add("a fork's native code saw " + stats[0].traceId() + ", bound " + trace);
                            }
                        } finally {
                            callsDone.increment();
                        }
                        return null;
                    });
                }
                scope.fork(() -> {
                    denseChecked(Context.current(), x, trace);
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
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", ""));
                }
            }
        } catch (IOException | NumberFormatException e) {
            // fall through: -1 marks a missing reading in the CSV
        }
        return -1;
    }

    /** Open fds, less the one this listing itself holds open. */
    private static long countFds() {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.count() - 1;
        } catch (IOException e) {
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
            new Check(3, 8, 0),            // fds
            new Check(4, 4, 0),            // threads
            new Check(5, 256 * 1024, 0),   // java native bytes
            new Check(6, 8, 0),            // call frames
            new Check(7, 64, 0),           // value blocks (cleaners retire them after GC)
            new Check(8, 8, 0),            // shim fds
            new Check(9, 8, 0),            // shim hooks
            new Check(1, 64 * 1024, 0.20), // rss: the larger of +64 MiB and +20 %
            new Check(2, -1, 0),           // heap: GC-driven, reported only
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
                System.out.printf(Locale.ROOT, "[soak]   %-18s middle %12d  last %12d  delta %+11d  max %12d  %s%s%n",
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
