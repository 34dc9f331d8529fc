/*
 * nsc_test.h - the C tests' own small harness: a registry filled by
 * constructor functions, CHECK macros that record failures from any thread,
 * and helpers for threads, time and randomness.
 *
 * Build-time knobs (set by the Makefile per variant):
 *   NSC_TEST_VARIANT  the name printed in the summary line ("plain", "asan", "tsan");
 *   NSC_TEST_DIVISOR  divides the iteration counts of the stress tests (TSan
 *                     runs them ~10x slower, so it uses fewer).
 */
#ifndef NSC_TEST_H
#define NSC_TEST_H

/* The tests cover the whole library: the contract and the companion headers. */
#include "nativescope.h"
#include "nsc_hold.h"
#include "nsc_reference.h"
#include "nsc_stats.h"

#include <pthread.h>
#include <stdint.h>

#ifndef NSC_TEST_VARIANT
#define NSC_TEST_VARIANT "plain"
#endif
#ifndef NSC_TEST_DIVISOR
#define NSC_TEST_DIVISOR 1
#endif

/* Iterations of a stress loop: n under plain and ASan, n / divisor (at least 1) under TSan. */
#define ITERS(n) ((n) / NSC_TEST_DIVISOR > 0 ? (n) / NSC_TEST_DIVISOR : 1)

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S INT64_C(1000000000)

typedef void (*nsc_test_fn)(void);

void nsc_test_register(const char *name, nsc_test_fn fn);
void nsc_test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Gives up on the whole run: for states the remaining tests cannot recover from (a hung thread). */
void nsc_test_abort(const char *file, int line, const char *what) __attribute__((noreturn));

#define TEST(name)                                                                  \
    static void test_##name(void);                                                  \
    __attribute__((constructor)) static void register_##name(void)                  \
    {                                                                               \
        nsc_test_register(#name, test_##name);                                      \
    }                                                                               \
    static void test_##name(void)

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            nsc_test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);                  \
        }                                                                           \
    } while (0)

#define CHECK_EQ(a, b)                                                              \
    do {                                                                            \
        long long check_a_ = (long long) (a);                                       \
        long long check_b_ = (long long) (b);                                       \
        if (check_a_ != check_b_) {                                                 \
            nsc_test_fail(__FILE__, __LINE__, "CHECK_EQ(%s, %s): %lld != %lld",     \
                          #a, #b, check_a_, check_b_);                              \
        }                                                                           \
    } while (0)

/* Like CHECK_EQ for statuses, naming both sides. */
#define CHECK_STATUS(expr, expected)                                                \
    do {                                                                            \
        int check_got_ = (int) (expr);                                              \
        int check_want_ = (int) (expected);                                         \
        if (check_got_ != check_want_) {                                            \
            nsc_test_fail(__FILE__, __LINE__, "%s: got %s (%d), want %s (%d)", #expr,\
                          nsc_status_name(check_got_), check_got_,                  \
                          nsc_status_name(check_want_), check_want_);               \
        }                                                                           \
    } while (0)

/* Helpers (nsc_test_main.c). */
int64_t t_now(void);
void t_sleep_ns(int64_t ns);
/* A busy delay of about n cheap iterations (no pause, no syscall). */
void t_spin(uint32_t n);
/* Per-thread xorshift generator, seeded from the thread and a global seed. */
uint64_t t_rand(void);
/* Uniform in [0, bound). */
uint64_t t_rand_below(uint64_t bound);

/* n floats drawn uniformly from [-1, 1] (malloc'd; the caller frees them); gives up the run without memory. */
float *t_random_floats(int64_t n);

/* pthread_create that fails the run on error. */
void t_thread_start(pthread_t *thread, void *(*fn)(void *), void *arg);
/* Joins, giving up the whole run if the thread does not finish within seconds. */
void t_thread_join_within(pthread_t thread, int seconds);

/*
 * Runs fn(arg) in a new thread, waits until it has set *started, lets it run for
 * run_ns more, cancels ctx with NSC_CANCELED (checking that this call made it
 * done) and joins the thread within 10 seconds.
 * @return t_now() just before the cancel.
 */
int64_t t_cancel_while_running(nsc_context *ctx, void *(*fn)(void *), void *arg, const int *started, int64_t run_ns);

/*
 * What a dense predictor (nsc_predict_dense, _dl) returned and recorded when
 * t_cancel_while_running cancelled it at cancelled_at: NSC_CANCELED, at least
 * one work unit, one check per unit plus the one that saw the cancel, and an
 * end within 5 seconds of the cancel.
 */
void t_check_dense_cancelled(int status, const nsc_predict_stats *stats, int64_t cancelled_at);

/*
 * A zeroed 64-byte-aligned heap context, never initialised (zeroed first, as
 * nativescope.h asks: garbage could read as a live context); free() it. For
 * tests that initialise and destroy one struct many times.
 */
nsc_context *t_ctx_alloc(void);
/* t_ctx_alloc, initialised (expecting NSC_OK); freed by t_ctx_free. */
nsc_context *t_ctx_new(int64_t deadline_ns, const nsc_kv *values, uint64_t value_count);
/* Destroys (expecting NSC_OK) and frees. */
void t_ctx_free(nsc_context *ctx);

#endif /* NSC_TEST_H */
