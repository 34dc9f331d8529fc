package dev.nativescope.onnxruntime;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtSession;
import dev.nativescope.tensor.Tensor;

import java.lang.foreign.Arena;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * The outputs of {@link OrtPredictor#runAllocating}: tensors that ONNX Runtime allocated during
 * the run, seen in place. Each {@link Tensor} views the memory of ORT's own output value (no copy)
 * and stays valid until this result is closed; afterwards every access through it (and through
 * any slice or view of it) throws {@link IllegalStateException}, and ORT's values are released.
 *
 * <p>The views are writable: the memory belongs to this result alone, so a caller may also
 * transform an output in place or hand it to native code as an output. They live in a shared
 * arena that the result owns, so they may be read from any thread.
 *
 * <p><b>Closing.</b> {@link #close()} is idempotent and may be called from any thread. While a
 * view is held by a native call (an {@link OrtPredictor#run} that reads it as an input, any
 * {@code SegmentHold.call}), closing is refused with {@link IllegalStateException} and nothing is
 * released: close again once the call has returned. A result not closed keeps ORT's memory until
 * the JVM exits (ORT values are not freed by the garbage collector); use try-with-resources.
 *
 * <p>A result does not depend on its predictor: it stays valid after the predictor is closed.
 */
public final class OrtResult implements AutoCloseable {
    private final Arena arena;
    private final OrtSession.Result values;
    private final int valueCount;
    private final Map<String, Tensor> tensors;
    private final Map<String, OnnxTensor> ortTensors;
    private boolean closed; // guarded by this

    /**
     * Takes ownership of {@code values} (whose {@code size()} values {@link OrtObjects} counts as
     * created): on failure here they are closed, and the caller must not close them.
     */
    OrtResult(OrtSession.Result values, Set<String> names) {
        this.values = values;
        this.valueCount = values.size();
        Arena created = null;
        Map<String, Tensor> views = new LinkedHashMap<>();
        Map<String, OnnxTensor> ort = new LinkedHashMap<>();
        try {
            created = Arena.ofShared();
            for (String name : names) {
                OnnxValue value = values.get(name).orElseThrow(() -> new IllegalStateException(
                        "ONNX Runtime returned no value for output '" + name + "'"));
                if (!(value instanceof OnnxTensor tensor)) {
                    throw new IllegalArgumentException("output '" + name + "' is a " + value.getType()
                            + ", not a tensor; runAllocating returns tensors only");
                }
                ort.put(name, tensor);
                views.put(name, OrtOutputViews.view(name, tensor, created));
            }
        } catch (RuntimeException | Error e) {
            if (created != null) {
                try {
                    created.close();
                } catch (RuntimeException suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            closeValues();
            throw e;
        }
        this.arena = created;
        this.tensors = Collections.unmodifiableMap(views);
        this.ortTensors = ort;
    }

    private void closeValues() {
        values.close();
        OrtObjects.closedAllocated(valueCount);
    }

    /**
     * The output of that name.
     *
     * @param name an output named in the run
     * @return a view of ORT's memory for it, valid until this result is closed
     * @throws IllegalArgumentException when the run did not compute an output of that name
     * @throws IllegalStateException when the result is closed
     */
    public Tensor get(String name) {
        Objects.requireNonNull(name, "name");
        checkOpen();
        Tensor tensor = tensors.get(name);
        if (tensor == null) {
            throw new IllegalArgumentException("no output '" + name + "' in this result; it has " + tensors.keySet());
        }
        return tensor;
    }

    /**
     * {@return all outputs by name, in the order they were requested (an unmodifiable map)}
     *
     * @throws IllegalStateException when the result is closed
     */
    public Map<String, Tensor> tensors() {
        checkOpen();
        return tensors;
    }

    /** {@return whether {@link #close()} has released the outputs} */
    public synchronized boolean isClosed() {
        return closed;
    }

    private synchronized void checkOpen() {
        if (closed) {
            throw new IllegalStateException("the OrtResult is closed: its tensors were released");
        }
    }

    /** ORT's own value behind an output, for tests that compare addresses; do not close it. */
    OnnxTensor ortTensor(String name) {
        return ortTensors.get(name);
    }

    /**
     * Makes the tensors inaccessible, then releases ORT's output values. Idempotent.
     *
     * @throws IllegalStateException when a tensor of this result is held by a native call right now
     *         (nothing is released then; close again after that call)
     */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        // First the views: once the arena is closed, no Java access can reach ORT's memory, and a
        // view held by a native call makes this throw before anything is freed.
        arena.close();
        closed = true;
        closeValues();
    }

    @Override
    public String toString() {
        return "OrtResult" + (isClosed() ? "[closed]" : tensors.toString());
    }
}
