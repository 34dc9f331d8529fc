/*
 * nsc_reference.h - the reference predictors and the benchmark no-ops of
 * libnativescope: predictors written against nativescope.h the way an author
 * would write one, which nativescope's tests, demo and benchmarks call. Not
 * part of the predictor contract (nativescope.h), which is all a predictor
 * needs; statuses, nsc_context and NSC_API are nativescope.h's.
 */
#ifndef NSC_REFERENCE_H
#define NSC_REFERENCE_H

#include "nativescope.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a reference predictor did; every field is written before it returns. */
typedef struct nsc_predict_stats {
    uint64_t work_units;       /* tiles computed (dense), bytes read (wait), spins (spin) */
    uint64_t checks;           /* context checks made */
    int64_t start_ns;          /* CLOCK_MONOTONIC at entry */
    int64_t end_ns;            /* CLOCK_MONOTONIC just before returning */
    int32_t status;            /* the returned status */
    uint32_t trace_id_len;     /* full length of the NSC_TRACE_ID_KEY value, 0 if absent */
    char trace_id[64];         /* that value as native code read it, truncated, NUL-terminated */
} nsc_predict_stats;

/* ---------------------------------------------------------------------------
 * Reference predictors
 * ------------------------------------------------------------------------- */

/**
 * Dense layer: y[rows x cols] = relu(x[rows x inner] * w[inner x cols] + bias[cols]),
 * all row-major float32, computed `repeat` times (repeat >= 1) to make work,
 * in 32x32 output tiles with one nsc_checker_poll per tile. ctx may be NULL
 * (never stops). bias may be NULL (zero). stats may be NULL.
 * @return NSC_OK with y complete, NSC_CANCELED / NSC_DEADLINE_EXCEEDED with y
 *         partial, NSC_ERR_INVALID.
 */
NSC_API int nsc_predict_dense(nsc_context *ctx, const float *x, const float *w, const float *bias, float *y,
                              int64_t rows, int64_t inner, int64_t cols, int64_t repeat,
                              nsc_predict_stats *stats);

/**
 * Blocking predictor: waits (nsc_wait_fd) for fd to become readable, then
 * reads up to 8 bytes from it (an eventfd counter or pipe bytes) into *value
 * (may be NULL). timeout_ns < 0: no own timeout.
 * @return NSC_OK, NSC_CANCELED, NSC_DEADLINE_EXCEEDED, NSC_TIMEOUT, NSC_ERR_*.
 */
NSC_API int nsc_predict_wait(nsc_context *ctx, int fd, int64_t timeout_ns, uint64_t *value,
                             nsc_predict_stats *stats);

/**
 * Spinning predictor: busy-loops for duration_ns (< 0: forever), calling
 * nsc_checker_poll on every iteration.
 * @return NSC_OK after duration_ns, NSC_CANCELED, NSC_DEADLINE_EXCEEDED, NSC_ERR_INVALID.
 */
NSC_API int nsc_predict_spin(nsc_context *ctx, int64_t duration_ns, nsc_predict_stats *stats);

/* ---------------------------------------------------------------------------
 * Reference predictors without a context parameter
 *
 * Written like code that cannot be handed an nsc_context * (a vendor API's
 * callback, a kernel deep below it): they find it with nsc_current(), and
 * return NSC_ERR_INVALID when there is none (no bridged call sets it here).
 * ------------------------------------------------------------------------- */

/**
 * nsc_predict_spin over the current context: busy-loops for duration_ns (< 0:
 * until stopped) with nsc_current_check on every iteration and
 * nsc_current_check_clock every NSC_DEFAULT_CHECK_INTERVAL-th. stats->trace_id
 * is read with nsc_value(nsc_current(), ...).
 * @return NSC_OK after duration_ns, NSC_CANCELED, NSC_DEADLINE_EXCEEDED,
 *         NSC_ERR_INVALID (no current context).
 */
NSC_API int nsc_predict_spin_current(int64_t duration_ns, nsc_predict_stats *stats);

/**
 * nsc_predict_wait over the current context: nsc_wait_fd(nsc_current(), fd,
 * ...), then one read of up to 8 bytes into *value (may be NULL).
 * @return as nsc_predict_wait; NSC_ERR_INVALID also without a current context.
 */
NSC_API int nsc_predict_wait_current(int fd, int64_t timeout_ns, uint64_t *value, nsc_predict_stats *stats);

