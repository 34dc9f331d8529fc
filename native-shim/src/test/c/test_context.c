/*
 * test_context.c - context lifecycle, cancel semantics, the checks
 * (nsc_check, nsc_check_clock, nsc_checker_poll, nsc_abort_callback) and
 * value look-up.
 */
#include "nsc_test.h"
#include "nsc_internal.h" /* nsc_context_init_idle: exported, but for the Java side only */

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static uint64_t load_u64(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static int64_t load_i64(const int64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

TEST(struct_layout_matches_header_diagram)
{
    /* The Java side hard-codes these offsets; a change must be an ABI bump. */
    CHECK_EQ(sizeof(nsc_context), 128);
    CHECK_EQ(offsetof(nsc_context, state), 4);
    CHECK_EQ(offsetof(nsc_context, deadline_ns), 8);
    CHECK_EQ(offsetof(nsc_context, done_fd), 16);
    CHECK_EQ(offsetof(nsc_context, sleepers), 20);
    CHECK_EQ(offsetof(nsc_context, cancel_ns), 24);
    CHECK_EQ(offsetof(nsc_context, values), 32);
    CHECK_EQ(offsetof(nsc_context, value_count), 40);
    CHECK_EQ(offsetof(nsc_context, heartbeat_count), 64);
    CHECK_EQ(offsetof(nsc_context, heartbeat_ns), 72);
    CHECK_EQ(offsetof(nsc_context, hooks_lock), 80);
    CHECK_EQ(offsetof(nsc_context, hook_count), 84);
    CHECK_EQ(offsetof(nsc_context, hooks), 88);
    CHECK_EQ(sizeof(nsc_kv), 32);
    CHECK_EQ(sizeof(nsc_predict_stats), 104);
}

TEST(init_sets_every_field)
{
    nsc_kv kv = { "k", "v", 1, 1 };
    nsc_context *ctx = t_ctx_alloc();
    /* Garbage first, so the test sees that init writes every field. */
    memset(ctx, 0xab, sizeof *ctx);
    CHECK_STATUS(nsc_context_init(ctx, 12345, &kv, 1), NSC_OK);
    CHECK_EQ(ctx->abi_version, NSC_ABI_VERSION);
    CHECK_EQ(ctx->state, NSC_OK);
    CHECK_EQ(ctx->deadline_ns, 12345);
    CHECK_EQ(ctx->done_fd, -1);
    CHECK_EQ(ctx->sleepers, 0);
    CHECK_EQ(ctx->cancel_ns, 0);
    CHECK(ctx->values == &kv);
    CHECK_EQ(ctx->value_count, 1);
    CHECK_EQ(ctx->reserved0[0], 0);
    CHECK_EQ(ctx->reserved0[1], 0);
    CHECK_EQ(ctx->heartbeat_count, 0);
    CHECK_EQ(ctx->heartbeat_ns, 0);
    CHECK_EQ(ctx->hooks_lock, 0);
    CHECK_EQ(ctx->hook_count, 0);
    CHECK(ctx->hooks == NULL);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(ctx->reserved1[i], 0);
    }

    nsc_stats s;
    nsc_stats_get(&s);
    CHECK_EQ(s.live_contexts, 1);
    CHECK_EQ(s.live_fds, 0);
    t_ctx_free(ctx);
}

TEST(init_rejects_bad_arguments)
{
    nsc_context ctx;
    CHECK_STATUS(nsc_context_init(NULL, NSC_NO_DEADLINE, NULL, 0), NSC_ERR_INVALID);
    CHECK_STATUS(nsc_context_init(&ctx, NSC_NO_DEADLINE, NULL, 1), NSC_ERR_INVALID);
}

TEST(init_idle_is_init_without_deadline_or_values)
{
    nsc_context *ctx = t_ctx_alloc();
    memset(ctx, 0, sizeof *ctx);
    CHECK_STATUS(nsc_context_init_idle(ctx, 0), NSC_OK);
    CHECK_EQ(ctx->abi_version, NSC_ABI_VERSION);
    CHECK_EQ(ctx->state, NSC_OK);
    CHECK(ctx->deadline_ns == NSC_NO_DEADLINE);
    CHECK_EQ(ctx->done_fd, -1);
    CHECK(ctx->values == NULL);
    CHECK_EQ(ctx->value_count, 0);
    /* Live now: init's own refusal, then the reserved argument and a NULL context. */
    CHECK_STATUS(nsc_context_init_idle(ctx, 0), NSC_ERR_BUSY);
    CHECK_STATUS(nsc_context_destroy(ctx), NSC_OK);
    CHECK_STATUS(nsc_context_init_idle(ctx, 1), NSC_ERR_INVALID);
    CHECK_STATUS(nsc_context_init_idle(NULL, 0), NSC_ERR_INVALID);
    CHECK_STATUS(nsc_context_init_idle(ctx, 0), NSC_OK);
    t_ctx_free(ctx);
}

TEST(destroy_checks_abi_and_is_not_repeatable)
{
    CHECK_STATUS(nsc_context_destroy(NULL), NSC_ERR_INVALID);

    nsc_context *ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    CHECK(nsc_done_fd(ctx) >= 0);
    CHECK_STATUS(nsc_context_destroy(ctx), NSC_OK);
    /* A second destroy must not double-close the fd or double-count. */
    CHECK_STATUS(nsc_context_destroy(ctx), NSC_ERR_ABI);
    CHECK_STATUS(nsc_context_cancel(ctx, NSC_CANCELED), NSC_ERR_ABI);
    CHECK_STATUS(nsc_done_fd(ctx), NSC_ERR_ABI);

    memset(ctx, 0, sizeof *ctx);
    ctx->abi_version = NSC_ABI_VERSION + 1;
    CHECK_STATUS(nsc_context_destroy(ctx), NSC_ERR_ABI);
    free(ctx);
}

TEST(cancel_first_status_wins_and_records_time)
{
    nsc_context *ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    CHECK_STATUS(nsc_context_cancel(NULL, NSC_CANCELED), NSC_ERR_INVALID);
    CHECK_STATUS(nsc_context_cancel(ctx, NSC_OK), NSC_ERR_INVALID);
    CHECK_STATUS(nsc_context_cancel(ctx, NSC_TIMEOUT), NSC_ERR_INVALID);
    CHECK_STATUS(nsc_context_cancel(ctx, NSC_ERR_INVALID), NSC_ERR_INVALID);
    CHECK_STATUS(nsc_context_cancel(ctx, 42), NSC_ERR_INVALID);
    CHECK_STATUS(nsc_check(ctx), NSC_OK);
    CHECK_EQ(ctx->cancel_ns, 0);

    int64_t before = t_now();
    CHECK_STATUS(nsc_context_cancel(ctx, NSC_DEADLINE_EXCEEDED), NSC_OK);
    int64_t after = t_now();
    CHECK_STATUS(nsc_check(ctx), NSC_DEADLINE_EXCEEDED);
    int64_t cancel_ns = ctx->cancel_ns;
    CHECK(before <= cancel_ns && cancel_ns <= after);

    CHECK_STATUS(nsc_context_cancel(ctx, NSC_CANCELED), NSC_ALREADY_DONE);
    CHECK_STATUS(nsc_context_cancel(ctx, NSC_DEADLINE_EXCEEDED), NSC_ALREADY_DONE);
    CHECK_STATUS(nsc_check(ctx), NSC_DEADLINE_EXCEEDED);
    CHECK_EQ(ctx->cancel_ns, cancel_ns);
    t_ctx_free(ctx);
}

struct cancel_race {
    nsc_context *ctx;
    pthread_barrier_t *barrier;
    int status;
    int result;
    int iterations;
};

static void *cancel_race_thread(void *p)
{
    struct cancel_race *r = p;
    for (int i = 0; i < r->iterations; i++) {
        pthread_barrier_wait(r->barrier);
        t_spin((uint32_t) t_rand_below(256));
        r->result = nsc_context_cancel(r->ctx, r->status);
        pthread_barrier_wait(r->barrier);
        pthread_barrier_wait(r->barrier);
    }
    return NULL;
}

TEST(concurrent_cancels_have_one_winner)
{
    const int iterations = ITERS(20000);
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 3);
    nsc_context *ctx = t_ctx_alloc();
    struct cancel_race r[2] = {
        { ctx, &barrier, NSC_CANCELED, 0, iterations },
        { ctx, &barrier, NSC_DEADLINE_EXCEEDED, 0, iterations },
    };
    pthread_t t[2];
    CHECK_STATUS(nsc_context_init(ctx, NSC_NO_DEADLINE, NULL, 0), NSC_OK);
    t_thread_start(&t[0], cancel_race_thread, &r[0]);
    t_thread_start(&t[1], cancel_race_thread, &r[1]);
    for (int i = 0; i < iterations; i++) {
        pthread_barrier_wait(&barrier);  /* go */
        pthread_barrier_wait(&barrier);  /* both cancelled */
        int a = r[0].result;
        int b = r[1].result;
        CHECK((a == NSC_OK && b == NSC_ALREADY_DONE) || (a == NSC_ALREADY_DONE && b == NSC_OK));
        int winner = a == NSC_OK ? 0 : 1;
        CHECK_STATUS(nsc_check(ctx), r[winner].status);
        CHECK(ctx->cancel_ns > 0);
        CHECK_STATUS(nsc_context_destroy(ctx), NSC_OK);
        CHECK_STATUS(nsc_context_init(ctx, NSC_NO_DEADLINE, NULL, 0), NSC_OK);
        pthread_barrier_wait(&barrier);  /* next */
    }
    t_thread_join_within(t[0], 30);
    t_thread_join_within(t[1], 30);
    CHECK_STATUS(nsc_context_destroy(ctx), NSC_OK);
    free(ctx);
    pthread_barrier_destroy(&barrier);
}

