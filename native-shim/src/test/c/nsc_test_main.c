/*
 * nsc_test_main.c - runs every registered test, checks the shim's leak
 * counters after each one, prints the summary line the Makefile and Maven
 * logs rely on: "C tests (<variant>): N passed, M failed".
 *
 * Usage: test-binary [--probe] [name-substring...]
 *   --probe  start and exit 0 (the TSan runner uses it to find out whether
 *            the sanitizer runtime can start on this kernel at all).
 */
#define _GNU_SOURCE
#include "nsc_test.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TESTS 256
#define MAX_REPORTS_PER_TEST 20

struct test {
    const char *name;
    nsc_test_fn fn;
};

static struct test tests[MAX_TESTS];
static int test_count;

/* Failures may be recorded by any thread of a test, hence atomics. */
static uint64_t failures;
static uint64_t reports;
static uint64_t seed;

void nsc_test_register(const char *name, nsc_test_fn fn)
{
    if (test_count == MAX_TESTS) {
        fprintf(stderr, "too many tests; raise MAX_TESTS\n");
        abort();
    }
    tests[test_count].name = name;
    tests[test_count].fn = fn;
    test_count++;
}

void nsc_test_fail(const char *file, int line, const char *fmt, ...)
{
    __atomic_fetch_add(&failures, 1, __ATOMIC_RELAXED);
    /* A racing test can fail thousands of times; the first reports say it all. */
    if (__atomic_fetch_add(&reports, 1, __ATOMIC_RELAXED) >= MAX_REPORTS_PER_TEST) {
        return;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "    FAIL %s:%d: %s\n", file, line, msg);
}

void nsc_test_abort(const char *file, int line, const char *what)
{
    fprintf(stderr, "    FATAL %s:%d: %s\n", file, line, what);
    printf("C tests (%s): aborted, 1 failed\n", NSC_TEST_VARIANT);
    fflush(stdout);
    abort();
}

int64_t t_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

void t_sleep_ns(int64_t ns)
{
    struct timespec ts = { .tv_sec = ns / NS_PER_S, .tv_nsec = ns % NS_PER_S };
    while (nanosleep(&ts, &ts) != 0) {
    }
}

void t_spin(uint32_t n)
{
    for (volatile uint32_t i = 0; i < n; i++) {
    }
}

static __thread uint64_t rng_state;
static uint64_t rng_streams;

uint64_t t_rand(void)
{
    if (rng_state == 0) {
        uint64_t stream = __atomic_add_fetch(&rng_streams, 1, __ATOMIC_RELAXED);
        rng_state = (seed ^ (stream * UINT64_C(0x9E3779B97F4A7C15))) | 1;
    }
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

uint64_t t_rand_below(uint64_t bound)
{
    return bound == 0 ? 0 : t_rand() % bound;
}

float *t_random_floats(int64_t n)
{
    float *a = malloc((size_t) (n > 0 ? n : 1) * sizeof *a);
    if (a == NULL) {
        nsc_test_abort(__FILE__, __LINE__, "out of memory");
    }
    for (int64_t i = 0; i < n; i++) {
        a[i] = (float) ((double) t_rand_below(2000001) / 1000000.0 - 1.0);
    }
    return a;
}

int64_t t_cancel_while_running(nsc_context *ctx, void *(*fn)(void *), void *arg, const int *started, int64_t run_ns)
{
    pthread_t thread;
    t_thread_start(&thread, fn, arg);
    while (!__atomic_load_n(started, __ATOMIC_SEQ_CST)) {
        t_sleep_ns(100000);
    }
    t_sleep_ns(run_ns);
    const int64_t cancelled_at = t_now();
    CHECK_STATUS(nsc_context_cancel(ctx, NSC_CANCELED), NSC_OK);
    t_thread_join_within(thread, 10);
    return cancelled_at;
}

void t_check_dense_cancelled(int status, const nsc_predict_stats *stats, int64_t cancelled_at)
{
    CHECK_STATUS(status, NSC_CANCELED);
    CHECK_STATUS(stats->status, NSC_CANCELED);
    CHECK(stats->work_units > 0);
    CHECK_EQ(stats->checks, stats->work_units + 1);
    CHECK(stats->end_ns - cancelled_at < 5 * NS_PER_S);
}

void t_thread_start(pthread_t *thread, void *(*fn)(void *), void *arg)
{
    if (pthread_create(thread, NULL, fn, arg) != 0) {
        nsc_test_abort(__FILE__, __LINE__, "pthread_create failed");
    }
}

void t_thread_join_within(pthread_t thread, int seconds)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += seconds;
    int rc = pthread_timedjoin_np(thread, NULL, &until);
    if (rc != 0) {
        /* A hung thread (a lost wake-up, a deadlock) would make every later result meaningless. */
        nsc_test_abort(__FILE__, __LINE__, "a test thread did not finish in time (lost wake-up or deadlock?)");
    }
}

