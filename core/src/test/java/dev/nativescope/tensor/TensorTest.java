package dev.nativescope.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Tensor views, element access, construction checks, copies and toString over native memory. */
class TensorTest {
    private Arena arena;

    @BeforeEach
    void open() {
        arena = Arena.ofConfined();
    }

    @AfterEach
    void close() {
        arena.close();
    }

    /** A contiguous float32 tensor holding 0, 1, 2, ... in row-major order. */
    private Tensor iota(long... shape) {
        long count = 1;
        for (long dim : shape) {
            count *= dim;
        }
        MemorySegment segment = arena.allocate(ValueLayout.JAVA_FLOAT, Math.max(count, 1));
        for (long i = 0; i < count; i++) {
            segment.setAtIndex(ValueLayout.JAVA_FLOAT, i, i);
        }
        return Tensor.of(segment, DType.FLOAT32, shape);
    }

    // ---------------------------------------------------------------- views

    @Test
    void sliceWithStepPicksEveryStepthIndexAndSharesMemory() {
        Tensor t = iota(4, 10);
        Tensor s = t.slice(1, 1, 10, 3); // columns 1, 4, 7
        assertThat(s.shape()).containsExactly(4, 3);
        assertThat(s.strides()).containsExactly(10, 3);
        assertThat(s.getFloat(2, 1)).isEqualTo(24f);
        assertThat(s.toFloatArray()).containsExactly(1, 4, 7, 11, 14, 17, 21, 24, 27, 31, 34, 37);
        s.setDouble(-5, 0, 2);
        assertThat(t.getFloat(0, 7)).isEqualTo(-5f);
        assertThat(s.segment()).isSameAs(t.segment());
    }

