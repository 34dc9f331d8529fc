/*
 * nsc_predictors.c - reference predictors: what a predictor author writes,
 * used by the tests, the demo and the benchmarks.
 *
 *   dense: compute-bound, one nsc_checker_poll per 32x32 output tile, over
 *          raw row-major pointers or DLPack descriptors with any strides;
 *   wait:  blocking, nsc_wait_fd on the caller's fd;
 *   spin:  a busy loop polling on every iteration (cancel latency benchmark);
 *   spin / wait / hook _current: the same without a context parameter,
 *          through nsc_current();
 *   noop / noop_ctx / bench_poll_*: call-overhead baselines.
 */
#include "nsc_internal.h"
#include "nsc_reference.h"

#include <poll.h>
#include <string.h>

#define TILE 32
#define DENSE_CLOCK_INTERVAL 4

/* ---------------------------------------------------------------------------
 * Stats, shared by every predictor: begin at entry, end on every return path
 * (also for invalid arguments, since the header promises every field is
 * written).
 * ------------------------------------------------------------------------- */

static void stats_begin(nsc_predict_stats *stats, const nsc_context *ctx)
{
    if (stats == NULL) {
        return;
    }
    memset(stats, 0, sizeof *stats);
    stats->start_ns = nsc__now();
    if (ctx == NULL) {
        return;
    }
    /*
     * Read through nsc_value like any predictor would, so the echo proves the
     * Java side's key/value layout (and its shadowing order) reaches native code.
     */
    const char *value = NULL;
    size_t len = 0;
    if (nsc_value(ctx, NSC_TRACE_ID_KEY, sizeof NSC_TRACE_ID_KEY - 1, &value, &len) != NSC_OK
        || (value == NULL && len > 0)) {
        return;
    }
    const size_t copy = len < sizeof stats->trace_id - 1 ? len : sizeof stats->trace_id - 1;
    if (copy > 0) {
        memcpy(stats->trace_id, value, copy);
    }
    stats->trace_id[copy] = '\0';
    stats->trace_id_len = len > UINT32_MAX ? UINT32_MAX : (uint32_t) len;
}

static int stats_end(nsc_predict_stats *stats, int status, uint64_t work_units, uint64_t checks)
{
    if (stats != NULL) {
        stats->work_units = work_units;
        stats->checks = checks;
        stats->status = status;
        stats->end_ns = nsc__now();
    }
    return status;
}

/* ---------------------------------------------------------------------------
 * Dense
 * ------------------------------------------------------------------------- */

/*
 * The operands of one dense run: element pointers and element strides, so the
 * raw-pointer entry point (compact row-major) and the DLPack one (any
 * strides) share one kernel. x[i, k] is x[i * x_si + k * x_sk], and so on.
 */
struct dense_operands {
    const float *x;
    int64_t x_si, x_sk;
    const float *w;
    int64_t w_sk, w_sj;
    const float *bias;   /* NULL: zero */
    int64_t bias_sj;
    float *y;
    int64_t y_si, y_sj;
    int64_t rows, inner, cols;
};

/*
 * One output row of one tile: acc[0..nj) = bias + x_row . w[:, j0..j0+nj).
 * i-k-j order: the innermost loop walks a stretch of a w row and of acc with a
 * scalar x value; with w_sj == 1 (a compact w row) gcc vectorises it at -O2
 * (SSE on baseline x86-64). always_inline so the calls with constant strides
 * and nj == TILE are specialised to a unit-stride constant trip count and acc
 * lives in registers; other strides take the same loop, scalar.
 */
static inline __attribute__((always_inline)) void dense_row(const float *restrict x_row, int64_t x_sk,
                                                            const float *restrict w_col0, int64_t w_sk,
                                                            int64_t w_sj,
                                                            const float *restrict bias_col0, int64_t bias_sj,
                                                            float *restrict acc, int64_t inner, int64_t nj)
{
    for (int64_t j = 0; j < nj; j++) {
        acc[j] = bias_col0 != NULL ? bias_col0[j * bias_sj] : 0.0f;
    }
    for (int64_t k = 0; k < inner; k++) {
        const float xv = x_row[k * x_sk];
        const float *restrict w_row = w_col0 + k * w_sk;
        for (int64_t j = 0; j < nj; j++) {
            acc[j] += xv * w_row[j * w_sj];
        }
    }
}