TEST(check_clock_updates_heartbeat_and_reports_deadline)
{
    CHECK_STATUS(nsc_check_clock(NULL), NSC_ERR_INVALID);

    nsc_context *ctx = t_ctx_new(t_now() + 3600 * NS_PER_S, NULL, 0);
    for (uint64_t i = 1; i <= 5; i++) {
        int64_t before = t_now();
        CHECK_STATUS(nsc_check_clock(ctx), NSC_OK);
        int64_t after = t_now();
        CHECK_EQ(load_u64(&ctx->heartbeat_count), i);
        int64_t hb = load_i64(&ctx->heartbeat_ns);
        CHECK(before <= hb && hb <= after);
    }
    t_ctx_free(ctx);

    /* Past deadline: reported, but state stays live (native code never writes it). */
    ctx = t_ctx_new(t_now() - 1, NULL, 0);
    CHECK_STATUS(nsc_check(ctx), NSC_OK);
    /* The cheap check counts, but only the clock check writes the timestamp. */
    CHECK_EQ(load_u64(&ctx->heartbeat_count), 1);
    CHECK_EQ(load_i64(&ctx->heartbeat_ns), 0);
    CHECK_STATUS(nsc_check_clock(ctx), NSC_DEADLINE_EXCEEDED);
    CHECK_STATUS(nsc_check(ctx), NSC_OK);
    CHECK_EQ(load_u64(&ctx->heartbeat_count), 3);
    CHECK_EQ(ctx->cancel_ns, 0);

    /* The state word wins over the clock, and the heartbeat still moves after the cancel. */
    CHECK_STATUS(nsc_context_cancel(ctx, NSC_CANCELED), NSC_OK);
    int64_t stamp = load_i64(&ctx->heartbeat_ns);
    CHECK_STATUS(nsc_check(ctx), NSC_CANCELED);
    CHECK_EQ(load_u64(&ctx->heartbeat_count), 4);
    CHECK_EQ(load_i64(&ctx->heartbeat_ns), stamp);
    CHECK_STATUS(nsc_check_clock(ctx), NSC_CANCELED);
    CHECK_EQ(load_u64(&ctx->heartbeat_count), 5);
    CHECK(load_i64(&ctx->heartbeat_ns) >= stamp);
    t_ctx_free(ctx);

    /* Deadline exactly now-ish: never DEADLINE_EXCEEDED before it. */
    for (int i = 0; i < 1000; i++) {
        int64_t deadline = t_now() + (int64_t) t_rand_below(20000);
        ctx = t_ctx_new(deadline, NULL, 0);
        int status = nsc_check_clock(ctx);
        int64_t after = t_now();
        if (status == NSC_DEADLINE_EXCEEDED) {
            CHECK(after >= deadline);
        } else {
            CHECK_STATUS(status, NSC_OK);
        }
        t_ctx_free(ctx);
    }
}

