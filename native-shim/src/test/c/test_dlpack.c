/*
 * test_dlpack.c - DLPack descriptors: nsc_dl_sum_f32 reads exactly the
 * elements a descriptor describes (compact, strided, transposed, negative and
 * broadcast strides, byte offsets, 0-d, empty); nsc_predict_dense_dl matches
 * nsc_predict_dense on compact copies of strided operands, leaves y's gaps
 * alone, stops on cancel and deadline; every malformed descriptor is refused
 * with NSC_ERR_INVALID before any element is touched.
 */
#include "nsc_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static DLTensor dl_f32(void *data, int ndim, int64_t *shape, int64_t *strides, uint64_t byte_offset)
{
    DLTensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.device.device_type = kDLCPU;
    t.device.device_id = 0;
    t.ndim = ndim;
    t.dtype.code = kDLFloat;
    t.dtype.bits = 32;
    t.dtype.lanes = 1;
    t.shape = shape;
    t.strides = strides;
    t.byte_offset = byte_offset;
    return t;
}

static float *alloc_floats(int64_t n)
{
    float *a = malloc((size_t) (n > 0 ? n : 1) * sizeof *a);
    if (a == NULL) {
        nsc_test_abort(__FILE__, __LINE__, "out of memory");
    }
    return a;
}

/* Distinct, exactly representable values: element i is i + 0.25 (a float holds them exactly up to 2^22). */
static float *counting_floats(int64_t n)
{
    float *a = alloc_floats(n);
    for (int64_t i = 0; i < n; i++) {
        a[i] = (float) i + 0.25f;
    }
    return a;
}

/* The reference: row-major odometer over an explicit layout, double accumulator, like the header promises. */
static double sum_reference(const float *base, int ndim, const int64_t *shape, const int64_t *strides)
{
    int64_t count = 1;
    for (int i = 0; i < ndim; i++) {
        count *= shape[i];
    }
    int64_t index[NSC_DL_MAX_NDIM] = { 0 };
    double acc = 0.0;
    for (int64_t n = 0; n < count; n++) {
        int64_t offset = 0;
        for (int i = 0; i < ndim; i++) {
            offset += index[i] * strides[i];
        }
        acc += (double) base[offset];
        for (int i = ndim - 1; i >= 0; i--) {
            if (++index[i] < shape[i]) {
                break;
            }
            index[i] = 0;
        }
    }
    return acc;
}

static void check_sum(const DLTensor *t, double expected, const char *what)
{
    double sum = NAN;
    int status = nsc_dl_sum_f32(NULL, t, &sum);
    if (status != NSC_OK || sum != expected) {
        nsc_test_fail(__FILE__, __LINE__, "%s: status %s, sum %.17g, expected %.17g", what,
                      nsc_status_name(status), sum, expected);
    }
}

