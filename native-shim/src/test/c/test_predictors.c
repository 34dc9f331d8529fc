/*
 * test_predictors.c - the reference predictors: dense output against a naive
 * reference, cancellation and deadline of each, stats (trace id echo).
 */
#include "nsc_test.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void dense_reference(const float *x, const float *w, const float *bias, float *y,
                            int64_t rows, int64_t inner, int64_t cols)
{
    for (int64_t i = 0; i < rows; i++) {
        for (int64_t j = 0; j < cols; j++) {
            double acc = bias != NULL ? bias[j] : 0.0;
            for (int64_t k = 0; k < inner; k++) {
                acc += (double) x[i * inner + k] * w[k * cols + j];
            }
            y[i * cols + j] = acc > 0.0 ? (float) acc : 0.0f;
        }
    }
}

static int64_t tiles_of(int64_t rows, int64_t cols)
{
    return ((rows + 31) / 32) * ((cols + 31) / 32);
}

TEST(dense_matches_reference)
{
    static const nsc_kv values[] = { { "trace-id", "req-42", 8, 6 } };
    const int64_t interesting[] = { 1, 2, 31, 32, 33, 63, 64, 65, 100 };
    const int n_interesting = sizeof interesting / sizeof interesting[0];
    const int configs = ITERS(60) + 10;
    for (int c = 0; c < configs; c++) {
        const int64_t rows = interesting[t_rand_below(n_interesting)];
        const int64_t inner = t_rand_below(2) ? interesting[t_rand_below(n_interesting)] : 1 + (int64_t) t_rand_below(130);
        const int64_t cols = t_rand_below(2) ? interesting[t_rand_below(n_interesting)] : 1 + (int64_t) t_rand_below(130);
        const int64_t repeat = 1 + (int64_t) t_rand_below(3);
        const bool with_bias = t_rand_below(2);
        const bool with_ctx = t_rand_below(2);

        float *x = t_random_floats(rows * inner);
        float *w = t_random_floats(inner * cols);
        float *bias = with_bias ? t_random_floats(cols) : NULL;
        float *y = malloc((size_t) (rows * cols) * sizeof *y);
        float *ref = malloc((size_t) (rows * cols) * sizeof *ref);
        CHECK(y != NULL && ref != NULL);
        for (int64_t i = 0; i < rows * cols; i++) {
            y[i] = NAN;  /* every element must be written */
        }
        dense_reference(x, w, bias, ref, rows, inner, cols);

        nsc_context *ctx = with_ctx ? t_ctx_new(NSC_NO_DEADLINE, values, 1) : NULL;
        nsc_predict_stats stats;
        memset(&stats, 0xcd, sizeof stats);
        CHECK_STATUS(nsc_predict_dense(ctx, x, w, bias, y, rows, inner, cols, repeat, &stats), NSC_OK);

        int bad = 0;
        for (int64_t i = 0; i < rows * cols; i++) {
            /* Float accumulation against a double reference: relative plus absolute slack. */
            float tol = 1e-4f * (float) inner * (1.0f + fabsf(ref[i]));
            if (!(fabsf(y[i] - ref[i]) <= tol)) {
                bad++;
            }
        }
        if (bad > 0) {
            nsc_test_fail(__FILE__, __LINE__, "dense %lldx%lldx%lld bias=%d ctx=%d repeat=%lld: %d wrong elements",
                          (long long) rows, (long long) inner, (long long) cols, with_bias, with_ctx,
                          (long long) repeat, bad);
        }
        CHECK_STATUS(stats.status, NSC_OK);
        CHECK_EQ(stats.work_units, repeat * tiles_of(rows, cols));
        CHECK_EQ(stats.checks, with_ctx ? repeat * tiles_of(rows, cols) : 0);
        CHECK(stats.start_ns > 0 && stats.start_ns <= stats.end_ns);
        if (with_ctx) {
            CHECK_EQ(stats.trace_id_len, 6);
            CHECK(strcmp(stats.trace_id, "req-42") == 0);
            t_ctx_free(ctx);
        } else {
            CHECK_EQ(stats.trace_id_len, 0);
            CHECK_EQ(stats.trace_id[0], '\0');
        }
        free(x);
        free(w);
        free(bias);
        free(y);
        free(ref);
    }
    /* stats may be NULL. */
    float x1 = 2.0f;
    float w1 = -3.0f;
    float b1 = 7.0f;
    float y1 = 0.0f;
    CHECK_STATUS(nsc_predict_dense(NULL, &x1, &w1, &b1, &y1, 1, 1, 1, 1, NULL), NSC_OK);
    CHECK(y1 == 1.0f);
    b1 = 5.0f;
    CHECK_STATUS(nsc_predict_dense(NULL, &x1, &w1, &b1, &y1, 1, 1, 1, 1, NULL), NSC_OK);
    CHECK(y1 == 0.0f);  /* relu */
}