TEST(checker_reads_clock_every_interval)
{
    nsc_context *ctx = t_ctx_new(t_now() - 1, NULL, 0);
    nsc_checker checker;
    nsc_checker_init(&checker, ctx, 4);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 3; i++) {
            /* Only the state word: a passed deadline is not noticed yet. */
            CHECK_STATUS(nsc_checker_poll(&checker), NSC_OK);
        }
        /* Not stamped until the clock is read. */
        CHECK_EQ(load_i64(&ctx->heartbeat_ns) == 0, round == 0);
        CHECK_STATUS(nsc_checker_poll(&checker), NSC_DEADLINE_EXCEEDED);
        /* Every poll is counted once, the clock poll included. */
        CHECK_EQ(load_u64(&ctx->heartbeat_count), 4 * ((uint64_t) round + 1));
        CHECK(load_i64(&ctx->heartbeat_ns) > 0);
    }
    /* Once done, every poll says so at once, without the clock. */
    CHECK_STATUS(nsc_context_cancel(ctx, NSC_CANCELED), NSC_OK);
    CHECK_STATUS(nsc_checker_poll(&checker), NSC_CANCELED);
    CHECK_EQ(load_u64(&ctx->heartbeat_count), 13);
    t_ctx_free(ctx);

    ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    nsc_checker_init(&checker, ctx, 0);
    CHECK_EQ(checker.interval, NSC_DEFAULT_CHECK_INTERVAL);
    for (int i = 0; i < NSC_DEFAULT_CHECK_INTERVAL * 10; i++) {
        CHECK_STATUS(nsc_checker_poll(&checker), NSC_OK);
    }
    CHECK_EQ(load_u64(&ctx->heartbeat_count), NSC_DEFAULT_CHECK_INTERVAL * 10);
    t_ctx_free(ctx);

    nsc_checker_init(&checker, NULL, 1);
    for (int i = 0; i < 10; i++) {
        CHECK_STATUS(nsc_checker_poll(&checker), NSC_OK);
    }
}