static void dense_tile(const struct dense_operands *op, int64_t i0, int64_t i1, int64_t j0, int64_t j1)
{
    float acc[TILE] __attribute__((aligned(64)));
    const int64_t nj = j1 - j0;
    const int64_t inner = op->inner;
    const float *w_col0 = op->w + j0 * op->w_sj;
    const float *bias_col0 = op->bias != NULL ? op->bias + j0 * op->bias_sj : NULL;
    /* A stride along a dimension of size 1 only ever multiplies index 0: treat it as 1. */
    const bool unit = (op->x_sk == 1 || inner == 1) && (op->w_sj == 1 || op->cols == 1)
                      && (op->bias == NULL || op->bias_sj == 1 || op->cols == 1);
    for (int64_t i = i0; i < i1; i++) {
        const float *x_row = op->x + i * op->x_si;
        if (unit && nj == TILE) {
            dense_row(x_row, 1, w_col0, op->w_sk, 1, bias_col0, 1, acc, inner, TILE);
        } else if (unit) {
            dense_row(x_row, 1, w_col0, op->w_sk, 1, bias_col0, 1, acc, inner, nj);
        } else {
            dense_row(x_row, op->x_sk, w_col0, op->w_sk, op->w_sj, bias_col0, op->bias_sj, acc, inner, nj);
        }
        float *restrict y_row = op->y + i * op->y_si + j0 * op->y_sj;
        const int64_t y_sj = op->y_sj;
        for (int64_t j = 0; j < nj; j++) {
            /* `>` rather than fmaxf: NaN maps to 0, and it compiles to maxps. */
            y_row[j * y_sj] = acc[j] > 0.0f ? acc[j] : 0.0f;
        }
    }
}

/* The tile loop shared by both entry points, after their argument checks. */
static int dense_run(nsc_context *ctx, const struct dense_operands *op, int64_t repeat, nsc_predict_stats *stats)
{
    if (ctx != NULL && !nsc__ctx_live(ctx)) {
        return stats_end(stats, NSC_ERR_ABI, 0, 0);
    }

    /* A 32x32 tile takes microseconds: reading the clock every 4 tiles (tens of ns) bounds how
     * late a deadline is noticed to a few tens of microseconds at no measurable cost, where the
     * default interval (64) would let a deadline pass by a millisecond. */
    nsc_checker checker;
    nsc_checker_init(&checker, ctx, DENSE_CLOCK_INTERVAL);
    uint64_t tiles = 0;
    uint64_t checks = 0;
    const int64_t rows = op->rows;
    const int64_t cols = op->cols;
    for (int64_t r = 0; r < repeat; r++) {
        for (int64_t i0 = 0; i0 < rows; i0 += TILE) {
            const int64_t i1 = rows - i0 < TILE ? rows : i0 + TILE;
            for (int64_t j0 = 0; j0 < cols; j0 += TILE) {
                const int64_t j1 = cols - j0 < TILE ? cols : j0 + TILE;
                /* Poll before the tile, so a context done on entry computes nothing. */
                if (ctx != NULL) {
                    checks++;
                    int status = nsc_checker_poll(&checker);
                    if (status != NSC_OK) {
                        return stats_end(stats, status, tiles, checks);
                    }
                }
                dense_tile(op, i0, i1, j0, j1);
                tiles++;
            }
        }
    }
    return stats_end(stats, NSC_OK, tiles, checks);
}

/* true if a * b elements of float fit in both int64_t indices and size_t bytes. */
static bool dims_fit(int64_t a, int64_t b)
{
    int64_t elems;
    int64_t bytes;
    return !__builtin_mul_overflow(a, b, &elems)
           && !__builtin_mul_overflow(elems, (int64_t) sizeof(float), &bytes)
           && (uint64_t) bytes <= SIZE_MAX;
}

