package dev.nativescope.onnxruntime;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Creates and closes the per-run ONNX Runtime objects ({@link OnnxTensor} views of our tensors,
 * {@link OrtSession.RunOptions} and the output values of {@link OrtResult}s until they are closed) and counts them, so that tests can prove that no run, cancelled
 * or not, leaves one open; also counts the predictors (sessions) open and the views they keep for
 * reuse (counted apart from the per-run objects while kept). Thread-safe: the counters
 * are atomic and shared by all predictors. {@link OrtResources} shows them outside the package.
 */
final class OrtObjects {
    private static final AtomicLong CREATED = new AtomicLong();
    private static final AtomicLong CLOSED = new AtomicLong();
    private static final AtomicLong OPEN_PREDICTORS = new AtomicLong();
    /** Views of {@link OrtBinding}s, created and not closed: a predictor's to reuse, not per-run objects. */
    private static final AtomicLong CACHED = new AtomicLong();

    private OrtObjects() {
    }

    /**
     * {@return how many per-run ORT objects are open now (created and not yet closed, and not kept by a
     * predictor for reuse)}
     */
    static long open() {
        // Read CLOSED first: an object closed between the reads is then counted as open, never as
        // closed before it was created. A binding's views are uncounted as cached before they close.
        long closed = CLOSED.get();
        long cached = CACHED.get();
        return CREATED.get() - closed - cached;
    }

    /** {@return how many ORT views the open predictors keep for reuse (in their caches or in a run)} */
    static long cached() {
        return CACHED.get();
    }

    /** {@code count} views became a binding's. */
    static void cached(int count) {
        CACHED.addAndGet(count);
    }

    /** {@code count} views of a binding are about to be closed. */
    static void uncached(int count) {
        CACHED.addAndGet(-count);
    }

    /** {@return how many per-run ORT objects were created since the JVM started} */
    static long created() {
        return CREATED.get();
    }

    /** {@return how many {@link OrtPredictor}s are open now (created and not yet closed)} */
    static long openPredictors() {
        return OPEN_PREDICTORS.get();
    }

    static void predictorOpened() {
        OPEN_PREDICTORS.incrementAndGet();
    }

    static void predictorClosed() {
        OPEN_PREDICTORS.decrementAndGet();
    }

    static OrtSession.RunOptions runOptions() throws OrtException {
        OrtSession.RunOptions options = new OrtSession.RunOptions();
        CREATED.incrementAndGet();
        return options;
    }

    static void close(OrtSession.RunOptions options) {
        options.close();
        CLOSED.incrementAndGet();
    }

    /** Counts the {@code count} output values ORT allocated for an {@link OrtResult}. */
    static void createdAllocated(int count) {
        CREATED.addAndGet(count);
    }

    /** Counts the output values of an {@link OrtResult} released. */
    static void closedAllocated(int count) {
        CLOSED.addAndGet(count);
    }

    static void close(OnnxTensor tensor) {
        tensor.close();
        CLOSED.incrementAndGet();
    }

    /**
     * Wraps {@code tensor}'s memory as an ORT tensor without copying: a direct, native-order
     * {@link ByteBuffer} over the segment, which ORT's Java API hands to {@code
     * CreateTensorWithDataAsOrtValue} as is (it copies only heap buffers and buffers of another
     * byte order). The returned tensor does not own the memory; the caller keeps the segment alive
     * until it is closed.
     *
     * @param role "input" or "output", for messages
     */
    static OnnxTensor view(OrtEnvironment environment, String role, String name, Tensor tensor) throws OrtException {
        OnnxJavaType type = javaType(tensor.dtype(), role, name);
        if (!tensor.isContiguous()) {
            throw new IllegalArgumentException(role + " '" + name + "': " + tensor + " is not contiguous;"
                    + " ONNX Runtime needs dense row-major data: copy it with Tensor.copyTo(...) into a contiguous tensor first");
        }
        MemorySegment data = tensor.data();
        if (!data.isNative()) {
            throw new IllegalArgumentException(role + " '" + name + "': the tensor is over heap memory, which ONNX Runtime"
                    + " would copy (and could not write outputs into); allocate it from an Arena or map a file instead");
        }
        if (data.byteSize() > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(role + " '" + name + "': " + data.byteSize() + " bytes; ONNX Runtime's"
                    + " Java API takes tensors of at most 2^31 - 1 bytes (a ByteBuffer)");
        }
        ByteBuffer buffer = data.asByteBuffer().order(ByteOrder.nativeOrder());
        OnnxTensor created = OnnxTensor.createTensor(environment, buffer, tensor.shape(), type);
        CREATED.incrementAndGet();
        if (created.ownsBuffer()) {
            // ORT copied after all: an API change we must not hide, since outputs would be lost.
            close(created);
            throw new IllegalStateException(role + " '" + name + "': ONNX Runtime copied the direct buffer instead of"
                    + " using it in place; this version of its Java API is not supported");
        }
        return created;
    }

    private static OnnxJavaType javaType(DType dtype, String role, String name) {
        return switch (dtype) {
            case FLOAT32 -> OnnxJavaType.FLOAT;
            case FLOAT64 -> OnnxJavaType.DOUBLE;
            case FLOAT16 -> OnnxJavaType.FLOAT16;
            case BFLOAT16 -> OnnxJavaType.BFLOAT16;
            case INT8 -> OnnxJavaType.INT8;
            case INT16 -> OnnxJavaType.INT16;
            case INT32 -> OnnxJavaType.INT32;
            case INT64 -> OnnxJavaType.INT64;
            case UINT8 -> OnnxJavaType.UINT8;
            case BOOL -> OnnxJavaType.BOOL;
            case UINT16, UINT32, UINT64 -> throw new IllegalArgumentException(role + " '" + name + "': dtype "
                    + dtype.displayName() + " has no tensor type in ONNX Runtime's Java API");
        };
    }

    /** {@return the handle of field {@code name} of the lookup's class}: for this module's lock-free state words */
    static java.lang.invoke.VarHandle field(java.lang.invoke.MethodHandles.Lookup lookup, String name, Class<?> type) {
        try {
            return lookup.findVarHandle(lookup.lookupClass(), name, type);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }
}