TEST(dense_rejects_bad_arguments)
{
    float a[4] = { 0 };
    nsc_predict_stats stats;
    const int64_t big = INT64_MAX / 2;
#define DENSE_INVALID(...)                                                     \
    do {                                                                       \
        memset(&stats, 0xcd, sizeof stats);                                    \
        CHECK_STATUS(nsc_predict_dense(__VA_ARGS__, &stats), NSC_ERR_INVALID); \
        CHECK_STATUS(stats.status, NSC_ERR_INVALID);                           \
        CHECK_EQ(stats.work_units, 0);                                         \
        CHECK(stats.start_ns <= stats.end_ns);                                 \
    } while (0)
    DENSE_INVALID(NULL, NULL, a, NULL, a, 1, 1, 1, 1);
    DENSE_INVALID(NULL, a, NULL, NULL, a, 1, 1, 1, 1);
    DENSE_INVALID(NULL, a, a, NULL, NULL, 1, 1, 1, 1);
    DENSE_INVALID(NULL, a, a, NULL, a, 0, 1, 1, 1);
    DENSE_INVALID(NULL, a, a, NULL, a, 1, -1, 1, 1);
    DENSE_INVALID(NULL, a, a, NULL, a, 1, 1, 0, 1);
    DENSE_INVALID(NULL, a, a, NULL, a, 1, 1, 1, 0);
    DENSE_INVALID(NULL, a, a, NULL, a, big, 4, 1, 1);
    DENSE_INVALID(NULL, a, a, NULL, a, 1, big, 4, 1);
    DENSE_INVALID(NULL, a, a, NULL, a, INT64_MAX / 4, 1, 2, 1);
#undef DENSE_INVALID
}

struct dense_job {
    nsc_context *ctx;
    float *x;
    float *w;
    float *y;
    int64_t n;
    nsc_predict_stats stats;
    int status;
    int started;  /* atomic */
};

static void *dense_thread(void *arg)
{
    struct dense_job *j = arg;
    __atomic_store_n(&j->started, 1, __ATOMIC_SEQ_CST);
    j->status = nsc_predict_dense(j->ctx, j->x, j->w, NULL, j->y, j->n, j->n, j->n, INT64_MAX, &j->stats);
    return NULL;
}

TEST(dense_stops_on_cancel_and_deadline)
{
    const int64_t n = 64;
    struct dense_job j;
    memset(&j, 0, sizeof j);
    j.n = n;
    j.x = t_random_floats(n * n);
    j.w = t_random_floats(n * n);
    j.y = malloc((size_t) (n * n) * sizeof(float));

    /* Cancelled from another thread while the repeat count is practically endless. */
    j.ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    const int64_t cancelled_at = t_cancel_while_running(j.ctx, dense_thread, &j, &j.started, 20 * NS_PER_MS);
    t_check_dense_cancelled(j.status, &j.stats, cancelled_at);
    t_ctx_free(j.ctx);

    /* Deadline on the clock. */
    const int64_t deadline = t_now() + 30 * NS_PER_MS;
    j.ctx = t_ctx_new(deadline, NULL, 0);
    CHECK_STATUS(nsc_predict_dense(j.ctx, j.x, j.w, NULL, j.y, n, n, n, INT64_MAX, &j.stats),
                 NSC_DEADLINE_EXCEEDED);
    CHECK(j.stats.end_ns >= deadline);
    CHECK(j.stats.end_ns - deadline < 5 * NS_PER_S);
    CHECK_STATUS(nsc_check(j.ctx), NSC_OK);
    t_ctx_free(j.ctx);

    /* Done on entry: nothing computed, one check. */
    j.ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    CHECK_STATUS(nsc_context_cancel(j.ctx, NSC_CANCELED), NSC_OK);
    CHECK_STATUS(nsc_predict_dense(j.ctx, j.x, j.w, NULL, j.y, n, n, n, 1, &j.stats), NSC_CANCELED);
    CHECK_EQ(j.stats.work_units, 0);
    CHECK_EQ(j.stats.checks, 1);
    t_ctx_free(j.ctx);

    free(j.x);
    free(j.w);
    free(j.y);
}

