/*
 * fuzz_exchange.c - libFuzzer target for the exchange reader (nsc_exchange.h):
 * the input is a whole exchange file image. The header validation must accept
 * it only when the geometry is consistent with the image's length; then every
 * slot's metadata that nsc_exchange_validate_slot accepts must address only
 * bytes of that slot, which this target touches (the image is malloc'd to its
 * exact length, so ASan reports any stray access).
 *
 *   make fuzz-exchange BUILD_DIR=... [FUZZ_RUNS=n]   (clang; ./run fuzz installs it)
 */
#include "nsc_exchange.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The image is exactly the input: a length the header does not describe is refused. */
    size_t length = size;
    uint8_t *image = malloc(length > 0 ? length : 1);
    if (image == NULL) {
        return 0;
    }
    memcpy(image, data, size);
    if (nsc_exchange_validate(image, length) != NSC_OK) {
        free(image);
        return 0;
    }
    uint32_t slots;
    uint64_t capacity, first;
    memcpy(&slots, image + NSC_XCHG_OFF_SLOT_COUNT, 4);
    memcpy(&capacity, image + NSC_XCHG_OFF_SLOT_CAPACITY, 8);
    memcpy(&first, image + NSC_XCHG_OFF_DATA_OFFSET, 8);
    if (first + (uint64_t) slots * capacity != length) {
        abort(); /* accepted a geometry that does not match the length */
    }
    volatile uint8_t sink = 0;
    for (uint32_t i = 0; i < slots; i++) {
        nsc_xchg_slot m;
        memcpy(&m, image + NSC_XCHG_HEADER_LENGTH + (uint64_t) i * NSC_XCHG_SLOT_META_LENGTH, sizeof m);
        if (nsc_exchange_validate_slot(image, length, i, &m) != NSC_OK) {
            continue;
        }
        uint32_t elem = ((m.dtype >> 8) & 0xff) / 8;
        /* The element count first: an empty tensor is accepted whatever its strides (nothing is
         * addressed), so its extents must not be computed (they may not fit 64 bits). */
        int64_t count = 1;
        for (uint32_t d = 0; d < m.ndim; d++) {
            count *= m.shape[d]; /* <= 2^62 at every step: the validation checked it */
        }
        if (count == 0) {
            if (m.data_offset < first + i * capacity || m.data_offset > first + i * capacity + capacity) {
                abort(); /* accepted an empty tensor whose offset lies outside its slot */
            }
            continue;
        }
        /* Touch the first and the last byte the indices can address (exact, in 128 bits). */
        __int128 min_off = 0, max_off = 0;
        for (uint32_t d = 0; d < m.ndim; d++) {
            __int128 reach = (__int128) (m.shape[d] - 1) * m.strides[d] * elem;
            if (reach < 0) {
                min_off += reach;
            } else {
                max_off += reach;
            }
        }
        uint64_t lo = first + i * capacity, hi = lo + capacity;
        __int128 begin128 = (__int128) m.data_offset + min_off, end128 = (__int128) m.data_offset + max_off + elem;
        if (begin128 < (__int128) lo || end128 > (__int128) hi) {
            abort(); /* accepted metadata that reaches outside its slot */
        }
        uint64_t begin = (uint64_t) begin128, end = (uint64_t) end128;
        sink ^= image[begin];
        sink ^= image[end - 1];
    }
    (void) sink;
    free(image);
    return 0;
}
