package dev.nativescope.tensor;

import dev.nativescope.internal.shape.Shapes;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Objects;

/**
 * A strided view of typed elements over a {@link MemorySegment}: dtype, shape, strides (in
 * elements, may be negative or zero) and a byte offset. A tensor never owns memory: whoever
 * allocated or mapped the segment (an {@code Arena}, a mapped file) closes it, and every view
 * ({@link #slice}, {@link #select}, {@link #transpose}, {@link #reshape}) shares it.
 *
 * <p>Every index, size and offset is a {@code long}: a tensor may span more than 2 GiB. The
 * constructor checks that the shape's element count and byte size do not overflow and that every element the
 * view can address lies inside the segment, so element access afterwards needs no check beyond the
 * index bounds. Elements are stored in native (little-endian) byte order and read unaligned, since
 * file formats do not promise alignment.
 *
 * <p>Immutable and thread-safe as an object; the memory it views is as thread-safe as its segment
 * (concurrent writers need their own coordination).
 */
public final class Tensor {
    private static final int PREVIEW_ELEMENTS = 6;

    private final MemorySegment segment;
    private final DType dtype;
    private final long[] shape;
    private final long[] strides;
    private final long byteOffset;
    private final long elementCount;

    private Tensor(MemorySegment segment, long byteOffset, DType dtype, long[] shape, long[] strides) {
        this.segment = Objects.requireNonNull(segment, "segment");
        this.dtype = Objects.requireNonNull(dtype, "dtype");
        Objects.requireNonNull(shape, "shape");
        Objects.requireNonNull(strides, "strides");
        if (shape.length != strides.length) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " and strides "
                    + Arrays.toString(strides) + " have different ranks");
        }
        this.shape = shape.clone();
        this.strides = strides.clone();
        this.byteOffset = byteOffset;
        this.elementCount = Shapes.elementCount(this.shape);
        Shapes.byteSize(elementCount, this.shape, dtype.byteSize(), dtype.displayName());
        checkExtent();
    }

    /**
     * A C-contiguous (row-major) tensor at the start of {@code segment}.
     *
     * @throws IllegalArgumentException when a dimension is negative, the element count overflows,
     *         or the segment is too small
     */
    public static Tensor of(MemorySegment segment, DType dtype, long... shape) {
        return new Tensor(segment, 0, dtype, shape, contiguousStrides(shape));
    }

    /**
     * A tensor with explicit layout.
     *
     * @param byteOffset where element [0, 0, ...] is, in bytes from the segment's start
     * @param strides element strides per dimension (may be negative or zero)
     * @throws IllegalArgumentException when the layout addresses memory outside the segment
     */
    public static Tensor of(MemorySegment segment, long byteOffset, DType dtype, long[] shape, long[] strides) {
        return new Tensor(segment, byteOffset, dtype, shape, strides);
    }

    /** @return row-major strides for {@code shape}, in elements */
    public static long[] contiguousStrides(long... shape) {
        return Shapes.cStrides(shape);
    }

    /** @return column-major (Fortran) strides for {@code shape}, in elements */
    public static long[] fortranStrides(long... shape) {
        return Shapes.fortranStrides(shape);
    }

    /** Checks that the lowest and highest byte any index can reach lie inside the segment. */
    private void checkExtent() {
        if (byteOffset < 0) {
            throw new IllegalArgumentException("negative byte offset " + byteOffset);
        }
        if (elementCount == 0) {
            if (byteOffset > segment.byteSize()) {
                throw new IllegalArgumentException("byte offset " + byteOffset + " is beyond the segment's "
                        + segment.byteSize() + " bytes");
            }
            return;
        }
        Shapes.Extent extent = Shapes.extent(byteOffset, shape, strides, dtype.byteSize());
        if (extent.start() < 0 || extent.end() > segment.byteSize()) {
            throw new IllegalArgumentException(describe() + " addresses bytes [" + extent.start() + ", " + extent.end()
                    + ") but its segment has " + segment.byteSize() + " bytes");
        }
    }

    /** @return the segment this tensor views (the whole segment, not just the viewed bytes) */
    public MemorySegment segment() {
        return segment;
    }

    /** @return the element type */
    public DType dtype() {
        return dtype;
    }

    /** @return a copy of the shape */
    public long[] shape() {
        return shape.clone();
    }

    /** @return the size of dimension {@code dim} */
    public long dim(int dim) {
        return shape[checkDim(dim)];
    }

    /** @return a copy of the strides, in elements */
    public long[] strides() {
        return strides.clone();
    }

    /** @return the byte offset of element [0, 0, ...] in {@link #segment()} */
    public long byteOffset() {
        return byteOffset;
    }

    /** @return the number of dimensions */
    public int rank() {
        return shape.length;
    }

    /** @return the number of elements (the product of the shape) */
    public long elementCount() {
        return elementCount;
    }

    /** @return {@code elementCount() * dtype().byteSize()} */
    public long byteSize() {
        return elementCount * dtype.byteSize();
    }

    /** @return true when the elements are dense in row-major order (size-1 dimensions' strides ignored) */
    public boolean isContiguous() {
        long expected = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            if (shape[i] != 1 && strides[i] != expected) {
                return elementCount == 0;
            }
            expected *= shape[i];
        }
        return true;
    }

    /**
     * @return the viewed bytes of a contiguous tensor, as a slice of its segment (no copy)
     * @throws IllegalStateException when the tensor is not contiguous
     */
    public MemorySegment data() {
        if (!isContiguous()) {
            throw new IllegalStateException(describe() + " is not contiguous; copy it with copyTo(...) first");
        }
        return segment.asSlice(byteOffset, byteSize());
    }

    /** @return the byte offset in {@link #segment()} of the element at {@code index} */
    public long byteOffsetOf(long... index) {
        if (index.length != shape.length) {
            throw new IllegalArgumentException("index " + Arrays.toString(index) + " has rank " + index.length
                    + " but the tensor has rank " + shape.length);
        }
        long offset = 0;
        for (int i = 0; i < index.length; i++) {
            Objects.checkIndex(index[i], shape[i]);
            offset += index[i] * strides[i];
        }
        return byteOffset + offset * dtype.byteSize();
    }

    // ---------------------------------------------------------------- element access

    /** @return the element at {@code index}, converted to double (exact for every type but 64-bit integers beyond 2^53) */
    public double getDouble(long... index) {
        return ElementCodec.getDouble(segment, dtype, byteOffsetOf(index));
    }

    /** Stores {@code value}, converted to the dtype (floats rounded, integers truncated toward zero and wrapped). */
    public void setDouble(double value, long... index) {
        ElementCodec.setDouble(segment, dtype, byteOffsetOf(index), value);
    }

    /** @return the element at {@code index} as a float */
    public float getFloat(long... index) {
        return (float) getDouble(index);
    }

    /**
     * @return the integer element at {@code index} (unsigned types zero-extended; UINT64 as its bit pattern)
     * @throws IllegalStateException for floating-point tensors
     */
    public long getLong(long... index) {
        return ElementCodec.getLong(segment, dtype, byteOffsetOf(index));
    }

    /**
     * Stores an integer exactly: integer types keep its low bits (two's complement wrap; UINT64 takes
     * the bit pattern), BOOL stores {@code value != 0}, floating-point types round it.
     */
    public void setLong(long value, long... index) {
        ElementCodec.setLong(segment, dtype, byteOffsetOf(index), value);
    }

    // ---------------------------------------------------------------- views

    /**
     * @return the view of indices {@code start, start + step, ...} below {@code end} along {@code dim}
     * @throws IllegalArgumentException for a step below 1 or bounds outside {@code [0, dim size]}
     */
    public Tensor slice(int dim, long start, long end, long step) {
        int d = checkDim(dim);
        if (step < 1) {
            throw new IllegalArgumentException("slice step must be >= 1, got " + step);
        }
        if (start < 0 || end > shape[d] || start > end) {
            throw new IllegalArgumentException("slice [" + start + ", " + end + ") is outside dimension " + d
                    + " of size " + shape[d]);
        }
        long[] newShape = shape.clone();
        long[] newStrides = strides.clone();
        newShape[d] = end == start ? 0 : 1 + (end - start - 1) / step;
        // With at most one element the stride is never used: keep it rather than overflow on a huge step.
        newStrides[d] = newShape[d] <= 1 ? strides[d] : Math.multiplyExact(strides[d], step);
        long newOffset = newShape[d] == 0 ? byteOffset : byteOffset + start * strides[d] * dtype.byteSize();
        return new Tensor(segment, newOffset, dtype, newShape, newStrides);
    }

    /** @return {@code slice(dim, start, end, 1)} */
    public Tensor slice(int dim, long start, long end) {
        return slice(dim, start, end, 1);
    }

    /** @return the view with dimension {@code dim} fixed at {@code index} (rank drops by one) */
    public Tensor select(int dim, long index) {
        int d = checkDim(dim);
        Objects.checkIndex(index, shape[d]);
        long[] newShape = new long[shape.length - 1];
        long[] newStrides = new long[shape.length - 1];
        for (int i = 0, j = 0; i < shape.length; i++) {
            if (i != d) {
                newShape[j] = shape[i];
                newStrides[j++] = strides[i];
            }
        }
        return new Tensor(segment, byteOffset + index * strides[d] * dtype.byteSize(), dtype, newShape, newStrides);
    }

    /** @return the view with dimensions {@code a} and {@code b} swapped */
    public Tensor transpose(int a, int b) {
        int[] order = new int[shape.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        order[checkDim(a)] = b;
        order[checkDim(b)] = a;
        return permute(order);
    }

    /** @return the view whose dimension i is this tensor's dimension {@code order[i]} */
    public Tensor permute(int... order) {
        if (order.length != shape.length) {
            throw new IllegalArgumentException("permutation " + Arrays.toString(order) + " for rank " + shape.length);
        }
        boolean[] seen = new boolean[shape.length];
        long[] newShape = new long[shape.length];
        long[] newStrides = new long[shape.length];
        for (int i = 0; i < order.length; i++) {
            int from = checkDim(order[i]);
            if (seen[from]) {
                throw new IllegalArgumentException("permutation " + Arrays.toString(order) + " repeats dimension " + from);
            }
            seen[from] = true;
            newShape[i] = shape[from];
            newStrides[i] = strides[from];
        }
        return new Tensor(segment, byteOffset, dtype, newShape, newStrides);
    }

    /**
     * @param newShape the new shape; one entry may be -1 (inferred)
     * @return a view with the same elements in the same row-major order
     * @throws IllegalStateException when the tensor is not contiguous (copy it first)
     * @throws IllegalArgumentException when the element counts differ
     */
    public Tensor reshape(long... newShape) {
        long[] resolved = newShape.clone();
        int inferred = -1;
        long known = 1;
        for (int i = 0; i < resolved.length; i++) {
            if (resolved[i] == -1 && inferred < 0) {
                inferred = i;
            } else if (resolved[i] < 0) {
                throw new IllegalArgumentException("invalid dimension " + resolved[i] + " in " + Arrays.toString(newShape));
            } else {
                known = Shapes.multiplyElements(known, resolved[i], newShape);
            }
        }
        if (inferred >= 0) {
            if (known == 0 || elementCount % known != 0) {
                throw new IllegalArgumentException("cannot reshape " + describe() + " to " + Arrays.toString(newShape));
            }
            resolved[inferred] = elementCount / known;
        }
        if (Shapes.elementCount(resolved) != elementCount) {
            throw new IllegalArgumentException("cannot reshape " + describe() + " (" + elementCount + " elements) to "
                    + Arrays.toString(newShape));
        }
        if (!isContiguous()) {
            throw new IllegalStateException("reshape of non-contiguous " + describe() + "; copy it with copyTo(...) first");
        }
        return new Tensor(segment, byteOffset, dtype, resolved, contiguousStrides(resolved));
    }

    private int checkDim(int dim) {
        if (dim < 0 || dim >= shape.length) {
            throw new IndexOutOfBoundsException("dimension " + dim + " of a rank-" + shape.length + " tensor");
        }
        return dim;
    }

    // ---------------------------------------------------------------- bulk copies

    /**
     * Copies the elements in row-major order into {@code target} (at least {@link #byteSize()} bytes)
     * as packed elements of this dtype. A contiguous tensor is one bulk copy.
     */
    public void copyTo(MemorySegment target) {
        if (target.byteSize() < byteSize()) {
            throw new IllegalArgumentException("target has " + target.byteSize() + " bytes, " + describe()
                    + " needs " + byteSize());
        }
        if (isContiguous()) {
            MemorySegment.copy(segment, byteOffset, target, 0, byteSize());
            return;
        }
        int size = dtype.byteSize();
        long[] index = new long[shape.length];
        for (long n = 0; n < elementCount; n++) {
            long from = byteOffset;
            for (int i = 0; i < index.length; i++) {
                from += index[i] * strides[i] * size;
            }
            MemorySegment.copy(segment, from, target, n * size, size);
            increment(index);
        }
    }

    /** @return every element converted to float, in row-major order (at most 2^31 - 1 elements) */
    public float[] toFloatArray() {
        if (elementCount > Integer.MAX_VALUE - 8) {
            throw new IllegalStateException(describe() + " has too many elements for a Java array");
        }
        float[] values = new float[(int) elementCount];
        long[] index = new long[shape.length];
        for (int n = 0; n < values.length; n++) {
            values[n] = (float) ElementCodec.getDouble(segment, dtype, byteOffsetOfUnchecked(index));
            increment(index);
        }
        return values;
    }

    private long byteOffsetOfUnchecked(long[] index) {
        long offset = 0;
        for (int i = 0; i < index.length; i++) {
            offset += index[i] * strides[i];
        }
        return byteOffset + offset * dtype.byteSize();
    }

    private void increment(long[] index) {
        for (int i = index.length - 1; i >= 0; i--) {
            if (++index[i] < shape[i]) {
                return;
            }
            index[i] = 0;
        }
    }

    private String describe() {
        return "tensor(" + dtype.displayName() + ", shape=" + Arrays.toString(shape) + ", strides="
                + Arrays.toString(strides) + ", offset=" + byteOffset + ")";
    }

    /** @return dtype, shape, strides, offset and the first few values */
    @Override
    public String toString() {
        StringBuilder out = new StringBuilder(describe()).append('[');
        long[] index = new long[shape.length];
        long shown = Math.min(elementCount, PREVIEW_ELEMENTS);
        for (long n = 0; n < shown; n++) {
            if (n > 0) {
                out.append(", ");
            }
            out.append(ElementCodec.format(segment, dtype, byteOffsetOfUnchecked(index)));
            increment(index);
        }
        if (elementCount > shown) {
            out.append(", ... (").append(elementCount).append(" elements)");
        }
        return out.append(']').toString();
    }
}