TEST(dl_sum_reads_exactly_the_described_elements)
{
    float *a = counting_floats(4 * 6 * 5);  /* 120 floats */

    /* Compact 2-d, strides NULL and explicit. */
    int64_t shape2[2] = { 4, 6 };
    int64_t compact2[2] = { 6, 1 };
    DLTensor t = dl_f32(a, 2, shape2, NULL, 0);
    check_sum(&t, sum_reference(a, 2, shape2, compact2), "compact, strides NULL");
    t.strides = compact2;
    check_sum(&t, sum_reference(a, 2, shape2, compact2), "compact, explicit strides");

    /* Transposed view of the same 4x6 matrix: shape 6x4, strides (1, 6). */
    int64_t shape_t[2] = { 6, 4 };
    int64_t strides_t[2] = { 1, 6 };
    t = dl_f32(a, 2, shape_t, strides_t, 0);
    check_sum(&t, sum_reference(a, 2, shape_t, strides_t), "transposed");

    /* Rows 1..3, every other column from 1, via byte_offset. */
    int64_t shape_s[2] = { 3, 3 };
    int64_t strides_s[2] = { 6, 2 };
    t = dl_f32(a, 2, shape_s, strides_s, (6 * 1 + 1) * sizeof(float));
    check_sum(&t, sum_reference(a + 7, 2, shape_s, strides_s), "sliced with byte_offset");
    /* The same, with the offset folded into data instead. */
    t = dl_f32(a + 7, 2, shape_s, strides_s, 0);
    check_sum(&t, sum_reference(a + 7, 2, shape_s, strides_s), "sliced with data pointer");

    /* Negative strides: the 4x6 matrix flipped in both dimensions, element [0, 0] is the last float. */
    int64_t strides_n[2] = { -6, -1 };
    t = dl_f32(a, 2, shape2, strides_n, 23 * sizeof(float));
    check_sum(&t, sum_reference(a + 23, 2, shape2, strides_n), "negative strides");

    /* Broadcast (stride 0) and a 3-d tensor with a size-1 dimension whose stride is garbage. */
    int64_t shape_b[2] = { 5, 3 };
    int64_t strides_b[2] = { 0, 1 };
    t = dl_f32(a, 2, shape_b, strides_b, 0);
    check_sum(&t, 5.0 * sum_reference(a, 1, &shape_b[1], &strides_b[1]), "broadcast");
    int64_t shape3[3] = { 4, 1, 5 };
    int64_t strides3[3] = { 30, INT64_MAX, 6 };
    int64_t strides3_ref[3] = { 30, 0, 6 };
    t = dl_f32(a, 3, shape3, strides3, 2 * sizeof(float));
    check_sum(&t, sum_reference(a + 2, 3, shape3, strides3_ref), "3-d, size-1 dimension with a huge stride");

    /* 0-d: one element; shape may be NULL. */
    t = dl_f32(a, 0, NULL, NULL, 5 * sizeof(float));
    check_sum(&t, 5.25, "0-d");

    /* No element: data may be NULL, and strides of an empty tensor do not matter. */
    int64_t shape_e[2] = { 0, 7 };
    int64_t strides_e[2] = { INT64_MAX, INT64_MIN };
    t = dl_f32(NULL, 2, shape_e, strides_e, 0);
    check_sum(&t, 0.0, "empty, NULL data");
    int64_t shape_huge_empty[3] = { INT64_MAX, 0, INT64_MAX };
    t = dl_f32(a, 3, shape_huge_empty, NULL, 0);
    check_sum(&t, 0.0, "empty, dimension product beyond int64 before the 0");

    /* NSC_DL_MAX_NDIM dimensions of size 1 and one of 3. */
    int64_t shape_max[NSC_DL_MAX_NDIM];
    for (int i = 0; i < NSC_DL_MAX_NDIM; i++) {
        shape_max[i] = 1;
    }
    shape_max[NSC_DL_MAX_NDIM - 1] = 3;
    t = dl_f32(a, NSC_DL_MAX_NDIM, shape_max, NULL, 0);
    check_sum(&t, 0.25 + 1.25 + 2.25, "ndim NSC_DL_MAX_NDIM");

    /* A long row crosses the 4096-element check interval with a context. */
    float *big = counting_floats(10000);
    int64_t shape_big[1] = { 10000 };
    t = dl_f32(big, 1, shape_big, NULL, 0);
    nsc_context *ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    double sum = 0.0;
    CHECK_STATUS(nsc_dl_sum_f32(ctx, &t, &sum), NSC_OK);
    CHECK(sum == 10000.0 * 9999.0 / 2.0 + 0.25 * 10000.0);
    CHECK_STATUS(nsc_context_cancel(ctx, NSC_CANCELED), NSC_OK);
    sum = 1.0;
    CHECK_STATUS(nsc_dl_sum_f32(ctx, &t, &sum), NSC_CANCELED);
    CHECK(sum == 0.0);
    t_ctx_free(ctx);

    free(big);
    free(a);
}