struct heartbeat_poller {
    nsc_context *ctx;
    int polls;
};

static void *heartbeat_poll_thread(void *arg)
{
    struct heartbeat_poller *p = arg;
    nsc_checker checker;
    nsc_checker_init(&checker, p->ctx, 8);
    for (int i = 0; i < p->polls; i++) {
        (void) nsc_checker_poll(&checker);
    }
    return NULL;
}

/* Two threads polling one context while a third reads the heartbeat, as a dump does: relaxed
 * atomics, so TSan sees no race; counts may be lost to the race but never invented. */
TEST(heartbeat_survives_concurrent_pollers_and_readers)
{
    nsc_context *ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    const int polls = 200000 / NSC_TEST_DIVISOR;
    struct heartbeat_poller p = { ctx, polls };
    pthread_t t[2];
    t_thread_start(&t[0], heartbeat_poll_thread, &p);
    t_thread_start(&t[1], heartbeat_poll_thread, &p);
    uint64_t last = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t now = load_u64(&ctx->heartbeat_count);
        /* Monotonic for a single reader except when a racing store loses a count. */
        CHECK(now <= 2 * (uint64_t) polls);
        last = now;
        (void) load_i64(&ctx->heartbeat_ns);
    }
    t_thread_join_within(t[0], 30);
    t_thread_join_within(t[1], 30);
    uint64_t total = load_u64(&ctx->heartbeat_count);
    CHECK(total >= (uint64_t) polls && total <= 2 * (uint64_t) polls);
    CHECK(last <= total || last <= 2 * (uint64_t) polls);
    CHECK(load_i64(&ctx->heartbeat_ns) > 0);
    t_ctx_free(ctx);
}

TEST(abort_callback_follows_check_clock)
{
    CHECK(!nsc_abort_callback(NULL));
    nsc_context *ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    CHECK(!nsc_abort_callback(ctx));
    CHECK_EQ(load_u64(&ctx->heartbeat_count), 1);
    CHECK_STATUS(nsc_context_cancel(ctx, NSC_CANCELED), NSC_OK);
    CHECK(nsc_abort_callback(ctx));
    t_ctx_free(ctx);

    ctx = t_ctx_new(t_now() - 1, NULL, 0);
    CHECK(nsc_abort_callback(ctx));
    t_ctx_free(ctx);

    ctx = t_ctx_new(t_now() + 3600 * NS_PER_S, NULL, 0);
    CHECK(!nsc_abort_callback(ctx));
    t_ctx_free(ctx);
}

/* ---------------------------------------------------------------------------
 * Values
 * ------------------------------------------------------------------------- */

#define KV(k, v) { k, v, sizeof k - 1, sizeof v - 1 }

