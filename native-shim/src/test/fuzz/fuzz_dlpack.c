/*
 * fuzz_dlpack.c - libFuzzer target for the DLPack descriptor validation
 * (nsc__dl_f32_view) and the two public entry points built on it,
 * nsc_dl_sum_f32 and nsc_predict_dense_dl.
 *
 * The harness decodes the fuzz bytes into DLTensor descriptors, then decides
 * on its own, from the rules in nsc_reference.h and with exact 128-bit
 * arithmetic, whether each descriptor must be accepted and which bytes it
 * addresses. It allocates exactly those bytes (so ASan reports any access
 * outside them) and aborts when the shim disagrees with it:
 *   - accepted a descriptor the rules reject (above all one whose extent
 *     overflows: that is the out-of-bounds bug the validation exists to stop);
 *   - rejected one the rules accept, or reported another byte range;
 *   - summed to something other than the harness's own sum of the addressed
 *     elements (every other byte of the buffer holds a NaN, so reading one
 *     shows up in the sum);
 *   - computed another dense result, or wrote into the gaps of y.
 * Every call uses a live context that is destroyed at the end of the input,
 * so LeakSanitizer and the shim's own leak counters check the context paths.
 *
 * Input format (all integers little-endian; missing bytes read as zero, so
 * every byte string is an input):
 *   u8 mode            bit 0: dense (else sum), bit 1: dense with bias
 *   dense only:        num repeat, then the tensors x, w, [bias], y
 *   sum only:          one tensor
 * tensor:
 *   u8 flags           bit 0: strides NULL, bit 1: shape NULL, bit 2: data NULL,
 *                      bits 3-4: bytes added to the data pointer (misalignment)
 *   num device_type, num device_id, num dtype.code, num dtype.bits,
 *   num dtype.lanes, num ndim, num byte_offset (each truncated to its field),
 *   then min(ndim, NSC_DL_MAX_NDIM + 8) nums of shape unless it is NULL,
 *   and as many of strides unless they are NULL.
 * num (one int64): a tag byte t, then
 *   t < 0xF0: the value (int8_t) t, so 0x00..0x7F are 0..127;
 *   0xF0 / 0xF1 / 0xF2: an int16 / int32 / int64 follows;
 *   0xF3: INT64_MAX, 0xF4: INT64_MIN;
 *   0xF5 / 0xF6 / 0xF7 / 0xF8: 2^k, -2^k, 2^k - 1, 2^k + 1 with k = next byte & 63
 *                      (2^63 wraps to INT64_MIN, as uint64 arithmetic would);
 *   0xF9..0xFF: (int8_t) t, i.e. -7..-1.
 * make_corpus.py writes the seed corpus in this format.
 */
#include "nsc_internal.h"
#include "nsc_reference.h"
#include "nsc_stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An accepted descriptor addressing more than this is only validated, not backed by memory. */
#define MAX_EXTENT_BYTES ((int64_t) 64 << 20)
/* Kernels only run when their work (elements summed, multiply-adds) stays under this, to keep inputs fast. */
#define MAX_WORK ((int64_t) 1 << 16)
/* Shape and strides arrays are decoded up to this length even for a larger ndim (the shim must not read them). */
#define MAX_DECODED_DIMS (NSC_DL_MAX_NDIM + 8)
/*
 * Stands in for the data of a descriptor the harness cannot (or need not) back
 * with memory: a 4-byte-aligned address in no mapping (under ASan it lies in
 * the shadow gap, which is protected), so any access there crashes.
 */
#define UNBACKED_ADDRESS ((uintptr_t) 1 << 40)

/* Sentinel for the bytes no index addresses: a NaN with a recognisable payload. */
#define GAP_BITS UINT32_C(0x7fc0dead)

typedef __int128 i128;

/* ---------------------------------------------------------------------------
 * Decoding
 * ------------------------------------------------------------------------- */

struct reader {
    const uint8_t *p;
    size_t left;
};

static uint8_t take_u8(struct reader *r)
{
    if (r->left == 0) {
        return 0;
    }
    r->left--;
    return *r->p++;
}

static uint64_t take_le(struct reader *r, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) {
        v |= (uint64_t) take_u8(r) << (8 * i);
    }
    return v;
}