TEST(dl_sum_random_layouts_match_reference)
{
    /* Random views (permuted, sliced with steps, flipped) of a random 3-d buffer. */
    const int64_t dims[3] = { 5, 7, 9 };
    float *a = t_random_floats(dims[0] * dims[1] * dims[2]);
    const int64_t base_strides[3] = { dims[1] * dims[2], dims[2], 1 };
    for (int iter = 0; iter < ITERS(300); iter++) {
        int64_t shape[3];
        int64_t strides[3];
        int64_t offset = 0;
        int order[3] = { 0, 1, 2 };
        for (int i = 2; i > 0; i--) {
            int j = (int) t_rand_below((uint64_t) i + 1);
            int tmp = order[i];
            order[i] = order[j];
            order[j] = tmp;
        }
        for (int i = 0; i < 3; i++) {
            const int d = order[i];
            const int64_t step = 1 + (int64_t) t_rand_below(3);
            const int64_t start = (int64_t) t_rand_below((uint64_t) dims[d]);
            const int64_t avail = (dims[d] - start + step - 1) / step;
            shape[i] = 1 + (int64_t) t_rand_below((uint64_t) avail);
            strides[i] = base_strides[d] * step;
            offset += start * base_strides[d];
            if (t_rand_below(2)) {
                /* Flip: start from the last selected index and walk backwards. */
                offset += (shape[i] - 1) * strides[i];
                strides[i] = -strides[i];
            }
        }
        DLTensor t = dl_f32(a, 3, shape, strides, (uint64_t) offset * sizeof(float));
        check_sum(&t, sum_reference(a + offset, 3, shape, strides), "random view");
    }
    free(a);
}