static const nsc_kv test_values[] = {
    KV("trace-id", "child"),
    KV("user", "alice"),
    KV("trace-id", "parent"),
    KV("empty", ""),
    KV("ab", "two"),
    KV("abc", "three"),
    KV("a", "one"),
    { "x\0y", "nul-in-key", 3, 10 },
    KV("", "empty-key"),
};

static void expect_value(const nsc_context *ctx, const char *key, size_t key_len, const char *want)
{
    const char *value = NULL;
    size_t len = 12345;
    int status = nsc_value(ctx, key, key_len, &value, &len);
    if (want == NULL) {
        CHECK_STATUS(status, NSC_NOT_FOUND);
        CHECK(value == NULL);
        CHECK_EQ(len, 0);
        return;
    }
    CHECK_STATUS(status, NSC_OK);
    CHECK_EQ(len, strlen(want));
    CHECK(value != NULL && memcmp(value, want, len) == 0 && value[len] == '\0');
}

TEST(values_first_match_wins)
{
    nsc_context *ctx = t_ctx_new(NSC_NO_DEADLINE, test_values, sizeof test_values / sizeof test_values[0]);
    expect_value(ctx, "trace-id", 8, "child");
    expect_value(ctx, "user", 4, "alice");
    expect_value(ctx, "empty", 5, "");
    expect_value(ctx, "a", 1, "one");
    expect_value(ctx, "ab", 2, "two");
    expect_value(ctx, "abc", 3, "three");
    expect_value(ctx, "abc", 2, "two");  /* key_len, not NUL, delimits the key */
    expect_value(ctx, "abcd", 4, NULL);
    expect_value(ctx, "trace", 5, NULL);
    expect_value(ctx, "trace-id-x", 10, NULL);
    expect_value(ctx, "USER", 4, NULL);
    expect_value(ctx, "x\0y", 3, "nul-in-key");
    expect_value(ctx, "x", 1, NULL);
    expect_value(ctx, "", 0, "empty-key");
    expect_value(ctx, NULL, 0, "empty-key");

    /* Output pointers are optional. */
    CHECK_STATUS(nsc_value(ctx, "user", 4, NULL, NULL), NSC_OK);
    CHECK_STATUS(nsc_value(ctx, "nobody", 6, NULL, NULL), NSC_NOT_FOUND);
    CHECK_STATUS(nsc_value(NULL, "user", 4, NULL, NULL), NSC_ERR_INVALID);
    CHECK_STATUS(nsc_value(ctx, NULL, 3, NULL, NULL), NSC_ERR_INVALID);
    t_ctx_free(ctx);

    ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    expect_value(ctx, "user", 4, NULL);
    expect_value(ctx, "", 0, NULL);
    t_ctx_free(ctx);
}

/* ---------------------------------------------------------------------------
 * Misuse: a status, not a leak or a crash (the promises of nativescope.h's
 * "Misuse" paragraph, for structs zeroed before their first init).
 * ------------------------------------------------------------------------- */

static void noop_hook(void *arg, int status)
{
    (void) arg;
    (void) status;
}

/* Every checked function refuses ctx with NSC_ERR_ABI and writes nothing into it. */
static void check_refused_as_not_live(nsc_context *ctx)
{
    nsc_context before;
    memcpy(&before, ctx, sizeof before);
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    CHECK(fd >= 0);
    CHECK_STATUS(nsc_check_clock(ctx), NSC_ERR_ABI);
    CHECK_STATUS(nsc_context_cancel(ctx, NSC_CANCELED), NSC_ERR_ABI);
    CHECK_STATUS(nsc_context_destroy(ctx), NSC_ERR_ABI);
    CHECK_STATUS(nsc_done_fd(ctx), NSC_ERR_ABI);
    CHECK_STATUS(nsc_wait_fd(ctx, fd, POLLIN, 0, NULL), NSC_ERR_ABI);
    CHECK_STATUS(nsc_sleep(ctx, 0), NSC_ERR_ABI);
    CHECK_STATUS(nsc_value(ctx, "k", 1, NULL, NULL), NSC_ERR_ABI);
    nsc_hook_t *hook = NULL;
    CHECK_STATUS(nsc_hook_register(ctx, noop_hook, NULL, &hook), NSC_ERR_ABI);
    CHECK(nsc_abort_callback(ctx));
    uint64_t value = 0;
    CHECK_STATUS(nsc_predict_wait(ctx, fd, 0, &value, NULL), NSC_ERR_ABI);
    CHECK_STATUS(nsc_predict_spin(ctx, 0, NULL), NSC_ERR_ABI);
    /* Nothing written: no heartbeat, no state, no fd. */
    CHECK(memcmp(&before, ctx, sizeof before) == 0);
    close(fd);
}