static int64_t take_num(struct reader *r)
{
    const uint8_t tag = take_u8(r);
    switch (tag) {
    case 0xF0:
        return (int16_t) take_le(r, 2);
    case 0xF1:
        return (int32_t) take_le(r, 4);
    case 0xF2:
        return (int64_t) take_le(r, 8);
    case 0xF3:
        return INT64_MAX;
    case 0xF4:
        return INT64_MIN;
    case 0xF5:
    case 0xF6:
    case 0xF7:
    case 0xF8: {
        const uint64_t power = (uint64_t) 1 << (take_u8(r) & 63);
        const uint64_t values[4] = { power, 0 - power, power - 1, power + 1 };
        return (int64_t) values[tag - 0xF5];
    }
    default:
        return (int8_t) tag;
    }
}

#define FLAG_STRIDES_NULL 0x01
#define FLAG_SHAPE_NULL 0x02
#define FLAG_DATA_NULL 0x04
#define FLAG_MISALIGN_SHIFT 3

/* A decoded descriptor, the harness's verdict on it, and the memory behind it. */
struct case_tensor {
    DLTensor t;
    int64_t *shape;      /* exactly as many entries as decoded: ASan guards the end */
    int64_t *strides;
    int decoded_dims;
    bool data_null;
    unsigned misalign;

    /* The harness's model (filled by model_tensor). */
    bool structurally_valid;  /* device, dtype, ndim, shape, count and extent rules hold */
    bool extent_overflows;    /* count or the reach of some index does not fit in int64 */
    int64_t count;
    int64_t low;              /* lowest byte offset from element [0, ...] an index reaches (<= 0) */
    int64_t high;             /* highest byte offset of an element's first byte (>= 0) */
    int64_t extent;           /* bytes addressed: high - low + 4, or 0 without elements */
    int64_t steps[NSC_DL_MAX_NDIM];  /* element strides the rules imply (compact when strides is NULL) */

    /* Placement (filled by place_tensor). */
    char *buffer;             /* exactly `extent` bytes, or NULL when unbacked */
    uintptr_t base;           /* data + byte_offset, as the shim must compute it */
    bool base_wraps;
    bool expect_accept;       /* the full verdict, pointer rules included */
};

static void decode_tensor(struct reader *r, struct case_tensor *c)
{
    memset(c, 0, sizeof *c);
    const uint8_t flags = take_u8(r);
    c->t.device.device_type = (DLDeviceType) (int32_t) take_num(r);
    c->t.device.device_id = (int32_t) take_num(r);
    c->t.dtype.code = (uint8_t) take_num(r);
    c->t.dtype.bits = (uint8_t) take_num(r);
    c->t.dtype.lanes = (uint16_t) take_num(r);
    c->t.ndim = (int32_t) take_num(r);
    c->t.byte_offset = (uint64_t) take_num(r);
    c->data_null = (flags & FLAG_DATA_NULL) != 0;
    c->misalign = (flags >> FLAG_MISALIGN_SHIFT) & 3;

    c->decoded_dims = c->t.ndim < 0 ? 0 : c->t.ndim > MAX_DECODED_DIMS ? MAX_DECODED_DIMS : c->t.ndim;
    /* malloc(0) still gives a distinct pointer, so a 0-d tensor's shape is non-NULL but has no bytes to read. */
    const size_t bytes = (size_t) c->decoded_dims * sizeof(int64_t);
    if (!(flags & FLAG_SHAPE_NULL)) {
        c->shape = malloc(bytes);
        for (int i = 0; i < c->decoded_dims; i++) {
            c->shape[i] = take_num(r);
        }
    }
    if (!(flags & FLAG_STRIDES_NULL)) {
        c->strides = malloc(bytes);
        for (int i = 0; i < c->decoded_dims; i++) {
            c->strides[i] = take_num(r);
        }
    }
    c->t.shape = c->shape;
    c->t.strides = c->strides;
}

static void free_tensor(struct case_tensor *c)
{
    free(c->shape);
    free(c->strides);
    free(c->buffer);
}

/* ---------------------------------------------------------------------------
 * The harness's own reading of the rules in nsc_reference.h
 * ------------------------------------------------------------------------- */

static bool fits_int64(i128 v)
{
    return v >= INT64_MIN && v <= INT64_MAX;
}

