/*
 * test_hooks.c - cancel hooks: stop_callback semantics, the awkward cases
 * (already done, deregister from inside, hooks that touch other hooks) and a
 * three-thread race of cancel, register and deregister.
 */
#include "nsc_test.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hook_probe {
    int ran;          /* atomic: how many times fn ran */
    int running;      /* atomic */
    int finished;     /* atomic */
    int status;       /* status fn received */
    pthread_t runner; /* thread fn ran in */
    int64_t delay_ns; /* fn sleeps this long while "running" */
    nsc_hook_t *self; /* handle, for fns that deregister themselves */
    int self_dereg;   /* what that deregister returned */
};

static void probe_fn(void *arg, int status)
{
    struct hook_probe *p = arg;
    __atomic_fetch_add(&p->ran, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&p->running, 1, __ATOMIC_SEQ_CST);
    p->status = status;
    p->runner = pthread_self();
    if (p->delay_ns > 0) {
        t_sleep_ns(p->delay_ns);
    }
    __atomic_store_n(&p->finished, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&p->running, 0, __ATOMIC_SEQ_CST);
}

static int ran(struct hook_probe *p)
{
    return __atomic_load_n(&p->ran, __ATOMIC_SEQ_CST);
}

struct canceller {
    nsc_context *ctx;
    int status;
    int result;
};

static void *cancel_thread(void *arg)
{
    struct canceller *c = arg;
    c->result = nsc_context_cancel(c->ctx, c->status);
    return NULL;
}

/* Cancels ctx from a new thread, waits for it (bounded), returns that thread's id. */
static pthread_t cancel_in_thread(nsc_context *ctx, int status)
{
    struct canceller c = { ctx, status, 0 };
    pthread_t t;
    t_thread_start(&t, cancel_thread, &c);
    t_thread_join_within(t, 10);
    CHECK_STATUS(c.result, NSC_OK);
    return t;
}

TEST(hook_register_rejects_bad_arguments)
{
    nsc_context *ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    struct hook_probe p;
    memset(&p, 0, sizeof p);
    nsc_hook_t *h = (nsc_hook_t *) &p;
    CHECK_STATUS(nsc_hook_register(NULL, probe_fn, &p, &h), NSC_ERR_INVALID);
    CHECK(h == NULL);
    h = (nsc_hook_t *) &p;
    CHECK_STATUS(nsc_hook_register(ctx, NULL, &p, &h), NSC_ERR_INVALID);
    CHECK(h == NULL);
    CHECK_STATUS(nsc_hook_register(ctx, probe_fn, &p, NULL), NSC_ERR_INVALID);
    CHECK_EQ(ran(&p), 0);
    t_ctx_free(ctx);
}

TEST(hook_runs_once_in_the_cancelling_thread)
{
    nsc_context *ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    struct hook_probe p;
    memset(&p, 0, sizeof p);
    nsc_hook_t *h = NULL;
    CHECK_STATUS(nsc_hook_register(ctx, probe_fn, &p, &h), NSC_OK);
    CHECK(h != NULL);
    nsc_stats s;
    nsc_stats_get(&s);
    CHECK_EQ(s.live_hooks, 1);
    CHECK(s.native_bytes > 0);

    pthread_t t = cancel_in_thread(ctx, NSC_DEADLINE_EXCEEDED);
    CHECK_EQ(ran(&p), 1);
    CHECK(pthread_equal(p.runner, t));
    CHECK_STATUS(p.status, NSC_DEADLINE_EXCEEDED);

    CHECK_STATUS(nsc_context_cancel(ctx, NSC_CANCELED), NSC_ALREADY_DONE);
    CHECK_EQ(ran(&p), 1);
    CHECK_STATUS(nsc_hook_deregister(h), NSC_ALREADY_DONE);
    t_ctx_free(ctx);
}

