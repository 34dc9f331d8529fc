/*
 * nsc_hooks.c - cancel hooks with C++20 std::stop_callback semantics.
 *
 * A hook runs at most once: in the thread whose nsc_context_cancel made the
 * context done, or at once in the registering thread if the context was
 * already done. nsc_hook_deregister removes a hook that has not started, or
 * waits for one that is running in another thread; after it returns the hook
 * is not running and never will.
 *
 * Data: ctx->hooks is a doubly linked list of registered (not yet started)
 * nodes, newest first; the cancel pops from the head, so hooks run newest
 * first, like atexit handlers (a later registration may depend on an earlier
 * one, not the other way round). Every field of every node, the list, and
 * ctx->hook_count are protected by ctx->hooks_lock. The lock is held only for
 * list and state updates, never while a hook function runs, so a hook may
 * register, deregister or cancel freely. As with std::stop_callback, the one
 * thing a hook must not do is wait (by deregistering) for a hook that is
 * running in another thread and waits for it in turn: that deadlock is the
 * caller's.
 *
 * ctx->hook_count (an "internal" field of the ABI) is the number of nodes of
 * this context that are not yet freed: registered, running, or run but not
 * yet deregistered. A node keeps a pointer to ctx and deregister locks
 * ctx->hooks_lock, so nsc_context_destroy refuses (NSC_ERR_BUSY) while this is
 * non-zero; otherwise a late deregister would lock a freed struct.
 *
 * Ownership of a node (who frees it): the registrant holds one claim from
 * nsc_hook_register until its nsc_hook_deregister; the canceller holds one from
 * popping the node until it has marked it DONE. The node is freed by whichever
 * gives up its claim last, decided under the lock:
 *   - REGISTERED at deregister: the canceller never took it; deregister unlinks
 *     and frees.
 *   - DONE at deregister: the canceller has let go; deregister frees.
 *   - RUNNING at deregister from another thread: deregister waits until DONE
 *     (so "after deregister the hook is not running" holds), then frees.
 *   - RUNNING at deregister from the running thread itself (the hook, or
 *     something it called, deregisters it): waiting would deadlock, so
 *     deregister marks the node ORPHANED and returns; the canceller, finding
 *     ORPHANED once fn returns, frees it instead of marking it DONE.
 * So every successful registration must be deregistered exactly once, also
 * after the hook ran; a NULL handle (fn ran inside nsc_hook_register) needs
 * nothing but is accepted.
 */
#include "nsc_internal.h"

#include <pthread.h>
#include <stdlib.h>

enum {
    HOOK_REGISTERED = 0,
    HOOK_RUNNING = 1,
    HOOK_DONE = 2
};

enum {
    HOOK_WAITED = 1u,   /* a deregister in another thread sleeps on `state` */
    HOOK_ORPHANED = 2u  /* deregistered from the running thread: canceller frees */
};

struct nsc_hook {
    nsc_cancel_fn fn;
    void *arg;
    nsc_context *ctx;
    nsc_hook_t *next;
    nsc_hook_t *prev;
    /*
     * HOOK_*. Written only under the lock, but read by the kernel as the futex
     * word a waiting deregister sleeps on, hence accessed atomically.
     */
    uint32_t state;
    uint32_t flags;    /* HOOK_WAITED | HOOK_ORPHANED, under the lock */
    pthread_t runner;  /* the thread running fn, valid while RUNNING */
};

/* ---------------------------------------------------------------------------
 * The lock: a three-state futex mutex on ctx->hooks_lock (0 free, 1 held,
 * 2 held and someone may sleep on it). Critical sections are a few pointer
 * writes, so a short spin usually wins; sleeping in the kernel covers the case
 * where the holder was descheduled (2 cores, more threads than cores), which a
 * pure spin with sched_yield handles badly.
 * ------------------------------------------------------------------------- */

#define LOCK_SPINS 100

