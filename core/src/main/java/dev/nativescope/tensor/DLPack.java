package dev.nativescope.tensor;

import dev.nativescope.bindings.DLDataType;
import dev.nativescope.bindings.DLDevice;
import dev.nativescope.bindings.DLTensor;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.internal.shape.Shapes;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * Converts between {@link Tensor} views and DLPack {@code DLTensor} descriptors
 * ({@code <dlpack/dlpack.h>}), without copying elements, so that any DLPack consumer or
 * producer in native code can share tensors with Java.
 *
 * <p><b>Export</b> writes a {@code DLTensor} into an arena: device {@code kDLCPU} 0, the dtype's
 * DLPack code and bits with one lane, the shape and the strides (in elements, always filled in,
 * also for contiguous tensors). {@code data} is the address of element {@code [0, ...]} (the
 * tensor segment's address plus the tensor's byte offset) and {@code byte_offset} is 0: consumers
 * that ignore {@code byte_offset} still read the right elements, and the descriptor names no byte
 * before the tensor's first element. The shape and strides arrays live in the same arena as the
 * descriptor. The descriptor does not keep the tensor's memory alive: keep the tensor (its
 * segment) reachable and its arena open for as long as native code uses the descriptor (hand the
 * descriptor to native code inside {@code dev.nativescope.interop.SegmentHold.call}, which does
 * both). A descriptor native code writes through comes from {@link #exportForWriting}, which
 * refuses read-only memory.
 *
 * <p><b>Import</b> reads a {@code DLTensor} that native code handed over and returns a view of its
 * memory: {@code MemorySegment.ofAddress(...)} over exactly the bytes its indices reach,
 * reinterpreted with the lifetime of the given arena (closing the arena makes the view
 * inaccessible; it never frees the memory, which still belongs to the producer). Shape and strides
 * are copied, so the descriptor itself may go away after the call. Every field is validated first;
 * a malformed descriptor is refused with an {@link IllegalArgumentException} whose message says
 * which field is wrong.
 *
 * <p>Only CPU memory is supported; {@code device_id} is not looked at for it. The dtypes are those
 * of {@link DType} with one lane ({@link DType#ofDLPack}); {@code BOOL} uses code 6 ({@code kDLBool}
 * of DLPack 0.8+).
 *
 * <p>Stateless and thread-safe. Both methods make restricted FFM calls ({@code reinterpret}): run
 * with {@code --enable-native-access=dev.nativescope.core} (or {@code ALL-UNNAMED}).
 */
public final class DLPack {
    /**
     * The largest {@code ndim} accepted: {@code NSC_DL_MAX_NDIM} of nativescope.h, also enforced by native code
     * (a literal, so that initialising this class touches no binding; {@code NativeAccessEverywhereTest} checks it against the header).
     */
    public static final int MAX_NDIM = 64;

    /** In a holder: the bindings are touched only after {@link NativeLibrary#load()} checked native access. */
    private static final class DeviceNames {
        static final Map<Integer, String> NAMES = deviceNames();
    }

    private DLPack() {
    }

    /**
     * Describes {@code tensor} as a DLPack {@code DLTensor} allocated in {@code arena}.
     *
     * @param tensor a tensor over native memory
     * @param arena where the descriptor, its shape and its strides are allocated
     * @return the {@code DLTensor} ({@code DLTensor.sizeof()} bytes)
     * @throws IllegalArgumentException when the tensor's segment is on the Java heap (it has no
     *         stable address)
     * @throws IllegalStateException when the tensor's segment is no longer alive
     */
    public static MemorySegment export(Tensor tensor, Arena arena) {
        Objects.requireNonNull(tensor, "tensor");
        Objects.requireNonNull(arena, "arena");
        NativeLibrary.load(); // a denied native access is its message, not an ExceptionInInitializerError
        MemorySegment segment = tensor.segment();
        if (!segment.isNative()) {
            throw new IllegalArgumentException("DLPack export needs native memory, but " + tensor.dtype().displayName()
                    + " tensor of shape " + Arrays.toString(tensor.shape()) + " is over a heap segment; copy it into"
                    + " a segment allocated by an Arena first");
        }
        if (!segment.scope().isAlive()) {
            throw new IllegalStateException("DLPack export of a tensor whose memory was already freed (its arena is closed)");
        }
        int rank = tensor.rank();
        long[] shape = tensor.shape();
        long[] strides = tensor.strides();
        MemorySegment descriptor = DLTensor.allocate(arena);
        // One slot at least, so that a 0-d tensor gets non-NULL shape and strides pointers too.
        MemorySegment shapeArray = arena.allocate(ValueLayout.JAVA_LONG, Math.max(rank, 1));
        MemorySegment stridesArray = arena.allocate(ValueLayout.JAVA_LONG, Math.max(rank, 1));
        for (int i = 0; i < rank; i++) {
            shapeArray.setAtIndex(ValueLayout.JAVA_LONG, i, shape[i]);
            stridesArray.setAtIndex(ValueLayout.JAVA_LONG, i, strides[i]);
        }
        DLTensor.data(descriptor, MemorySegment.ofAddress(segment.address() + tensor.byteOffset()));
        MemorySegment device = DLTensor.device(descriptor);
        DLDevice.device_type(device, nativescope_h.kDLCPU());
        DLDevice.device_id(device, 0);
        DLTensor.ndim(descriptor, rank);
        MemorySegment dtype = DLTensor.dtype(descriptor);
        DLDataType.code(dtype, (byte) tensor.dtype().dlpackCode());
        DLDataType.bits(dtype, (byte) tensor.dtype().dlpackBits());
        DLDataType.lanes(dtype, (short) 1);
        DLTensor.shape(descriptor, shapeArray);
        DLTensor.strides(descriptor, stridesArray);
        DLTensor.byte_offset(descriptor, 0L);
        return descriptor;
    }

    /**
     * Like {@link #export}, for a descriptor native code will write through: refuses a read-only
     * tensor first. DLPack 0.6's {@code DLTensor} (the version nativescope builds against) has no
     * field that says read-only ({@code DLPACK_FLAG_BITMASK_READ_ONLY} arrived with 1.0's
     * {@code DLManagedTensorVersioned}), so a consumer cannot be told through the descriptor: the
     * check is made here, before any native code sees the address.
     *
     * @throws IllegalArgumentException when the tensor's segment is read-only (a {@code READ_ONLY}
     *         mapping or {@code asReadOnly()}), or on the heap
     */
    public static MemorySegment exportForWriting(Tensor tensor, Arena arena) {
        Objects.requireNonNull(tensor, "tensor");
        if (tensor.segment().isReadOnly()) {
            throw new IllegalArgumentException("DLPack export for writing: " + tensor.dtype().displayName()
                    + " tensor of shape " + Arrays.toString(tensor.shape()) + " is read-only memory (a READ_ONLY"
                    + " mapping or asReadOnly()); pass a writable tensor, or export(...) it for reading only");
        }
        return export(tensor, arena);
    }

    /**
     * Views the memory a DLPack {@code DLTensor} describes, without copying.
     *
     * @param dlTensor the descriptor: a {@code DLTensor *} from native code (a zero-length segment
     *        is reinterpreted to {@code DLTensor.sizeof()} bytes) or a segment of at least that size
     * @param arena the lifetime of the returned view's segment
     * @return a tensor whose {@link Tensor#segment()} spans exactly the bytes the descriptor's
     *         indices reach, with its shape and strides
     * @throws IllegalArgumentException when the descriptor is NULL, too small, not on the CPU, of
     *         an unsupported dtype, has an ndim below 0 or above {@link #MAX_NDIM}, a NULL shape, a
     *         negative dimension, strides or a byte offset that reach beyond the address space, or
     *         NULL data with elements
     */
    public static Tensor importTensor(MemorySegment dlTensor, Arena arena) {
        NativeLibrary.load(); // a denied native access is its message, not an ExceptionInInitializerError
        Objects.requireNonNull(dlTensor, "dlTensor");
        Objects.requireNonNull(arena, "arena");
        MemorySegment descriptor = descriptorOf(dlTensor);

        MemorySegment device = DLTensor.device(descriptor);
        int deviceType = DLDevice.device_type(device);
        if (deviceType != nativescope_h.kDLCPU()) {
            throw new IllegalArgumentException("DLPack tensor is on device " + deviceName(deviceType) + " (id "
                    + DLDevice.device_id(device) + "); only kDLCPU memory can be viewed from Java");
        }
        MemorySegment dtypeField = DLTensor.dtype(descriptor);
        int code = Byte.toUnsignedInt(DLDataType.code(dtypeField));
        int bits = Byte.toUnsignedInt(DLDataType.bits(dtypeField));
        int lanes = Short.toUnsignedInt(DLDataType.lanes(dtypeField));
        DType dtype = DType.ofDLPack(code, bits, lanes).orElseThrow(() -> new IllegalArgumentException(
                "unsupported DLPack dtype: code " + code + ", bits " + bits + ", lanes " + lanes
                        + "; supported are one lane of " + supportedDTypes()));

        int ndim = DLTensor.ndim(descriptor);
        if (ndim < 0 || ndim > MAX_NDIM) {
            throw new IllegalArgumentException("DLPack tensor has ndim " + ndim + "; expected 0 to " + MAX_NDIM);
        }
        long[] shape = readLongs(DLTensor.shape(descriptor), ndim, "shape");
        Shapes.checkDims(shape);
        // Any zero dimension makes the tensor empty, whatever the others multiply to.
        long count = Arrays.stream(shape).anyMatch(dim -> dim == 0) ? 0 : Shapes.elementCount(shape);
        MemorySegment stridesPointer = DLTensor.strides(descriptor);
        long[] strides = MemorySegment.NULL.equals(stridesPointer)
                ? compactStrides(shape, count)
                : readLongs(stridesPointer, ndim, "strides");

        long data = DLTensor.data(descriptor).address();
        long byteOffset = DLTensor.byte_offset(descriptor);
        if (byteOffset < 0) {
            throw new IllegalArgumentException("DLPack tensor has byte_offset " + Long.toUnsignedString(byteOffset)
                    + ", beyond the address space");
        }
        long base;
        try {
            base = Math.addExact(data, byteOffset);
        } catch (ArithmeticException overflow) {
            base = -1;
        }
        if (base < 0 || data < 0) {
            throw new IllegalArgumentException("DLPack tensor's data 0x" + Long.toHexString(data) + " + byte_offset "
                    + byteOffset + " is beyond the address space");
        }
        if (count == 0) {
            MemorySegment nothing = MemorySegment.ofAddress(base).reinterpret(0, arena, null);
            return Tensor.of(nothing, 0, dtype, shape, strides);
        }
        if (data == 0) {
            throw new IllegalArgumentException("DLPack tensor has NULL data but " + count + " elements (shape "
                    + Arrays.toString(shape) + ")");
        }

        // The lowest and past the highest byte that an index reaches.
        Shapes.Extent extent = Shapes.extent(base, shape, strides, dtype.byteSize());
        long start = extent.start();
        long end = extent.end();
        if (start <= 0) {
            // base >= 0 and start >= -2^63: the distance fits in 64 unsigned bits.
            throw new IllegalArgumentException("DLPack tensor's strides " + Arrays.toString(strides) + " with shape "
                    + Arrays.toString(shape) + " reach " + Long.toUnsignedString(base - start)
                    + " bytes below data + byte_offset = 0x" + Long.toHexString(base) + ", below address 1");
        }
        MemorySegment memory = MemorySegment.ofAddress(start).reinterpret(end - start, arena, null);
        return Tensor.of(memory, base - start, dtype, shape, strides);
    }

    /** The descriptor as a segment of exactly {@code DLTensor.sizeof()} bytes. */
    private static MemorySegment descriptorOf(MemorySegment dlTensor) {
        if (dlTensor.address() == 0) {
            throw new IllegalArgumentException("DLPack tensor pointer is NULL");
        }
        long size = DLTensor.sizeof();
        if (dlTensor.byteSize() == 0) {
            return dlTensor.reinterpret(size);
        }
        if (dlTensor.byteSize() < size) {
            throw new IllegalArgumentException("DLPack tensor segment has " + dlTensor.byteSize() + " bytes; a DLTensor has "
                    + size);
        }
        return dlTensor.asSlice(0, size);
    }

    private static long[] readLongs(MemorySegment pointer, int ndim, String field) {
        long[] values = new long[ndim];
        if (ndim == 0) {
            return values;
        }
        if (MemorySegment.NULL.equals(pointer)) {
            throw new IllegalArgumentException("DLPack tensor has ndim " + ndim + " but a NULL " + field);
        }
        MemorySegment array = pointer.reinterpret((long) ndim * Long.BYTES);
        for (int i = 0; i < ndim; i++) {
            values[i] = array.getAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, i);
        }
        return values;
    }

    /** Row-major strides; zeros for a tensor without elements, whose strides are never used (and may overflow). */
    private static long[] compactStrides(long[] shape, long count) {
        return count == 0 ? new long[shape.length] : Shapes.cStrides(shape);
    }

    private static Map<Integer, String> deviceNames() {
        Map<Integer, String> names = new LinkedHashMap<>();
        names.put(nativescope_h.kDLCPU(), "kDLCPU");
        names.put(nativescope_h.kDLCUDA(), "kDLCUDA");
        names.put(nativescope_h.kDLCUDAHost(), "kDLCUDAHost");
        names.put(nativescope_h.kDLOpenCL(), "kDLOpenCL");
        names.put(nativescope_h.kDLVulkan(), "kDLVulkan");
        names.put(nativescope_h.kDLMetal(), "kDLMetal");
        names.put(nativescope_h.kDLVPI(), "kDLVPI");
        names.put(nativescope_h.kDLROCM(), "kDLROCM");
        names.put(nativescope_h.kDLROCMHost(), "kDLROCMHost");
        names.put(nativescope_h.kDLExtDev(), "kDLExtDev");
        names.put(nativescope_h.kDLCUDAManaged(), "kDLCUDAManaged");
        return Map.copyOf(names);
    }

    /** @return {@code kDLCUDA (2)}, or {@code of unknown type 99} */
    static String deviceName(int deviceType) {
        String name = DeviceNames.NAMES.get(deviceType);
        return name != null ? name + " (" + deviceType + ")" : "of unknown type " + deviceType;
    }

    private static String supportedDTypes() {
        StringBuilder out = new StringBuilder();
        for (DType type : DType.values()) {
            if (!out.isEmpty()) {
                out.append(", ");
            }
            out.append(type.displayName()).append(" (").append(type.dlpackCode()).append('/').append(type.dlpackBits())
                    .append(')');
        }
        return out.toString();
    }
}
