/*
 * nsc_dlpack.c - DLPack descriptors: validation of a float32 CPU DLTensor
 * (shared with the dense predictor) and nsc_dl_sum_f32, the smallest consumer,
 * which lets tests prove that native code reads exactly the memory a
 * descriptor describes.
 *
 * A descriptor comes from another framework or from Java, so nothing in it is
 * trusted: shape and strides are copied once into a struct nsc__dl_f32 and
 * only that copy is used afterwards (a descriptor changed during the call
 * cannot make us index outside what we validated), and every product and sum
 * that leads to an address is overflow-checked.
 */
#include "nsc_internal.h"
#include "nsc_reference.h"

#define SUM_CHECK_ELEMENTS 4096

/* |v| as unsigned, also for INT64_MIN. */
static uint64_t magnitude(int64_t v)
{
    return v < 0 ? (uint64_t) 0 - (uint64_t) v : (uint64_t) v;
}

NSC__HIDDEN int nsc__dl_f32_view(const DLTensor *t, int ndim, struct nsc__dl_f32 *out)
{
    if (t == NULL || out == NULL) {
        return NSC_ERR_INVALID;
    }
    const int n = t->ndim;
    if (n < 0 || n > NSC_DL_MAX_NDIM || (ndim >= 0 && n != ndim)) {
        return NSC_ERR_INVALID;
    }
    if (t->device.device_type != kDLCPU) {
        return NSC_ERR_INVALID;
    }
    if (t->dtype.code != kDLFloat || t->dtype.bits != 32 || t->dtype.lanes != 1) {
        return NSC_ERR_INVALID;
    }
    if (n > 0 && t->shape == NULL) {
        return NSC_ERR_INVALID;
    }

    out->ndim = n;
    bool empty = false;
    for (int i = 0; i < n; i++) {
        const int64_t dim = t->shape[i];
        if (dim < 0) {
            return NSC_ERR_INVALID;
        }
        out->shape[i] = dim;
        empty = empty || dim == 0;
    }
    out->count = empty ? 0 : 1;
    for (int i = 0; i < n && !empty; i++) {
        if (__builtin_mul_overflow(out->count, out->shape[i], &out->count)) {
            return NSC_ERR_INVALID;
        }
    }

    /*
     * The stride of a dimension of size 1 is never multiplied by a non-zero
     * index, so it is stored as 0: any value is allowed there (NumPy and
     * PyTorch put arbitrary ones), and the loops never step by it. With no
     * element at all no stride is ever used.
     */
    int64_t compact = 1;
    for (int i = n - 1; i >= 0; i--) {
        int64_t stride = t->strides != NULL ? t->strides[i] : compact;
        out->strides[i] = out->shape[i] > 1 && !empty ? stride : 0;
        if (!empty) {
            compact *= out->shape[i];  /* a suffix product of the count: cannot overflow */
        }
    }

    uintptr_t base;
    if (__builtin_add_overflow((uintptr_t) t->data, t->byte_offset, &base)) {
        return NSC_ERR_INVALID;
    }
    out->base = (float *) base;
    if (out->count == 0) {
        out->lo = base;
        out->hi = base;
        return NSC_OK;
    }
    if (t->data == NULL || base % sizeof(float) != 0) {
        return NSC_ERR_INVALID;
    }

    /*
     * The lowest and highest byte offsets from base that an index reaches:
     * each dimension adds (dim - 1) * stride * 4 to one side. Both stay within
     * int64 (so element offsets computed in int64 by the loops cannot wrap),
     * and base + low .. base + high + 4 must not wrap the address space.
     */
    int64_t low = 0;
    int64_t high = 0;
    for (int i = 0; i < n; i++) {
        int64_t reach;
        if (__builtin_mul_overflow(out->shape[i] - 1, out->strides[i], &reach)
            || __builtin_mul_overflow(reach, (int64_t) sizeof(float), &reach)) {
            return NSC_ERR_INVALID;
        }
        if (__builtin_add_overflow(reach < 0 ? low : high, reach, reach < 0 ? &low : &high)) {
            return NSC_ERR_INVALID;
        }
    }
    uintptr_t lo;
    uintptr_t hi;
    if (magnitude(low) > base || __builtin_sub_overflow(base, (uintptr_t) magnitude(low), &lo)
        || __builtin_add_overflow(base, (uintptr_t) high, &hi)
        || __builtin_add_overflow(hi, (uintptr_t) sizeof(float), &hi)) {
        return NSC_ERR_INVALID;
    }
    out->lo = lo;
    out->hi = hi;
    return NSC_OK;
}

NSC_API int nsc_dl_sum_f32(nsc_context *ctx, const DLTensor *t, double *sum)
{
    if (sum == NULL) {
        return NSC_ERR_INVALID;
    }
    *sum = 0.0;
    struct nsc__dl_f32 v;
    int status = nsc__dl_f32_view(t, -1, &v);
    if (status != NSC_OK) {
        return status;
    }
    if (ctx != NULL && !nsc__ctx_live(ctx)) {
        return NSC_ERR_ABI;
    }
    if (v.count == 0) {
        return NSC_OK;
    }

    nsc_checker checker;
    nsc_checker_init(&checker, ctx, 0);
    /* A 0-d tensor is one element: treat it as a row of length 1. */
    const int last = v.ndim - 1;
    const int64_t row_len = v.ndim > 0 ? v.shape[last] : 1;
    const int64_t row_stride = v.ndim > 0 ? v.strides[last] : 0;
    int64_t index[NSC_DL_MAX_NDIM] = { 0 };
    int64_t row_offset = 0;  /* element offset of index[0 .. last-1], 0 */
    double acc = 0.0;
    int64_t until_check = 0;
    for (;;) {
        const float *row = v.base + row_offset;
        for (int64_t j = 0; j < row_len; j++) {
            if (until_check-- == 0) {
                until_check = SUM_CHECK_ELEMENTS - 1;
                status = nsc_checker_poll(&checker);
                if (status != NSC_OK) {
                    return status;
                }
            }
            acc += (double) row[j * row_stride];
        }
        /* Odometer over the outer dimensions, last-but-one fastest. */
        int d = last - 1;
        while (d >= 0) {
            row_offset += v.strides[d];
            if (++index[d] < v.shape[d]) {
                break;
            }
            row_offset -= v.shape[d] * v.strides[d];
            index[d] = 0;
            d--;
        }
        if (d < 0) {
            break;
        }
    }
    *sum = acc;
    return NSC_OK;
}
