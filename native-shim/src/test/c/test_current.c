/*
 * test_current.c - the per-thread current context (nsc_current and friends):
 * per-thread, nested set/restore, the reference predictors that find their
 * context through it (values, checks, waits, hooks), and a randomized race of
 * cancels against calls nested 1-3 deep, with hooks registered on
 * nsc_current() carrying an outer cancel inward as the Java side's context
 * tree does: no lost cancel, no stale pointer (each round's contexts are
 * freshly allocated and freed, so ASan sees any late use). Levels set their
 * context either with nsc_current_set or with stores through
 * nsc_current_slot(), as the Java bridge does, mixed at random.
 */
#define _GNU_SOURCE
#include "nsc_test.h"

#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void *current_of_new_thread(void *arg)
{
    *(nsc_context **) arg = nsc_current();
    return NULL;
}

TEST(current_is_null_outside_calls_and_on_new_threads)
{
    CHECK(nsc_current() == NULL);
    CHECK_STATUS(nsc_current_check(), NSC_OK);
    CHECK_STATUS(nsc_current_check_clock(), NSC_OK);

    nsc_context *ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    CHECK(nsc_current_set(ctx) == NULL);
    /* Another thread, started while this one has a current context, has none. */
    nsc_context *seen = ctx;
    pthread_t thread;
    t_thread_start(&thread, current_of_new_thread, &seen);
    t_thread_join_within(thread, 10);
    CHECK(seen == NULL);
    CHECK(nsc_current_set(NULL) == ctx);
    CHECK(nsc_current() == NULL);
    t_ctx_free(ctx);
}

TEST(current_set_nests_and_restores_the_outer_context)
{
    nsc_context *ctx[3];
    for (int i = 0; i < 3; i++) {
        ctx[i] = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    }
    for (int depth = 1; depth <= 3; depth++) {
        nsc_context *previous[3];
        for (int i = 0; i < depth; i++) {
            previous[i] = nsc_current_set(ctx[i]);
            CHECK(previous[i] == (i == 0 ? NULL : ctx[i - 1]));
            CHECK(nsc_current() == ctx[i]);
        }
        for (int i = depth - 1; i >= 0; i--) {
            CHECK(nsc_current_set(previous[i]) == ctx[i]);
            CHECK(nsc_current() == previous[i]);
        }
        CHECK(nsc_current() == NULL);
    }
    /* The checks see the innermost context only: cancelling the outer one is not visible inside. */
    nsc_context *outer = nsc_current_set(ctx[0]);
    nsc_current_set(ctx[1]);
    CHECK_STATUS(nsc_context_cancel(ctx[0], NSC_CANCELED), NSC_OK);
    CHECK_STATUS(nsc_current_check(), NSC_OK);
    nsc_current_set(ctx[0]);
    CHECK_STATUS(nsc_current_check(), NSC_CANCELED);
    CHECK_STATUS(nsc_current_check_clock(), NSC_CANCELED);
    nsc_current_set(outer);
    for (int i = 0; i < 3; i++) {
        t_ctx_free(ctx[i]);
    }
}

/* A thread's slot: the same address on every call and after other threads come and go. */
struct slot_probe {
    nsc_context **first;
    int same;      /* calls that returned first */
    int written;   /* stores through the slot that nsc_current saw */
    int release;   /* atomic: the probe may end */
};

static void *probe_slot(void *arg)
{
    struct slot_probe *p = arg;
    p->first = nsc_current_slot();
    nsc_context *marker = (nsc_context *) p; /* never dereferenced */
    for (int i = 0; i < 1000; i++) {
        p->same += nsc_current_slot() == p->first;
        *p->first = marker;
        p->written += nsc_current() == marker && nsc_current_set(NULL) == marker;
        if ((i & 63) == 63) {
            sched_yield();
        }
    }
    while (!__atomic_load_n(&p->release, __ATOMIC_ACQUIRE)) {
        sched_yield();
    }
    p->same += nsc_current_slot() == p->first;
    return NULL;
}