TEST(stats_echo_trace_id)
{
    char long_value[101];
    memset(long_value, 'z', 100);
    long_value[100] = '\0';
    long_value[0] = 'L';
    const nsc_kv shadowed[] = {
        { "trace-id", "inner", 8, 5 },
        { "trace-id", "outer", 8, 5 },
    };
    const nsc_kv long_one[] = { { "trace-id", long_value, 8, 100 } };
    const nsc_kv other[] = { { "trace", "no", 5, 2 } };
    float x = 1.0f;
    float y = 0.0f;
    nsc_predict_stats stats;

    nsc_context *ctx = t_ctx_new(NSC_NO_DEADLINE, shadowed, 2);
    CHECK_STATUS(nsc_predict_dense(ctx, &x, &x, NULL, &y, 1, 1, 1, 1, &stats), NSC_OK);
    CHECK(strcmp(stats.trace_id, "inner") == 0);
    CHECK_EQ(stats.trace_id_len, 5);
    t_ctx_free(ctx);

    ctx = t_ctx_new(NSC_NO_DEADLINE, long_one, 1);
    CHECK_STATUS(nsc_predict_spin(ctx, 0, &stats), NSC_OK);
    CHECK_EQ(stats.trace_id_len, 100);
    CHECK_EQ(strlen(stats.trace_id), 63);
    CHECK(memcmp(stats.trace_id, long_value, 63) == 0);
    t_ctx_free(ctx);

    ctx = t_ctx_new(NSC_NO_DEADLINE, other, 1);
    memset(&stats, 0xcd, sizeof stats);
    CHECK_STATUS(nsc_predict_dense(ctx, &x, &x, NULL, &y, 1, 1, 1, 1, &stats), NSC_OK);
    CHECK_EQ(stats.trace_id_len, 0);
    CHECK_EQ(stats.trace_id[0], '\0');
    t_ctx_free(ctx);
}

/* ---------------------------------------------------------------------------
 * Wait predictor
 * ------------------------------------------------------------------------- */

struct writer {
    int fd;
    int64_t delay_ns;
    const void *bytes;
    size_t len;
};

static void *writer_thread(void *arg)
{
    struct writer *w = arg;
    t_sleep_ns(w->delay_ns);
    CHECK_EQ(write(w->fd, w->bytes, w->len), (long long) w->len);
    return NULL;
}

TEST(wait_predictor_reads_eventfd_and_pipe)
{
    nsc_context *ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    nsc_predict_stats stats;
    uint64_t value = 0;

    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    CHECK(efd >= 0);
    const uint64_t counter = UINT64_C(0x1122334455);
    struct writer w = { efd, 20 * NS_PER_MS, &counter, sizeof counter };
    pthread_t t;
    t_thread_start(&t, writer_thread, &w);
    CHECK_STATUS(nsc_predict_wait(ctx, efd, -1, &value, &stats), NSC_OK);
    t_thread_join_within(t, 10);
    CHECK_EQ(value, counter);
    CHECK_EQ(stats.work_units, 8);
    CHECK(stats.checks >= 1);
    CHECK_STATUS(stats.status, NSC_OK);

    /* A short read from a pipe, assembled little-endian. */
    int p[2];
    CHECK_EQ(pipe(p), 0);
    const unsigned char bytes[3] = { 0x01, 0x02, 0x03 };
    CHECK_EQ(write(p[1], bytes, 3), 3);
    CHECK_STATUS(nsc_predict_wait(ctx, p[0], 5 * NS_PER_S, &value, &stats), NSC_OK);
    CHECK_EQ(value, 0x030201);
    CHECK_EQ(stats.work_units, 3);
    /* End of file: OK with nothing read. */
    close(p[1]);
    CHECK_STATUS(nsc_predict_wait(ctx, p[0], 5 * NS_PER_S, &value, &stats), NSC_OK);
    CHECK_EQ(value, 0);
    CHECK_EQ(stats.work_units, 0);
    close(p[0]);

    /* Own timeout. */
    int64_t start = t_now();
    CHECK_STATUS(nsc_predict_wait(ctx, efd, 20 * NS_PER_MS, &value, &stats), NSC_TIMEOUT);
    CHECK(t_now() - start >= 20 * NS_PER_MS);
    CHECK_STATUS(nsc_predict_wait(NULL, efd, 0, &value, &stats), NSC_ERR_INVALID);
    CHECK_STATUS(nsc_predict_wait(ctx, -1, 0, &value, NULL), NSC_ERR_INVALID);
    close(efd);
    t_ctx_free(ctx);
}

