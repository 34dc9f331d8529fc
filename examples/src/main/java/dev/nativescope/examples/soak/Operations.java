package dev.nativescope.examples.soak;

import ai.onnxruntime.OrtException;
import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.ContextKey;
import dev.nativescope.DeadlineExceededException;
import dev.nativescope.onnxruntime.OrtPredictor;
import dev.nativescope.onnxruntime.OrtResources;
import dev.nativescope.reference.EventFd;
import dev.nativescope.reference.PredictionStats;
import dev.nativescope.reference.ReferencePredictors;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;
import dev.nativescope.tensor.io.MappedFile;
import dev.nativescope.tensor.npy.Npy;
import dev.nativescope.tensor.npy.NpyFile;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.OptionalLong;
import java.util.concurrent.Callable;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import static dev.nativescope.examples.soak.CancelChecks.RETURN_BOUND_NANOS;

/**
 * The operation mix: each worker draws operations from {@link Op#DRAW} until the end of the run,
 * runs each and checks its invariants; one scheduler thread fires every cancel, signal, interrupt
 * and close from outside the worker.
 */
final class Operations {
    static final ContextKey<String> TRACE_ID = ContextKey.ofString("trace-id");

    /** The longest delay before any trigger (a scope's timeout or failing sibling). */
    static final long LONGEST_TRIGGER_MILLIS = 100;
    /** The longest delay before a cancel, deadline, interrupt or session close that stops a call mid-way. */
    static final int MID_CALL_TRIGGER_MILLIS = 30;

    private final long endNanos;
    private final Path tmpDir;
    private final ScheduledThreadPoolExecutor scheduler;
    private final SoakOrt ort;
    private final Tally tally;
    private final DenseCalls dense;
    private final CancelChecks checks;
    private final ScopeOperation scope;
    private final AtomicLong fileSeq = new AtomicLong();
    private final AtomicLong traceSeq = new AtomicLong();

    Operations(long endNanos, Path tmpDir, SoakOrt ort, Tally tally) {
        this.endNanos = endNanos;
        this.tmpDir = tmpDir;
        this.ort = ort;
        this.tally = tally;
        // One scheduler thread fires every cancel, signal and interrupt from outside the worker.
        this.scheduler = new ScheduledThreadPoolExecutor(1, r -> Thread.ofPlatform().daemon().name("soak-trigger").unstarted(r));
        this.scheduler.setRemoveOnCancelPolicy(true);
        this.dense = new DenseCalls(tally);
        this.checks = new CancelChecks(tally);
        this.scope = new ScopeOperation(tally, dense, ort, this::ortLongChain);
    }

    /** Stops the trigger thread, once the workers have ended. */
    void shutdown() {
        scheduler.shutdownNow();
    }