static void lock_hooks(nsc_context *ctx)
{
    uint32_t *word = &ctx->hooks_lock;
    for (int i = 0; i < LOCK_SPINS; i++) {
        uint32_t expected = 0;
        if (__atomic_load_n(word, __ATOMIC_RELAXED) == 0
            && __atomic_compare_exchange_n(word, &expected, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
            return;
        }
        __builtin_ia32_pause();
    }
    /*
     * Taking the lock with 2 (not 1) from here on is deliberately pessimistic:
     * we cannot know whether other sleepers remain, so the unlock that follows
     * ours must wake one in case.
     */
    while (__atomic_exchange_n(word, 2, __ATOMIC_ACQUIRE) != 0) {
        nsc__futex_wait(word, 2, NULL);
    }
}

static void unlock_hooks(nsc_context *ctx)
{
    if (__atomic_exchange_n(&ctx->hooks_lock, 0, __ATOMIC_RELEASE) == 2) {
        nsc__futex_wake(&ctx->hooks_lock, 1);
    }
}

/* ---------------------------------------------------------------------------
 * List and node helpers. Callers hold the lock, except for free_node, which
 * is called after unlocking, once the node is unreachable for everyone else.
 * ------------------------------------------------------------------------- */

static void link_front(nsc_context *ctx, nsc_hook_t *h)
{
    h->prev = NULL;
    h->next = ctx->hooks;
    if (h->next != NULL) {
        h->next->prev = h;
    }
    ctx->hooks = h;
}

static void unlink_node(nsc_context *ctx, nsc_hook_t *h)
{
    if (h->prev != NULL) {
        h->prev->next = h->next;
    } else {
        ctx->hooks = h->next;
    }
    if (h->next != NULL) {
        h->next->prev = h->prev;
    }
    h->next = NULL;
    h->prev = NULL;
}

static uint32_t node_state(const nsc_hook_t *h)
{
    return __atomic_load_n(&h->state, __ATOMIC_RELAXED);
}

/* A REGISTERED node, not yet linked; counted until free_node. */
static nsc_hook_t *new_node(nsc_context *ctx, nsc_cancel_fn fn, void *arg)
{
    nsc_hook_t *h = malloc(sizeof *h);
    if (h == NULL) {
        return NULL;
    }
    nsc__count(&nsc__counters.live_hooks, 1);
    nsc__count(&nsc__counters.native_bytes, (int64_t) sizeof *h);
    /* Unlinked (next, prev NULL), no flags; the canceller sets runner again before RUNNING. */
    *h = (nsc_hook_t) {.fn = fn, .arg = arg, .ctx = ctx, .state = HOOK_REGISTERED, .runner = pthread_self()};
    return h;
}

static void free_node(nsc_hook_t *h)
{
    free(h);
    nsc__count(&nsc__counters.live_hooks, -1);
    nsc__count(&nsc__counters.native_bytes, -(int64_t) sizeof *h);
}

/* ---------------------------------------------------------------------------
 * API
 * ------------------------------------------------------------------------- */

NSC_API int nsc_hook_register(nsc_context *ctx, nsc_cancel_fn fn, void *arg, nsc_hook_t **hook)
{
    if (hook != NULL) {
        *hook = NULL;
    }
    int entry = nsc__ctx_entry(ctx, fn != NULL && hook != NULL);
    if (entry != NSC_OK) {
        return entry;
    }

    /* Already done: skip the allocation, the status cannot change any more. */
    int status = (int) __atomic_load_n(&ctx->state, __ATOMIC_ACQUIRE);
    if (status != NSC_OK) {
        fn(arg, status);
        return status;
    }

    nsc_hook_t *h = new_node(ctx, fn, arg);
    if (h == NULL) {
        return NSC_ERR_NOMEM;
    }

    lock_hooks(ctx);
    /*
     * The decisive look at state, under the lock. nsc_context_cancel stores
     * state before it first takes this lock to drain the list. If our critical
     * section comes first, the drain's lock acquire happens after our unlock and
     * finds the node we link. If the drain's (first) critical section comes
     * first, it happened after the state store and before our acquire, so this
     * load sees the done status and we run fn here instead. Either way the
     * hook runs exactly once and never in both threads.
     */
    status = (int) __atomic_load_n(&ctx->state, __ATOMIC_ACQUIRE);
    if (status == NSC_OK) {
        link_front(ctx, h);
        ctx->hook_count++;
        /*
         * Published before the unlock, so a hook that reads its own handle
         * through `hook` (e.g. to deregister itself) finds it set: the drain can
         * only pop the node after taking the lock we are about to release.
         */
        *hook = h;
    }
    unlock_hooks(ctx);

    if (status != NSC_OK) {
        free_node(h);
        fn(arg, status);
        return status;
    }
    return NSC_OK;
}

NSC_API int nsc_hook_deregister(nsc_hook_t *h)
{
    /* What registration leaves behind when fn ran inside it: nothing to do, and it did run. */
    if (h == NULL) {
        return NSC_ALREADY_DONE;
    }
    nsc_context *ctx = h->ctx;

    lock_hooks(ctx);
    uint32_t state = node_state(h);
    if (state == HOOK_REGISTERED) {
        unlink_node(ctx, h);
        ctx->hook_count--;
        unlock_hooks(ctx);
        free_node(h);
        return NSC_OK;
    }
    if (state == HOOK_RUNNING) {
        if (pthread_equal(h->runner, pthread_self())) {
            /* Called from within fn (directly or nested): the canceller frees it on return. */
            h->flags |= HOOK_ORPHANED;
            unlock_hooks(ctx);
            return NSC_ALREADY_DONE;
        }
        h->flags |= HOOK_WAITED;
        /*
         * Sleep on the node's state word. Checking under the lock and sleeping
         * with the expected value RUNNING cannot miss the wake: if the
         * canceller marks the node DONE between our unlock and the futex call,
         * FUTEX_WAIT's compare fails (EAGAIN) and we re-check.
         */
        do {
            unlock_hooks(ctx);
            nsc__futex_wait(&h->state, HOOK_RUNNING, NULL);
            lock_hooks(ctx);
        } while (node_state(h) == HOOK_RUNNING);
    }
    /*
     * DONE, and the canceller let go of the node inside a critical section
     * that ended before ours began, so nobody else touches it any more.
     */
    ctx->hook_count--;
    unlock_hooks(ctx);
    free_node(h);
    return NSC_ALREADY_DONE;
}

/* ---------------------------------------------------------------------------
 * Internal, for nsc_context.c
 * ------------------------------------------------------------------------- */

void nsc__hooks_run(nsc_context *ctx, int status)
{
    /*
     * Called once per context, by the thread whose CAS made it done, after
     * that CAS. A registration racing with this loop either linked its node
     * before one of our critical sections (we pop it) or saw the done state
     * under the lock and ran fn itself (see nsc_hook_register). Popping one node
     * per critical section, instead of detaching the whole list at once, keeps
     * every not-yet-started node on the list, so a deregister in the meantime
     * still takes the cheap REGISTERED path and the hook never runs.
     */
    const pthread_t self = pthread_self();
    for (;;) {
        lock_hooks(ctx);
        nsc_hook_t *h = ctx->hooks;
        if (h == NULL) {
            unlock_hooks(ctx);
            return;
        }
        unlink_node(ctx, h);
        h->runner = self;
        __atomic_store_n(&h->state, HOOK_RUNNING, __ATOMIC_RELAXED);
        unlock_hooks(ctx);

        h->fn(h->arg, status);

        lock_hooks(ctx);
        if (h->flags & HOOK_ORPHANED) {
            /* The registrant gave up its claim from inside fn; ours is the last. */
            ctx->hook_count--;
            unlock_hooks(ctx);
            free_node(h);
            continue;
        }
        __atomic_store_n(&h->state, HOOK_DONE, __ATOMIC_RELAXED);
        /*
         * Wake while still holding the lock: the waiter frees the node only
         * after it has re-taken the lock and seen DONE, so the futex call
         * never names freed memory (and the DONE store is published to it by
         * our unlock, not by the futex).
         */
        if (h->flags & HOOK_WAITED) {
            nsc__futex_wake(&h->state, INT_MAX);
        }
        unlock_hooks(ctx);
    }
}

bool nsc__hooks_busy(nsc_context *ctx)
{
    lock_hooks(ctx);
    bool busy = ctx->hooks != NULL || ctx->hook_count != 0;
    unlock_hooks(ctx);
    return busy;
}