struct waiting_predictor {
    nsc_context *ctx;
    int fd;
    int64_t timeout_ns;
    int status;
    uint64_t value;
    nsc_predict_stats stats;
    int started;  /* atomic */
};

static void *wait_predictor_thread(void *arg)
{
    struct waiting_predictor *p = arg;
    __atomic_store_n(&p->started, 1, __ATOMIC_SEQ_CST);
    p->status = nsc_predict_wait(p->ctx, p->fd, p->timeout_ns, &p->value, &p->stats);
    return NULL;
}

TEST(wait_predictor_stops_on_cancel_and_survives_stolen_readiness)
{
    nsc_context *ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    CHECK(efd >= 0);

    struct waiting_predictor p = { ctx, efd, -1, -100, 0, { 0 }, 0 };
    const int64_t cancelled_at = t_cancel_while_running(ctx, wait_predictor_thread, &p, &p.started, 20 * NS_PER_MS);
    CHECK_STATUS(p.status, NSC_CANCELED);
    CHECK_STATUS(p.stats.status, NSC_CANCELED);
    CHECK(p.stats.end_ns - cancelled_at < 5 * NS_PER_S);
    t_ctx_free(ctx);

    /*
     * Two predictors on one eventfd, one write: both wake, one reads, the
     * other gets EAGAIN and must wait again, ending on its own timeout.
     */
    ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    struct waiting_predictor q[2] = {
        { ctx, efd, 300 * NS_PER_MS, -100, 0, { 0 }, 0 },
        { ctx, efd, 300 * NS_PER_MS, -100, 0, { 0 }, 0 },
    };
    pthread_t qt[2];
    t_thread_start(&qt[0], wait_predictor_thread, &q[0]);
    t_thread_start(&qt[1], wait_predictor_thread, &q[1]);
    t_sleep_ns(50 * NS_PER_MS);
    const uint64_t one = 5;
    CHECK_EQ(write(efd, &one, sizeof one), 8);
    t_thread_join_within(qt[0], 10);
    t_thread_join_within(qt[1], 10);
    CHECK((q[0].status == NSC_OK && q[1].status == NSC_TIMEOUT)
          || (q[0].status == NSC_TIMEOUT && q[1].status == NSC_OK));
    CHECK_EQ(q[0].value + q[1].value, 5);
    close(efd);
    t_ctx_free(ctx);
}

/* ---------------------------------------------------------------------------
 * Spin predictor
 * ------------------------------------------------------------------------- */

struct spinner {
    nsc_context *ctx;
    int status;
    nsc_predict_stats stats;
    int started;  /* atomic */
};

static void *spin_thread(void *arg)
{
    struct spinner *s = arg;
    __atomic_store_n(&s->started, 1, __ATOMIC_SEQ_CST);
    s->status = nsc_predict_spin(s->ctx, -1, &s->stats);
    return NULL;
}

TEST(spin_predictor_duration_cancel_deadline)
{
    nsc_predict_stats stats;
    int64_t start = t_now();
    CHECK_STATUS(nsc_predict_spin(NULL, 5 * NS_PER_MS, &stats), NSC_OK);
    CHECK(t_now() - start >= 5 * NS_PER_MS);
    CHECK(stats.work_units > 0);
    CHECK_EQ(stats.checks, 0);
    CHECK_STATUS(nsc_predict_spin(NULL, -1, &stats), NSC_ERR_INVALID);
    CHECK_STATUS(nsc_predict_spin(NULL, 0, NULL), NSC_OK);

    nsc_context *ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    struct spinner s = { ctx, -100, { 0 }, 0 };
    const int64_t cancelled_at = t_cancel_while_running(ctx, spin_thread, &s, &s.started, 20 * NS_PER_MS);
    CHECK_STATUS(s.status, NSC_CANCELED);
    CHECK(s.stats.end_ns - cancelled_at < 5 * NS_PER_S);
    CHECK(s.stats.checks > 0);
    /* The checker read the clock every NSC_DEFAULT_CHECK_INTERVAL polls. */
    CHECK(ctx->heartbeat_count > 0);
    t_ctx_free(ctx);

    const int64_t deadline = t_now() + 20 * NS_PER_MS;
    ctx = t_ctx_new(deadline, NULL, 0);
    CHECK_STATUS(nsc_predict_spin(ctx, -1, &stats), NSC_DEADLINE_EXCEEDED);
    CHECK(stats.end_ns >= deadline);
    t_ctx_free(ctx);
}
