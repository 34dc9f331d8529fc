package dev.nativescope.tensor;

import dev.nativescope.internal.shape.Shapes;
import java.util.Arrays;
import java.util.Objects;

/**
 * The dtype and shape of a tensor that does not exist yet, for example one that
 * {@link dev.nativescope.tensor.safetensors.SafeTensors#create} lays out in a new file. The element count and byte size are checked
 * to fit in a {@code long} when the spec is made.
 *
 * <p>Immutable and thread-safe.
 */
public final class TensorSpec {
    private final DType dtype;
    private final long[] shape;
    private final long elementCount;

    private TensorSpec(DType dtype, long[] shape) {
        this.dtype = Objects.requireNonNull(dtype, "dtype");
        this.shape = Objects.requireNonNull(shape, "shape").clone();
        Shapes.byteSize(this.shape, dtype.byteSize(), dtype.displayName());
        this.elementCount = Shapes.elementCount(this.shape);
    }

    /**
     * @param shape the dimensions; none negative, {@code {}} for a scalar
     * @throws IllegalArgumentException when a dimension is negative or the byte size overflows
     */
    public static TensorSpec of(DType dtype, long... shape) {
        return new TensorSpec(dtype, shape);
    }

    /** @return the dtype and shape of {@code tensor} */
    public static TensorSpec of(Tensor tensor) {
        return new TensorSpec(tensor.dtype(), tensor.shape());
    }

    /** @return the element type */
    public DType dtype() {
        return dtype;
    }

    /** @return a copy of the shape */
    public long[] shape() {
        return shape.clone();
    }

    /** @return the number of elements (1 for a scalar, 0 when a dimension is 0) */
    public long elementCount() {
        return elementCount;
    }

    /** @return the bytes the elements occupy when packed */
    public long byteSize() {
        return elementCount * dtype.byteSize();
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof TensorSpec spec && dtype == spec.dtype && Arrays.equals(shape, spec.shape);
    }

    @Override
    public int hashCode() {
        return 31 * dtype.hashCode() + Arrays.hashCode(shape);
    }

    @Override
    public String toString() {
        return dtype.displayName() + Arrays.toString(shape);
    }
}
