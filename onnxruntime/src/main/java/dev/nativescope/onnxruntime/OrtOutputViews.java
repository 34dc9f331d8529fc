package dev.nativescope.onnxruntime;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.TensorInfo;
import ai.onnxruntime.ValueInfo;
import dev.nativescope.tensor.DLPack;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.ByteBuffer;
import java.util.Map;

/**
 * Zero-copy views of tensors that ONNX Runtime allocated.
 *
 * <p>ORT's Java API 1.23 has no public zero-copy accessor for such a tensor: {@code
 * getByteBuffer()} and the typed getters copy into a heap buffer, and {@code getBufferRef()} is
 * empty unless the tensor was created from a Java buffer. Its private {@code getBuffer()} returns
 * what the JNI side builds with {@code NewDirectByteBuffer} over {@code GetTensorMutableData}: a
 * direct buffer over ORT's own memory. ORT's jar is an automatic module (or on the class path),
 * whose packages are open, so a private lookup reaches it; when a later version drops it, {@link
 * #check()} says so before any run.
 *
 * <p>The direct buffer's segment is always alive (it has no owner), so it is re-scoped to the
 * result's arena through a DLPack descriptor: {@link DLPack#importTensor} re-creates the view with
 * the arena's lifetime (core makes that restricted call, under the native access it already needs),
 * so closing the arena makes the view inaccessible before ORT frees the memory.
 */
final class OrtOutputViews {
    private static final MethodHandle GET_BUFFER;
    private static final Throwable UNAVAILABLE;

    static {
        MethodHandle handle = null;
        Throwable failure = null;
        try {
            handle = MethodHandles.privateLookupIn(OnnxTensor.class, MethodHandles.lookup())
                    .findVirtual(OnnxTensor.class, "getBuffer", MethodType.methodType(ByteBuffer.class));
        } catch (ReflectiveOperationException | RuntimeException e) {
            failure = e;
        }
        GET_BUFFER = handle;
        UNAVAILABLE = failure;
    }

    private OrtOutputViews() {
    }

    /** Throws when this ORT version gives no zero-copy access to its output memory. */
    static void check() {
        if (GET_BUFFER == null) {
            throw new UnsupportedOperationException("this version of ONNX Runtime's Java API has no zero-copy access to"
                    + " the memory of the tensors it allocates (OnnxTensor.getBuffer()): runAllocating needs ORT 1.23's"
                    + " Java API; use run(...) with pre-allocated outputs instead", UNAVAILABLE);
        }
    }

    /**
     * The dtype of an output from the session's metadata, or an {@link IllegalArgumentException}
     * naming the output and its type when it is not a tensor or its element type has no
     * {@link DType} that ORT's Java API can hand over.
     */
    static DType dtypeOf(String name, NodeInfo info) {
        ValueInfo value = info.getInfo();
        if (!(value instanceof TensorInfo tensor)) {
            throw new IllegalArgumentException("output '" + name + "' is not a tensor but " + value
                    + "; runAllocating returns tensors only");
        }
        return dtypeOf(name, tensor);
    }

    static DType dtypeOf(String name, TensorInfo tensor) {
        // By ONNX's element type: ORT's Java API reports uint16/32/64 as INT16/32/64 (OnnxJavaType) but
        // hands over their memory all the same, and DType has them.
        return switch (tensor.onnxType) {
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT -> DType.FLOAT32;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE -> DType.FLOAT64;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8 -> DType.INT8;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16 -> DType.INT16;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32 -> DType.INT32;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64 -> DType.INT64;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8 -> DType.UINT8;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16 -> DType.UINT16;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32 -> DType.UINT32;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64 -> DType.UINT64;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL -> DType.BOOL;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16 -> DType.FLOAT16;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16 -> DType.BFLOAT16;
            case ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING -> throw new IllegalArgumentException("output '" + name
                    + "' has element type string (" + tensor.onnxType + "): strings are Java objects in ONNX"
                    + " Runtime's Java API, not memory a Tensor can view; run it through the OrtSession directly");
            default -> throw new IllegalArgumentException("output '" + name + "' has element type "
                    + elementName(tensor) + " (" + tensor.onnxType + "), which ONNX Runtime's Java API cannot express"
                    + " or nativescope's DType lacks (supported: float, double, int8, int16, int32, int64, uint8,"
                    + " uint16, uint32, uint64, bool, float16, bfloat16)");
        };
    }

    private static String elementName(TensorInfo tensor) {
        String onnx = tensor.onnxType.name();
        String prefix = "ONNX_TENSOR_ELEMENT_DATA_TYPE_";
        return (onnx.startsWith(prefix) ? onnx.substring(prefix.length()) : onnx).toLowerCase(java.util.Locale.ROOT);
    }

    /** Checks every requested output's type before the run, so a refused type never runs the model. */
    static void checkOutputs(Map<String, NodeInfo> outputInfo, Iterable<String> names) {
        for (String name : names) {
            NodeInfo info = outputInfo.get(name);
            if (info == null) {
                throw new IllegalArgumentException("the model has no output '" + name + "'; its outputs are "
                        + outputInfo.keySet());
            }
            dtypeOf(name, info);
        }
    }

    /** A view of {@code tensor}'s memory that lives as long as {@code arena}. */
    static Tensor view(String name, OnnxTensor tensor, Arena arena) {
        TensorInfo info = tensor.getInfo();
        DType dtype = dtypeOf(name, info);
        long[] shape = info.getShape();
        long count = info.getNumElements();
        if (count == 0) {
            // No element to view; ORT may have no data pointer at all.
            return Tensor.of(arena.allocate(0, dtype.byteSize()), dtype, shape);
        }
        long bytes = Math.multiplyExact(count, (long) dtype.byteSize());
        if (bytes > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("output '" + name + "': " + bytes + " bytes; ONNX Runtime's Java API"
                    + " hands over its memory as a ByteBuffer of at most 2^31 - 1 bytes");
        }
        ByteBuffer buffer;
        try {
            buffer = (ByteBuffer) GET_BUFFER.invokeExact(tensor);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable e) {
            throw new IllegalStateException("output '" + name + "': ONNX Runtime did not hand over its memory", e);
        }
        if (buffer == null || !buffer.isDirect() || buffer.capacity() != bytes) {
            throw new IllegalStateException("output '" + name + "': ONNX Runtime handed over " + buffer + " for "
                    + bytes + " bytes of " + dtype.displayName() + "; this version of its Java API is not supported");
        }
        // Always alive and ownerless: re-scoped to the arena through a DLPack descriptor (export writes it
        // in the arena, import re-creates the view with the arena's lifetime).
        Tensor unscoped = Tensor.of(MemorySegment.ofBuffer(buffer), dtype, shape);
        return DLPack.importTensor(DLPack.export(unscoped, arena), arena);
    }
}