TEST(current_slot_is_fixed_per_thread_and_distinct_between_live_threads)
{
    nsc_context **mine = nsc_current_slot();
    CHECK(mine != NULL);
    CHECK(*mine == nsc_current());
    struct slot_probe probe[4];
    pthread_t thread[4];
    memset(probe, 0, sizeof probe);
    for (int i = 0; i < 4; i++) {
        t_thread_start(&thread[i], probe_slot, &probe[i]);
    }
    /* Threads started and ended meanwhile do not move a live thread's slot. */
    for (int i = 0; i < 8; i++) {
        nsc_context *seen = (nsc_context *) mine;
        pthread_t transient;
        t_thread_start(&transient, current_of_new_thread, &seen);
        t_thread_join_within(transient, 10);
        CHECK(seen == NULL);
    }
    for (int i = 0; i < 4; i++) {
        __atomic_store_n(&probe[i].release, 1, __ATOMIC_RELEASE);
        t_thread_join_within(thread[i], 10);
        CHECK_EQ(probe[i].same, 1001);
        CHECK_EQ(probe[i].written, 1000);
        CHECK(probe[i].first != mine);
        for (int j = 0; j < i; j++) {
            CHECK(probe[i].first != probe[j].first); /* alive together: distinct */
        }
    }
    CHECK(nsc_current_slot() == mine);

    /* A store through the slot is what nsc_current and nsc_current_set see, and the reverse. */
    nsc_context *ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    nsc_context *outer = *mine;
    *mine = ctx;
    CHECK(nsc_current() == ctx);
    CHECK_STATUS(nsc_context_cancel(ctx, NSC_CANCELED), NSC_OK);
    CHECK_STATUS(nsc_current_check(), NSC_CANCELED);
    CHECK(nsc_current_set(NULL) == ctx);
    CHECK(*mine == NULL);
    *mine = outer;
    t_ctx_free(ctx);
}

TEST(current_check_clock_sees_the_deadline_and_counts_the_heartbeat)
{
    nsc_context *ctx = t_ctx_new(t_now() - 1, NULL, 0);
    nsc_context *outer = nsc_current_set(ctx);
    CHECK_STATUS(nsc_current_check(), NSC_OK); /* no clock: the state word is still live */
    CHECK_STATUS(nsc_current_check_clock(), NSC_DEADLINE_EXCEEDED);
    CHECK_EQ(__atomic_load_n(&ctx->heartbeat_count, __ATOMIC_RELAXED), 2);
    CHECK(__atomic_load_n(&ctx->heartbeat_ns, __ATOMIC_RELAXED) > 0);
    nsc_current_set(outer);
    t_ctx_free(ctx);
}

TEST(predictors_without_a_context_parameter_need_a_current_context)
{
    nsc_predict_stats stats;
    CHECK_STATUS(nsc_predict_spin_current(0, &stats), NSC_ERR_INVALID);
    CHECK_STATUS(stats.status, NSC_ERR_INVALID);
    CHECK_STATUS(nsc_predict_wait_current(0, 0, NULL, NULL), NSC_ERR_INVALID);
    CHECK_STATUS(nsc_predict_hook_current(0), NSC_ERR_INVALID);
}

TEST(current_predictors_read_values_and_finish_when_live)
{
    static const char trace[] = "req-current-7";
    nsc_kv kv = { NSC_TRACE_ID_KEY, trace, sizeof NSC_TRACE_ID_KEY - 1, sizeof trace - 1 };
    nsc_context *ctx = t_ctx_new(NSC_NO_DEADLINE, &kv, 1);
    nsc_context *outer = nsc_current_set(ctx);

    nsc_predict_stats stats;
    CHECK_STATUS(nsc_predict_spin_current(NS_PER_MS, &stats), NSC_OK);
    CHECK(strcmp(stats.trace_id, trace) == 0);
    CHECK(stats.checks > 0);

    int fd = eventfd(3, EFD_NONBLOCK | EFD_CLOEXEC);
    CHECK(fd >= 0);
    uint64_t value = 0;
    CHECK_STATUS(nsc_predict_wait_current(fd, NS_PER_S, &value, &stats), NSC_OK);
    CHECK_EQ(value, 3);
    CHECK_STATUS(nsc_predict_wait_current(fd, 10 * NS_PER_MS, &value, NULL), NSC_TIMEOUT);
    close(fd);

    CHECK_STATUS(nsc_predict_hook_current(10 * NS_PER_MS), NSC_TIMEOUT);
    nsc_current_set(outer);
    t_ctx_free(ctx);
}

/* Runs one of the current predictors on a thread of its own, with ctx current there. */
struct current_call {
    nsc_context *ctx;
    int which; /* 0 spin, 1 wait, 2 hook */
    int fd;
    int started;
    int status;
    nsc_context *after; /* nsc_current() once the call returned and the context was restored */
};

