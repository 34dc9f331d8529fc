package dev.nativescope.exchange;

import dev.nativescope.tensor.DType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * What version v of the test streams holds, the same in Java, C (test_exchange.c, exchange_tool.c)
 * and Python (the test scripts): its dtype, its shape, and byte k = (v * 131 + k * 7 + (k >> 8)) & 0xff.
 */
final class Pattern {
    static final DType[] DTYPES = {DType.FLOAT32, DType.FLOAT64, DType.INT8, DType.INT16, DType.INT32, DType.INT64,
            DType.UINT8, DType.UINT16, DType.UINT32, DType.UINT64, DType.FLOAT16};

    private Pattern() {
    }

    static DType dtype(long v) {
        return DTYPES[(int) (v % DTYPES.length)];
    }

    static long[] shape(long v) {
        int rank = (int) (v % 4);
        long[] shape = new long[rank];
        for (int d = 0; d < rank; d++) {
            shape[d] = 1 + (v * 7 + d * 3) % 9;
        }
        return shape;
    }

    static int at(long v, long k) {
        return (int) ((v * 131 + k * 7 + (k >> 8)) & 0xff);
    }

    static void fill(MemorySegment data, long v) {
        for (long k = 0; k < data.byteSize(); k++) {
            data.set(ValueLayout.JAVA_BYTE, k, (byte) at(v, k));
        }
    }

    /** @return -1 when data holds version v's bytes, else the first byte that differs */
    static long mismatch(MemorySegment data, long v) {
        for (long k = 0; k < data.byteSize(); k++) {
            if ((data.get(ValueLayout.JAVA_BYTE, k) & 0xff) != at(v, k)) {
                return k;
            }
        }
        return -1;
    }
}