TEST(dl_sum_rejects_bad_descriptors)
{
    float a[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    int64_t shape[2] = { 2, 4 };
    int64_t strides[2] = { 4, 1 };
    double sum;
#define SUM_INVALID(tensor_expr)                                            \
    do {                                                                    \
        sum = 99.0;                                                         \
        CHECK_STATUS(nsc_dl_sum_f32(NULL, (tensor_expr), &sum), NSC_ERR_INVALID); \
        CHECK(sum == 0.0);                                                  \
    } while (0)

    DLTensor good = dl_f32(a, 2, shape, strides, 0);
    CHECK_STATUS(nsc_dl_sum_f32(NULL, &good, &sum), NSC_OK);
    CHECK(sum == 36.0);
    CHECK_STATUS(nsc_dl_sum_f32(NULL, &good, NULL), NSC_ERR_INVALID);
    SUM_INVALID(NULL);

    DLTensor t = good;
    t.device.device_type = kDLCUDA;
    SUM_INVALID(&t);
    t = good;
    t.device.device_type = kDLCUDAHost;
    SUM_INVALID(&t);
    t = good;
    t.device.device_type = (DLDeviceType) 0;
    SUM_INVALID(&t);

    t = good;
    t.dtype.code = kDLInt;
    SUM_INVALID(&t);
    t = good;
    t.dtype.bits = 64;
    SUM_INVALID(&t);
    t = good;
    t.dtype.bits = 16;
    SUM_INVALID(&t);
    t = good;
    t.dtype.lanes = 2;
    SUM_INVALID(&t);
    t = good;
    t.dtype.code = kDLBfloat;
    t.dtype.bits = 32;
    SUM_INVALID(&t);

    t = good;
    t.ndim = -1;
    SUM_INVALID(&t);
    t = good;
    t.ndim = NSC_DL_MAX_NDIM + 1;
    SUM_INVALID(&t);
    t = good;
    t.shape = NULL;
    SUM_INVALID(&t);

    int64_t negative[2] = { 2, -4 };
    t = dl_f32(a, 2, negative, NULL, 0);
    SUM_INVALID(&t);
    int64_t count_overflow[2] = { INT64_C(1) << 32, INT64_C(1) << 32 };
    t = dl_f32(a, 2, count_overflow, NULL, 0);
    SUM_INVALID(&t);
    int64_t extent_overflow[2] = { 2, INT64_C(1) << 61 };
    t = dl_f32(a, 2, extent_overflow, NULL, 0);
    SUM_INVALID(&t);

    /* Strides whose reach overflows int64, or wraps the address space. */
    int64_t huge_stride[2] = { INT64_MAX / 2, 1 };
    t = dl_f32(a, 2, shape, huge_stride, 0);
    SUM_INVALID(&t);
    int64_t min_stride[2] = { INT64_MIN, 1 };
    t = dl_f32(a, 2, shape, min_stride, 0);
    SUM_INVALID(&t);
    int64_t below_zero[2] = { -(INT64_C(1) << 60), 1 };
    t = dl_f32(a, 2, shape, below_zero, 0);
    SUM_INVALID(&t);
    t = dl_f32(a, 2, shape, strides, UINT64_MAX - 2);
    SUM_INVALID(&t);
    t = dl_f32((void *) (UINTPTR_MAX - 15), 2, shape, strides, 0);
    SUM_INVALID(&t);

    /* NULL data with elements; misaligned element base. */
    t = dl_f32(NULL, 2, shape, strides, 0);
    SUM_INVALID(&t);
    t = dl_f32(a, 2, shape, strides, 2);
    SUM_INVALID(&t);
    t = dl_f32((char *) a + 1, 2, shape, strides, 0);
    SUM_INVALID(&t);
#undef SUM_INVALID
}

/* ---------------------------------------------------------------------------
 * Dense over DLPack
 * ------------------------------------------------------------------------- */

/* Copies a strided 2-d view into a compact row-major array. */
static float *compact_copy(const float *base, int64_t rows, int64_t cols, int64_t s0, int64_t s1)
{
    float *c = alloc_floats(rows * cols);
    for (int64_t i = 0; i < rows; i++) {
        for (int64_t j = 0; j < cols; j++) {
            c[i * cols + j] = base[i * s0 + j * s1];
        }
    }
    return c;
}

/* Where a strided operand of shape rows x cols sits in a buffer: element [0, 0] and strides. */
struct layout {
    int64_t offset;
    int64_t s0;
    int64_t s1;
    int64_t buffer;  /* floats in the buffer */
};

/*
 * A random layout of a rows x cols operand: compact, transposed (column-major),
 * padded rows, or flipped rows, inside a buffer with slack on both sides.
 */
static struct layout random_layout(int64_t rows, int64_t cols, int kind)
{
    struct layout l;
    const int64_t slack = 3;
    switch (kind) {
    case 0: /* compact */
        l.s0 = cols;
        l.s1 = 1;
        l.offset = slack;
        l.buffer = rows * cols + 2 * slack;
        break;
    case 1: /* transposed storage */
        l.s0 = 1;
        l.s1 = rows;
        l.offset = slack;
        l.buffer = rows * cols + 2 * slack;
        break;
    case 2: /* padded rows, every other column */
        l.s0 = 2 * cols + 5;
        l.s1 = 2;
        l.offset = slack;
        l.buffer = rows * l.s0 + 2 * slack;
        break;
    default: /* rows flipped */
        l.s0 = -cols;
        l.s1 = 1;
        l.offset = slack + (rows - 1) * cols;
        l.buffer = rows * cols + 2 * slack;
        break;
    }
    return l;
}

TEST(dense_dl_matches_dense_on_compact_copies)
{
    static const nsc_kv values[] = { { "trace-id", "dl-7", 8, 4 } };
    const int configs = ITERS(40) + 8;
    for (int c = 0; c < configs; c++) {
        const int64_t rows = 1 + (int64_t) t_rand_below(70);
        const int64_t inner = 1 + (int64_t) t_rand_below(70);
        const int64_t cols = 1 + (int64_t) t_rand_below(70);
        const int64_t repeat = 1 + (int64_t) t_rand_below(2);
        /* The first configurations cover every kind; the rest are random. */
        const int kx = c < 4 ? c : (int) t_rand_below(4);
        const int kw = c < 4 ? (c + 1) % 4 : (int) t_rand_below(4);
        const int ky = c < 4 ? (c + 2) % 4 : (int) t_rand_below(4);
        const bool with_bias = c % 3 != 2;
        const bool bias_strided = t_rand_below(2);
        const bool with_ctx = t_rand_below(2);

        const struct layout lx = random_layout(rows, inner, kx);
        const struct layout lw = random_layout(inner, cols, kw);
        const struct layout ly = random_layout(rows, cols, ky);
        float *xb = t_random_floats(lx.buffer);
        float *wb = t_random_floats(lw.buffer);
        const int64_t bias_stride = bias_strided ? -3 : 1;
        const int64_t bias_buffer = cols * 3 + 2;
        float *bb = t_random_floats(bias_buffer);
        const int64_t bias_offset = bias_strided ? 1 + (cols - 1) * 3 : 1;
        float *yb = alloc_floats(ly.buffer);
        for (int64_t i = 0; i < ly.buffer; i++) {
            yb[i] = -7.0f;  /* sentinel: relu never produces a negative value */
        }

        /* Reference: nsc_predict_dense on compact copies. */
        float *xc = compact_copy(xb + lx.offset, rows, inner, lx.s0, lx.s1);
        float *wc = compact_copy(wb + lw.offset, inner, cols, lw.s0, lw.s1);
        float *bc = compact_copy(bb + bias_offset, 1, cols, 0, bias_stride);
        float *yc = alloc_floats(rows * cols);
        CHECK_STATUS(nsc_predict_dense(NULL, xc, wc, with_bias ? bc : NULL, yc, rows, inner, cols, 1, NULL),
                     NSC_OK);

        int64_t xshape[2] = { rows, inner };
        int64_t xstrides[2] = { lx.s0, lx.s1 };
        int64_t wshape[2] = { inner, cols };
        int64_t wstrides[2] = { lw.s0, lw.s1 };
        int64_t yshape[2] = { rows, cols };
        int64_t ystrides[2] = { ly.s0, ly.s1 };
        int64_t bshape[1] = { cols };
        int64_t bstrides[1] = { bias_stride };
        /* Compact operands sometimes say so with NULL strides. */
        DLTensor x = dl_f32(xb, 2, xshape, kx == 0 && t_rand_below(2) ? NULL : xstrides, (uint64_t) lx.offset * 4);
        DLTensor w = dl_f32(wb, 2, wshape, kw == 0 && t_rand_below(2) ? NULL : wstrides, (uint64_t) lw.offset * 4);
        DLTensor y = dl_f32(yb + ly.offset, 2, yshape, ystrides, 0);
        DLTensor b = dl_f32(bb, 1, bshape, bstrides, (uint64_t) bias_offset * 4);

        nsc_context *ctx = with_ctx ? t_ctx_new(NSC_NO_DEADLINE, values, 1) : NULL;
        nsc_predict_stats stats;
        memset(&stats, 0xcd, sizeof stats);
        CHECK_STATUS(nsc_predict_dense_dl(ctx, &x, &w, with_bias ? &b : NULL, &y, repeat, &stats), NSC_OK);
        const int64_t tiles = ((rows + 31) / 32) * ((cols + 31) / 32);
        CHECK_STATUS(stats.status, NSC_OK);
        CHECK_EQ(stats.work_units, repeat * tiles);
        CHECK_EQ(stats.checks, with_ctx ? repeat * tiles : 0);
        if (with_ctx) {
            CHECK(strcmp(stats.trace_id, "dl-7") == 0);
            t_ctx_free(ctx);
        }

        /* Same products summed in the same order: equal up to rounding (exact without FMA contraction). */
        int bad = 0;
        for (int64_t i = 0; i < rows; i++) {
            for (int64_t j = 0; j < cols; j++) {
                const float got = yb[ly.offset + i * ly.s0 + j * ly.s1];
                const float want = yc[i * cols + j];
                if (!(fabsf(got - want) <= 1e-5f * (1.0f + fabsf(want)))) {
                    bad++;
                }
            }
        }
        /* Every element of the buffer that is not part of y keeps its sentinel. */
        int64_t touched = 0;
        for (int64_t k = 0; k < ly.buffer; k++) {
            touched += yb[k] != -7.0f;
        }
        if (bad > 0 || touched != rows * cols) {
            nsc_test_fail(__FILE__, __LINE__,
                          "dense_dl %lldx%lldx%lld kinds x%d w%d y%d bias=%d/%d: %d wrong, %lld written (want %lld)",
                          (long long) rows, (long long) inner, (long long) cols, kx, kw, ky, with_bias,
                          bias_strided, bad, (long long) touched, (long long) (rows * cols));
        }
        free(xb);
        free(wb);
        free(bb);
        free(yb);
        free(xc);
        free(wc);
        free(bc);
        free(yc);
    }
}

TEST(dense_dl_broadcast_input)
{
    /* x rows all equal through a 0 row stride: every y row is the same. */
    float xrow[3] = { 1.0f, 2.0f, 3.0f };
    float w[6] = { 1.0f, -1.0f, 0.5f, 2.0f, -0.25f, 1.0f };  /* 3x2 */
    float y[8];
    int64_t xshape[2] = { 4, 3 };
    int64_t xstrides[2] = { 0, 1 };
    int64_t wshape[2] = { 3, 2 };
    int64_t yshape[2] = { 4, 2 };
    DLTensor x = dl_f32(xrow, 2, xshape, xstrides, 0);
    DLTensor wt = dl_f32(w, 2, wshape, NULL, 0);
    DLTensor yt = dl_f32(y, 2, yshape, NULL, 0);
    CHECK_STATUS(nsc_predict_dense_dl(NULL, &x, &wt, NULL, &yt, 1, NULL), NSC_OK);
    for (int i = 0; i < 4; i++) {
        CHECK(y[2 * i] == 1.0f + 1.0f - 0.75f);
        CHECK(y[2 * i + 1] == -1.0f + 4.0f + 3.0f);
    }
}

/*
 * y is accepted exactly when its indices have distinct elements (the header's
 * rule), interleaved layouts included: strides (3, 2) over shape (2, 2) give
 * offsets 0, 2, 3, 5. Found by fuzz_dlpack: the shim used to ask for the
 * larger stride to step over a whole run of the smaller one, and refused it.
 */
TEST(dense_dl_y_distinctness_is_exact)
{
    float xb[6] = { 1, 2, 3, 4, 5, 6 };            /* 2x3 */
    float wb[6] = { 1, 0, 0, 1, 1, 1 };            /* 3x2 */
    float yb[6];
    int64_t xshape[2] = { 2, 3 };
    int64_t wshape[2] = { 3, 2 };
    int64_t yshape[2] = { 2, 2 };
    int64_t y_interleaved[2] = { 3, 2 };
    const DLTensor x = dl_f32(xb, 2, xshape, NULL, 0);
    const DLTensor w = dl_f32(wb, 2, wshape, NULL, 0);
    DLTensor y = dl_f32(yb, 2, yshape, y_interleaved, 0);
    for (int i = 0; i < 6; i++) {
        yb[i] = -7.0f;
    }
    CHECK_STATUS(nsc_predict_dense_dl(NULL, &x, &w, NULL, &y, 1, NULL), NSC_OK);
    /* y[i, j] sits at 3 i + 2 j; offsets 1 and 4 are gaps and stay untouched. */
    CHECK(yb[0] == 1.0f + 3.0f && yb[2] == 2.0f + 3.0f);
    CHECK(yb[3] == 4.0f + 6.0f && yb[5] == 5.0f + 6.0f);
    CHECK(yb[1] == -7.0f && yb[4] == -7.0f);

    /* Strides (2, 3) over shape (4, 3): index (3, 0) and (0, 2) both land on offset 6. */
    float x4[4] = { 1, 1, 1, 1 };
    float w3[3] = { 1, 1, 1 };
    float y20[20];
    int64_t x4shape[2] = { 4, 1 };
    int64_t w3shape[2] = { 1, 3 };
    int64_t y43shape[2] = { 4, 3 };
    int64_t y_colliding[2] = { 2, 3 };
    const DLTensor x4t = dl_f32(x4, 2, x4shape, NULL, 0);
    const DLTensor w3t = dl_f32(w3, 2, w3shape, NULL, 0);
    y = dl_f32(y20, 2, y43shape, y_colliding, 0);
    CHECK_STATUS(nsc_predict_dense_dl(NULL, &x4t, &w3t, NULL, &y, 1, NULL), NSC_ERR_INVALID);
    /* The same shape with strides (5, 2) meets nowhere (5 i + 2 j takes 12 distinct values up to 19). */
    int64_t y_distinct[2] = { 5, 2 };
    y = dl_f32(y20, 2, y43shape, y_distinct, 0);
    CHECK_STATUS(nsc_predict_dense_dl(NULL, &x4t, &w3t, NULL, &y, 1, NULL), NSC_OK);
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 3; j++) {
            CHECK(y20[5 * i + 2 * j] == 1.0f);
        }
    }
}