static void *run_current_call(void *arg)
{
    struct current_call *c = arg;
    nsc_context *outer = nsc_current_set(c->ctx);
    __atomic_store_n(&c->started, 1, __ATOMIC_SEQ_CST);
    switch (c->which) {
    case 0:
        c->status = nsc_predict_spin_current(-1, NULL);
        break;
    case 1:
        c->status = nsc_predict_wait_current(c->fd, -1, NULL, NULL);
        break;
    default:
        c->status = nsc_predict_hook_current(60 * NS_PER_S);
        break;
    }
    nsc_current_set(outer);
    c->after = nsc_current();
    return NULL;
}

TEST(a_cancel_stops_checks_waits_and_hooks_reached_through_current)
{
    for (int which = 0; which < 3; which++) {
        nsc_context *ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
        struct current_call call = { .ctx = ctx, .which = which, .fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) };
        CHECK(call.fd >= 0);
        call.after = ctx;
        t_cancel_while_running(ctx, run_current_call, &call, &call.started, 20 * NS_PER_MS);
        CHECK_STATUS(call.status, NSC_CANCELED);
        CHECK(call.after == NULL);
        close(call.fd);
        t_ctx_free(ctx);
    }
    /* Done before the call: the hook runs at once in the registering thread. */
    nsc_context *done = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    CHECK_STATUS(nsc_context_cancel(done, NSC_DEADLINE_EXCEEDED), NSC_OK);
    nsc_context *outer = nsc_current_set(done);
    CHECK_STATUS(nsc_predict_hook_current(NS_PER_S), NSC_DEADLINE_EXCEEDED);
    CHECK_STATUS(nsc_predict_spin_current(-1, NULL), NSC_DEADLINE_EXCEEDED);
    nsc_current_set(outer);
    t_ctx_free(done);
}

/* A pooled worker: runs "calls" one after another, as a native thread of the Java side does. */
struct pool_worker {
    nsc_context *ctx[8];
    int stale; /* calls that found a current context at their start */
};

static void *pool_worker_run(void *arg)
{
    struct pool_worker *w = arg;
    for (int i = 0; i < 8; i++) {
        if (nsc_current() != NULL) {
            w->stale++;
        }
        nsc_context *outer = nsc_current_set(w->ctx[i]);
        int status = nsc_predict_spin_current((i & 1) ? -1 : 0, NULL);
        CHECK_STATUS(status, (i & 1) ? NSC_CANCELED : NSC_OK);
        nsc_current_set(outer);
    }
    return NULL;
}

TEST(a_pooled_thread_never_sees_the_previous_calls_context)
{
    struct pool_worker w = { .stale = 0 };
    for (int i = 0; i < 8; i++) {
        w.ctx[i] = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
        if (i & 1) {
            /* Cancelled before its call: the spin returns at once, and the restore still happens. */
            CHECK_STATUS(nsc_context_cancel(w.ctx[i], NSC_CANCELED), NSC_OK);
        }
    }
    pthread_t thread;
    t_thread_start(&thread, pool_worker_run, &w);
    t_thread_join_within(thread, 10);
    CHECK_EQ(w.stale, 0);
    for (int i = 0; i < 8; i++) {
        t_ctx_free(w.ctx[i]);
    }
}

/* ---------------------------------------------------------------------------
 * The race: a worker makes calls nested 1-3 deep (each level sets its own
 * context current, and registers a hook on the outer one, found through
 * nsc_current(), that cancels its own, as the Java side's child contexts
 * are cancelled with their parents); a canceller cancels a random level at
 * a random moment: before the call, during it, or after it returned.
 * ------------------------------------------------------------------------- */

struct race {
    nsc_context *ctx[3];
    int depth;
    int target;
    int via_slot[3];     /* level k sets its context by stores through nsc_current_slot() */
    uint32_t delay;
    uint32_t poll_limit; /* UINT32_MAX: poll until the cancel is seen */
    int go;              /* atomic: the round the canceller may run */
    int done;            /* atomic: the round whose cancel has returned */
    int stop;            /* atomic: the canceller ends */
    pthread_t canceller;
    uint64_t seen_in_call;
    uint64_t returned_first;
};

static void propagate(void *arg, int status)
{
    struct race *r = *(struct race **) arg;
    /* In the canceller's thread nothing is current: the worker's pointer never leaks to it. */
    if (pthread_equal(pthread_self(), r->canceller)) {
        CHECK(nsc_current() == NULL);
    }
    nsc_context *inner = *(nsc_context **) ((struct race **) arg + 1);
    int rc = nsc_context_cancel(inner, status);
    CHECK(rc == NSC_OK || rc == NSC_ALREADY_DONE);
}