TEST(hook_deregistered_before_cancel_never_runs)
{
    nsc_context *ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    struct hook_probe p[3];
    nsc_hook_t *h[3];
    memset(p, 0, sizeof p);
    for (int i = 0; i < 3; i++) {
        CHECK_STATUS(nsc_hook_register(ctx, probe_fn, &p[i], &h[i]), NSC_OK);
    }
    /* Remove from the middle of the list, then an end. */
    CHECK_STATUS(nsc_hook_deregister(h[1]), NSC_OK);
    CHECK_STATUS(nsc_hook_deregister(h[2]), NSC_OK);
    CHECK_STATUS(nsc_context_cancel(ctx, NSC_CANCELED), NSC_OK);
    CHECK_EQ(ran(&p[0]), 1);
    CHECK_EQ(ran(&p[1]), 0);
    CHECK_EQ(ran(&p[2]), 0);
    CHECK_STATUS(nsc_hook_deregister(h[0]), NSC_ALREADY_DONE);
    t_ctx_free(ctx);
}

struct late_registrar {
    nsc_context *ctx;
    struct hook_probe *probe;
    int result;
    nsc_hook_t *handle;
};

static void *late_register_thread(void *arg)
{
    struct late_registrar *r = arg;
    r->result = nsc_hook_register(r->ctx, probe_fn, r->probe, &r->handle);
    return NULL;
}

TEST(hook_on_done_context_runs_at_once_in_the_registering_thread)
{
    nsc_context *ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    CHECK_STATUS(nsc_context_cancel(ctx, NSC_DEADLINE_EXCEEDED), NSC_OK);

    struct hook_probe p;
    memset(&p, 0, sizeof p);
    nsc_hook_t *h = (nsc_hook_t *) &p;
    CHECK_STATUS(nsc_hook_register(ctx, probe_fn, &p, &h), NSC_DEADLINE_EXCEEDED);
    CHECK(h == NULL);
    CHECK_EQ(ran(&p), 1);
    CHECK(pthread_equal(p.runner, pthread_self()));
    CHECK_STATUS(p.status, NSC_DEADLINE_EXCEEDED);
    /* The NULL handle is accepted and reports that fn ran. */
    CHECK_STATUS(nsc_hook_deregister(h), NSC_ALREADY_DONE);

    struct hook_probe q;
    memset(&q, 0, sizeof q);
    struct late_registrar r = { ctx, &q, 0, NULL };
    pthread_t t;
    t_thread_start(&t, late_register_thread, &r);
    t_thread_join_within(t, 10);
    CHECK_STATUS(r.result, NSC_DEADLINE_EXCEEDED);
    CHECK(r.handle == NULL);
    CHECK_EQ(ran(&q), 1);
    CHECK(pthread_equal(q.runner, t));

    nsc_stats s;
    nsc_stats_get(&s);
    CHECK_EQ(s.live_hooks, 0);
    t_ctx_free(ctx);
}

TEST(destroy_with_hooks_outstanding_is_busy)
{
    nsc_context *ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    CHECK(nsc_done_fd(ctx) >= 0);
    struct hook_probe p;
    memset(&p, 0, sizeof p);
    nsc_hook_t *h = NULL;
    CHECK_STATUS(nsc_hook_register(ctx, probe_fn, &p, &h), NSC_OK);

    CHECK_STATUS(nsc_context_destroy(ctx), NSC_ERR_BUSY);
    /* Nothing was released: the context still works. */
    nsc_stats s;
    nsc_stats_get(&s);
    CHECK_EQ(s.live_contexts, 1);
    CHECK_EQ(s.live_fds, 1);
    CHECK_EQ(ctx->abi_version, NSC_ABI_VERSION);

    CHECK_STATUS(nsc_context_cancel(ctx, NSC_CANCELED), NSC_OK);
    CHECK_EQ(ran(&p), 1);
    /* Run but not deregistered: the node still points at ctx, so still busy. */
    CHECK_STATUS(nsc_context_destroy(ctx), NSC_ERR_BUSY);
    CHECK_STATUS(nsc_hook_deregister(h), NSC_ALREADY_DONE);
    t_ctx_free(ctx);

    ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    CHECK_STATUS(nsc_hook_register(ctx, probe_fn, &p, &h), NSC_OK);
    CHECK_STATUS(nsc_context_destroy(ctx), NSC_ERR_BUSY);
    CHECK_STATUS(nsc_hook_deregister(h), NSC_OK);
    t_ctx_free(ctx);
}

