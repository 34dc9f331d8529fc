package dev.nativescope.onnxruntime;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.DeadlineExceededException;
import dev.nativescope.call.Affinity;
import dev.nativescope.call.CallMode;
import dev.nativescope.call.NativeThreads;
import dev.nativescope.interop.CancellationSignal;
import dev.nativescope.interop.SegmentHold;
import dev.nativescope.tensor.Tensor;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CancellationException;

/**
 * Runs an ONNX Runtime session under a {@link Context}, over {@link Tensor}s without copies.
 *
 * <p><b>Cancellation.</b> Each {@link #run(Context, Map, Map)} gets fresh
 * {@link OrtSession.RunOptions}; the context's {@link Context#onDone(Runnable) onDone} (which
 * also fires at the context's deadline, from the shared deadline timer), an interrupt of the
 * calling thread, and {@link #close()} set their terminate flag, which ONNX Runtime checks between
 * nodes. The run then ends with a {@link DeadlineExceededException} (the deadline passed) or a
 * {@link CancellationException} whose cause is the context's cause (or an
 * {@link InterruptedException} for an interrupt; the thread's interrupt status stays set). A run
 * that finished before the flag was read returns normally with its outputs. The RunOptions are
 * closed after every run, so a terminate never leaks into later runs.
 *
 * <p><b>Zero copy.</b> Inputs and outputs are contiguous tensors over native memory (an
 * {@code Arena}, a mapped file, a {@code .npy}). ORT reads inputs in place (a direct, native-order
 * {@code ByteBuffer} view of the segment is not copied by its Java API) and writes outputs in place
 * (they are passed as pinned outputs: ORT writes into the given memory instead of allocating).
 * ORT's tensor objects only address the memory, and ORT touches it only inside a run, so each run
 * holds the tensors' segments from before ORT reads them until it has returned: the memory stays
 * valid until {@code run} returns, whatever the caller does meanwhile. How: when this module has
 * native access ({@code --enable-native-access=dev.nativescope.onnxruntime}, or {@code ALL-UNNAMED}
 * on the class path), a run with pre-allocated outputs calls ORT's C {@code Run} by an FFM downcall
 * whose arguments include the segments, so FFM itself holds them for the run (and the run skips the
 * JNI side's per-run work: faster than {@code OrtSession.run}, see BENCHMARKS.md section 20);
 * without native access (or with {@code -Dnativescope.onnxruntime.directRun=false}) ORT's JNI
 * {@code run} runs inside {@link SegmentHold#call}. Closing a tensor's shared arena from another thread during a run
 * throws {@link IllegalStateException} (the arena stays open; close it again after the run); a
 * tensor whose arena was already closed fails the run with an {@link IllegalStateException}, a
 * tensor of another thread's confined arena with a {@link WrongThreadException}, and a read-only
 * output (a {@code READ_ONLY} mapping, {@code asReadOnly()}) with an
 * {@link IllegalArgumentException} naming it, all before ORT sees them.
 *
 * <p><b>Reuse.</b> A run makes one ORT view ({@link ai.onnxruntime.OnnxTensor}) per tensor, which costs about as much
 * as a tiny model's whole run. So the predictor keeps the views of its latest runs (two sets) and
 * reuses them when a run passes the same {@link Tensor} objects under the same names again: keep your
 * tensors and maps across runs to get that. The kept views keep their tensors reachable (an
 * automatic arena's memory is not freed) until runs over other tensors replace them or the predictor
 * is closed; they never keep an arena open, and the checks above hold for every run either way.
 * On the JNI path, tensors of the global arena or of a confined arena of the calling thread need no
 * hold (nothing can free them during the run), so for a tiny model they are the cheapest there: a
 * shared arena's hold is a downcall and an upcall per run (about 0.1 us, see BENCHMARKS.md).
 *
 * <p><b>One native thread per session (optional).</b> Opened with an {@link Affinity}
 * ({@link #open(Path, OrtSession.SessionOptions, Affinity)}), the predictor makes every call of its
 * session on that affinity's one native thread: the session's creation, every {@code run} and
 * {@code runAllocating} (from platform and virtual threads alike; the caller parks meanwhile) and the
 * session's close. For execution providers or custom operators that keep per-thread state (a CUDA
 * context current on the thread, a thread-local allocator). Runs then go one at a time, in
 * submission order, and cancellation, deadlines (which count the queue time), interrupts and
 * {@link #close()} behave as for offloaded runs. Tensors must then be of memory the native thread may
 * use (a shared, automatic or global arena, a mapped file): a confined arena's tensors are refused
 * with {@link WrongThreadException} before ORT runs. The caller owns the affinity and closes it after
 * the predictor (several predictors may share one).
 *
 * <p><b>Threading.</b> {@code run} may be called from several threads at once (ORT sessions are
 * thread-safe for runs). {@link #close()} may be called from any thread at any time: it
 * terminates the runs in flight, waits for them to return, then closes the session; runs started
 * afterwards throw {@link IllegalStateException}.
 */