static int race_innermost(struct race *r, int round)
{
    for (uint32_t i = 0;; i++) {
        int status = nsc_current_check();
        if (status != NSC_OK) {
            CHECK_STATUS(status, NSC_CANCELED);
            r->seen_in_call++;
            return status;
        }
        if (__atomic_load_n(&r->done, __ATOMIC_ACQUIRE) == round) {
            /* The cancel returned, and every hook it ran with it: the innermost context must be done. */
            CHECK_STATUS(nsc_current_check(), NSC_CANCELED);
            r->seen_in_call++;
            return NSC_CANCELED;
        }
        if (i >= r->poll_limit) {
            r->returned_first++;
            return NSC_OK;
        }
        if ((i & 1023) == 1023) {
            sched_yield(); /* 2 loaded cores: let the canceller run */
        }
    }
}

static int race_level(struct race *r, int round, int k)
{
    nsc_context *outer = nsc_current();
    CHECK(outer == (k == 0 ? NULL : r->ctx[k - 1]));
    nsc_hook_t *hook = NULL;
    void *hook_arg[2] = { r, r->ctx[k] };
    if (k > 0) {
        int rc = nsc_hook_register(outer, propagate, hook_arg, &hook);
        CHECK(rc == NSC_OK || rc == NSC_CANCELED);
    }
    nsc_context **slot = nsc_current_slot();
    nsc_context *previous;
    if (r->via_slot[k]) {
        previous = *slot;
        *slot = r->ctx[k];
    } else {
        previous = nsc_current_set(r->ctx[k]);
    }
    CHECK(previous == outer);
    int status = k + 1 < r->depth ? race_level(r, round, k + 1) : race_innermost(r, round);
    CHECK(nsc_current() == r->ctx[k]);
    CHECK(nsc_current_slot() == slot);
    if (r->via_slot[k]) {
        CHECK(*slot == r->ctx[k]);
        *slot = previous;
    } else {
        CHECK(nsc_current_set(previous) == r->ctx[k]);
    }
    CHECK(nsc_current() == outer);
    nsc_hook_deregister(hook);
    return status;
}

static void *race_canceller(void *arg)
{
    struct race *r = arg;
    CHECK(nsc_current() == NULL);
    for (int round = 1;; round++) {
        int go;
        for (uint32_t spins = 0; (go = __atomic_load_n(&r->go, __ATOMIC_ACQUIRE)) != round; spins++) {
            if (__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
                return NULL;
            }
            if ((spins & 255) == 255) {
                sched_yield();
            }
        }
        t_spin(r->delay);
        int rc = nsc_context_cancel(r->ctx[r->target], NSC_CANCELED);
        CHECK(rc == NSC_OK || rc == NSC_ALREADY_DONE); /* already: an outer cancel reached it through a hook */
        CHECK(nsc_current() == NULL);
        __atomic_store_n(&r->done, round, __ATOMIC_RELEASE);
    }
}

TEST(cancel_vs_nested_current_calls_race)
{
    struct race r = { .go = 0 };
    t_thread_start(&r.canceller, race_canceller, &r);
    const int rounds = ITERS(100000);
    for (int round = 1; round <= rounds; round++) {
        /* Nothing stale at the start of a call: last round's contexts are freed by now. */
        CHECK(nsc_current() == NULL);
        CHECK_STATUS(nsc_current_check(), NSC_OK);
        r.depth = 1 + (int) t_rand_below(3);
        r.target = (int) t_rand_below((uint64_t) r.depth);
        for (int k = 0; k < 3; k++) {
            r.via_slot[k] = (int) t_rand_below(2);
        }
        r.delay = (uint32_t) t_rand_below(4000);
        uint64_t kind = t_rand_below(8);
        r.poll_limit = kind == 0 ? 0 : kind == 1 ? UINT32_MAX : (uint32_t) t_rand_below(4000);
        for (int k = 0; k < r.depth; k++) {
            r.ctx[k] = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
        }
        __atomic_store_n(&r.go, round, __ATOMIC_RELEASE);
        int status = race_level(&r, round, 0);
        CHECK(status == NSC_OK || status == NSC_CANCELED);
        for (uint32_t spins = 0; __atomic_load_n(&r.done, __ATOMIC_ACQUIRE) != round; spins++) {
            if ((spins & 255) == 255) {
                sched_yield();
            }
        }
        CHECK(nsc_current() == NULL);
        for (int k = 0; k < r.depth; k++) {
            t_ctx_free(r.ctx[k]);
        }
    }
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
    t_thread_join_within(r.canceller, 10);
    /* Both orders happened: cancels seen inside a call, and calls that returned before their cancel. */
    CHECK(r.seen_in_call > 0);
    CHECK(r.returned_first > 0);
}