TEST(dense_dl_rejects_bad_descriptors)
{
    float xb[6] = { 1, 2, 3, 4, 5, 6 };      /* 2x3 */
    float wb[12] = { 0 };                    /* 3x4 */
    float bb[4] = { 0 };
    float yb[8] = { 0 };                     /* 2x4 */
    int64_t xshape[2] = { 2, 3 };
    int64_t wshape[2] = { 3, 4 };
    int64_t yshape[2] = { 2, 4 };
    int64_t bshape[1] = { 4 };
    const DLTensor x = dl_f32(xb, 2, xshape, NULL, 0);
    const DLTensor w = dl_f32(wb, 2, wshape, NULL, 0);
    const DLTensor b = dl_f32(bb, 1, bshape, NULL, 0);
    const DLTensor y = dl_f32(yb, 2, yshape, NULL, 0);
    nsc_predict_stats stats;
    DLTensor y_copy = y;
    CHECK_STATUS(nsc_predict_dense_dl(NULL, &x, &w, &b, &y_copy, 1, &stats), NSC_OK);

#define DENSE_DL_INVALID(xp, wp, bp, yp, repeat)                                      \
    do {                                                                              \
        memset(&stats, 0xcd, sizeof stats);                                           \
        CHECK_STATUS(nsc_predict_dense_dl(NULL, (xp), (wp), (bp), (yp), (repeat), &stats), \
                     NSC_ERR_INVALID);                                                \
        CHECK_STATUS(stats.status, NSC_ERR_INVALID);                                  \
        CHECK_EQ(stats.work_units, 0);                                                \
        CHECK(stats.start_ns <= stats.end_ns);                                        \
    } while (0)

    DLTensor yy = y;
    DENSE_DL_INVALID(NULL, &w, &b, &yy, 1);
    DENSE_DL_INVALID(&x, NULL, &b, &yy, 1);
    DENSE_DL_INVALID(&x, &w, &b, NULL, 1);
    DENSE_DL_INVALID(&x, &w, &b, &yy, 0);
    DENSE_DL_INVALID(&x, &w, &b, &yy, -5);

    /* Ranks: x, w, y must be 2-d and bias 1-d. */
    DLTensor t = x;
    t.ndim = 1;
    DENSE_DL_INVALID(&t, &w, &b, &yy, 1);
    t = b;
    t.ndim = 2;
    t.shape = bshape;  /* ndim 2 would read bshape[1]: refused on ndim before that */
    DENSE_DL_INVALID(&x, &w, &t, &yy, 1);
    DENSE_DL_INVALID(&x, &w, &y_copy, &yy, 1);  /* a 2-d bias */

    /* Shapes that do not chain. */
    int64_t w_bad[2] = { 2, 4 };
    t = dl_f32(wb, 2, w_bad, NULL, 0);
    DENSE_DL_INVALID(&x, &t, &b, &yy, 1);
    int64_t y_bad_rows[2] = { 1, 4 };
    t = dl_f32(yb, 2, y_bad_rows, NULL, 0);
    DENSE_DL_INVALID(&x, &w, &b, &t, 1);
    int64_t y_bad_cols[2] = { 2, 3 };
    t = dl_f32(yb, 2, y_bad_cols, NULL, 0);
    DENSE_DL_INVALID(&x, &w, &b, &t, 1);
    int64_t b_bad[1] = { 3 };
    t = dl_f32(bb, 1, b_bad, NULL, 0);
    DENSE_DL_INVALID(&x, &w, &t, &yy, 1);

    /* Zero dimensions (valid DLPack, but not a dense layer). */
    int64_t x_empty[2] = { 0, 3 };
    int64_t y_empty[2] = { 0, 4 };
    t = dl_f32(xb, 2, x_empty, NULL, 0);
    DLTensor ye = dl_f32(yb, 2, y_empty, NULL, 0);
    DENSE_DL_INVALID(&t, &w, &b, &ye, 1);

    /* Device and dtype of each operand. */
    t = w;
    t.device.device_type = kDLCUDA;
    DENSE_DL_INVALID(&x, &t, &b, &yy, 1);
    t = b;
    t.dtype.bits = 64;
    DENSE_DL_INVALID(&x, &w, &t, &yy, 1);
    t = y;
    t.dtype.code = kDLUInt;
    DENSE_DL_INVALID(&x, &w, &b, &t, 1);
    t = x;
    t.data = NULL;
    DENSE_DL_INVALID(&t, &w, &b, &yy, 1);
    t = x;
    t.byte_offset = 1;
    DENSE_DL_INVALID(&t, &w, &b, &yy, 1);

    /* y must give every element its own bytes... */
    int64_t y_zero_stride[2] = { 0, 1 };
    t = dl_f32(yb, 2, yshape, y_zero_stride, 0);
    DENSE_DL_INVALID(&x, &w, &b, &t, 1);
    int64_t y_overlapping_rows[2] = { 2, 1 };
    t = dl_f32(yb, 2, yshape, y_overlapping_rows, 0);
    DENSE_DL_INVALID(&x, &w, &b, &t, 1);
    /* ...and must not share bytes with an input. */
    t = dl_f32(wb, 2, yshape, NULL, 0);
    DENSE_DL_INVALID(&x, &w, &b, &t, 1);
    float xy[6 + 8] = { 0 };
    DLTensor x_in = dl_f32(xy, 2, xshape, NULL, 0);
    t = dl_f32(xy, 2, yshape, NULL, 5 * sizeof(float));
    DENSE_DL_INVALID(&x_in, &w, &b, &t, 1);
    float big_b[8 + 4] = { 0 };
    DLTensor b_in = dl_f32(big_b, 1, bshape, NULL, 8 * sizeof(float));
    t = dl_f32(big_b, 2, yshape, NULL, 4);  /* overlaps bias by one element */
    DENSE_DL_INVALID(&x, &w, &b_in, &t, 1);
    /* Adjacent (not overlapping) is fine. */
    t = dl_f32(big_b, 2, yshape, NULL, 0);
    CHECK_STATUS(nsc_predict_dense_dl(NULL, &x, &w, &b_in, &t, 1, NULL), NSC_OK);
    x_in = dl_f32(xy, 2, xshape, NULL, 0);
    t = dl_f32(xy, 2, yshape, NULL, 6 * sizeof(float));
    CHECK_STATUS(nsc_predict_dense_dl(NULL, &x_in, &w, &b, &t, 1, NULL), NSC_OK);
    /* A y with one row may have any row stride, 0 included. */
    int64_t y_one_row_shape[2] = { 1, 4 };
    int64_t y_one_row[2] = { 0, 1 };
    int64_t x_one_row_shape[2] = { 1, 3 };
    DLTensor x1 = dl_f32(xb, 2, x_one_row_shape, NULL, 0);
    t = dl_f32(yb, 2, y_one_row_shape, y_one_row, 0);
    CHECK_STATUS(nsc_predict_dense_dl(NULL, &x1, &w, &b, &t, 1, NULL), NSC_OK);
#undef DENSE_DL_INVALID

    /* The descriptors were only read. */
    CHECK_EQ(x.ndim, 2);
    CHECK(x.strides == NULL);
    CHECK(yy.data == (void *) yb);
}

