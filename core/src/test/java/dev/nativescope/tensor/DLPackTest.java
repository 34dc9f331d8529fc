package dev.nativescope.tensor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.nativescope.Context;
import dev.nativescope.call.NativeCall;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.library.NativeStatusException;
import dev.nativescope.bindings.DLDataType;
import dev.nativescope.bindings.DLDevice;
import dev.nativescope.bindings.DLTensor;
import dev.nativescope.bindings.nativescope_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Consumer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * DLPack export and import: descriptor fields, zero-copy round trips of every dtype and of strided
 * views, native code reading exactly the Java-visible elements, and refusal of malformed
 * descriptors written field by field through the bindings. Shared arenas: the native reads go
 * through {@code NativeCall.invoke}, which {@code -Dnativescope.callMode=OFFLOAD} moves to a native
 * thread, and a native thread cannot pass a confined arena's segments.
 */
class DLPackTest {

    @BeforeAll
    static void load() {
        NativeLibrary.load();
    }

    /** A float32 tensor of the given shape whose element n (row-major) is n + 0.5. */
    private static Tensor counting(Arena arena, long... shape) {
        long count = 1;
        for (long d : shape) {
            count *= d;
        }
        MemorySegment segment = arena.allocate(ValueLayout.JAVA_FLOAT, Math.max(count, 1));
        for (long i = 0; i < count; i++) {
            segment.setAtIndex(ValueLayout.JAVA_FLOAT, i, i + 0.5f);
        }
        return Tensor.of(segment, DType.FLOAT32, shape);
    }

    private static long[] longs(MemorySegment pointer, int n) {
        return pointer.reinterpret(8L * n).toArray(ValueLayout.JAVA_LONG);
    }

    @Test
    void exportFillsEveryFieldOfTheDescriptor() {
        try (Arena arena = Arena.ofShared()) {
            Tensor matrix = counting(arena, 4, 6);
            Tensor view = matrix.slice(0, 1, 4).slice(1, 1, 6, 2);  // rows 1..3, columns 1, 3, 5
            MemorySegment d = DLPack.export(view, arena);

            assertThat(d.byteSize()).isEqualTo(DLTensor.sizeof());
            assertThat(DLTensor.data(d).address())
                    .as("data is the first element; byte_offset is 0")
                    .isEqualTo(matrix.segment().address() + (6 + 1) * 4);
            assertThat(DLTensor.byte_offset(d)).isZero();
            assertThat(DLDevice.device_type(DLTensor.device(d))).isEqualTo(nativescope_h.kDLCPU());
            assertThat(DLDevice.device_id(DLTensor.device(d))).isZero();
            assertThat(DLTensor.ndim(d)).isEqualTo(2);
            assertThat(DLDataType.code(DLTensor.dtype(d))).isEqualTo((byte) nativescope_h.kDLFloat());
            assertThat(DLDataType.bits(DLTensor.dtype(d))).isEqualTo((byte) 32);
            assertThat(DLDataType.lanes(DLTensor.dtype(d))).isEqualTo((short) 1);
            assertThat(longs(DLTensor.shape(d), 2)).containsExactly(3, 3);
            assertThat(longs(DLTensor.strides(d), 2)).containsExactly(6, 2);

            // Contiguous tensors get explicit strides too, and a 0-d tensor non-NULL arrays.
            MemorySegment compact = DLPack.export(matrix, arena);
            assertThat(longs(DLTensor.strides(compact), 2)).containsExactly(6, 1);
            MemorySegment scalar = DLPack.export(matrix.select(0, 2).select(0, 3), arena);
            assertThat(DLTensor.ndim(scalar)).isZero();
            assertThat(DLTensor.shape(scalar).address()).isNotZero();
            assertThat(DLTensor.strides(scalar).address()).isNotZero();
            assertThat(DLTensor.data(scalar).address()).isEqualTo(matrix.segment().address() + (2 * 6 + 3) * 4);
        }
    }

