package dev.nativescope.internal.shape;

import java.util.Arrays;

/**
 * The shape, stride and extent arithmetic of every tensor in the core: {@code Tensor},
 * {@code TensorSpec}, {@code DLPack}, the {@code .npy} header and the safetensors header and layout.
 * Every product and sum is overflow-checked, and each kind of failure has one message, thrown as an
 * {@link IllegalArgumentException}: a negative dimension, an element count or a byte size beyond
 * 2^63-1, strides whose reach overflows. The file formats catch it and report it as a
 * {@code TensorFormatException} naming the file.
 *
 * <p>Shapes are {@code long[]} of non-negative dimensions; strides are in elements and may be
 * negative or zero; element sizes are in bytes (at least 1). Nothing here knows a dtype: callers pass
 * its byte size and, for messages, its name.
 *
 * <p>Stateless and thread-safe; no method keeps or changes the arrays it is given.
 */
public final class Shapes {
    private Shapes() {
    }

    /** The bytes from the lowest to past the highest byte a strided view reaches: {@code [start, end)}. */
    public record Extent(long start, long end) {
    }

    /** @throws IllegalArgumentException naming the first negative dimension */
    public static void checkDims(long[] shape) {
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] < 0) {
                throw new IllegalArgumentException("negative dimension: shape " + Arrays.toString(shape)
                        + " has negative dimension " + shape[i] + " at index " + i + "; every dimension must be 0 or more");
            }
        }
    }

    /**
     * @return the product of the dimensions, multiplied left to right
     * @throws IllegalArgumentException for a negative dimension, or when a partial product exceeds
     *         2^63-1 (also when a later dimension is 0)
     */
    public static long elementCount(long[] shape) {
        checkDims(shape);
        long count = 1;
        for (long dim : shape) {
            count = multiplyElements(count, dim, shape);
        }
        return count;
    }

    /**
     * @return {@code a * b}, a product of dimensions of {@code shape}
     * @throws IllegalArgumentException naming {@code shape} when it overflows
     */
    public static long multiplyElements(long a, long b, long[] shape) {
        try {
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException overflow) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " has more than 2^63 elements");
        }
    }

    /**
     * @return the bytes of {@link #elementCount} packed elements of {@code elementSize} bytes
     * @throws IllegalArgumentException for a negative dimension, or when the element count or the
     *         byte size exceeds 2^63-1 (one message for both)
     */
    public static long byteSize(long[] shape, int elementSize, String typeName) {
        checkDims(shape);
        try {
            long count = 1;
            for (long dim : shape) {
                count = Math.multiplyExact(count, dim);
            }
            return Math.multiplyExact(count, (long) elementSize);
        } catch (ArithmeticException overflow) {
            throw byteSizeOverflow(shape, typeName);
        }
    }

    /**
     * @return {@code elementCount * elementSize}, for an element count already checked
     * @throws IllegalArgumentException when it exceeds 2^63-1
     */
    public static long byteSize(long elementCount, long[] shape, int elementSize, String typeName) {
        if (Math.multiplyHigh(elementCount, elementSize) != 0 || elementCount * elementSize < 0) {
            throw byteSizeOverflow(shape, typeName);
        }
        return elementCount * elementSize;
    }

    /**
     * Checks that the byte size of {@code shape} without its zero dimensions fits in 63 bits: then
     * the shape's contiguous strides (C or Fortran), and every offset computed from them, fit too,
     * even for a shape without elements.
     *
     * @throws IllegalArgumentException for a negative dimension, or with the byte-size message
     */
    public static void checkStridable(long[] shape, int elementSize, String typeName) {
        checkDims(shape);
        try {
            long nonZeroBytes = elementSize;
            for (long dim : shape) {
                if (dim != 0) {
                    nonZeroBytes = Math.multiplyExact(nonZeroBytes, dim);
                }
            }
        } catch (ArithmeticException overflow) {
            throw byteSizeOverflow(shape, typeName);
        }
    }

    private static IllegalArgumentException byteSizeOverflow(long[] shape, String typeName) {
        return new IllegalArgumentException("shape " + Arrays.toString(shape) + " of " + typeName
                + " has more than 2^63 bytes; its byte size overflows 64 bits, and a long holds no more than 2^63-1 bytes");
    }

    /**
     * @return row-major (C) strides for {@code shape}, in elements; a zero dimension does not zero
     *         the strides of the dimensions before it
     * @throws IllegalArgumentException for a negative dimension, or when a stride exceeds 2^63-1
     */
    public static long[] cStrides(long[] shape) {
        long[] strides = new long[shape.length];
        long stride = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            stride = nextStride(strides, i, stride, shape);
        }
        return strides;
    }

    /** @return column-major (Fortran) strides for {@code shape}, in elements; as {@link #cStrides} otherwise */
    public static long[] fortranStrides(long[] shape) {
        long[] strides = new long[shape.length];
        long stride = 1;
        for (int i = 0; i < shape.length; i++) {
            stride = nextStride(strides, i, stride, shape);
        }
        return strides;
    }

    private static long nextStride(long[] strides, int i, long stride, long[] shape) {
        strides[i] = stride;
        if (shape[i] < 0) {
            checkDims(shape);
        }
        return shape[i] == 0 ? stride : multiplyElements(stride, shape[i], shape);
    }

    /**
     * The bytes a strided view with at least one element reaches, from element {@code [0, ...]} at
     * byte {@code base}: the negative reaches of all dimensions lower the start, the positive ones
     * raise the end, and the end includes the last element's bytes.
     *
     * @throws IllegalArgumentException when a reach, the start or the end overflows 64 bits
     */
    public static Extent extent(long base, long[] shape, long[] strides, int elementSize) {
        try {
            long low = base;
            long high = base;
            for (int i = 0; i < shape.length; i++) {
                long reach = Math.multiplyExact(Math.multiplyExact(shape[i] - 1, strides[i]), elementSize);
                if (reach < 0) {
                    low = Math.addExact(low, reach);
                } else {
                    high = Math.addExact(high, reach);
                }
            }
            return new Extent(low, Math.addExact(high, elementSize));
        } catch (ArithmeticException overflow) {
            throw new IllegalArgumentException("strides " + Arrays.toString(strides) + " with shape "
                    + Arrays.toString(shape) + " of " + elementSize + "-byte elements from byte " + base
                    + " reach beyond 2^63 bytes");
        }
    }
}