static void model_tensor(struct case_tensor *c)
{
    const DLTensor *t = &c->t;
    const int n = t->ndim;
    c->structurally_valid = false;
    if (t->device.device_type != kDLCPU || t->dtype.code != kDLFloat || t->dtype.bits != 32
        || t->dtype.lanes != 1 || n < 0 || n > NSC_DL_MAX_NDIM || (n > 0 && t->shape == NULL)) {
        return;
    }
    bool any_zero = false;
    for (int i = 0; i < n; i++) {
        if (t->shape[i] < 0) {
            return;
        }
        any_zero = any_zero || t->shape[i] == 0;
    }
    if (any_zero) {
        /* No element: no stride is ever used and nothing is addressed. */
        c->structurally_valid = true;
        return;
    }

    /* Count, compact strides and the reach of every index, all exact in 128 bits. */
    i128 count = 1;
    for (int i = 0; i < n; i++) {
        if (__builtin_mul_overflow(count, (i128) t->shape[i], &count) || !fits_int64(count)) {
            c->extent_overflows = true;
            return;
        }
    }
    i128 compact = 1;
    i128 low = 0;
    i128 high = 0;
    for (int i = n - 1; i >= 0; i--) {
        const int64_t step = t->strides != NULL ? t->strides[i] : (int64_t) compact;
        compact *= t->shape[i];
        i128 reach;
        if (__builtin_mul_overflow((i128) (t->shape[i] - 1), (i128) step, &reach)
            || __builtin_mul_overflow(reach, (i128) sizeof(float), &reach)) {
            c->extent_overflows = true;
            return;
        }
        /* low and high only grow in magnitude, so one term beyond int64 already puts them beyond it. */
        if (!fits_int64(reach)) {
            c->extent_overflows = true;
            return;
        }
        /* A size-1 dimension's stride multiplies only index 0; the shim's kernels see 0 there. */
        c->steps[i] = t->shape[i] > 1 ? step : 0;
        if (reach < 0) {
            low += reach;  /* at most 64 int64 terms: cannot wrap an i128 */
        } else {
            high += reach;
        }
    }
    if (!fits_int64(low) || !fits_int64(high)) {
        c->extent_overflows = true;
        return;
    }
    c->count = (int64_t) count;
    c->low = (int64_t) low;
    c->high = (int64_t) high;
    i128 extent = high - low + (i128) sizeof(float);
    c->extent = extent > MAX_EXTENT_BYTES ? MAX_EXTENT_BYTES + 1 : (int64_t) extent;
    c->structurally_valid = true;
}

/*
 * Chooses data so that element [0, ...] sits |low| bytes into a buffer of
 * exactly the extent (plus the misalignment asked for), or into the unbacked
 * address when there is no buffer, then applies the pointer rules.
 */
static void place_tensor(struct case_tensor *c)
{
    const bool backed = c->structurally_valid && c->extent <= MAX_EXTENT_BYTES;
    uintptr_t start = UNBACKED_ADDRESS;
    if (backed) {
        c->buffer = malloc((size_t) c->extent);
        if (c->buffer == NULL && c->extent > 0) {
            abort();  /* 64 MiB at most: the fuzzer's RSS limit is far above that */
        }
        start = (uintptr_t) c->buffer;
    }
    const uintptr_t wanted_base = start + c->misalign + (uintptr_t) (0 - (uint64_t) c->low);
    c->t.data = c->data_null ? NULL : (void *) (wanted_base - (uintptr_t) c->t.byte_offset);
    c->base_wraps = __builtin_add_overflow((uintptr_t) c->t.data, (uintptr_t) c->t.byte_offset, &c->base);

    c->expect_accept = false;
    if (!c->structurally_valid || c->base_wraps) {
        return;
    }
    if (c->count == 0) {
        c->expect_accept = true;  /* no element: data may be anything, even NULL or unaligned */
        return;
    }
    uintptr_t end;
    c->expect_accept = c->t.data != NULL && c->base % sizeof(float) == 0
                       && 0 - (uint64_t) c->low <= c->base
                       && !__builtin_add_overflow(c->base, (uintptr_t) c->high + sizeof(float), &end);
}

/* Backed, accepted, and small enough to run a kernel over. */
static bool runnable(const struct case_tensor *c)
{
    return c->expect_accept && c->buffer != NULL && c->count <= MAX_WORK;
}

/* ---------------------------------------------------------------------------
 * Checks
 * ------------------------------------------------------------------------- */