    @Test
    void everyDTypeRoundTripsWithoutACopy() {
        Random random = new Random(5);
        try (Arena arena = Arena.ofShared()) {
            for (DType dtype : DType.values()) {
                MemorySegment segment = arena.allocate(24L * dtype.byteSize(), 8);
                Tensor tensor = Tensor.of(segment, dtype, 2, 3, 4);
                for (long i = 0; i < 2; i++) {
                    for (long j = 0; j < 3; j++) {
                        for (long k = 0; k < 4; k++) {
                            tensor.setDouble(dtype == DType.BOOL ? random.nextInt(2) : random.nextInt(100), i, j, k);
                        }
                    }
                }
                MemorySegment descriptor = DLPack.export(tensor, arena);
                assertThat(Byte.toUnsignedInt(DLDataType.code(DLTensor.dtype(descriptor)))).isEqualTo(dtype.dlpackCode());
                assertThat(Byte.toUnsignedInt(DLDataType.bits(DLTensor.dtype(descriptor)))).isEqualTo(dtype.dlpackBits());

                Tensor back = DLPack.importTensor(descriptor, arena);
                assertThat(back.dtype()).isEqualTo(dtype);
                assertThat(back.shape()).containsExactly(2, 3, 4);
                assertThat(back.strides()).containsExactly(12, 4, 1);
                assertThat(back.toFloatArray()).as("%s values", dtype).containsExactly(tensor.toFloatArray());
                assertThat(back.segment().address() + back.byteOffset()).isEqualTo(segment.address());
                assertThat(back.segment().byteSize()).isEqualTo(segment.byteSize());

                // Same memory: a write through the import shows in the original.
                back.setDouble(1, 1, 2, 3);
                assertThat(tensor.getDouble(1, 2, 3)).isEqualTo(1.0);
            }
        }
    }

    /** Views whose layouts a round trip must keep: name to tensor. */
    private static Map<String, Tensor> views(Arena arena) {
        Tensor matrix = counting(arena, 5, 7);
        Tensor cube = counting(arena, 3, 4, 5);
        Map<String, Tensor> views = new LinkedHashMap<>();
        views.put("contiguous", matrix);
        views.put("transposed", matrix.transpose(0, 1));
        views.put("sliced with steps", matrix.slice(0, 1, 5, 2).slice(1, 2, 7, 3));
        views.put("selected column", matrix.select(1, 4));
        views.put("permuted cube", cube.permute(2, 0, 1));
        views.put("cube slab", cube.slice(1, 1, 3).slice(2, 0, 5, 2));
        views.put("flipped", Tensor.of(matrix.segment(), (4 * 7 + 6) * 4L, DType.FLOAT32, new long[] {5, 7},
                new long[] {-7, -1}));
        views.put("flipped rows of a transpose", Tensor.of(matrix.segment(), 6 * 4L, DType.FLOAT32,
                new long[] {7, 5}, new long[] {-1, 7}));
        views.put("broadcast row", Tensor.of(matrix.segment(), 7 * 4L, DType.FLOAT32, new long[] {4, 7},
                new long[] {0, 1}));
        views.put("scalar", matrix.select(0, 3).select(0, 2));
        views.put("empty", matrix.slice(0, 2, 2));
        return views;
    }

    @Test
    void stridedViewsSurviveTheRoundTrip() {
        try (Arena arena = Arena.ofShared()) {
            views(arena).forEach((name, view) -> {
                Tensor back = DLPack.importTensor(DLPack.export(view, arena), arena);
                assertThat(back.shape()).as(name).containsExactly(view.shape());
                assertThat(back.strides()).as(name).containsExactly(view.strides());
                assertThat(back.dtype()).as(name).isEqualTo(DType.FLOAT32);
                assertThat(back.toFloatArray()).as(name).containsExactly(view.toFloatArray());
                if (view.elementCount() > 0) {
                    assertThat(back.segment().address() + back.byteOffset()).as(name)
                            .isEqualTo(view.segment().address() + view.byteOffset());
                }
            });
        }
    }

    @Test
    void theImportedSegmentSpansExactlyTheReachableBytes() {
        try (Arena arena = Arena.ofShared()) {
            Tensor matrix = counting(arena, 5, 7);
            // Rows 1..3, columns 2 and 5: bytes of elements [1, 2] .. [3, 5].
            Tensor view = matrix.slice(0, 1, 4).slice(1, 2, 7, 3);
            Tensor back = DLPack.importTensor(DLPack.export(view, arena), arena);
            assertThat(back.segment().address()).isEqualTo(matrix.segment().address() + (7 + 2) * 4);
            assertThat(back.segment().byteSize()).isEqualTo(((3 * 7 + 5) - (7 + 2) + 1) * 4);
            assertThat(back.byteOffset()).isZero();

            Tensor flipped = views(arena).get("flipped");
            Tensor flippedBack = DLPack.importTensor(DLPack.export(flipped, arena), arena);
            assertThat(flippedBack.segment().byteSize()).isEqualTo(35 * 4);
            assertThat(flippedBack.byteOffset()).isEqualTo(34 * 4);
        }
    }