public final class OrtPredictor implements AutoCloseable {
    /** Names a run in messages. */
    private static final String WHAT = "ONNX Runtime run";
    private final OrtEnvironment environment;
    private final OrtSession session;
    /** The native thread every call of the session runs on, or null: runs inline or on the shared pool. */
    private final Affinity affinity;
    /** Cancelled by {@link #close()}; every run registers on it, so close reaches all of them. */
    private final CancellableContext lifetime = Context.background().withCancel();
    /**
     * The runs in flight (low bits) and {@link #CLOSING}: a run counts itself in before it touches the
     * session, close() sets the bit and waits on {@link #closeMonitor} until the count is zero, so the
     * session is never closed under a run. One atomic add per run entry and exit (a read lock cost a
     * compare-and-set and a per-thread hold count).
     */
    @SuppressWarnings("unused") // through RUNS
    private volatile long runs;
    private static final long CLOSING = 1L << 62;
    private static final VarHandle RUNS = OrtObjects.field(MethodHandles.lookup(), "runs", long.class);
    /** What close() waits on for the last run; guards {@link #closed}. */
    private final Object closeMonitor = new Object();
    private boolean closed; // guarded by closeMonitor
    /** The ORT views of recent runs' tensors, reused by runs over the same tensors; closed by close(). */
    private final OrtBinding.Cache bindings = new OrtBinding.Cache();
    /** The session's output metadata, read once by the first {@link #runAllocating} (a benign race). */
    private volatile Map<String, NodeInfo> outputInfo;

    private OrtPredictor(OrtEnvironment environment, OrtSession session, Affinity affinity) {
        this.environment = environment;
        this.session = session;
        this.affinity = affinity;
        this.pinnedRun = (binding, runOptions) -> {
            session.run(binding.ortInputs(), Set.of(), binding.ortOutputs(), runOptions).close();
            return null;
        };
        OrtObjects.predictorOpened();
    }