static void fail(const char *what, const struct case_tensor *c)
{
    fprintf(stderr, "fuzz_dlpack: %s\n", what);
    if (c != NULL) {
        fprintf(stderr,
                "  device %d, dtype %u/%u/%u, ndim %d, byte_offset %llu, data %p, misalign %u\n"
                "  model: valid %d, overflow %d, count %lld, low %lld, high %lld, base wraps %d, accept %d\n",
                (int) c->t.device.device_type, c->t.dtype.code, c->t.dtype.bits, c->t.dtype.lanes, c->t.ndim,
                (unsigned long long) c->t.byte_offset, c->t.data, c->misalign, c->structurally_valid,
                c->extent_overflows, (long long) c->count, (long long) c->low, (long long) c->high,
                c->base_wraps, c->expect_accept);
        for (int i = 0; i < c->decoded_dims && i < 8; i++) {
            fprintf(stderr, "  dim %d: shape %lld, stride %lld\n", i,
                    c->shape != NULL ? (long long) c->shape[i] : -1LL,
                    c->strides != NULL ? (long long) c->strides[i] : -1LL);
        }
    }
    abort();
}

/* Compares the shim's view of an accepted descriptor with the model. */
static void check_view(const struct case_tensor *c)
{
    struct nsc__dl_f32 v;
    const int status = nsc__dl_f32_view(&c->t, -1, &v);
    if (status == NSC_OK && c->extent_overflows) {
        fail("accepted a descriptor whose extent overflows int64", c);
    }
    if ((status == NSC_OK) != c->expect_accept) {
        fail(c->expect_accept ? "rejected a valid descriptor" : "accepted an invalid descriptor", c);
    }
    if (status != NSC_OK) {
        if (status != NSC_ERR_INVALID) {
            fail("validation failed with a status other than NSC_ERR_INVALID", c);
        }
        return;
    }
    const uintptr_t lo = c->count == 0 ? c->base : c->base - (uintptr_t) (0 - (uint64_t) c->low);
    const uintptr_t hi = c->count == 0 ? c->base : c->base + (uintptr_t) c->high + sizeof(float);
    if (v.ndim != c->t.ndim || v.count != c->count || (uintptr_t) v.base != c->base || v.lo != lo || v.hi != hi) {
        fail("the accepted view differs from the model (count, base or byte range)", c);
    }
    if (c->count > 0) {
        for (int i = 0; i < v.ndim; i++) {
            if (v.shape[i] != c->t.shape[i] || v.strides[i] != c->steps[i]) {
                fail("the accepted view has other shape or strides than the model", c);
            }
        }
    }
    /* The ndim a caller asks for must match exactly. */
    if (nsc__dl_f32_view(&c->t, c->t.ndim, &v) != NSC_OK || nsc__dl_f32_view(&c->t, c->t.ndim + 1, &v) == NSC_OK) {
        fail("the requested ndim is not enforced", c);
    }
}

/* The value stored at a given byte position of a buffer: small integers, so every sum below is exact. */
static float pattern_at(int64_t byte_pos)
{
    static const float values[5] = { 1.0f, -2.0f, 3.0f, -1.0f, 2.0f };
    return values[(byte_pos / (int64_t) sizeof(float)) % 5];
}

