package dev.nativescope.exchange;

import dev.nativescope.tensor.DType;

/** The slot's dtype word: DLPack code | bits << 8 | lanes << 16. Stateless. */
final class DTypes {
    private static final DType[] VALUES = DType.values();

    private DTypes() {
    }

    static int word(DType dtype) {
        return dtype.dlpackCode() | dtype.dlpackBits() << 8 | 1 << 16;
    }

    /** @return the dtype, or null for a word no DType has */
    static DType ofWord(int word) {
        int code = word & 0xff;
        int bits = (word >>> 8) & 0xff;
        int lanes = word >>> 16;
        for (DType dtype : VALUES) {
            if (dtype.dlpackCode() == code && dtype.dlpackBits() == bits && lanes == 1) {
                return dtype;
            }
        }
        return null;
    }
}
