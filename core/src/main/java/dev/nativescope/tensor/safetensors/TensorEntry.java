package dev.nativescope.tensor.safetensors;

import dev.nativescope.internal.shape.Shapes;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;
import java.lang.foreign.MemorySegment;

/**
 * One tensor of a safetensors header: its name, dtype, shape and byte range {@code [begin, end)}
 * relative to the start of the data section. Produced by {@link SafeTensorsHeader} (reading) and
 * {@link SafeTensorsLayout} (writing) after validation, so {@code end - begin} is the packed byte
 * size of the shape.
 *
 * <p>Immutable by convention: nobody writes to {@code shape} after construction.
 */
record TensorEntry(String name, DType dtype, long[] shape, long begin, long end) {
    /** @return a row-major tensor of this entry over {@code segment}, whose data section starts at {@code dataStart} */
    Tensor view(MemorySegment segment, long dataStart) {
        return Tensor.of(segment, dataStart + begin, dtype, shape, strides());
    }

    /**
     * Row-major strides. Only an empty tensor (a dimension is 0) can have a shape whose other
     * dimensions multiply beyond 2^63; it addresses no element, so any strides do: zeros.
     */
    private long[] strides() {
        try {
            return Shapes.cStrides(shape);
        } catch (IllegalArgumentException overflowOfAnEmptyShape) {
            return new long[shape.length];
        }
    }
}