static void self_deregister_fn(void *arg, int status)
{
    struct hook_probe *p = arg;
    probe_fn(p, status);
    p->self_dereg = nsc_hook_deregister(p->self);
}

TEST(hook_deregistering_itself_does_not_deadlock)
{
    nsc_context *ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    struct hook_probe p;
    memset(&p, 0, sizeof p);
    /* register publishes the handle before the hook can run, so fn may read p.self. */
    CHECK_STATUS(nsc_hook_register(ctx, self_deregister_fn, &p, &p.self), NSC_OK);
    (void) cancel_in_thread(ctx, NSC_CANCELED);
    CHECK_EQ(ran(&p), 1);
    CHECK_STATUS(p.self_dereg, NSC_ALREADY_DONE);
    /* The canceller freed the node once fn returned. */
    nsc_stats s;
    nsc_stats_get(&s);
    CHECK_EQ(s.live_hooks, 0);
    CHECK_EQ(s.native_bytes, 0);
    t_ctx_free(ctx);
}

struct pair_hook {
    int ran;
    nsc_hook_t *self;
    nsc_hook_t **other;
    int other_dereg;
};

static void pair_fn(void *arg, int status)
{
    struct pair_hook *p = arg;
    (void) status;
    __atomic_fetch_add(&p->ran, 1, __ATOMIC_SEQ_CST);
    p->other_dereg = nsc_hook_deregister(*p->other);
    *p->other = NULL;
}

TEST(hook_may_deregister_another_hook)
{
    nsc_context *ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    struct pair_hook a;
    struct pair_hook b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.other = &b.self;
    b.other = &a.self;
    CHECK_STATUS(nsc_hook_register(ctx, pair_fn, &a, &a.self), NSC_OK);
    CHECK_STATUS(nsc_hook_register(ctx, pair_fn, &b, &b.self), NSC_OK);
    CHECK_STATUS(nsc_context_cancel(ctx, NSC_CANCELED), NSC_OK);
    /* Whichever ran first removed the other before it could start. */
    CHECK_EQ(a.ran + b.ran, 1);
    struct pair_hook *first = a.ran ? &a : &b;
    CHECK_STATUS(first->other_dereg, NSC_OK);
    CHECK(first->self != NULL);
    CHECK_STATUS(nsc_hook_deregister(first->self), NSC_ALREADY_DONE);
    t_ctx_free(ctx);
}

struct nesting_hook {
    nsc_context *ctx;
    struct hook_probe inner;
    int inner_register;
    nsc_hook_t *inner_handle;
    int recancel;
};

static void nesting_fn(void *arg, int status)
{
    struct nesting_hook *n = arg;
    (void) status;
    n->recancel = nsc_context_cancel(n->ctx, NSC_DEADLINE_EXCEEDED);
    n->inner_register = nsc_hook_register(n->ctx, probe_fn, &n->inner, &n->inner_handle);
}

TEST(hook_may_register_and_cancel_from_inside)
{
    nsc_context *ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    struct nesting_hook n;
    memset(&n, 0, sizeof n);
    n.ctx = ctx;
    nsc_hook_t *h = NULL;
    CHECK_STATUS(nsc_hook_register(ctx, nesting_fn, &n, &h), NSC_OK);
    CHECK_STATUS(nsc_context_cancel(ctx, NSC_CANCELED), NSC_OK);
    CHECK_STATUS(n.recancel, NSC_ALREADY_DONE);
    CHECK_STATUS(n.inner_register, NSC_CANCELED);
    CHECK(n.inner_handle == NULL);
    CHECK_EQ(ran(&n.inner), 1);
    CHECK(pthread_equal(n.inner.runner, pthread_self()));
    CHECK_STATUS(nsc_check(ctx), NSC_CANCELED);
    CHECK_STATUS(nsc_hook_deregister(h), NSC_ALREADY_DONE);
    t_ctx_free(ctx);
}