    @Test
    void sliceEdgeCases() {
        Tensor t = iota(10);
        assertThat(t.slice(0, 3, 3).shape()).containsExactly(0);
        assertThat(t.slice(0, 10, 10).elementCount()).isZero();
        assertThat(t.slice(0, 0, 10, 4).toFloatArray()).containsExactly(0, 4, 8);
        assertThat(t.slice(0, 9, 10, Long.MAX_VALUE).toFloatArray()).containsExactly(9);
        assertThat(t.slice(0, 2, 5).slice(0, 1, 3).toFloatArray()).containsExactly(3, 4);
        assertThatThrownBy(() -> t.slice(0, 0, 11)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("outside dimension 0 of size 10");
        assertThatThrownBy(() -> t.slice(0, 5, 4)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> t.slice(0, -1, 4)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> t.slice(0, 0, 4, 0)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("step must be >= 1");
        assertThatThrownBy(() -> t.slice(1, 0, 1)).isInstanceOf(IndexOutOfBoundsException.class)
                .hasMessageContaining("dimension 1 of a rank-1 tensor");
    }

    @Test
    void selectDropsADimension() {
        Tensor t = iota(2, 3, 4);
        Tensor row = t.select(0, 1);
        assertThat(row.shape()).containsExactly(3, 4);
        assertThat(row.getFloat(2, 3)).isEqualTo(23f);
        Tensor column = t.select(2, 1);
        assertThat(column.shape()).containsExactly(2, 3);
        assertThat(column.toFloatArray()).containsExactly(1, 5, 9, 13, 17, 21);
        Tensor scalar = t.select(0, 1).select(0, 2).select(0, 3);
        assertThat(scalar.rank()).isZero();
        assertThat(scalar.getFloat()).isEqualTo(23f);
        assertThatThrownBy(() -> t.select(1, 3)).isInstanceOf(IndexOutOfBoundsException.class);
    }

    @Test
    void transposeAndPermuteSwapStrides() {
        Tensor t = iota(2, 3);
        Tensor tt = t.transpose(0, 1);
        assertThat(tt.shape()).containsExactly(3, 2);
        assertThat(tt.strides()).containsExactly(1, 3);
        assertThat(tt.isContiguous()).isFalse();
        assertThat(tt.toFloatArray()).containsExactly(0, 3, 1, 4, 2, 5);
        Tensor p = iota(2, 3, 4).permute(2, 0, 1);
        assertThat(p.shape()).containsExactly(4, 2, 3);
        assertThat(p.getFloat(3, 1, 2)).isEqualTo(12 + 8 + 3);
        assertThatThrownBy(() -> t.permute(0, 0)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("repeats dimension 0");
        assertThatThrownBy(() -> t.permute(0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> t.permute(0, 2)).isInstanceOf(IndexOutOfBoundsException.class);
    }

    @Test
    void reshapeInfersMinusOneAndRefusesNonContiguousViews() {
        Tensor t = iota(2, 3, 4);
        Tensor r = t.reshape(6, -1);
        assertThat(r.shape()).containsExactly(6, 4);
        assertThat(r.getFloat(5, 3)).isEqualTo(23f);
        assertThat(t.reshape(-1).shape()).containsExactly(24);
        assertThat(t.reshape(24, 1, 1).isContiguous()).isTrue();
        assertThat(iota(1).reshape().rank()).isZero();
        assertThatThrownBy(() -> t.reshape(5, -1)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("cannot reshape");
        assertThatThrownBy(() -> t.reshape(-1, -1)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> t.reshape(2, 3)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("24 elements");
        assertThatThrownBy(() -> t.transpose(0, 2).reshape(24)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("non-contiguous").hasMessageContaining("copyTo");
        assertThatThrownBy(() -> t.slice(2, 0, 4, 2).data()).isInstanceOf(IllegalStateException.class);
        // A slice of whole rows stays contiguous and can be reshaped.
        assertThat(t.slice(0, 1, 2).reshape(12).getFloat(11)).isEqualTo(23f);
    }

    @Test
    void contiguityIgnoresSizeOneDimensionsAndEmptyTensors() {
        assertThat(iota(3, 4).slice(0, 1, 2).isContiguous()).isTrue();
        assertThat(iota(3, 4).slice(1, 1, 2).isContiguous()).isFalse();
        assertThat(iota(3, 4).slice(0, 2, 2).transpose(0, 1).isContiguous()).isTrue();
        assertThat(iota(3, 1).transpose(0, 1).isContiguous()).isTrue();
    }

    // ---------------------------------------------------------------- element access

    @ParameterizedTest
    @EnumSource(DType.class)
    void everyDTypeRoundTripsRepresentativeValues(DType dtype) {
        Tensor t = Tensor.of(arena.allocate(dtype.byteSize() * 8L), dtype, 8);
        double[] values = switch (dtype) {
            case FLOAT16 -> new double[] {0, -0.0, 1, -2.5, 65504, 6.103515625e-05, 5.960464477539063e-08, Double.POSITIVE_INFINITY};
            case BFLOAT16 -> new double[] {0, 1, -2.5, 3.3895313892515355e38, 1.1754943508222875e-38, 256, -65536, Double.NEGATIVE_INFINITY};
            case FLOAT32 -> new double[] {0, 1, -2.5, Float.MAX_VALUE, Float.MIN_VALUE, 0.1f, -1e-30f, Double.NaN};
            case FLOAT64 -> new double[] {0, 1, -2.5, Double.MAX_VALUE, Double.MIN_VALUE, 0.1, -1e-300, Double.NaN};
            case BOOL -> new double[] {0, 1, 1, 0, 1, 0, 0, 1};
            case INT8 -> new double[] {0, 1, -1, 127, -128, 42, -42, 7};
            case UINT8 -> new double[] {0, 1, 255, 128, 127, 42, 200, 7};
            case INT16 -> new double[] {0, 1, -1, 32767, -32768, 1234, -1234, 7};
            case UINT16 -> new double[] {0, 1, 65535, 32768, 32767, 1234, 60000, 7};
            case INT32 -> new double[] {0, 1, -1, Integer.MAX_VALUE, Integer.MIN_VALUE, 123456, -123456, 7};
            case UINT32 -> new double[] {0, 1, 4294967295.0, 2147483648.0, 2147483647, 123456, 3e9, 7};
            case INT64 -> new double[] {0, 1, -1, 0x1p62, -0x1p63, 1L << 53, -(1L << 53), 7};
            case UINT64 -> new double[] {0, 1, 0x1p63, 0x1p64 - 2048, 0x1p62, 1L << 53, 18446744073709549568.0, 7};
        };
        for (int i = 0; i < values.length; i++) {
            t.setDouble(values[i], i);
        }
        for (int i = 0; i < values.length; i++) {
            assertThat(Double.valueOf(t.getDouble(i))).as("%s element %d", dtype, i).isEqualTo(Double.valueOf(values[i]));
        }
        assertThat(t.toFloatArray()[2]).isEqualTo((float) values[2]);
    }

    @Test
    void integerTypesStoreExactLongsAndReadUnsignedZeroExtended() {
        Tensor i64 = Tensor.of(arena.allocate(8), DType.INT64);
        i64.setLong(Long.MIN_VALUE + 1);
        assertThat(i64.getLong()).isEqualTo(Long.MIN_VALUE + 1);
        Tensor u64 = Tensor.of(arena.allocate(8), DType.UINT64);
        u64.setLong(-1L);
        assertThat(u64.getLong()).isEqualTo(-1L);
        assertThat(u64.getDouble()).isEqualTo(0x1p64);
        assertThat(u64.toString()).contains("18446744073709551615");
        u64.setLong(0x8000_0000_0000_0401L); // halfway-ish: the sticky bit must round up
        assertThat(u64.getDouble()).isEqualTo(0x1p63 + 2048);
        Tensor u8 = Tensor.of(arena.allocate(1), DType.UINT8);
        u8.setLong(0x1ff);
        assertThat(u8.getLong()).isEqualTo(255);
        Tensor u32 = Tensor.of(arena.allocate(4), DType.UINT32);
        u32.setLong(-1);
        assertThat(u32.getLong()).isEqualTo(0xffff_ffffL);
        Tensor i16 = Tensor.of(arena.allocate(2), DType.INT16);
        i16.setDouble(-3.9);
        assertThat(i16.getLong()).isEqualTo(-3);
        Tensor b = Tensor.of(arena.allocate(1), DType.BOOL);
        b.setLong(5);
        assertThat(b.getLong()).isEqualTo(1);
        Tensor f = Tensor.of(arena.allocate(4), DType.FLOAT32);
        f.setLong(3);
        assertThat(f.getFloat()).isEqualTo(3f);
        assertThatThrownBy(f::getLong).isInstanceOf(IllegalStateException.class).hasMessageContaining("getDouble");
    }

    @Test
    void elementsAreLittleEndianAndUnaligned() {
        MemorySegment segment = arena.allocate(16);
        Tensor t = Tensor.of(segment, 1, DType.INT32, new long[] {2}, new long[] {1});
        t.setLong(0x01020304, 0);
        assertThat(segment.get(ValueLayout.JAVA_BYTE, 1)).isEqualTo((byte) 4);
        assertThat(segment.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 1)).isEqualTo(0x01020304);
    }

    @Test
    void float16AndBfloat16RoundTripEveryBitPattern() {
        Tensor half = Tensor.of(arena.allocate(2), DType.FLOAT16);
        Tensor brain = Tensor.of(arena.allocate(2), DType.BFLOAT16);
        MemorySegment h = half.segment();
        MemorySegment b = brain.segment();
        for (int bits = 0; bits < 0x10000; bits++) {
            h.set(ValueLayout.JAVA_SHORT, 0, (short) bits);
            double value = half.getDouble();
            half.setDouble(value);
            b.set(ValueLayout.JAVA_SHORT, 0, (short) bits);
            double bvalue = brain.getDouble();
            brain.setDouble(bvalue);
            if (Double.isNaN(value)) {
                assertThat(half.getDouble()).isNaN();
            } else {
                assertThat(h.get(ValueLayout.JAVA_SHORT, 0)).as("float16 %04x", bits).isEqualTo((short) bits);
            }
            if (Double.isNaN(bvalue)) {
                assertThat(brain.getDouble()).isNaN();
            } else {
                assertThat(b.get(ValueLayout.JAVA_SHORT, 0)).as("bfloat16 %04x", bits).isEqualTo((short) bits);
            }
        }
        brain.setDouble(1.00390625); // 1 + 2^-8: halfway between bfloat16 1.0 and 1.0078125, rounds to even
        assertThat(brain.getDouble()).isEqualTo(1.0);
        brain.setDouble(1.01171875); // halfway between 1.0078125 and 1.015625: rounds to the even 1.015625
        assertThat(brain.getDouble()).isEqualTo(1.015625);
        half.setDouble(1e6);
        assertThat(half.getDouble()).isInfinite();
    }

    @Test
    void indexAccessIsBoundsChecked() {
        Tensor t = iota(2, 3);
        assertThatThrownBy(() -> t.getFloat(2, 0)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> t.getFloat(0, -1)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> t.getFloat(0)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("rank 1 but the tensor has rank 2");
        assertThatThrownBy(() -> t.dim(2)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThat(t.byteOffsetOf(1, 2)).isEqualTo(20);
    }

    // ---------------------------------------------------------------- construction checks

    @Test
    void constructionRefusesNegativeDimensionsAndOverflowingShapes() {
        MemorySegment segment = arena.allocate(64);
        assertThatThrownBy(() -> Tensor.of(segment, DType.FLOAT32, 2, -1))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("negative dimension -1");
        assertThatThrownBy(() -> Tensor.of(segment, DType.UINT8, 1L << 32, 1L << 32))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("2^63");
        assertThatThrownBy(() -> Tensor.of(segment, 0, DType.UINT8, new long[] {1L << 32, 1L << 32}, new long[] {0, 0}))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("2^63");
        // 2^62 elements of 8 bytes: the count fits, the byte size does not.
        assertThatThrownBy(() -> Tensor.of(segment, 0, DType.INT64, new long[] {1L << 62}, new long[] {0}))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("2^63 bytes");
        assertThatThrownBy(() -> Tensor.of(segment, 0, DType.FLOAT32, new long[] {2}, new long[] {1, 1}))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("different ranks");
    }

    @Test
    void constructionRefusesLayoutsThatAddressBytesOutsideTheSegment() {
        MemorySegment segment = arena.allocate(64);
        assertThat(Tensor.of(segment, DType.FLOAT32, 16).byteSize()).isEqualTo(64);
        assertThatThrownBy(() -> Tensor.of(segment, DType.FLOAT32, 17))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("addresses bytes [0, 68)")
                .hasMessageContaining("64 bytes");
        assertThatThrownBy(() -> Tensor.of(segment, 4, DType.FLOAT32, new long[] {16}, new long[] {1}))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Tensor.of(segment, -4, DType.FLOAT32, new long[] {1}, new long[] {1}))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("negative byte offset");
        assertThatThrownBy(() -> Tensor.of(segment, 0, DType.FLOAT32, new long[] {4, 4}, new long[] {4, 5}))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Tensor.of(segment, 0, DType.FLOAT32, new long[] {2}, new long[] {Long.MAX_VALUE / 2}))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("beyond 2^63");
        // Empty tensors may sit at the very end but not beyond it.
        assertThat(Tensor.of(segment, 64, DType.FLOAT32, new long[] {0}, new long[] {1}).elementCount()).isZero();
        assertThatThrownBy(() -> Tensor.of(segment, 65, DType.FLOAT32, new long[] {0}, new long[] {1}))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("beyond the segment");
    }

    @Test
    void negativeStridesWalkBackwardsAndAreCheckedBelowZero() {
        Tensor base = iota(8);
        Tensor reversed = Tensor.of(base.segment(), 7 * 4, DType.FLOAT32, new long[] {8}, new long[] {-1});
        assertThat(reversed.toFloatArray()).containsExactly(7, 6, 5, 4, 3, 2, 1, 0);
        assertThat(reversed.isContiguous()).isFalse();
        assertThat(reversed.slice(0, 1, 8, 3).toFloatArray()).containsExactly(6, 3, 0);
        assertThatThrownBy(() -> Tensor.of(base.segment(), 6 * 4, DType.FLOAT32, new long[] {8}, new long[] {-1}))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("addresses bytes [-4, 28)");
        // A zero stride broadcasts one element.
        Tensor broadcast = Tensor.of(base.segment(), 12, DType.FLOAT32, new long[] {3, 2}, new long[] {0, 1});
        assertThat(broadcast.toFloatArray()).containsExactly(3, 4, 3, 4, 3, 4);
    }

    @Test
    void zeroDimensionalAndEmptyTensors() {
        Tensor scalar = Tensor.of(arena.allocate(4), DType.INT32);
        scalar.setLong(42);
        assertThat(scalar.elementCount()).isEqualTo(1);
        assertThat(scalar.getLong()).isEqualTo(42);
        assertThat(scalar.toString()).endsWith("[42]");
        Tensor empty = Tensor.of(MemorySegment.NULL, DType.FLOAT64, 0, 5);
        assertThat(empty.elementCount()).isZero();
        assertThat(empty.byteSize()).isZero();
        assertThat(empty.toFloatArray()).isEmpty();
        assertThat(empty.data().byteSize()).isZero();
        assertThat(empty.reshape(5, 0).shape()).containsExactly(5, 0);
        // A zero dimension next to huge ones: no elements, no overflow.
        assertThat(Tensor.of(MemorySegment.NULL, 0, DType.INT8, new long[] {0, 1L << 40, 1L << 40},
                new long[] {1, 1, 1}).elementCount()).isZero();
    }

    // ---------------------------------------------------------------- copies and toString

    @Test
    void copyToAndToFloatArrayWalkNonContiguousViewsInRowMajorOrder() {
        Tensor t = iota(3, 4).transpose(0, 1).slice(0, 1, 4, 2); // rows of the transpose: columns 1 and 3
        assertThat(t.shape()).containsExactly(2, 3);
        assertThat(t.toFloatArray()).containsExactly(1, 5, 9, 3, 7, 11);
        MemorySegment target = arena.allocate(t.byteSize());
        t.copyTo(target);
        assertThat(target.toArray(ValueLayout.JAVA_FLOAT)).containsExactly(1, 5, 9, 3, 7, 11);
        Tensor packed = Tensor.of(target, DType.FLOAT32, 2, 3);
        assertThat(packed.isContiguous()).isTrue();
        assertThatThrownBy(() -> t.copyTo(arena.allocate(8))).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("needs 24");
        Tensor contiguous = iota(2, 2);
        MemorySegment bulk = arena.allocate(16);
        contiguous.copyTo(bulk);
        assertThat(bulk.toArray(ValueLayout.JAVA_FLOAT)).containsExactly(0, 1, 2, 3);
        Tensor bytes = Tensor.of(arena.allocate(6), DType.INT16, 3);
        bytes.setLong(-7, 2);
        assertThat(bytes.slice(0, 0, 3, 2).toFloatArray()).containsExactly(0, -7);
    }

    @Test
    void toStringShowsLayoutAndFirstValues() {
        assertThat(iota(2, 3).toString())
                .isEqualTo("tensor(float32, shape=[2, 3], strides=[3, 1], offset=0)[0.000, 1.000, 2.000, 3.000, 4.000, 5.000]");
        assertThat(iota(3, 3).transpose(0, 1).toString())
                .isEqualTo("tensor(float32, shape=[3, 3], strides=[1, 3], offset=0)"
                        + "[0.000, 3.000, 6.000, 1.000, 4.000, 7.000, ... (9 elements)]");
        Tensor ints = Tensor.of(arena.allocate(3), DType.INT8, 3);
        ints.setLong(-1, 1);
        assertThat(ints.toString()).isEqualTo("tensor(int8, shape=[3], strides=[1], offset=0)[0, -1, 0]");
        assertThat(Tensor.of(MemorySegment.NULL, DType.BOOL, 0).toString()).endsWith("[]");
    }
}
