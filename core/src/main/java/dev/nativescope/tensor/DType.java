package dev.nativescope.tensor;

import java.util.Locale;
import java.util.Optional;

/**
 * The element types a {@link Tensor} can hold, with their size and the names other formats use
 * for them: NumPy's {@code descr} (little-endian), safetensors' dtype string, and DLPack's
 * type code and bits.
 */
public enum DType {
    /** IEEE 754 binary16. */
    FLOAT16(2, "<f2", "F16", DLPackCode.FLOAT),
    /** bfloat16: the upper half of a float32. NumPy has no such type (ml_dtypes adds one as {@code V2}). */
    BFLOAT16(2, null, "BF16", DLPackCode.BFLOAT),
    /** IEEE 754 binary32. */
    FLOAT32(4, "<f4", "F32", DLPackCode.FLOAT),
    /** IEEE 754 binary64. */
    FLOAT64(8, "<f8", "F64", DLPackCode.FLOAT),
    /** Signed 8-bit integer. */
    INT8(1, "|i1", "I8", DLPackCode.INT),
    /** Signed 16-bit integer. */
    INT16(2, "<i2", "I16", DLPackCode.INT),
    /** Signed 32-bit integer. */
    INT32(4, "<i4", "I32", DLPackCode.INT),
    /** Signed 64-bit integer. */
    INT64(8, "<i8", "I64", DLPackCode.INT),
    /** Unsigned 8-bit integer. */
    UINT8(1, "|u1", "U8", DLPackCode.UINT),
    /** Unsigned 16-bit integer. */
    UINT16(2, "<u2", "U16", DLPackCode.UINT),
    /** Unsigned 32-bit integer. */
    UINT32(4, "<u4", "U32", DLPackCode.UINT),
    /** Unsigned 64-bit integer. */
    UINT64(8, "<u8", "U64", DLPackCode.UINT),
    /** One byte, 0 or 1. */
    BOOL(1, "|b1", "BOOL", DLPackCode.BOOL);

    /** DLPack's {@code DLDataTypeCode} values (dlpack.h). */
    static final class DLPackCode {
        static final int INT = 0;
        static final int UINT = 1;
        static final int FLOAT = 2;
        static final int BFLOAT = 4;
        static final int BOOL = 6;

        private DLPackCode() {
        }
    }

    private final int byteSize;
    private final String numpyDescr;
    private final String safetensorsName;
    private final int dlpackCode;

    DType(int byteSize, String numpyDescr, String safetensorsName, int dlpackCode) {
        this.byteSize = byteSize;
        this.numpyDescr = numpyDescr;
        this.safetensorsName = safetensorsName;
        this.dlpackCode = dlpackCode;
    }

    /** @return bytes per element */
    public int byteSize() {
        return byteSize;
    }

    /** @return NumPy's little-endian type string ({@code "<f4"}), empty for types NumPy lacks */
    public Optional<String> numpyDescr() {
        return Optional.ofNullable(numpyDescr);
    }

    /** @return the safetensors dtype name ({@code "F32"}) */
    public String safetensorsName() {
        return safetensorsName;
    }

    /** @return DLPack's type code ({@code kDLFloat} etc.) */
    public int dlpackCode() {
        return dlpackCode;
    }

    /** @return DLPack's bit width */
    public int dlpackBits() {
        return byteSize * 8;
    }

    /** @return true for the floating-point types */
    public boolean isFloatingPoint() {
        return dlpackCode == DLPackCode.FLOAT || dlpackCode == DLPackCode.BFLOAT;
    }

    /** @return the dtype with this safetensors name, if any */
    public static Optional<DType> ofSafetensorsName(String name) {
        for (DType type : values()) {
            if (type.safetensorsName.equals(name)) {
                return Optional.of(type);
            }
        }
        return Optional.empty();
    }

    /** @return the dtype of a DLPack (code, bits, lanes) triple, if supported (lanes must be 1) */
    public static Optional<DType> ofDLPack(int code, int bits, int lanes) {
        if (lanes != 1) {
            return Optional.empty();
        }
        for (DType type : values()) {
            if (type.dlpackCode == code && type.dlpackBits() == bits) {
                return Optional.of(type);
            }
        }
        return Optional.empty();
    }

    /** @return the lower-case name used in messages and {@code toString}: {@code float32} */
    public String displayName() {
        return name().toLowerCase(Locale.ROOT);
    }
}
