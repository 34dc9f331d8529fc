package dev.nativescope.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Locale;

/**
 * Reads and writes one element of each {@link DType} at a byte offset of a segment, converting to
 * and from {@code double} and {@code long} as {@link Tensor}'s accessors document: little-endian
 * (native) order, unaligned access (file formats do not promise alignment), float16 and bfloat16
 * widened to float, unsigned types zero-extended, UINT64 through its bit pattern. Callers check the
 * offset; this class only decodes.
 *
 * <p>Stateless and thread-safe; the memory is as thread-safe as the segment.
 */
final class ElementCodec {
    private ElementCodec() {
    }

    static double getDouble(MemorySegment segment, DType dtype, long at) {
        return switch (dtype) {
            case FLOAT16 -> Float.float16ToFloat(segment.get(ValueLayout.JAVA_SHORT_UNALIGNED, at));
            case BFLOAT16 -> Float.intBitsToFloat((segment.get(ValueLayout.JAVA_SHORT_UNALIGNED, at) & 0xffff) << 16);
            case FLOAT32 -> segment.get(ValueLayout.JAVA_FLOAT_UNALIGNED, at);
            case FLOAT64 -> segment.get(ValueLayout.JAVA_DOUBLE_UNALIGNED, at);
            case UINT64 -> unsignedToDouble(segment.get(ValueLayout.JAVA_LONG_UNALIGNED, at));
            default -> getLong(segment, dtype, at);
        };
    }

    /** Correctly rounded: halving keeps the lost low bit as a sticky bit, so rounding happens once. */
    private static double unsignedToDouble(long bits) {
        return bits >= 0 ? bits : (double) ((bits >>> 1) | (bits & 1)) * 2.0;
    }

    static long getLong(MemorySegment segment, DType dtype, long at) {
        return switch (dtype) {
            case INT8 -> segment.get(ValueLayout.JAVA_BYTE, at);
            case UINT8, BOOL -> segment.get(ValueLayout.JAVA_BYTE, at) & 0xffL;
            case INT16 -> segment.get(ValueLayout.JAVA_SHORT_UNALIGNED, at);
            case UINT16 -> segment.get(ValueLayout.JAVA_SHORT_UNALIGNED, at) & 0xffffL;
            case INT32 -> segment.get(ValueLayout.JAVA_INT_UNALIGNED, at);
            case UINT32 -> segment.get(ValueLayout.JAVA_INT_UNALIGNED, at) & 0xffff_ffffL;
            case INT64, UINT64 -> segment.get(ValueLayout.JAVA_LONG_UNALIGNED, at);
            default -> throw new IllegalStateException("getLong on a " + dtype.displayName() + " tensor; use getDouble");
        };
    }

    static void setDouble(MemorySegment segment, DType dtype, long at, double value) {
        switch (dtype) {
            case FLOAT16 -> segment.set(ValueLayout.JAVA_SHORT_UNALIGNED, at, Float.floatToFloat16((float) value));
            case BFLOAT16 -> segment.set(ValueLayout.JAVA_SHORT_UNALIGNED, at, toBfloat16((float) value));
            case FLOAT32 -> segment.set(ValueLayout.JAVA_FLOAT_UNALIGNED, at, (float) value);
            case FLOAT64 -> segment.set(ValueLayout.JAVA_DOUBLE_UNALIGNED, at, value);
            case BOOL -> segment.set(ValueLayout.JAVA_BYTE, at, value != 0 ? (byte) 1 : (byte) 0);
            case INT8, UINT8 -> segment.set(ValueLayout.JAVA_BYTE, at, (byte) (long) value);
            case INT16, UINT16 -> segment.set(ValueLayout.JAVA_SHORT_UNALIGNED, at, (short) (long) value);
            case INT32, UINT32 -> segment.set(ValueLayout.JAVA_INT_UNALIGNED, at, (int) (long) value);
            case INT64 -> segment.set(ValueLayout.JAVA_LONG_UNALIGNED, at, (long) value);
            case UINT64 -> segment.set(ValueLayout.JAVA_LONG_UNALIGNED, at, doubleToUnsigned(value));
        }
    }

    /** Values in [2^63, 2^64) keep their unsigned bit pattern; others convert as {@code (long) value}. */
    private static long doubleToUnsigned(double value) {
        return value >= 0x1p63 && value < 0x1p64 ? (long) (value - 0x1p63) ^ Long.MIN_VALUE : (long) value;
    }

    static void setLong(MemorySegment segment, DType dtype, long at, long value) {
        switch (dtype) {
            case BOOL -> segment.set(ValueLayout.JAVA_BYTE, at, value != 0 ? (byte) 1 : (byte) 0);
            case INT8, UINT8 -> segment.set(ValueLayout.JAVA_BYTE, at, (byte) value);
            case INT16, UINT16 -> segment.set(ValueLayout.JAVA_SHORT_UNALIGNED, at, (short) value);
            case INT32, UINT32 -> segment.set(ValueLayout.JAVA_INT_UNALIGNED, at, (int) value);
            case INT64, UINT64 -> segment.set(ValueLayout.JAVA_LONG_UNALIGNED, at, value);
            default -> setDouble(segment, dtype, at, value);
        }
    }

    /** Round-to-nearest-even truncation of a float32 to its upper 16 bits; NaN stays NaN. */
    private static short toBfloat16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if (Float.isNaN(value)) {
            return (short) ((bits >>> 16) | 0x40);
        }
        int roundingBias = 0x7fff + ((bits >>> 16) & 1);
        return (short) ((bits + roundingBias) >>> 16);
    }

    /** @return the element as {@link Tensor#toString} shows it: 4 significant digits for floats, UINT64 unsigned */
    static String format(MemorySegment segment, DType dtype, long at) {
        return dtype.isFloatingPoint() ? String.format(Locale.ROOT, "%.4g", getDouble(segment, dtype, at))
                : dtype == DType.UINT64 ? Long.toUnsignedString(getLong(segment, dtype, at))
                : Long.toString(getLong(segment, dtype, at));
    }
}