    /**
     * Opens a model file with default session options.
     *
     * @param model the {@code .onnx} file
     * @return a predictor that owns its session; close it
     * @throws OrtException when ONNX Runtime cannot load the model
     */
    public static OrtPredictor open(Path model) throws OrtException {
        try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
            return open(model, options);
        }
    }

    /**
     * Opens a model file.
     *
     * @param model the {@code .onnx} file
     * @param options session options (threads, optimisation level, execution providers); the
     *                caller keeps ownership of them
     * @return a predictor that owns its session; close it
     * @throws OrtException when ONNX Runtime cannot load the model
     */
    public static OrtPredictor open(Path model, OrtSession.SessionOptions options) throws OrtException {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(options, "options");
        OrtEnvironment environment = OrtEnvironment.getEnvironment();
        return new OrtPredictor(environment, environment.createSession(model.toString(), options), null);
    }

    /**
     * Opens a model file whose session is created, run and closed on {@code affinity}'s native
     * thread only (see "One native thread per session" in the class comment).
     *
     * @param model the {@code .onnx} file
     * @param options session options; the caller keeps ownership of them
     * @param affinity the native thread for every call of the session; the caller closes it after
     *                 the predictor
     * @return a predictor that owns its session; close it
     * @throws OrtException when ONNX Runtime cannot load the model
     * @throws IllegalStateException when {@code affinity} is closed
     */
    public static OrtPredictor open(Path model, OrtSession.SessionOptions options, Affinity affinity)
            throws OrtException {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(options, "options");
        Objects.requireNonNull(affinity, "affinity");
        OrtEnvironment environment = OrtEnvironment.getEnvironment();
        OrtSession session = onThread(affinity, () -> environment.createSession(model.toString(), options));
        return new OrtPredictor(environment, session, affinity);
    }

    /** Runs session work that no context stops (creation, close) on {@code affinity}'s thread. */
    private static <T> T onThread(Affinity affinity, NativeThreads.Work<T, OrtException> work) throws OrtException {
        return NativeThreads.call(Context.background(), CallMode.AUTO, affinity, () -> false, () -> null, work);
    }

    /**
     * Wraps a session created elsewhere; the predictor takes ownership of it and closes it.
     *
     * @param environment the environment the session belongs to
     * @param session the session
     * @return the predictor
     */
    public static OrtPredictor of(OrtEnvironment environment, OrtSession session) {
        return new OrtPredictor(Objects.requireNonNull(environment, "environment"), Objects.requireNonNull(session, "session"),
                null);
    }

    /** {@return the session, for its metadata (input and output names and shapes); do not close it} */
    public OrtSession session() {
        return session;
    }

    /**
     * Runs the model under {@link Context#current()}.
     *
     * @see #run(Context, Map, Map)
     */
    public void run(Map<String, Tensor> inputs, Map<String, Tensor> outputs) throws OrtException {
        run(Context.current(), inputs, outputs);
    }

    /**
     * Runs the model under {@code context}: reads {@code inputs} in place and writes the outputs
     * named in {@code outputs} into their tensors in place.
     *
     * @param context stops the run when cancelled or expired
     * @param inputs the model inputs by name: contiguous tensors over native memory, of the model's
     *               dtypes and shapes
     * @param outputs the outputs to compute, by name: contiguous tensors over native memory, of the
     *                shapes the model produces (ORT refuses a pre-allocated output of another shape)
     * @throws DeadlineExceededException when the context's deadline stopped the run (or had passed)
     * @throws CancellationException when the context was cancelled, the thread interrupted or the
     *         predictor closed during the run
     * @throws IllegalStateException when the predictor was closed before the run, or a tensor's
     *         arena was already closed
     * @throws IllegalArgumentException when a tensor is not contiguous, not native, or of a dtype ORT lacks, or an
     *         output is read-only
     * @throws WrongThreadException when a tensor belongs to a confined arena of another thread
     * @throws OrtException when ONNX Runtime fails for another reason (names, shapes, types)
     */
    public void run(Context context, Map<String, Tensor> inputs, Map<String, Tensor> outputs) throws OrtException {
        Objects.requireNonNull(context, "context");
        Objects.requireNonNull(inputs, "inputs");
        Objects.requireNonNull(outputs, "outputs");
        if (outputs.isEmpty()) {
            throw new IllegalArgumentException("no outputs requested: name at least one output and its tensor");
        }
        // The hot path, spelled out without the helpers' lambdas (each an allocation per run).
        enterRun(context);
        try {
            OrtBinding binding = bind(inputs, outputs);
            try {
                RunTermination termination = new RunTermination(OrtObjects.runOptions());
                try {
                    runTerminable(context, termination, binding, pinnedRun);
                } finally {
                    OrtObjects.close(termination.finish());
                }
            } finally {
                bindings.give(binding);
            }
        } finally {
            exitRun();
        }
    }

    /**
     * ORT's run with pinned outputs only (ORT wants the requested names and the pinned ones disjoint):
     * ORT writes into our tensors, and the result holds no values of its own.
     */
    private final OrtRun<Void> pinnedRun;

    /** A run given its terminate switch. */
    @FunctionalInterface
    private interface TerminableRun<T> {
        T run(RunTermination termination) throws OrtException;
    }

    /**
     * Runs {@code run} with fresh RunOptions and their terminate switch, then closes the options once
     * the switch is finished (no terminate can reach them after that).
     */
    private static <T> T withTermination(TerminableRun<T> run) throws OrtException {
        RunTermination termination = new RunTermination(OrtObjects.runOptions());
        try {
            return run.run(termination);
        } finally {
            OrtObjects.close(termination.finish());
        }
    }

    /** Work run while the predictor is open. */
    @FunctionalInterface
    private interface OpenWork<T> {
        T run() throws OrtException;
    }

    /**
     * Runs {@code work} counted among the runs in flight, which close() waits for, refusing a closed
     * predictor and a context already done before anything reaches ORT.
     */
    private <T> T whileOpen(Context context, OpenWork<T> work) throws OrtException {
        enterRun(context);
        try {
            return work.run();
        } finally {
            exitRun();
        }
    }

    /**
     * Counts a run in flight, refusing a closed predictor and a context already done (counted out
     * again then); a run that returns normally must be counted out with {@link #exitRun()}.
     */
    private void enterRun(Context context) {
        // Counted in first, then the bit read by the same atomic add: close() sets the bit, then
        // waits for the count (both on the one word), so either close() waits for this run or this
        // run sees the bit and leaves without touching the session. A run counted in before the bit
        // is set also sees the lifetime cancelled (close() cancels first) or gets stopped by it.
        long state = (long) RUNS.getAndAdd(this, 1L);
        if ((state & CLOSING) != 0 || lifetime.isDone()) {
            exitRun();
            throw new IllegalStateException("the OrtPredictor is closed");
        }
        if (context.isDone()) {
            exitRun();
            throw CancellationSignal.contextStopped(context, WHAT);
        }
    }

    private void exitRun() {
        if ((long) RUNS.getAndAdd(this, -1L) == (CLOSING | 1L)) {
            // The last run out while close() waits (or is about to): wake it.
            synchronized (closeMonitor) {
                closeMonitor.notifyAll();
            }
        }
    }

    /** Work given the ORT views of a run's tensors. */
    @FunctionalInterface
    private interface BoundWork<T> {
        T run(OrtBinding binding) throws OrtException;
    }

    /**
     * Runs {@code work} with the views of these tensors: reused from the cache or made now, and given
     * back to the cache afterwards, whatever the outcome (views do not depend on how a run ended). Called
     * by a run counted in flight, so close() (which waits for those) finds every binding in the cache.
     */
    private <T> T withBinding(Map<String, Tensor> inputs, Map<String, Tensor> outputs, BoundWork<T> work)
            throws OrtException {
        OrtBinding binding = bind(inputs, outputs);
        try {
            return work.run(binding);
        } finally {
            bindings.give(binding);
        }
    }

    /** The views of these tensors: a cached binding, now the caller's, or new ones; give it back after. */
    private OrtBinding bind(Map<String, Tensor> inputs, Map<String, Tensor> outputs) throws OrtException {
        OrtBinding binding = bindings.take(inputs, outputs);
        return binding != null ? binding : OrtBinding.create(environment, session, inputs, outputs);
    }

    /** ORT's run call, given the run's views and options. */
    @FunctionalInterface
    private interface OrtRun<T> {
        T run(OrtBinding binding, OrtSession.RunOptions runOptions) throws OrtException;
    }

    private <T> T runTerminable(Context context, RunTermination termination, OrtBinding binding, OrtRun<T> run)
            throws OrtException {
        // The context (cancel, deadline), an interrupt of this thread (ORT's run is a JNI call that does
        // not notice interrupts) and close() all flip the run's terminate flag; ORT checks it between
        // nodes and before the first. The binding's reusable signal (one run at a time uses a binding)
        // reaches both contexts through their stop slots: nothing registered or allocated per run.
        try (CancellationSignal signal = binding.openSignal(lifetime, context, termination)) {
            if (!signal.isStopped()) {
                try {
                    OrtSession.RunOptions runOptions = termination.optionsForRun();
                    // From a virtual thread the run goes to a native thread while this one parks (the
                    // binding's mode; the signal stays open here, so cancels, deadlines and interrupts reach
                    // it as inline). The segments are held on the thread that runs ORT, from before ORT reads
                    // them until it has returned: a shared arena cannot close meanwhile, another thread's
                    // confined arena (or a closed one) is refused before ORT runs, also for reused views.
                    // A pinned run with a direct path: ORT's C Run is itself the downcall that holds the
                    // segments (checked first for the messages; FFM checks again, race-free).
                    OrtDirectRun.Prepared direct = run == pinnedRun ? binding.direct() : null;
                    SegmentHold.Work<T, OrtException> work = direct != null ? () -> {
                        SegmentHold.check(binding.segments());
                        direct.run(runOptions);
                        return null; // T is Void: the pinned run returns nothing
                    } : () -> SegmentHold.call(binding.segments(), () -> run.run(binding, runOptions));
                    if (affinity == null && !NativeThreads.offloads(binding.mode())) {
                        // Inline, as NativeThreads.call would run it, without its stop callbacks.
                        return work.run();
                    }
                    // With an affinity always its thread (inline only when this is that thread).
                    return NativeThreads.call(context, binding.mode(), affinity, signal::isStopped, () -> {
                        throw signal.stoppedException(WHAT);
                    }, work::run);
                } catch (OrtException e) {
                    throw stoppedOrRethrow(signal, e);
                }
            }
            throw signal.stoppedException(WHAT);
        }
    }

    /**
     * Runs the model under {@link Context#current()}, with outputs ONNX Runtime allocates.
     *
     * @see #runAllocating(Context, Map, Set)
     */
    public OrtResult runAllocating(Map<String, Tensor> inputs, Set<String> outputNames) throws OrtException {
        return runAllocating(Context.current(), inputs, outputNames);
    }

    /**
     * Runs the model under {@code context}, reading {@code inputs} in place, and lets ONNX Runtime
     * allocate the outputs named in {@code outputNames}: for outputs whose shape is known only
     * after the run (a {@code NonZero}, a {@code Slice} or {@code Reshape} driven by an input, a
     * dynamic batch). The returned result's tensors view ORT's output memory without a copy and stay
     * valid until the result is closed (see {@link OrtResult}); close it.
     *
     * <p>Cancellation, deadlines, interrupts, {@link #close()}, the checks on the inputs, the reuse of
     * their views and the call mode (from a virtual thread, ORT runs on a native thread while the
     * caller parks) behave as in {@link #run(Context, Map, Map)}; a stopped run allocates nothing the
     * caller must close.
     * Output types are checked against the model before the run: every element type ORT's Java API
     * can hand over has a {@link dev.nativescope.tensor.DType} (float, double, int8, int16, int32,
     * int64, uint8, uint16, uint32, uint64 (which that API reports as signed), bool, float16,
     * bfloat16); a string, complex or float8 output, or one that is not a tensor, is refused with an
     * {@link IllegalArgumentException} naming it and its type.
     *
     * @param context stops the run when cancelled or expired
     * @param inputs the model inputs by name: contiguous tensors over native memory
     * @param outputNames the outputs to compute (at least one), in the order the result lists them
     * @return the outputs; the caller closes it
     * @throws DeadlineExceededException when the context's deadline stopped the run (or had passed)
     * @throws CancellationException when the context was cancelled, the thread interrupted or the
     *         predictor closed during the run
     * @throws IllegalStateException when the predictor was closed before the run, or an input's
     *         arena was already closed
     * @throws IllegalArgumentException when an input is not contiguous, not native, or of a dtype
     *         ORT lacks, or an output is unknown or of a type a {@code Tensor} cannot view
     * @throws WrongThreadException when an input belongs to a confined arena of another thread
     * @throws UnsupportedOperationException when ORT's Java API gives no zero-copy access to its
     *         output memory (a version other than the one this module is built against)
     * @throws OrtException when ONNX Runtime fails for another reason (shapes, types)
     */
    public OrtResult runAllocating(Context context, Map<String, Tensor> inputs, Set<String> outputNames)
            throws OrtException {
        Objects.requireNonNull(context, "context");
        Objects.requireNonNull(inputs, "inputs");
        Objects.requireNonNull(outputNames, "outputNames");
        if (outputNames.isEmpty()) {
            throw new IllegalArgumentException("no outputs requested: name at least one output");
        }
        Set<String> names = new LinkedHashSet<>(outputNames.size() * 2);
        for (String name : outputNames) {
            names.add(Objects.requireNonNull(name, "output name"));
        }
        OrtOutputViews.check();
        return whileOpen(context, () -> {
            OrtOutputViews.checkOutputs(outputInfo(), names);
            OrtSession.Result values = withBinding(inputs, Map.of(), binding -> withTermination(termination ->
                    runTerminable(context, termination, binding, (bound, runOptions) -> {
                        OrtSession.Result allocated = session.run(bound.ortInputs(), names, runOptions);
                        OrtObjects.createdAllocated(allocated.size());
                        return allocated;
                    })));
            // ORT's values do not depend on the inputs or the run options: the result outlives both.
            return new OrtResult(values, names);
        });
    }

    private Map<String, NodeInfo> outputInfo() throws OrtException {
        Map<String, NodeInfo> info = outputInfo;
        if (info == null) {
            info = session.getOutputInfo();
            outputInfo = info;
        }
        return info;
    }

    /**
     * An ORT failure during a run that was told to stop is the stop (ORT reports its terminate flag as
     * an error): returns the stop's exception, with ORT's attached; any other failure is rethrown as is.
     */
    private static RuntimeException stoppedOrRethrow(CancellationSignal signal, OrtException e) throws OrtException {
        if (!signal.isStopped()) {
            throw e;
        }
        RuntimeException stopped = signal.stoppedException(WHAT);
        stopped.addSuppressed(e);
        return stopped;
    }

    /** Closes the session on the affinity's thread, or here without one (or once the affinity is closed). */
    private void closeSession() throws OrtException {
        if (affinity != null) {
            try {
                onThread(affinity, () -> {
                    session.close();
                    return null;
                });
                return;
            } catch (IllegalStateException closedAffinity) {
                // Closed before the predictor: closing the session here beats leaking it.
            }
        }
        session.close();
    }

    /**
     * Terminates the runs in flight, waits until they have returned, then closes the session.
     * Idempotent; safe to call from any thread, also while runs are in flight. Must not be called
     * from a thread that is inside {@code run}.
     *
     * @throws OrtException when ONNX Runtime fails to close the session
     */
    @Override
    public void close() throws OrtException {
        lifetime.cancel(new CancellationException("the OrtPredictor was closed"));
        RUNS.getAndBitwiseOr(this, CLOSING);
        boolean interrupted = false;
        try {
            synchronized (closeMonitor) {
                // The last run out notifies under this monitor after its decrement: checked here under
                // it, so that wake-up is never lost. Uninterruptible, as the write lock it replaces was:
                // the runs were told to stop and return within a node.
                while (((long) RUNS.getVolatile(this) & ~CLOSING) != 0) {
                    try {
                        closeMonitor.wait();
                    } catch (InterruptedException e) {
                        interrupted = true;
                    }
                }
                if (!closed) {
                    closed = true;
                    // Counted closed even if ORT fails to release the session: no run can reach it any more.
                    OrtObjects.predictorClosed();
                    bindings.closeAll(); // no run in flight: each gave its binding back before counting out
                    closeSession();
                }
            }
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