struct dense_dl_job {
    nsc_context *ctx;
    DLTensor x;
    DLTensor w;
    DLTensor y;
    nsc_predict_stats stats;
    int status;
    int started;  /* atomic */
};

static void *dense_dl_thread(void *arg)
{
    struct dense_dl_job *j = arg;
    __atomic_store_n(&j->started, 1, __ATOMIC_SEQ_CST);
    j->status = nsc_predict_dense_dl(j->ctx, &j->x, &j->w, NULL, &j->y, INT64_MAX, &j->stats);
    return NULL;
}

TEST(dense_dl_stops_on_cancel_and_deadline)
{
    const int64_t n = 64;
    float *xb = t_random_floats(n * n);
    float *wb = t_random_floats(n * n);
    float *yb = alloc_floats(n * n);
    int64_t shape[2] = { n, n };
    int64_t transposed[2] = { 1, n };
    struct dense_dl_job j;
    memset(&j, 0, sizeof j);
    j.x = dl_f32(xb, 2, shape, NULL, 0);
    j.w = dl_f32(wb, 2, shape, transposed, 0);  /* the strided path */
    j.y = dl_f32(yb, 2, shape, NULL, 0);

    j.ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    const int64_t cancelled_at = t_cancel_while_running(j.ctx, dense_dl_thread, &j, &j.started, 20 * NS_PER_MS);
    t_check_dense_cancelled(j.status, &j.stats, cancelled_at);
    t_ctx_free(j.ctx);

    const int64_t deadline = t_now() + 30 * NS_PER_MS;
    j.ctx = t_ctx_new(deadline, NULL, 0);
    CHECK_STATUS(nsc_predict_dense_dl(j.ctx, &j.x, &j.w, NULL, &j.y, INT64_MAX, &j.stats), NSC_DEADLINE_EXCEEDED);
    CHECK(j.stats.end_ns >= deadline);
    CHECK(j.stats.end_ns - deadline < 5 * NS_PER_S);
    t_ctx_free(j.ctx);

    free(xb);
    free(wb);
    free(yb);
}