nsc_context *t_ctx_alloc(void)
{
    nsc_context *ctx = aligned_alloc(64, sizeof *ctx);
    if (ctx == NULL) {
        nsc_test_abort(__FILE__, __LINE__, "out of memory");
    }
    memset(ctx, 0, sizeof *ctx);
    return ctx;
}

nsc_context *t_ctx_new(int64_t deadline_ns, const nsc_kv *values, uint64_t value_count)
{
    nsc_context *ctx = t_ctx_alloc();
    CHECK_STATUS(nsc_context_init(ctx, deadline_ns, values, value_count), NSC_OK);
    return ctx;
}

void t_ctx_free(nsc_context *ctx)
{
    CHECK_STATUS(nsc_context_destroy(ctx), NSC_OK);
    free(ctx);
}

static bool selected(const char *name, int argc, char **argv)
{
    bool any_filter = false;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-') {
            continue;
        }
        any_filter = true;
        if (strstr(name, argv[i]) != NULL) {
            return true;
        }
    }
    return !any_filter;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--probe") == 0) {
            return 0;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *seed_env = getenv("NSC_TEST_SEED");
    seed = seed_env != NULL ? strtoull(seed_env, NULL, 0) : (uint64_t) t_now();
    printf("C tests (%s): seed %llu (set NSC_TEST_SEED to repeat)\n", NSC_TEST_VARIANT, (unsigned long long) seed);

    int passed = 0;
    int failed = 0;
    const int64_t run_start = t_now();
    for (int i = 0; i < test_count; i++) {
        if (!selected(tests[i].name, argc, argv)) {
            continue;
        }
        nsc_stats before;
        nsc_stats after;
        nsc_stats_get(&before);
        uint64_t failures_before = __atomic_load_n(&failures, __ATOMIC_RELAXED);
        __atomic_store_n(&reports, 0, __ATOMIC_RELAXED);

        const int64_t start = t_now();
        tests[i].fn();
        const int64_t elapsed_ms = (t_now() - start) / NS_PER_MS;

        /*
         * Leak check against the state before the test (all zero unless an
         * earlier test already failed), so one leak is reported once.
         */
        nsc_stats_get(&after);
        CHECK_EQ(after.live_contexts, before.live_contexts);
        CHECK_EQ(after.live_fds, before.live_fds);
        CHECK_EQ(after.live_hooks, before.live_hooks);
        CHECK_EQ(after.native_bytes, before.native_bytes);

        bool ok = __atomic_load_n(&failures, __ATOMIC_RELAXED) == failures_before;
        printf("  %-4s %s (%lld ms)\n", ok ? "ok" : "FAIL", tests[i].name, (long long) elapsed_ms);
        if (ok) {
            passed++;
        } else {
            failed++;
        }
    }
    printf("C tests (%s): took %lld ms\n", NSC_TEST_VARIANT, (long long) ((t_now() - run_start) / NS_PER_MS));
    printf("C tests (%s): %d passed, %d failed\n", NSC_TEST_VARIANT, passed, failed);
    return failed == 0 ? 0 : 1;
}