TEST(many_hooks_all_run_once)
{
    enum { N = 100 };
    nsc_context *ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    static struct hook_probe p[N];
    nsc_hook_t *h[N];
    memset(p, 0, sizeof p);
    for (int i = 0; i < N; i++) {
        CHECK_STATUS(nsc_hook_register(ctx, probe_fn, &p[i], &h[i]), NSC_OK);
    }
    nsc_stats s;
    nsc_stats_get(&s);
    CHECK_EQ(s.live_hooks, N);
    CHECK(s.native_bytes >= (int64_t) (N * 3 * sizeof(void *)));
    /* Remove every third before the cancel. */
    for (int i = 0; i < N; i += 3) {
        CHECK_STATUS(nsc_hook_deregister(h[i]), NSC_OK);
    }
    (void) cancel_in_thread(ctx, NSC_CANCELED);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(ran(&p[i]), i % 3 == 0 ? 0 : 1);
        if (i % 3 != 0) {
            CHECK_STATUS(nsc_hook_deregister(h[i]), NSC_ALREADY_DONE);
        }
    }
    t_ctx_free(ctx);
}

TEST(deregister_waits_for_a_running_hook)
{
    nsc_context *ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    struct hook_probe p;
    memset(&p, 0, sizeof p);
    p.delay_ns = 100 * NS_PER_MS;
    nsc_hook_t *h = NULL;
    CHECK_STATUS(nsc_hook_register(ctx, probe_fn, &p, &h), NSC_OK);

    struct canceller c = { ctx, NSC_CANCELED, 0 };
    pthread_t t;
    t_thread_start(&t, cancel_thread, &c);
    const int64_t give_up = t_now() + 5 * NS_PER_S;
    while (!__atomic_load_n(&p.running, __ATOMIC_SEQ_CST) && t_now() < give_up) {
        t_sleep_ns(100000);
    }
    CHECK(__atomic_load_n(&p.running, __ATOMIC_SEQ_CST));
    CHECK_STATUS(nsc_hook_deregister(h), NSC_ALREADY_DONE);
    /* After deregister returns, fn has returned. */
    CHECK_EQ(__atomic_load_n(&p.finished, __ATOMIC_SEQ_CST), 1);
    CHECK_EQ(__atomic_load_n(&p.running, __ATOMIC_SEQ_CST), 0);
    t_thread_join_within(t, 10);
    CHECK_STATUS(c.result, NSC_OK);
    t_ctx_free(ctx);
}

/* ---------------------------------------------------------------------------
 * The race: per iteration, on a fresh context, thread A cancels after a
 * random delay; thread B registers 1-3 hooks after random delays and
 * deregisters some of them; thread C deregisters the others as soon as B has
 * published them. Some hooks dawdle (spin or sleep) so deregister often meets
 * a running hook.
 * ------------------------------------------------------------------------- */

#define RACE_HOOKS 3

struct race_hook {
    /* set by main before the iteration */
    int owner;          /* 0: B deregisters, 1: C deregisters */
    int delay;          /* 0 none, 1 spin, 2 sleep */
    uint32_t reg_spin;
    uint32_t dereg_spin;
    /* written by the hook */
    int ran;            /* atomic */
    int running;        /* atomic */
    int finished;       /* atomic */
    int status;
    pthread_t runner;
    int payload;        /* plain on purpose: TSan checks deregister's happens-before */
    /* written by B, read by C after `published` */
    int reg_status;
    nsc_hook_t *handle;
    int published;      /* atomic */
    /* written by whoever deregisters */
    int dereg_status;
    int met_running;
};