NSC_API int nsc_predict_dense(nsc_context *ctx, const float *x, const float *w, const float *bias, float *y,
                              int64_t rows, int64_t inner, int64_t cols, int64_t repeat,
                              nsc_predict_stats *stats)
{
    stats_begin(stats, ctx);
    if (x == NULL || w == NULL || y == NULL || rows <= 0 || inner <= 0 || cols <= 0 || repeat < 1
        || !dims_fit(rows, inner) || !dims_fit(inner, cols) || !dims_fit(rows, cols)) {
        return stats_end(stats, NSC_ERR_INVALID, 0, 0);
    }
    const struct dense_operands op = {
        .x = x, .x_si = inner, .x_sk = 1,
        .w = w, .w_sk = cols, .w_sj = 1,
        .bias = bias, .bias_sj = 1,
        .y = y, .y_si = cols, .y_sj = 1,
        .rows = rows, .inner = inner, .cols = cols,
    };
    return dense_run(ctx, &op, repeat, stats);
}

/* Greatest common divisor of two positive values. */
static int64_t gcd_positive(int64_t a, int64_t b)
{
    while (b != 0) {
        const int64_t r = a % b;
        a = b;
        b = r;
    }
    return a;
}

/*
 * true when no two indices of the 2-d view share an element, which is exactly
 * what the header promises to accept (interleaved layouts such as strides
 * (3, 2) for shape (2, 2) included). Strides of dimensions of size 1 are
 * already 0 in the view; |stride| fits in int64 because the validated reach
 * does.
 */
static bool dl_distinct_elements(const struct nsc__dl_f32 *v)
{
    const int64_t na = v->shape[0];
    const int64_t nb = v->shape[1];
    const int64_t a = v->strides[0] < 0 ? -v->strides[0] : v->strides[0];
    const int64_t b = v->strides[1] < 0 ? -v->strides[1] : v->strides[1];
    if (na <= 1 || nb <= 1) {
        /* One dimension: its indices are distinct unless it broadcasts. */
        return (na <= 1 || a != 0) && (nb <= 1 || b != 0);
    }
    if (a == 0 || b == 0) {
        return false;
    }
    /*
     * Indices (i, j) and (i + di, j - dj) meet when di * a == dj * b (signs of
     * the strides only flip di or dj). Every solution is a multiple of the
     * smallest, di = b / g, dj = a / g with g = gcd(a, b), so two indices meet
     * exactly when that smallest step fits inside the shape.
     */
    const int64_t g = gcd_positive(a, b);
    return b / g >= na || a / g >= nb;
}

static bool dl_ranges_meet(const struct nsc__dl_f32 *p, const struct nsc__dl_f32 *q)
{
    return p->lo < q->hi && q->lo < p->hi;
}

NSC_API int nsc_predict_dense_dl(nsc_context *ctx, const DLTensor *x, const DLTensor *w, const DLTensor *bias,
                                 DLTensor *y, int64_t repeat, nsc_predict_stats *stats)
{
    stats_begin(stats, ctx);
    /* Four views of about 1 KiB each: fine on any thread's stack. */
    struct nsc__dl_f32 xv;
    struct nsc__dl_f32 wv;
    struct nsc__dl_f32 bv;
    struct nsc__dl_f32 yv;
    if (repeat < 1 || nsc__dl_f32_view(x, 2, &xv) != NSC_OK || nsc__dl_f32_view(w, 2, &wv) != NSC_OK
        || nsc__dl_f32_view(y, 2, &yv) != NSC_OK || (bias != NULL && nsc__dl_f32_view(bias, 1, &bv) != NSC_OK)) {
        return stats_end(stats, NSC_ERR_INVALID, 0, 0);
    }
    const int64_t rows = xv.shape[0];
    const int64_t inner = xv.shape[1];
    const int64_t cols = wv.shape[1];
    if (rows <= 0 || inner <= 0 || cols <= 0 || wv.shape[0] != inner || yv.shape[0] != rows
        || yv.shape[1] != cols || (bias != NULL && bv.shape[0] != cols)) {
        return stats_end(stats, NSC_ERR_INVALID, 0, 0);
    }
    if (!dl_distinct_elements(&yv) || dl_ranges_meet(&yv, &xv) || dl_ranges_meet(&yv, &wv)
        || (bias != NULL && dl_ranges_meet(&yv, &bv))) {
        return stats_end(stats, NSC_ERR_INVALID, 0, 0);
    }
    const struct dense_operands op = {
        .x = xv.base, .x_si = xv.strides[0], .x_sk = xv.strides[1],
        .w = wv.base, .w_sk = wv.strides[0], .w_sj = wv.strides[1],
        .bias = bias != NULL ? bv.base : NULL, .bias_sj = bias != NULL ? bv.strides[0] : 0,
        .y = yv.base, .y_si = yv.strides[0], .y_sj = yv.strides[1],
        .rows = rows, .inner = inner, .cols = cols,
    };
    return dense_run(ctx, &op, repeat, stats);
}