/**
 * Registers a cancel hook on the current context and blocks (a futex wait, no
 * context check) until the hook has run or timeout_ns (>= 0) elapsed, then
 * deregisters it: native code that only a hook can stop.
 * @return the status the hook ran with (NSC_CANCELED, NSC_DEADLINE_EXCEEDED;
 *         also when it ran at once because the context was already done),
 *         NSC_TIMEOUT, NSC_ERR_INVALID (no current context, negative timeout),
 *         NSC_ERR_NOMEM, NSC_ERR_ABI.
 */
NSC_API int nsc_predict_hook_current(int64_t timeout_ns);

/* ---------------------------------------------------------------------------
 * DLPack
 *
 * The functions below take DLPack DLTensor descriptors and accept one exactly
 * when all of these hold (else they return NSC_ERR_INVALID and touch no data):
 *   - device.device_type is kDLCPU (device_id is not looked at);
 *   - dtype is float32: code kDLFloat, bits 32, lanes 1;
 *   - 0 <= ndim <= NSC_DL_MAX_NDIM (and the ndim the function asks for);
 *   - shape is not NULL when ndim > 0, and no dimension is negative;
 *   - strides is NULL (compact row-major) or gives any element strides:
 *     negative, zero (broadcast inputs) and transposed layouts are all read
 *     with a general strided loop;
 *   - element [0, ...] is at (char *) data + byte_offset, 4-byte aligned, and
 *     the bytes every index can reach fit the address space without wrapping
 *     (no int64 overflow of dim * stride * 4 either); data may be NULL only
 *     when the tensor has no element.
 * Descriptors and data are only read during the call (y's data is written).
 * ------------------------------------------------------------------------- */

/**
 * Dense layer over DLPack descriptors: y = relu(x * w + bias), computed like
 * nsc_predict_dense (`repeat` times, 32x32 output tiles, one nsc_checker_poll
 * per tile) but with each operand's own strides. x is [rows, inner], w is
 * [inner, cols], bias (may be NULL: zero) is [cols], y is [rows, cols]; every
 * dimension must be positive. y must not overlap itself (its strides must
 * give each element its own bytes) and its byte range must not intersect
 * that of x, w or bias. ctx and stats may be NULL.
 * @return NSC_OK with y complete, NSC_CANCELED / NSC_DEADLINE_EXCEEDED with y
 *         partial, NSC_ERR_INVALID for a descriptor the rules above reject,
 *         NSC_ERR_ABI for a ctx of another ABI version.
 */
NSC_API int nsc_predict_dense_dl(nsc_context *ctx, const DLTensor *x, const DLTensor *w, const DLTensor *bias,
                                 DLTensor *y, int64_t repeat, nsc_predict_stats *stats);

/**
 * Sums the elements of a float32 DLTensor of any ndim in row-major index
 * order, each converted to double and added to a double accumulator (so a
 * Java loop doing the same gets the identical double). A tensor with no
 * element sums to 0. Polls ctx (may be NULL) every 4096 elements.
 * @return NSC_OK with *sum set; NSC_CANCELED / NSC_DEADLINE_EXCEEDED,
 *         NSC_ERR_INVALID (also for a NULL sum), NSC_ERR_ABI with *sum = 0.
 */
NSC_API int nsc_dl_sum_f32(nsc_context *ctx, const DLTensor *t, double *sum);

/* ---------------------------------------------------------------------------
 * Benchmark baselines
 * ------------------------------------------------------------------------- */

/** Does nothing: the baseline of the call-overhead benchmarks. */
NSC_API void nsc_noop(void);

/** @return nsc_check(ctx): the cheapest call that takes a context. */
NSC_API int nsc_noop_ctx(nsc_context *ctx);

/**
 * Polls ctx with nsc_check up to n times, stopping at the first status that
 * is not NSC_OK: a tight loop over a pointer that was passed in.
 * @return the polls that returned NSC_OK.
 */
NSC_API int64_t nsc_bench_poll_ctx(const nsc_context *ctx, int64_t n);

/**
 * The same loop with nsc_current_check() (a call into the shim and a
 * thread-local load per poll): the cost of not having the pointer.
 * @return the polls that returned NSC_OK.
 */
NSC_API int64_t nsc_bench_poll_current(int64_t n);

#ifdef __cplusplus
}
#endif

#endif /* NSC_REFERENCE_H */