struct race {
    nsc_context *ctx;
    pthread_barrier_t barrier;
    int iterations;
    int hooks;
    uint32_t cancel_spin;
    int cancel_returned;  /* atomic: A's nsc_context_cancel has returned */
    pthread_t a;
    pthread_t b;
    struct race_hook hook[RACE_HOOKS];
};

static void race_fn(void *arg, int status)
{
    struct race_hook *h = arg;
    if (__atomic_fetch_add(&h->ran, 1, __ATOMIC_SEQ_CST) != 0) {
        nsc_test_fail(__FILE__, __LINE__, "a hook ran twice");
    }
    __atomic_store_n(&h->running, 1, __ATOMIC_SEQ_CST);
    h->status = status;
    h->runner = pthread_self();
    if (h->delay == 1) {
        t_spin(3000);
    } else if (h->delay == 2) {
        t_sleep_ns(50000);
    }
    h->payload = 42;
    __atomic_store_n(&h->finished, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&h->running, 0, __ATOMIC_SEQ_CST);
}

static void race_deregister(struct race *r, struct race_hook *h)
{
    t_spin(h->dereg_spin);
    h->met_running = __atomic_load_n(&h->running, __ATOMIC_SEQ_CST);
    const int cancel_over = __atomic_load_n(&r->cancel_returned, __ATOMIC_SEQ_CST);
    int status = nsc_hook_deregister(h->handle);
    h->dereg_status = status;
    if (status == NSC_OK) {
        CHECK_EQ(__atomic_load_n(&h->ran, __ATOMIC_SEQ_CST), 0);
        /* A finished cancel has run every hook registered before it: none may be left to remove. */
        CHECK(!cancel_over);
    } else if (status == NSC_ALREADY_DONE) {
        CHECK_EQ(__atomic_load_n(&h->ran, __ATOMIC_SEQ_CST), 1);
        CHECK_EQ(__atomic_load_n(&h->finished, __ATOMIC_SEQ_CST), 1);
        CHECK_EQ(h->payload, 42);
    } else {
        CHECK_STATUS(status, NSC_OK);
    }
    /* "After this returns, fn is not running." */
    CHECK_EQ(__atomic_load_n(&h->running, __ATOMIC_SEQ_CST), 0);
}

static void *race_a(void *arg)
{
    struct race *r = arg;
    for (int it = 0; it < r->iterations; it++) {
        pthread_barrier_wait(&r->barrier);
        t_spin(r->cancel_spin);
        CHECK_STATUS(nsc_context_cancel(r->ctx, NSC_CANCELED), NSC_OK);
        __atomic_store_n(&r->cancel_returned, 1, __ATOMIC_SEQ_CST);
        pthread_barrier_wait(&r->barrier);
    }
    return NULL;
}

static void *race_b(void *arg)
{
    struct race *r = arg;
    for (int it = 0; it < r->iterations; it++) {
        pthread_barrier_wait(&r->barrier);
        for (int i = 0; i < r->hooks; i++) {
            struct race_hook *h = &r->hook[i];
            t_spin(h->reg_spin);
            const int cancel_over = __atomic_load_n(&r->cancel_returned, __ATOMIC_SEQ_CST);
            h->reg_status = nsc_hook_register(r->ctx, race_fn, h, &h->handle);
            if (cancel_over) {
                /* Registering on a context whose cancel has finished: runs here, at once. */
                CHECK_STATUS(h->reg_status, NSC_CANCELED);
            }
            if (h->reg_status == NSC_CANCELED) {
                /* Ran inside register, in this thread. */
                CHECK_EQ(__atomic_load_n(&h->ran, __ATOMIC_SEQ_CST), 1);
                CHECK(pthread_equal(h->runner, pthread_self()));
                CHECK(h->handle == NULL);
            } else {
                CHECK_STATUS(h->reg_status, NSC_OK);
            }
            __atomic_store_n(&h->published, 1, __ATOMIC_RELEASE);
        }
        for (int i = 0; i < r->hooks; i++) {
            if (r->hook[i].owner == 0) {
                race_deregister(r, &r->hook[i]);
            }
        }
        pthread_barrier_wait(&r->barrier);
    }
    return NULL;
}