/* ---------------------------------------------------------------------------
 * Wait
 * ------------------------------------------------------------------------- */

NSC_API int nsc_predict_wait(nsc_context *ctx, int fd, int64_t timeout_ns, uint64_t *value,
                             nsc_predict_stats *stats)
{
    stats_begin(stats, ctx);
    if (value != NULL) {
        *value = 0;
    }
    if (ctx == NULL || fd < 0) {
        return stats_end(stats, NSC_ERR_INVALID, 0, 0);
    }

    /* The own timeout covers the whole call, including re-waits after EAGAIN. */
    const int64_t until = timeout_ns < 0 ? INT64_MAX : nsc__add_sat(nsc__now(), timeout_ns);
    uint64_t checks = 0;
    for (;;) {
        int64_t remaining = -1;
        if (until != INT64_MAX) {
            const int64_t now = nsc__now();
            remaining = until > now ? until - now : 0;
        }
        checks++;
        int status = nsc_wait_fd(ctx, fd, POLLIN, remaining, NULL);
        if (status != NSC_OK) {
            return stats_end(stats, status, 0, checks);
        }

        unsigned char buf[8];
        ssize_t n = read(fd, buf, sizeof buf);
        if (n >= 0) {
            /*
             * Little-endian assembly: for an eventfd (8 bytes, host order on
             * x86-64) it is the counter; for a pipe it gives the bytes read in
             * order, low byte first. n == 0 is end of file: OK with nothing read.
             */
            uint64_t v = 0;
            for (ssize_t i = 0; i < n; i++) {
                v |= (uint64_t) buf[i] << (8 * i);
            }
            if (value != NULL) {
                *value = v;
            }
            return stats_end(stats, NSC_OK, (uint64_t) n, checks);
        }
        /*
         * Readiness can be stolen (another reader of the same fd got there
         * first): a non-blocking fd then says EAGAIN, and we wait again under
         * the same context and own timeout.
         */
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            return stats_end(stats, NSC_ERR_SYSTEM, 0, checks);
        }
    }
}

/* ---------------------------------------------------------------------------
 * Spin
 * ------------------------------------------------------------------------- */

NSC_API int nsc_predict_spin(nsc_context *ctx, int64_t duration_ns, nsc_predict_stats *stats)
{
    stats_begin(stats, ctx);
    /* Without a context nothing could ever stop an endless spin. */
    if (ctx == NULL && duration_ns < 0) {
        return stats_end(stats, NSC_ERR_INVALID, 0, 0);
    }
    if (ctx != NULL && !nsc__ctx_live(ctx)) {
        return stats_end(stats, NSC_ERR_ABI, 0, 0);
    }

    const int64_t until = duration_ns < 0 ? INT64_MAX : nsc__add_sat(nsc__now(), duration_ns);
    nsc_checker checker;
    nsc_checker_init(&checker, ctx, 0);
    uint64_t spins = 0;
    uint64_t checks = 0;
    for (;;) {
        if (ctx != NULL) {
            checks++;
            int status = nsc_checker_poll(&checker);
            if (status != NSC_OK) {
                return stats_end(stats, status, spins, checks);
            }
        }
        /*
         * The own duration is checked on our clock every 32 spins (about a
         * microsecond with `pause` at ~25 ns; a clock read costs ~20 ns, so
         * the overshoot stays near 1 us at ~3% extra cost), independent of the
         * checker's interval, so it also ends without a context. Spin 0 checks
         * too, so duration 0 returns at once.
         */
        if ((spins & 31) == 0 && until != INT64_MAX && nsc__now() >= until) {
            return stats_end(stats, NSC_OK, spins, checks);
        }
        __builtin_ia32_pause();
        spins++;
    }
}