    void workerLoop() {
        InterruptGuard guard = new InterruptGuard(Thread.currentThread());
        long opSeq = 0;
        while (System.nanoTime() < endNanos) {
            Op op = Op.DRAW[ThreadLocalRandom.current().nextInt(Op.DRAW.length)];
            opSeq++;
            long began = System.nanoTime();
            try {
                runOp(op, guard, opSeq);
                tally.opCounts[op.ordinal()].increment();
                tally.opNanos[op.ordinal()].add(System.nanoTime() - began);
            } catch (Violation v) {
                tally.violation(op + ": " + v.getMessage());
            } catch (Throwable t) {
                tally.violation(op + ": unexpected " + t);
                if (tally.violations.get() <= Tally.MAX_PRINTED_VIOLATIONS) {
                    t.printStackTrace(System.out);
                }
            } finally {
                guard.disarm();
            }
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
                    dense.denseChecked(leaf, dense.x, trace + "-leaf");
                }
            }
            case CANCEL_BEFORE -> {
                try (CancellableContext ctx = base.withCancel()) {
                    Context child = ctx.withValue(TRACE_ID, trace + "-child").withCancel();
                    ctx.cancel();
                    checks.expectCancelled(child, false, System.nanoTime(), trace + "-child", (c, r) -> dense.dense(c, DenseCalls.LONG_REPEAT, r));
                }
            }
            case DEADLINE_BEFORE -> {
                try (CancellableContext ctx = base.withDeadlineNanoTime(System.nanoTime() - 1)) {
                    checks.expectCancelled(ctx, true, System.nanoTime(), trace, (c, r) -> dense.dense(c, DenseCalls.LONG_REPEAT, r));
                }
            }
            case CANCEL_MID -> {
                try (CancellableContext ctx = base.withCancel()) {
                    AtomicLong firedAt = cancelLater(ctx, random.nextInt(0, MID_CALL_TRIGGER_MILLIS));
                    checks.expectCancelled(ctx, false, firedAt, trace, (c, r) -> dense.dense(c, DenseCalls.LONG_REPEAT, r));
                }
            }
            case DEADLINE_MID -> {
                try (CancellableContext ctx = base.withTimeout(
                        Duration.ofMillis(random.nextInt(1, MID_CALL_TRIGGER_MILLIS)))) {
                    long deadline = ctx.deadlineNanoTime().orElseThrow();
                    checks.expectCancelled(ctx, true, deadline, trace,
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
                    tally.callsDone.increment();
                    if (read.isEmpty() || read.getAsLong() != value) {
                        throw new Violation("awaitFd read " + read + ", signalled " + value);
                    }
                    DenseCalls.checkTrace(stats[0], trace);
                    // The wait returned only after the one signal task wrote, so closing the fd here
                    // cannot race with it.
                }
            }
            case FD_CANCELLED -> {
                try (EventFd fd = EventFd.create(); CancellableContext ctx = base.withCancel()) {
                    AtomicLong firedAt = cancelLater(ctx, random.nextInt(0, MID_CALL_TRIGGER_MILLIS));
                    checks.expectCancelled(ctx, false, firedAt, trace, (c, r) -> ReferencePredictors.awaitFd(c, fd.fd(), null, r));
                }
            }
            case FD_DEADLINE -> {
                try (EventFd fd = EventFd.create();
                     CancellableContext ctx = base.withTimeout(
                             Duration.ofMillis(random.nextInt(1, MID_CALL_TRIGGER_MILLIS)))) {
                    long deadline = ctx.deadlineNanoTime().orElseThrow();
                    checks.expectCancelled(ctx, true, deadline, trace, (c, r) -> ReferencePredictors.awaitFd(c, fd.fd(), null, r));
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
                    checks.expectCancelled(leaf, false, firedAt, trace + "-leaf", (c, r) -> dense.dense(c, DenseCalls.LONG_REPEAT, r));
                    if (!mid.isDone() || !deep.isDone() || deep.cause() != root.cause()) {
                        throw new Violation("a descendant of a cancelled root is not done with the root's cause");
                    }
                    deep.close();
                    mid.close();
                }
            }
            case SCOPE_TIMEOUT, SCOPE_SIBLING_FAILS -> scope.run(op == Op.SCOPE_SIBLING_FAILS, false, base, trace, random);
            case NPY_ROUNDTRIP -> npyRoundTrip(trace);
            case ORT_OK -> {
                // The shared MLP session under a random tree: the run registers on every layer and must
                // leave nothing behind, and its output must match the Java reference.
                try (CancellableContext ctx = randomTree(base, random).withTimeout(Duration.ofSeconds(60))) {
                    ort.mlpChecked(ort.mlp, ctx);
                    tally.callsDone.increment();
                }
            }
            case ORT_CANCEL_MID -> {
                try (CancellableContext ctx = base.withCancel()) {
                    AtomicLong firedAt = cancelLater(ctx, random.nextInt(0, MID_CALL_TRIGGER_MILLIS));
                    CancellationException e = checks.expectCancelled(ctx, false, firedAt, trace, (c, r) -> ortLongChain(c));
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
                    checks.expectCancelled(ctx, true, deadline, trace, (c, r) -> ortLongChain(c));
                }
            }
            case ORT_INTERRUPT -> interruptMid(guard, opSeq, base, random, "ORT run", true,
                    () -> ortLongChain(Context.current()));
            case ORT_SCOPE_TIMEOUT, ORT_SCOPE_SIBLING_FAILS ->
                    scope.run(op == Op.ORT_SCOPE_SIBLING_FAILS, true, base, trace, random);
            case ORT_SESSION_CHURN -> {
                // A session of its own, opened, run (checked) and closed; after the close it must refuse runs.
                OrtPredictor own = ort.openMlp();
                try {
                    ort.mlpChecked(own, base);
                    tally.callsDone.increment();
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
    Object ortLongChain(Context ctx) {
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
            tally.callsDone.increment();
            tally.cancelsDone.increment();
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
                    tally.violation("ORT_CLOSE_MID: closing the session failed: " + e);
                }
            }, random.nextInt(0, MID_CALL_TRIGGER_MILLIS), TimeUnit.MILLISECONDS);
            try {
                ort.churnChainRun(own, ctx);
                tally.callsDone.increment();
                throw new Violation("an ORT run completed although its session was closed during it (lost close)");
            } catch (CancellationException e) {
                long now = System.nanoTime();
                tally.callsDone.increment();
                tally.cancelsDone.increment();
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

    /**
     * Creates an {@code .npy} file holding the fixed input, maps it read-only, checks the header and
     * the values, runs the checked dense call straight on the mapping (zero copy), then deletes it.
     */
    private void npyRoundTrip(String trace) throws IOException {
        Path file = tmpDir.resolve("x-" + fileSeq.incrementAndGet() + ".npy");
        try {
            try (Arena arena = Arena.ofConfined()) {
                Tensor created = Npy.create(file, DType.FLOAT32, new long[] {DenseCalls.N, DenseCalls.N}, false, arena);
                MemorySegment.copy(dense.xValues, 0, created.data(), ValueLayout.JAVA_FLOAT, 0, dense.xValues.length);
            }
            try (Arena arena = Arena.ofShared()) {
                NpyFile npy = Npy.map(file, MappedFile.Mode.READ_ONLY, arena);
                Tensor t = npy.tensor();
                if (t.dtype() != DType.FLOAT32 || !Arrays.equals(t.shape(), new long[] {DenseCalls.N, DenseCalls.N}) || !t.isContiguous()) {
                    throw new Violation("mapped .npy has " + t);
                }
                if (!Arrays.equals(t.toFloatArray(), dense.xValues)) {
                    throw new Violation("mapped .npy values differ from what was written");
                }
                dense.denseChecked(Context.background().withValue(TRACE_ID, trace), t.data(), trace);
            }
        } finally {
            Files.deleteIfExists(file);
        }
    }

    /**
     * Once every run has ended, the per-run ORT objects must all be closed: exactly, not as a trend.
     * Then the shared predictors close, and with them the last session: every churned one was closed.
     */
    void checkOrtClosedEverything() throws OrtException {
        long openRunObjects = OrtResources.snapshot().openRunObjects();
        if (openRunObjects != 0) {
            tally.violation(openRunObjects + " per-run ORT objects still open after every run ended");
        }
        ort.close();
        long openPredictors = OrtResources.snapshot().openPredictors();
        if (openPredictors != 0) {
            tally.violation(openPredictors + " ORT predictors (sessions) still open after the soak closed its own");
        }
    }
}
