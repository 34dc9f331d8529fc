package dev.nativescope.onnxruntime;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.nativescope.call.CallMode;
import dev.nativescope.Context;
import dev.nativescope.call.NativeThreads;
import dev.nativescope.interop.CancellationSignal;
import dev.nativescope.interop.WritableMemory;
import dev.nativescope.tensor.Tensor;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * What one {@link OrtPredictor#run} hands ORT for a given set of tensors: the {@link OnnxTensor} views
 * of the inputs and the pinned outputs, the segments to hold and the call mode. Making it costs two
 * JNI calls per tensor (a view and, later, its close: about 0.5 us for a tiny model's two tensors, a
 * third of that model's run), so a predictor keeps the bindings of its latest runs in a {@link Cache}
 * and reuses one when a run passes the same {@link Tensor} objects under the same names again.
 *
 * <p>Reuse is sound because a {@code Tensor} is immutable: the same object means the same segment
 * (address, size, arena), dtype and shape, so the views address the same memory and every check made
 * on the tensor (contiguous, native, writable, confinement) still holds. What can change is only
 * whether its arena is alive or accessible from the calling thread, and that the segment hold checks
 * on every run before ORT sees the views, exactly as for fresh ones. A view does not own its memory:
 * closing one whose arena is closed is harmless.
 *
 * <p>Threading: a binding is used by one run at a time. The cache hands it out by removing it from
 * its slot ({@link Cache#take}) and takes it back after the run ({@link Cache#give}); a concurrent run
 * with the same tensors finds the slot empty and makes its own. Only {@link Cache#closeAll} runs with
 * no run in flight (the predictor's write lock).
 */
final class OrtBinding {
    private final String[] inputNames;
    private final Tensor[] inputTensors;
    private final String[] outputNames;
    private final Tensor[] outputTensors;
    private final Map<String, OnnxTensor> ortInputs;
    private final Map<String, OnnxTensor> ortOutputs;
    private final List<MemorySegment> segments;
    private final CallMode mode;
    /** ORT's C run over these views, or null: runs take the JNI path ({@link OrtDirectRun}). */
    private final OrtDirectRun.Prepared direct;
    /** The runs' cancellation signal, made by the first run; used by the one run that took the binding. */
    private CancellationSignal signal;
    /** The switch of the run the signal is open for; read by its stop action, from the stopping thread. */
    private volatile RunTermination termination;

    private OrtBinding(OrtSession session, String[] inputNames, Tensor[] inputTensors, String[] outputNames,
                       Tensor[] outputTensors, Map<String, OnnxTensor> ortInputs, Map<String, OnnxTensor> ortOutputs,
                       List<MemorySegment> segments) {
        this.inputNames = inputNames;
        this.inputTensors = inputTensors;
        this.outputNames = outputNames;
        this.outputTensors = outputTensors;
        // Map.copyOf: the immutable maps users build with Map.of, so ORT's run sees the map classes it
        // usually sees (an extra wrapper class made its call sites polymorphic). ORT reads no order.
        this.ortInputs = Map.copyOf(ortInputs);
        this.ortOutputs = Map.copyOf(ortOutputs);
        this.segments = List.copyOf(segments);
        // ORT's run is a JNI call: it pins a virtual thread's carrier as a downcall does, so from a virtual
        // thread it runs on a native thread while that thread parks (AUTO); a confined tensor keeps it
        // inline, on its owner. Confinement belongs to the arena, so it is fixed for these tensors.
        this.mode = NativeThreads.modeFor(CallMode.AUTO, this.segments.toArray(MemorySegment[]::new));
        this.direct = this.ortOutputs.isEmpty() ? null
                : OrtDirectRun.prepare(session, this.ortInputs, this.ortOutputs, this.segments);
    }

    /**
     * Checks the tensors (not null, outputs writable, each viewable by ORT) and makes their views;
     * on failure closes the views it made.
     */
    static OrtBinding create(OrtEnvironment environment, OrtSession session, Map<String, Tensor> inputs,
                             Map<String, Tensor> outputs) throws OrtException {
        List<MemorySegment> segments = new ArrayList<>(inputs.size() + outputs.size());
        String[] inputNames = new String[inputs.size()];
        Tensor[] inputTensors = new Tensor[inputNames.length];
        int i = 0;
        for (Map.Entry<String, Tensor> input : inputs.entrySet()) {
            inputNames[i] = Objects.requireNonNull(input.getKey(), "input name");
            inputTensors[i] = Objects.requireNonNull(input.getValue(), "input tensor");
            segments.add(inputTensors[i].segment());
            i++;
        }
        String[] outputNames = new String[outputs.size()];
        Tensor[] outputTensors = new Tensor[outputNames.length];
        i = 0;
        for (Map.Entry<String, Tensor> output : outputs.entrySet()) {
            outputNames[i] = Objects.requireNonNull(output.getKey(), "output name");
            outputTensors[i] = Objects.requireNonNull(output.getValue(), "output tensor");
            MemorySegment segment = outputTensors[i].segment();
            // ORT writes outputs through JNI, past FFM's checks: a READ_ONLY mapping would crash the JVM.
            WritableMemory.require("output '" + outputNames[i] + "'", segment);
            segments.add(segment);
            i++;
        }
        Map<String, OnnxTensor> ortInputs = new LinkedHashMap<>();
        Map<String, OnnxTensor> ortOutputs = new LinkedHashMap<>();
        boolean success = false;
        try {
            for (int k = 0; k < inputNames.length; k++) {
                ortInputs.put(inputNames[k], OrtObjects.view(environment, "input", inputNames[k], inputTensors[k]));
            }
            for (int k = 0; k < outputNames.length; k++) {
                ortOutputs.put(outputNames[k], OrtObjects.view(environment, "output", outputNames[k], outputTensors[k]));
            }
            OrtBinding binding = new OrtBinding(session, inputNames, inputTensors, outputNames, outputTensors, ortInputs,
                    ortOutputs, segments);
            // From here the views are the binding's (kept for reuse), no longer per-run objects: counted
            // once here and once in close(), not per run.
            OrtObjects.cached(binding.views());
            success = true;
            return binding;
        } finally {
            if (!success) {
                ortInputs.values().forEach(OrtObjects::close);
                ortOutputs.values().forEach(OrtObjects::close);
            }
        }
    }

    /**
     * {@return whether this binding is for exactly these tensors under these names}: the same sizes and,
     * for each of our names, the identical tensor. With equal sizes that makes the maps equal.
     */
    boolean matches(Map<String, Tensor> inputs, Map<String, Tensor> outputs) {
        if (inputs.size() != inputNames.length || outputs.size() != outputNames.length) {
            return false;
        }
        for (int i = 0; i < inputNames.length; i++) {
            if (inputs.get(inputNames[i]) != inputTensors[i]) {
                return false;
            }
        }
        for (int i = 0; i < outputNames.length; i++) {
            if (outputs.get(outputNames[i]) != outputTensors[i]) {
                return false;
            }
        }
        return true;
    }

    Map<String, OnnxTensor> ortInputs() {
        return ortInputs;
    }

    Map<String, OnnxTensor> ortOutputs() {
        return ortOutputs;
    }

    /** {@return the segments ORT reaches during the run, to hold} */
    List<MemorySegment> segments() {
        return segments;
    }

    /** {@return ORT's C run over these views (pinned outputs), or null for the JNI path} */
    OrtDirectRun.Prepared direct() {
        return direct;
    }

    /** {@return how the run's JNI call is made (inline for a confined tensor)} */
    CallMode mode() {
        return mode;
    }

    /**
     * Opens this binding's reusable signal (made on first use) for a run under {@code context} that
     * also stops when {@code lifetime} (the predictor's) is done, flipping {@code termination}. The
     * cache hands the binding to one run at a time, with a happens-before edge (its compare-and-set),
     * so the plain field needs no more. A stop of an earlier run cannot reach this one's switch: the
     * signal's close waits for stops in flight, and a late one only finds a finished switch.
     */
    CancellationSignal openSignal(Context lifetime, Context context, RunTermination termination) {
        CancellationSignal reusable = signal;
        if (reusable == null) {
            reusable = CancellationSignal.reusable(lifetime, reason -> {
                RunTermination current = this.termination;
                if (current != null) {
                    current.terminate();
                }
            });
            signal = reusable;
        }
        this.termination = termination;
        return reusable.reopen(context);
    }

    /** {@return the number of ORT views this binding owns} */
    private int views() {
        return inputNames.length + outputNames.length;
    }

    void close() {
        OrtObjects.uncached(views());
        ortInputs.values().forEach(OrtObjects::close);
        ortOutputs.values().forEach(OrtObjects::close);
    }

    /**
     * The bindings a predictor keeps for reuse: {@link #SLOTS} of them, the latest runs' (a
     * single-threaded loop and a couple of threads each with its own tensors all hit). What a slot
     * keeps stays reachable, including the tensors of an automatic arena, until a run over other
     * tensors replaces it or the predictor closes; so the slots are few.
     *
     * <p>Threading: {@link #take} and {@link #give} may be called by any number of runs at once (each
     * slot changes by compare-and-set, and a binding taken out belongs to its run alone);
     * {@link #closeAll} must run when no run is in flight.
     */
    static final class Cache {
        static final int SLOTS = 2;
        private final AtomicReferenceArray<OrtBinding> slots = new AtomicReferenceArray<>(SLOTS);

        /** {@return a cached binding for these tensors, now the caller's, or null} */
        OrtBinding take(Map<String, Tensor> inputs, Map<String, Tensor> outputs) {
            for (int i = 0; i < SLOTS; i++) {
                OrtBinding cached = slots.get(i);
                if (cached != null && cached.matches(inputs, outputs) && slots.compareAndSet(i, cached, null)) {
                    return cached;
                }
            }
            return null;
        }

        /**
         * Keeps {@code binding} for a later run: in an empty slot, else in place of the binding that
         * is not for the same tensors, else (two concurrent runs over the same tensors) not at all.
         * What it does not keep or replaces is closed.
         */
        void give(OrtBinding binding) {
            for (int i = 0; i < SLOTS; i++) {
                if (slots.get(i) == null && slots.compareAndSet(i, null, binding)) {
                    return;
                }
            }
            // All full: replace the first one for other tensors (the last slot if all are ours).
            for (int i = 0; i < SLOTS; i++) {
                OrtBinding cached = slots.get(i);
                if (cached != null && !cached.sameTensors(binding) && slots.compareAndSet(i, cached, binding)) {
                    cached.close();
                    return;
                }
            }
            binding.close();
        }

        /** Closes every kept binding; only while no run is in flight. */
        void closeAll() {
            for (int i = 0; i < SLOTS; i++) {
                OrtBinding cached = slots.getAndSet(i, null);
                if (cached != null) {
                    cached.close();
                }
            }
        }
    }

    private boolean sameTensors(OrtBinding other) {
        return java.util.Arrays.equals(inputNames, other.inputNames) && java.util.Arrays.equals(outputNames, other.outputNames)
                && identical(inputTensors, other.inputTensors) && identical(outputTensors, other.outputTensors);
    }

    private static boolean identical(Tensor[] a, Tensor[] b) {
        if (a.length != b.length) {
            return false;
        }
        for (int i = 0; i < a.length; i++) {
            if (a[i] != b[i]) {
                return false;
            }
        }
        return true;
    }
}