    @Test
    void theImportedViewLivesAsLongAsItsArena() {
        try (Arena owner = Arena.ofShared()) {
            Tensor tensor = counting(owner, 3, 3);
            MemorySegment descriptor = DLPack.export(tensor, owner);
            Tensor view;
            try (Arena viewArena = Arena.ofShared()) {
                view = DLPack.importTensor(descriptor, viewArena);
                assertThat(view.getFloat(2, 2)).isEqualTo(8.5f);
            }
            assertThatThrownBy(() -> view.getFloat(2, 2)).isInstanceOf(IllegalStateException.class);
            // Closing the view's arena freed nothing: the owner's memory is intact.
            assertThat(tensor.getFloat(2, 2)).isEqualTo(8.5f);
        }
    }

    /** Sums through nsc_dl_sum_f32, the native reader of a descriptor. */
    private static double nativeSum(MemorySegment descriptor) {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment sum = arena.allocate(ValueLayout.JAVA_DOUBLE);
            NativeCall.invoke(Context.background(), ctx -> nativescope_h.nsc_dl_sum_f32(ctx, descriptor, sum));
            return sum.get(ValueLayout.JAVA_DOUBLE, 0);
        }
    }

    /** The same sum in Java: row-major order, each float widened, one double accumulator. */
    private static double javaSum(Tensor tensor) {
        double sum = 0;
        for (float value : tensor.toFloatArray()) {
            sum += value;
        }
        return sum;
    }

    @Test
    void nativeCodeReadsExactlyTheJavaVisibleElements() {
        try (Arena arena = Arena.ofShared()) {
            Random random = new Random(17);
            Map<String, Tensor> views = views(arena);
            // Random values instead of counting ones, so that a wrong element or order changes the double.
            for (Tensor view : List.of(views.get("contiguous"), views.get("permuted cube"))) {
                MemorySegment segment = view.segment();
                for (long i = 0; i < segment.byteSize() / 4; i++) {
                    segment.setAtIndex(ValueLayout.JAVA_FLOAT, i, random.nextFloat() * 2 - 1);
                }
            }
            views.forEach((name, view) -> {
                double expected = javaSum(view);
                assertThat(nativeSum(DLPack.export(view, arena))).as(name).isEqualTo(expected);
            });
        }
    }

    @Test
    void nativeCodeReadsAViewOfAnImportedTensor() {
        try (Arena arena = Arena.ofShared()) {
            Tensor cube = counting(arena, 4, 5, 6);
            Tensor imported = DLPack.importTensor(DLPack.export(cube, arena), arena);
            Tensor view = imported.permute(1, 2, 0).slice(0, 1, 5, 2);
            assertThat(nativeSum(DLPack.export(view, arena))).isEqualTo(javaSum(view));
        }
    }

    @Test
    void nativeCodeRefusesWhatItCannotRead() {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment doubles = arena.allocate(ValueLayout.JAVA_DOUBLE, 4);
            Tensor float64 = Tensor.of(doubles, DType.FLOAT64, 2, 2);
            assertThatThrownBy(() -> nativeSum(DLPack.export(float64, arena)))
                    .isInstanceOf(NativeStatusException.class)
                    .satisfies(e -> assertThat(((NativeStatusException) e).statusName()).isEqualTo("NSC_ERR_INVALID"));
            Tensor misaligned = Tensor.of(arena.allocate(20, 8), 2, DType.FLOAT32, new long[] {4}, new long[] {1});
            assertThatThrownBy(() -> nativeSum(DLPack.export(misaligned, arena)))
                    .isInstanceOf(NativeStatusException.class);
        }
    }

    @Test
    void exportRefusesHeapAndFreedMemory() {
        Tensor heap = Tensor.of(MemorySegment.ofArray(new float[4]), DType.FLOAT32, 4);
        try (Arena arena = Arena.ofShared()) {
            assertThatThrownBy(() -> DLPack.export(heap, arena))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("heap");
            Tensor freed;
            try (Arena other = Arena.ofShared()) {
                freed = counting(other, 2);
            }
            assertThatThrownBy(() -> DLPack.export(freed, arena))
                    .isInstanceOf(IllegalStateException.class).hasMessageContaining("closed");
        }
    }

    // ------------------------------------------------------------------ malformed descriptors

    /** A valid descriptor of a 2x3 float32 tensor, written field by field. */
    private static MemorySegment descriptor(Arena arena, MemorySegment data, long[] shape, long[] strides) {
        MemorySegment d = DLTensor.allocate(arena);
        DLTensor.data(d, data);
        DLDevice.device_type(DLTensor.device(d), nativescope_h.kDLCPU());
        DLDevice.device_id(DLTensor.device(d), 0);
        DLTensor.ndim(d, shape.length);
        DLDataType.code(DLTensor.dtype(d), (byte) nativescope_h.kDLFloat());
        DLDataType.bits(DLTensor.dtype(d), (byte) 32);
        DLDataType.lanes(DLTensor.dtype(d), (short) 1);
        DLTensor.shape(d, shape.length == 0 ? MemorySegment.NULL : arena.allocateFrom(ValueLayout.JAVA_LONG, shape));
        DLTensor.strides(d, strides == null ? MemorySegment.NULL : arena.allocateFrom(ValueLayout.JAVA_LONG, strides));
        DLTensor.byte_offset(d, 0);
        return d;
    }

    private record Malformed(String name, Consumer<MemorySegment> change, String message) {
    }

    @Test
    void importRefusesMalformedDescriptorsWithASpecificMessage() {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment data = arena.allocate(ValueLayout.JAVA_FLOAT, 6);
            List<Malformed> cases = new ArrayList<>();
            cases.add(new Malformed("CUDA device", d -> DLDevice.device_type(DLTensor.device(d), nativescope_h.kDLCUDA()),
                    "device kDLCUDA (2)"));
            cases.add(new Malformed("ROCm device 3", d -> {
                DLDevice.device_type(DLTensor.device(d), nativescope_h.kDLROCM());
                DLDevice.device_id(DLTensor.device(d), 3);
            }, "device kDLROCM (10) (id 3)"));
            cases.add(new Malformed("unknown device", d -> DLDevice.device_type(DLTensor.device(d), 99),
                    "device of unknown type 99"));
            cases.add(new Malformed("complex64", d -> {
                DLDataType.code(DLTensor.dtype(d), (byte) nativescope_h.kDLComplex());
                DLDataType.bits(DLTensor.dtype(d), (byte) 64);
            }, "unsupported DLPack dtype: code 5, bits 64, lanes 1"));
            cases.add(new Malformed("float x4", d -> DLDataType.lanes(DLTensor.dtype(d), (short) 4),
                    "code 2, bits 32, lanes 4"));
            cases.add(new Malformed("float24", d -> DLDataType.bits(DLTensor.dtype(d), (byte) 24), "bits 24"));
            cases.add(new Malformed("opaque handle", d -> DLDataType.code(DLTensor.dtype(d),
                    (byte) nativescope_h.kDLOpaqueHandle()), "code 3"));
            cases.add(new Malformed("negative ndim", d -> DLTensor.ndim(d, -1), "ndim -1; expected 0 to 64"));
            cases.add(new Malformed("absurd ndim", d -> DLTensor.ndim(d, 1_000_000), "ndim 1000000"));
            cases.add(new Malformed("NULL shape", d -> DLTensor.shape(d, MemorySegment.NULL), "NULL shape"));
            cases.add(new Malformed("negative dimension", d -> DLTensor.shape(d).reinterpret(16)
                    .setAtIndex(ValueLayout.JAVA_LONG, 1, -3), "negative dimension: shape [2, -3]"));
            cases.add(new Malformed("too many elements", d -> {
                MemorySegment shape = DLTensor.shape(d).reinterpret(16);
                shape.setAtIndex(ValueLayout.JAVA_LONG, 0, 1L << 32);
                shape.setAtIndex(ValueLayout.JAVA_LONG, 1, 1L << 32);
            }, "more than 2^63 elements"));
            cases.add(new Malformed("overflowing stride", d -> DLTensor.strides(d, arena.allocateFrom(ValueLayout.JAVA_LONG,
                    Long.MAX_VALUE / 2, 1)), "reach beyond 2^63 bytes"));
            cases.add(new Malformed("stride below address 0", d -> DLTensor.strides(d, arena.allocateFrom(ValueLayout.JAVA_LONG,
                    -(1L << 60), 1)), "below address 1"));
            cases.add(new Malformed("NULL data", d -> DLTensor.data(d, MemorySegment.NULL), "NULL data but 6 elements"));
            cases.add(new Malformed("byte_offset beyond 2^63", d -> DLTensor.byte_offset(d, -8),
                    "byte_offset 18446744073709551608"));
            cases.add(new Malformed("data + byte_offset overflowing", d -> DLTensor.byte_offset(d, Long.MAX_VALUE - 4),
                    "beyond the address space"));

            for (Malformed c : cases) {
                MemorySegment d = descriptor(arena, data, new long[] {2, 3}, new long[] {3, 1});
                c.change().accept(d);
                assertThatThrownBy(() -> DLPack.importTensor(d, arena)).as(c.name())
                        .isInstanceOf(IllegalArgumentException.class)
                        .hasMessageContaining(c.message());
                // What Java refuses, native code refuses too.
                assertThatThrownBy(() -> nativeSum(d)).as("native: " + c.name())
                        .isInstanceOf(NativeStatusException.class);
            }

            assertThatThrownBy(() -> DLPack.importTensor(MemorySegment.NULL, arena))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("NULL");
            assertThatThrownBy(() -> DLPack.importTensor(arena.allocate(16), arena))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("16 bytes; a DLTensor has 48");
        }
    }

    @Test
    void importAcceptsTheEdgesOfTheFormat() {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment data = arena.allocate(ValueLayout.JAVA_FLOAT, 6);
            for (int i = 0; i < 6; i++) {
                data.setAtIndex(ValueLayout.JAVA_FLOAT, i, i);
            }
            // NULL strides: compact row-major; the descriptor arrives as a bare pointer (zero-length segment).
            MemorySegment compact = descriptor(arena, data, new long[] {2, 3}, null);
            Tensor t = DLPack.importTensor(MemorySegment.ofAddress(compact.address()), arena);
            assertThat(t.strides()).containsExactly(3, 1);
            assertThat(t.toFloatArray()).containsExactly(0, 1, 2, 3, 4, 5);

            // byte_offset instead of a moved data pointer.
            MemorySegment offset = descriptor(arena, data, new long[] {2}, new long[] {2});
            DLTensor.byte_offset(offset, 4);
            assertThat(DLPack.importTensor(offset, arena).toFloatArray()).containsExactly(1, 3);

            // A size-1 dimension may carry any stride; it is never stepped over.
            MemorySegment oneRow = descriptor(arena, data, new long[] {1, 3}, new long[] {Long.MAX_VALUE, 2});
            Tensor row = DLPack.importTensor(oneRow, arena);
            assertThat(row.toFloatArray()).containsExactly(0, 2, 4);
            assertThat(row.segment().byteSize()).isEqualTo(5 * 4);
            assertThat(nativeSum(oneRow)).isEqualTo(6.0);

            // 0-d with NULL shape and strides.
            MemorySegment scalar = descriptor(arena, data, new long[0], null);
            DLTensor.byte_offset(scalar, 5 * 4);
            Tensor s = DLPack.importTensor(scalar, arena);
            assertThat(s.rank()).isZero();
            assertThat(s.getFloat()).isEqualTo(5f);

            // No element: NULL data is fine, and so are strides that would overflow.
            MemorySegment empty = descriptor(arena, MemorySegment.NULL, new long[] {0, 1L << 62, 1L << 62}, null);
            Tensor e = DLPack.importTensor(empty, arena);
            assertThat(e.elementCount()).isZero();
            assertThat(e.shape()).containsExactly(0, 1L << 62, 1L << 62);
            assertThat(nativeSum(empty)).isZero();

            // device_id is not looked at for CPU memory.
            MemorySegment otherId = descriptor(arena, data, new long[] {6}, null);
            DLDevice.device_id(DLTensor.device(otherId), 7);
            assertThat(DLPack.importTensor(otherId, arena).elementCount()).isEqualTo(6);

            // ndim at the maximum.
            long[] ones = new long[DLPack.MAX_NDIM];
            java.util.Arrays.fill(ones, 1);
            ones[DLPack.MAX_NDIM - 1] = 6;
            Tensor deep = DLPack.importTensor(descriptor(arena, data, ones, null), arena);
            assertThat(deep.rank()).isEqualTo(64);
            assertThat(deep.toFloatArray()).containsExactly(0, 1, 2, 3, 4, 5);
        }
    }
}