TEST(misuse_init_over_live_context_is_refused_without_leak)
{
    nsc_stats s0;
    nsc_stats_get(&s0);
    nsc_kv kv = { "k", "v", 1, 1 };
    nsc_context *ctx = t_ctx_new(12345, &kv, 1);
    int done_fd = nsc_done_fd(ctx);
    CHECK(done_fd >= 0);
    nsc_hook_t *hook = NULL;
    CHECK_STATUS(nsc_hook_register(ctx, noop_hook, NULL, &hook), NSC_OK);

    /* Before this check, init memset the struct: the fd, the hook node and a live count leaked. */
    CHECK_STATUS(nsc_context_init(ctx, NSC_NO_DEADLINE, NULL, 0), NSC_ERR_BUSY);
    CHECK_EQ(ctx->deadline_ns, 12345);
    CHECK_EQ(ctx->done_fd, done_fd);
    CHECK_EQ(ctx->hook_count, 1);
    CHECK_EQ(ctx->value_count, 1);
    nsc_stats s1;
    nsc_stats_get(&s1);
    CHECK_EQ(s1.live_contexts, s0.live_contexts + 1);
    CHECK_EQ(s1.live_fds, s0.live_fds + 1);
    /* Cancelled is still live for init: only destroy ends it. */
    CHECK_STATUS(nsc_context_cancel(ctx, NSC_CANCELED), NSC_OK);
    CHECK_STATUS(nsc_context_init(ctx, NSC_NO_DEADLINE, NULL, 0), NSC_ERR_BUSY);
    CHECK_STATUS(nsc_check(ctx), NSC_CANCELED);

    CHECK_STATUS(nsc_hook_deregister(hook), NSC_ALREADY_DONE);
    CHECK_STATUS(nsc_context_destroy(ctx), NSC_OK);
    /* Destroyed: may be initialised again. */
    CHECK_STATUS(nsc_context_init(ctx, NSC_NO_DEADLINE, NULL, 0), NSC_OK);
    CHECK_STATUS(nsc_check_clock(ctx), NSC_OK);
    t_ctx_free(ctx);
    nsc_stats s2;
    nsc_stats_get(&s2);
    CHECK_EQ(s2.live_contexts, s0.live_contexts);
    CHECK_EQ(s2.live_fds, s0.live_fds);
    CHECK_EQ(s2.live_hooks, s0.live_hooks);
}

TEST(misuse_destroyed_context_gives_abi_status_everywhere)
{
    nsc_stats s0;
    nsc_stats_get(&s0);
    nsc_context *ctx = t_ctx_new(t_now() + 3600 * NS_PER_S, NULL, 0);
    CHECK(nsc_done_fd(ctx) >= 0);
    CHECK_STATUS(nsc_context_destroy(ctx), NSC_OK);
    /* Before, nsc_check_clock answered NSC_OK for a destroyed context and wrote its heartbeat. */
    check_refused_as_not_live(ctx);
    nsc_stats s1;
    nsc_stats_get(&s1);
    CHECK_EQ(s1.live_contexts, s0.live_contexts);
    CHECK_EQ(s1.live_fds, s0.live_fds);
    free(ctx);

    /* A cancelled, then destroyed one: the same. */
    ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    CHECK_STATUS(nsc_context_cancel(ctx, NSC_DEADLINE_EXCEEDED), NSC_OK);
    CHECK_STATUS(nsc_context_destroy(ctx), NSC_OK);
    check_refused_as_not_live(ctx);
    free(ctx);
}

TEST(misuse_never_initialised_zeroed_context_gives_abi_status)
{
    nsc_context *ctx = t_ctx_alloc();
    check_refused_as_not_live(ctx);
    /* Garbage other than NSC_ABI_VERSION in abi_version: refused too, and init accepts it. */
    memset(ctx, 0x5a, sizeof *ctx);
    check_refused_as_not_live(ctx);
    CHECK_STATUS(nsc_context_init(ctx, NSC_NO_DEADLINE, NULL, 0), NSC_OK);
    CHECK_STATUS(nsc_context_destroy(ctx), NSC_OK);
    CHECK_STATUS(nsc_context_destroy(ctx), NSC_ERR_ABI);
    free(ctx);
}