/* ---------------------------------------------------------------------------
 * Without a context parameter: through nsc_current()
 * ------------------------------------------------------------------------- */

NSC_API int nsc_predict_spin_current(int64_t duration_ns, nsc_predict_stats *stats)
{
    nsc_context *ctx = nsc_current();
    stats_begin(stats, ctx);
    if (ctx == NULL) {
        return stats_end(stats, NSC_ERR_INVALID, 0, 0);
    }
    const int64_t until = duration_ns < 0 ? INT64_MAX : nsc__add_sat(nsc__now(), duration_ns);
    uint64_t spins = 0;
    for (;;) {
        /* Every poll goes through the thread-local, as code without the pointer does. */
        int status = (spins + 1) % NSC_DEFAULT_CHECK_INTERVAL == 0 ? nsc_current_check_clock() : nsc_current_check();
        if (status != NSC_OK) {
            return stats_end(stats, status, spins, spins + 1);
        }
        if ((spins & 31) == 0 && until != INT64_MAX && nsc__now() >= until) {
            return stats_end(stats, NSC_OK, spins, spins + 1);
        }
        __builtin_ia32_pause();
        spins++;
    }
}

NSC_API int nsc_predict_wait_current(int fd, int64_t timeout_ns, uint64_t *value, nsc_predict_stats *stats)
{
    nsc_context *ctx = nsc_current();
    if (ctx == NULL) {
        stats_begin(stats, NULL);
        return stats_end(stats, NSC_ERR_INVALID, 0, 0);
    }
    return nsc_predict_wait(ctx, fd, timeout_ns, value, stats);
}

/* The hook of nsc_predict_hook_current: records the status, then wakes the futex waiter. */
static void hook_current_fired(void *arg, int status)
{
    uint32_t *word = arg;
    __atomic_store_n(word, (uint32_t) status, __ATOMIC_RELEASE);
    nsc__futex_wake(word, 1);
}

NSC_API int nsc_predict_hook_current(int64_t timeout_ns)
{
    nsc_context *ctx = nsc_current();
    if (ctx == NULL || timeout_ns < 0) {
        return NSC_ERR_INVALID;
    }
    uint32_t fired = 0; /* 0 until the hook ran, then its status (never 0: NSC_OK is not a cancel status) */
    nsc_hook_t *hook = NULL;
    int status = nsc_hook_register(ctx, hook_current_fired, &fired, &hook);
    if (status != NSC_OK) {
        return status; /* ran at once (already done), or an error */
    }
    const int64_t until = nsc__add_sat(nsc__now(), timeout_ns);
    for (;;) {
        uint32_t seen = __atomic_load_n(&fired, __ATOMIC_ACQUIRE);
        if (seen != 0) {
            status = (int) seen;
            break;
        }
        const int64_t now = nsc__now();
        if (now >= until) {
            status = NSC_TIMEOUT;
            break;
        }
        struct timespec left = nsc__ns_to_timespec(until - now);
        /* EAGAIN (the hook stored first), EINTR and timeouts all loop back to the load. */
        nsc__futex_wait(&fired, 0, &left);
    }
    /* Waits for a hook still running in the canceller, so `fired` may go out of scope after it. */
    nsc_hook_deregister(hook);
    return status;
}

/* ---------------------------------------------------------------------------
 * Baselines
 * ------------------------------------------------------------------------- */

NSC_API void nsc_noop(void)
{
}

NSC_API int nsc_noop_ctx(nsc_context *ctx)
{
    if (ctx == NULL) {
        return NSC_ERR_INVALID;
    }
    return nsc_check(ctx);
}

NSC_API int64_t nsc_bench_poll_ctx(const nsc_context *ctx, int64_t n)
{
    int64_t ok = 0;
    while (ok < n && nsc_check(ctx) == NSC_OK) {
        ok++;
    }
    return ok;
}

NSC_API int64_t nsc_bench_poll_current(int64_t n)
{
    int64_t ok = 0;
    /* nsc_current_check is an exported symbol of another file: a call per poll, as from a user's library. */
    while (ok < n && nsc_current_check() == NSC_OK) {
        ok++;
    }
    return ok;
}
