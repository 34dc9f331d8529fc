/*
 * conv2d.c - a compute-bound predictor over DLPack tensors that stops within
 * one output row of a cancel, a deadline or an interrupt of the Java caller.
 */
#include "user_predictor.h"

#include <stdbool.h>
#include <stdint.h>

/* USER_PREDICTOR_NO_CHECKS builds the benchmark baseline: the same kernel with the context check
 * compiled out, so that the check's cost can be measured against nothing at all. */
#ifdef USER_PREDICTOR_NO_CHECKS
#define USER_POLL(checker) ((void) (checker), NSC_OK)
#else
#define USER_POLL(checker) nsc_checker_poll(checker)
#endif

/* A validated 2-d float32 view: element (i, j) is at base[i * s0 + j * s1]. */
typedef struct view2d {
    float *base;
    int64_t rows;
    int64_t cols;
    int64_t s0;
    int64_t s1;
} view2d;

static bool is_cpu_f32(const DLTensor *t)
{
    return t->device.device_type == kDLCPU && t->dtype.code == kDLFloat && t->dtype.bits == 32
           && t->dtype.lanes == 1;
}

/* Accepts a 2-d CPU float32 tensor with positive dimensions and 4-byte aligned elements. */
static bool view_of(const DLTensor *t, view2d *v)
{
    if (t == NULL || !is_cpu_f32(t) || t->ndim != 2 || t->shape == NULL || t->data == NULL) {
        return false;
    }
    if (t->shape[0] <= 0 || t->shape[1] <= 0 || t->byte_offset % sizeof(float) != 0) {
        return false;
    }
    v->base = (float *) ((char *) t->data + t->byte_offset);
    if ((uintptr_t) v->base % sizeof(float) != 0) {
        return false;
    }
    v->rows = t->shape[0];
    v->cols = t->shape[1];
    v->s0 = t->strides != NULL ? t->strides[0] : t->shape[1];
    v->s1 = t->strides != NULL ? t->strides[1] : 1;
    return true;
}

/* The lowest and one past the highest byte address the view's elements reach. */
static void byte_range(const view2d *v, uintptr_t *lo, uintptr_t *hi)
{
    int64_t min = 0;
    int64_t max = 0;
    int64_t span0 = (v->rows - 1) * v->s0;
    int64_t span1 = (v->cols - 1) * v->s1;
    min += span0 < 0 ? span0 : 0;
    max += span0 > 0 ? span0 : 0;
    min += span1 < 0 ? span1 : 0;
    max += span1 > 0 ? span1 : 0;
    *lo = (uintptr_t) (v->base + min);
    *hi = (uintptr_t) (v->base + max + 1);
}

static bool disjoint(const view2d *a, const view2d *b)
{
    uintptr_t alo, ahi, blo, bhi;
    byte_range(a, &alo, &ahi);
    byte_range(b, &blo, &bhi);
    return ahi <= blo || bhi <= alo;
}

/* Dimensions up to 2^24 keep every index product far from int64 overflow. */
static bool small_enough(const view2d *v)
{
    const int64_t limit = INT64_C(1) << 24;
    return v->rows <= limit && v->cols <= limit && v->s0 > -limit && v->s0 < limit && v->s1 > -limit
           && v->s1 < limit;
}

int user_conv2d(nsc_context *ctx, const DLTensor *in, const DLTensor *kernel, DLTensor *out, int64_t repeat,
                int64_t *rows_done)
{
    if (rows_done != NULL) {
        *rows_done = 0;
    }
    view2d x, k, y;
    if (!view_of(in, &x) || !view_of(kernel, &k) || !view_of(out, &y) || repeat < 1) {
        return NSC_ERR_INVALID;
    }
    if (!small_enough(&x) || !small_enough(&k) || !small_enough(&y)) {
        return NSC_ERR_INVALID;
    }
    if (k.rows > x.rows || k.cols > x.cols || y.rows != x.rows - k.rows + 1 || y.cols != x.cols - k.cols + 1) {
        return NSC_ERR_INVALID;
    }
    if (!disjoint(&y, &x) || !disjoint(&y, &k)) {
        return NSC_ERR_INVALID;
    }

    /* One poll per output row: a row is KH * KW * cols multiply-adds, so the
     * poll (one load, a clock read every 64th time) costs nothing measurable,
     * and a cancel is seen within one row. */
    nsc_checker checker;
    nsc_checker_init(&checker, ctx, 0);
    int64_t done = 0;
    int status = NSC_OK;
    for (int64_t r = 0; r < repeat && status == NSC_OK; r++) {
        for (int64_t i = 0; i < y.rows; i++) {
            status = USER_POLL(&checker);
            if (status != NSC_OK) {
                break;
            }
            for (int64_t j = 0; j < y.cols; j++) {
                float acc = 0.0f;
                for (int64_t a = 0; a < k.rows; a++) {
                    const float *xrow = x.base + (i + a) * x.s0 + j * x.s1;
                    const float *krow = k.base + a * k.s0;
                    for (int64_t b = 0; b < k.cols; b++) {
                        acc += xrow[b * x.s1] * krow[b * k.s1];
                    }
                }
                y.base[i * y.s0 + j * y.s1] = acc;
            }
            done++;
        }
    }
    if (rows_done != NULL) {
        *rows_done = done;
    }
    return status;
}