static void *race_c(void *arg)
{
    struct race *r = arg;
    for (int it = 0; it < r->iterations; it++) {
        pthread_barrier_wait(&r->barrier);
        for (int i = 0; i < r->hooks; i++) {
            struct race_hook *h = &r->hook[i];
            if (h->owner != 1) {
                continue;
            }
            while (!__atomic_load_n(&h->published, __ATOMIC_ACQUIRE)) {
                sched_yield();
            }
            race_deregister(r, h);
        }
        pthread_barrier_wait(&r->barrier);
    }
    return NULL;
}

TEST(hooks_race_cancel_register_deregister)
{
    static struct race r;
    memset(&r, 0, sizeof r);
    r.iterations = ITERS(100000);
    r.ctx = t_ctx_alloc();
    pthread_barrier_init(&r.barrier, NULL, 4);
    pthread_t c;
    t_thread_start(&r.a, race_a, &r);
    t_thread_start(&r.b, race_b, &r);
    t_thread_start(&c, race_c, &r);

    long removed = 0;
    long ran_in_cancel = 0;
    long ran_at_register = 0;
    long met_running = 0;
    for (int it = 0; it < r.iterations; it++) {
        CHECK_STATUS(nsc_context_init(r.ctx, NSC_NO_DEADLINE, NULL, 0), NSC_OK);
        r.cancel_returned = 0;
        r.hooks = 1 + (int) t_rand_below(RACE_HOOKS);
        r.cancel_spin = (uint32_t) t_rand_below(4000);
        for (int i = 0; i < RACE_HOOKS; i++) {
            struct race_hook *h = &r.hook[i];
            memset(h, 0, sizeof *h);
            h->owner = (int) t_rand_below(2);
            uint64_t d = t_rand_below(64);
            h->delay = d < 56 ? 0 : d < 62 ? 1 : 2;
            h->reg_spin = (uint32_t) t_rand_below(1500);
            h->dereg_spin = (uint32_t) t_rand_below(3000);
        }

        pthread_barrier_wait(&r.barrier);  /* go */
        pthread_barrier_wait(&r.barrier);  /* all three done */

        for (int i = 0; i < r.hooks; i++) {
            struct race_hook *h = &r.hook[i];
            int n = __atomic_load_n(&h->ran, __ATOMIC_SEQ_CST);
            CHECK(n == 0 || n == 1);
            if (h->reg_status == NSC_CANCELED) {
                ran_at_register++;
                CHECK_EQ(n, 1);
                CHECK(pthread_equal(h->runner, r.b));
                CHECK_STATUS(h->dereg_status, NSC_ALREADY_DONE);
            } else if (h->dereg_status == NSC_OK) {
                removed++;
                /* Removed before it started, and it never started later either. */
                CHECK_EQ(n, 0);
            } else {
                ran_in_cancel++;
                CHECK_STATUS(h->dereg_status, NSC_ALREADY_DONE);
                CHECK_EQ(n, 1);
                CHECK(pthread_equal(h->runner, r.a));
                CHECK_STATUS(h->status, NSC_CANCELED);
            }
            met_running += h->met_running;
        }
        /* Every registration was deregistered, so nothing holds the context. */
        CHECK_STATUS(nsc_context_destroy(r.ctx), NSC_OK);
    }
    t_thread_join_within(r.a, 30);
    t_thread_join_within(r.b, 30);
    t_thread_join_within(c, 30);
    pthread_barrier_destroy(&r.barrier);
    free(r.ctx);

    printf("       %d iterations: %ld removed before running, %ld ran in cancel, %ld ran at registration, "
           "%ld deregistered while running\n",
           r.iterations, removed, ran_in_cancel, ran_at_register, met_running);
    /* The race must actually have produced each outcome, or it tested less than it claims. */
    CHECK(removed > 0);
    CHECK(ran_in_cancel > 0);
    CHECK(ran_at_register > 0);
}