static float gap_value(void)
{
    float f;
    const uint32_t bits = GAP_BITS;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static void fill_gaps(struct case_tensor *c)
{
    const float gap = gap_value();
    for (int64_t pos = 0; pos + (int64_t) sizeof(float) <= c->extent; pos += sizeof(float)) {
        memcpy(c->buffer + pos, &gap, sizeof gap);
    }
}

/*
 * Byte position in the buffer of the element at index[] (an odometer over the
 * shape in row-major order, written independently of the shim's loops).
 */
static int64_t position_of(const struct case_tensor *c, const int64_t *index)
{
    int64_t pos = (int64_t) c->misalign - c->low;
    for (int i = 0; i < c->t.ndim; i++) {
        pos += index[i] * c->steps[i] * (int64_t) sizeof(float);
    }
    return pos;
}

/* Advances index[] in row-major order; false after the last element. */
static bool next_index(const struct case_tensor *c, int64_t *index)
{
    for (int i = c->t.ndim - 1; i >= 0; i--) {
        if (++index[i] < c->t.shape[i]) {
            return true;
        }
        index[i] = 0;
    }
    return false;
}

/* Puts the pattern at every addressed element (gaps stay NaN) and returns their sum. */
static double fill_addressed(struct case_tensor *c)
{
    fill_gaps(c);
    if (c->count == 0) {
        return 0.0;
    }
    int64_t index[NSC_DL_MAX_NDIM] = { 0 };
    double sum = 0.0;
    do {
        const int64_t pos = position_of(c, index);
        const float value = pattern_at(pos);
        memcpy(c->buffer + pos, &value, sizeof value);
        sum += value;
    } while (next_index(c, index));
    return sum;
}

static void fuzz_sum(nsc_context *ctx, struct case_tensor *c)
{
    check_view(c);
    double sum = NAN;
    if (!c->expect_accept) {
        /* Rejection must come before any element is read: unbacked data would crash. */
        if (nsc_dl_sum_f32(ctx, &c->t, &sum) != NSC_ERR_INVALID || sum != 0.0) {
            fail("nsc_dl_sum_f32 did not refuse an invalid descriptor cleanly", c);
        }
        return;
    }
    if (!runnable(c)) {
        return;
    }
    const double expected = fill_addressed(c);
    const int status = nsc_dl_sum_f32(ctx, &c->t, &sum);
    if (status != NSC_OK || sum != expected) {
        fprintf(stderr, "fuzz_dlpack: status %d, sum %.17g, expected %.17g\n", status, sum, expected);
        fail("nsc_dl_sum_f32 on an accepted descriptor", c);
    }
}

/* ---------------------------------------------------------------------------
 * Dense
 * ------------------------------------------------------------------------- */

static int cmp_int64(const void *a, const void *b)
{
    const int64_t x = *(const int64_t *) a;
    const int64_t y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

/* Whether every index of y has its own element, by listing them all; y is runnable. */
static bool elements_distinct(const struct case_tensor *y)
{
    int64_t *positions = malloc((size_t) y->count * sizeof *positions);
    int64_t index[NSC_DL_MAX_NDIM] = { 0 };
    int64_t k = 0;
    do {
        positions[k++] = position_of(y, index);
    } while (next_index(y, index));
    qsort(positions, (size_t) k, sizeof *positions, cmp_int64);
    bool distinct = true;
    for (int64_t i = 1; i < k && distinct; i++) {
        distinct = positions[i] != positions[i - 1];
    }
    free(positions);
    return distinct;
}

static bool ranges_meet(const struct case_tensor *a, const struct case_tensor *b)
{
    const uintptr_t a_lo = a->base + (uintptr_t) a->low;
    const uintptr_t b_lo = b->base + (uintptr_t) b->low;
    const uintptr_t a_hi = a->base + (uintptr_t) a->high + sizeof(float);
    const uintptr_t b_hi = b->base + (uintptr_t) b->high + sizeof(float);
    return a_lo < b_hi && b_lo < a_hi;
}

static float element(const struct case_tensor *c, int64_t i, int64_t j)
{
    const int64_t index[2] = { i, j };
    float v;
    memcpy(&v, c->buffer + position_of(c, index), sizeof v);
    return v;
}

static void fuzz_dense(nsc_context *ctx, int64_t repeat, struct case_tensor *x, struct case_tensor *w,
                       struct case_tensor *bias, struct case_tensor *y)
{
    check_view(x);
    check_view(w);
    check_view(y);
    if (bias != NULL) {
        check_view(bias);
    }
    DLTensor *bias_t = bias != NULL ? &bias->t : NULL;

    /* Every rule the harness can decide without listing y's elements. */
    bool reject = repeat < 1 || !x->expect_accept || !w->expect_accept || !y->expect_accept
                  || (bias != NULL && !bias->expect_accept);
    reject = reject || x->t.ndim != 2 || w->t.ndim != 2 || y->t.ndim != 2 || (bias != NULL && bias->t.ndim != 1);
    if (!reject) {
        const int64_t rows = x->t.shape[0];
        const int64_t inner = x->t.shape[1];
        const int64_t cols = w->t.shape[1];
        reject = rows <= 0 || inner <= 0 || cols <= 0 || w->t.shape[0] != inner || y->t.shape[0] != rows
                 || y->t.shape[1] != cols || (bias != NULL && bias->t.shape[0] != cols)
                 || ranges_meet(y, x) || ranges_meet(y, w) || (bias != NULL && ranges_meet(y, bias));
    }
    nsc_predict_stats stats;
    if (reject) {
        const int status = nsc_predict_dense_dl(ctx, &x->t, &w->t, bias_t, &y->t, repeat, &stats);
        if (status != NSC_ERR_INVALID) {
            fprintf(stderr, "fuzz_dlpack: nsc_predict_dense_dl returned %d\n", status);
            fail("nsc_predict_dense_dl accepted operands the rules reject (y shown)", y);
        }
        return;
    }
    if (!runnable(x) || !runnable(w) || !runnable(y) || (bias != NULL && !runnable(bias))) {
        return;
    }
    const int64_t rows = x->t.shape[0];
    const int64_t inner = x->t.shape[1];
    const int64_t cols = w->t.shape[1];
    i128 work = (i128) rows * inner * cols;
    if (__builtin_mul_overflow(work, (i128) repeat, &work) || work > MAX_WORK) {
        return;
    }

    const bool distinct = elements_distinct(y);
    fill_addressed(x);
    fill_addressed(w);
    if (bias != NULL) {
        fill_addressed(bias);
    }
    fill_gaps(y);
    const int status = nsc_predict_dense_dl(ctx, &x->t, &w->t, bias_t, &y->t, repeat, &stats);
    if (!distinct) {
        if (status != NSC_ERR_INVALID) {
            fail("nsc_predict_dense_dl accepted a y whose indices share elements", y);
        }
        return;
    }
    if (status != NSC_OK) {
        fprintf(stderr, "fuzz_dlpack: nsc_predict_dense_dl returned %d\n", status);
        fail("nsc_predict_dense_dl rejected valid operands (y shown)", y);
    }

    /* Every element of y is the exact result (small integers); every other byte of y's buffer is untouched. */
    char *touched = calloc((size_t) y->extent + 1, 1);
    for (int64_t i = 0; i < rows; i++) {
        for (int64_t j = 0; j < cols; j++) {
            float acc = 0.0f;
            if (bias != NULL) {
                const int64_t index[1] = { j };
                memcpy(&acc, bias->buffer + position_of(bias, index), sizeof acc);
            }
            for (int64_t k = 0; k < inner; k++) {
                acc += element(x, i, k) * element(w, k, j);
            }
            const float expected = acc > 0.0f ? acc : 0.0f;
            if (element(y, i, j) != expected) {
                fprintf(stderr, "fuzz_dlpack: y[%lld, %lld] = %g, expected %g\n", (long long) i, (long long) j,
                        (double) element(y, i, j), (double) expected);
                fail("nsc_predict_dense_dl result", y);
            }
            const int64_t index[2] = { i, j };
            touched[position_of(y, index)] = 1;
        }
    }
    for (int64_t pos = 0; pos + (int64_t) sizeof(float) <= y->extent; pos += sizeof(float)) {
        uint32_t bits;
        memcpy(&bits, y->buffer + pos, sizeof bits);
        if (!touched[pos] && bits != GAP_BITS) {
            fail("nsc_predict_dense_dl wrote into a gap of y", y);
        }
    }
    free(touched);
}

/* ---------------------------------------------------------------------------
 * Entry point
 * ------------------------------------------------------------------------- */

#define MODE_DENSE 0x01
#define MODE_BIAS 0x02

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nsc_stats before;
    nsc_stats_get(&before);
    nsc_context *ctx = aligned_alloc(64, sizeof *ctx);
    if (ctx == NULL || nsc_context_init(ctx, NSC_NO_DEADLINE, NULL, 0) != NSC_OK) {
        fail("cannot create a context", NULL);
    }

    struct reader r = { data, size };
    const uint8_t mode = take_u8(&r);
    if (mode & MODE_DENSE) {
        const int64_t repeat = take_num(&r);
        struct case_tensor x;
        struct case_tensor w;
        struct case_tensor bias;
        struct case_tensor y;
        decode_tensor(&r, &x);
        decode_tensor(&r, &w);
        if (mode & MODE_BIAS) {
            decode_tensor(&r, &bias);
        }
        decode_tensor(&r, &y);
        struct case_tensor *all[4] = { &x, &w, &y, (mode & MODE_BIAS) ? &bias : NULL };
        for (int i = 0; i < 4 && all[i] != NULL; i++) {
            model_tensor(all[i]);
            place_tensor(all[i]);
        }
        fuzz_dense(ctx, repeat, &x, &w, (mode & MODE_BIAS) ? &bias : NULL, &y);
        for (int i = 0; i < 4 && all[i] != NULL; i++) {
            free_tensor(all[i]);
        }
    } else {
        struct case_tensor t;
        decode_tensor(&r, &t);
        model_tensor(&t);
        place_tensor(&t);
        fuzz_sum(ctx, &t);
        free_tensor(&t);
    }

    if (nsc_check(ctx) != NSC_OK || nsc_context_destroy(ctx) != NSC_OK) {
        fail("the context did not stay live, or could not be destroyed", NULL);
    }
    free(ctx);
    nsc_stats after;
    nsc_stats_get(&after);
    if (after.live_contexts != before.live_contexts || after.live_fds != before.live_fds
        || after.live_hooks != before.live_hooks || after.native_bytes != before.native_bytes) {
        fail("the shim's leak counters moved over one input", NULL);
    }
    return 0;
}
