/*
 * nsc_context.c - the owner side (init, cancel, destroy) and the native
 * checks and value look-up.
 *
 * Memory ordering of the state word, in one place:
 *   - state goes from NSC_OK to a done status exactly once, by the CAS in
 *     nsc_context_cancel. The CAS is seq_cst (not just release) because two
 *     Dekker-style hand-offs hang off it: the lazily created done fd
 *     (nsc_done_fd in nsc_wait.c) and the futex sleepers (nsc_sleep). Each is
 *     "canceller: store state, then load X; waiter: store X, then load state",
 *     and only sequential consistency forbids both loads from missing the
 *     other side's store. The reasoning is spelled out next to each waiter.
 *   - Native code only ever loads state (acquire in nsc_check, so a done
 *     status makes the canceller's earlier writes visible); it never writes it,
 *     not even when it notices the deadline on the clock.
 *
 * Misuse detection, also in one place: abi_version is the struct's "live"
 * mark. nsc_context_init sets it last-but-not-least (plain store, before the
 * struct is shared) and refuses a struct that already carries it (a live
 * context: re-initialising would leak its done fd and its hook nodes and
 * break the live-context count); nsc_context_destroy clears it, so every
 * later call that takes the context (a second destroy, a cancel, a check, a
 * wait, a hook registration, a value look-up) answers NSC_ERR_ABI instead of
 * touching a closed fd or freed hook nodes (the check: nsc__ctx_entry in
 * nsc_internal.h). The limit: memory that was never initialised may hold
 * anything, including NSC_ABI_VERSION in its first four bytes, so the checks
 * are only a promise for structs that were zeroed before their first init or
 * destroyed since (nativescope.h says so).
 */
#include "nsc_internal.h"

#include <string.h>

NSC_API int nsc_context_init(nsc_context *ctx, int64_t deadline_ns, const nsc_kv *values, uint64_t value_count)
{
    if (ctx == NULL || (values == NULL && value_count > 0)) {
        return NSC_ERR_INVALID;
    }
    /* A live context (initialised, not destroyed): destroy it first. */
    if (nsc__ctx_live(ctx)) {
        return NSC_ERR_BUSY;
    }
    /*
     * Plain stores are enough: the struct is not shared yet. Whoever hands the
     * pointer to another thread (Java publishing the segment, pthread_create)
     * provides the happens-before edge. memset also zeroes reserved0/1 and the
     * hook fields, which this version relies on being 0.
     */
    memset(ctx, 0, sizeof *ctx);
    ctx->abi_version = NSC_ABI_VERSION;
    ctx->state = NSC_OK;
    ctx->deadline_ns = deadline_ns;
    ctx->done_fd = -1;
    ctx->values = values;
    ctx->value_count = value_count;
    nsc__count(&nsc__counters.live_contexts, 1);
    return NSC_OK;
}

NSC_API int nsc_context_init_idle(nsc_context *ctx, int reserved)
{
    if (reserved != 0) {
        return NSC_ERR_INVALID;
    }
    return nsc_context_init(ctx, NSC_NO_DEADLINE, NULL, 0);
}

NSC_API int nsc_context_cancel(nsc_context *ctx, int status)
{
    int entry = nsc__ctx_entry(ctx, status == NSC_CANCELED || status == NSC_DEADLINE_EXCEEDED);
    if (entry != NSC_OK) {
        return entry;
    }

    uint32_t expected = NSC_OK;
    if (!__atomic_compare_exchange_n(&ctx->state, &expected, (uint32_t) status, false,
                                     __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
        /* Someone else won; the first cause stands and that caller does the rest. */
        return NSC_ALREADY_DONE;
    }

    /*
     * Written after the CAS because only the winner may write it. A reader that
     * sees state done may therefore still see cancel_ns == 0 for a moment; it is
     * diagnostics only, so that window is accepted rather than ordered.
     */
    __atomic_store_n(&ctx->cancel_ns, nsc__now(), __ATOMIC_RELAXED);

    /*
     * Dekker hand-off with nsc_done_fd: we stored state (seq_cst CAS above) and
     * now load done_fd (seq_cst); the creator stores done_fd (seq_cst CAS) and
     * then loads state (seq_cst). In the single total order one of the two
     * loads comes after the other side's store, so either we see the fd and
     * signal it, or the creator sees the state and signals it itself (both may
     * happen; a second write only bumps the counter).
     */
    int fd = __atomic_load_n(&ctx->done_fd, __ATOMIC_SEQ_CST);
    if (fd >= 0) {
        nsc__signal_done_fd(fd);
    }

    /*
     * Same shape with nsc_sleep: a sleeper increments sleepers (seq_cst) and
     * then reads state before it blocks. If this load returns 0, the increment
     * comes later in the total order than our state store, so that sleeper's
     * own read (and the kernel's compare inside FUTEX_WAIT) sees the done state
     * and it never blocks. If it returns > 0 we wake; a sleeper that has not
     * reached FUTEX_WAIT yet will find state != 0 there and return EAGAIN.
     * Skipping the syscall when nobody sleeps keeps cancel cheap.
     */
    if (__atomic_load_n(&ctx->sleepers, __ATOMIC_SEQ_CST) > 0) {
        nsc__futex_wake(&ctx->state, INT_MAX);
    }

    nsc__hooks_run(ctx, status);
    return NSC_OK;
}

NSC_API int nsc_context_destroy(nsc_context *ctx)
{
    int entry = nsc__ctx_entry(ctx, true);
    if (entry != NSC_OK) {
        return entry;
    }
    /*
     * A hook node keeps a pointer to ctx (deregister takes ctx's hook lock), so
     * the struct must not go away while any registration is outstanding, even
     * one the cancel already ran. Refuse and release nothing, so the caller
     * can deregister and retry.
     */
    if (nsc__hooks_busy(ctx)) {
        return NSC_ERR_BUSY;
    }
    int fd = __atomic_exchange_n(&ctx->done_fd, -1, __ATOMIC_ACQ_REL);
    if (fd >= 0) {
        close(fd);
        nsc__count(&nsc__counters.live_fds, -1);
    }
    /* A second destroy, or any call that checks the version, now fails with NSC_ERR_ABI. */
    ctx->abi_version = 0;
    nsc__count(&nsc__counters.live_contexts, -1);
    return NSC_OK;
}

NSC_API int nsc_check_clock(nsc_context *ctx)
{
    /* Before the heartbeat store: a destroyed struct is not written. Same cache line as state. */
    int entry = nsc__ctx_entry(ctx, true);
    if (entry != NSC_OK) {
        return entry;
    }
    uint32_t state = __atomic_load_n(&ctx->state, __ATOMIC_ACQUIRE);
    int64_t now = nsc__now();

    /*
     * The heartbeat is diagnostics: "native code last looked at the clock N ms
     * ago". Several threads may poll one context; a load + store instead of a
     * fetch_add loses an increment when two race, which is accepted to keep
     * the check free of a locked instruction and of cache-line ping-pong.
     * It is updated even once the context is done, so a dump can tell that
     * native code kept checking after the cancel.
     */
    __atomic_store_n(&ctx->heartbeat_ns, now, __ATOMIC_RELAXED);
    uint64_t count = __atomic_load_n(&ctx->heartbeat_count, __ATOMIC_RELAXED);
    __atomic_store_n(&ctx->heartbeat_count, count + 1, __ATOMIC_RELAXED);

    if (state != NSC_OK) {
        return (int) state;
    }
    if (ctx->deadline_ns != NSC_NO_DEADLINE && now >= ctx->deadline_ns) {
        /* Reported, not recorded: only the owner's cancel writes state. */
        return NSC_DEADLINE_EXCEEDED;
    }
    return NSC_OK;
}

NSC_API bool nsc_abort_callback(void *ctx)
{
    /* NULL must mean "never abort", not "error, so abort". A destroyed context (NSC_ERR_ABI) aborts. */
    if (ctx == NULL) {
        return false;
    }
    return nsc_check_clock((nsc_context *) ctx) != NSC_OK;
}

NSC_API int nsc_value(const nsc_context *ctx, const char *key, size_t key_len,
                      const char **value, size_t *value_len)
{
    int entry = nsc__ctx_entry(ctx, key != NULL || key_len == 0);
    if (entry != NSC_OK) {
        return entry;
    }
    /*
     * Linear and first-match: the Java side flattens the context chain child
     * first, so the first entry of a repeated key is the innermost (shadowing)
     * one. Contexts carry a handful of values; a hash would cost more than it
     * saves and would need building.
     */
    for (uint64_t i = 0; i < ctx->value_count; i++) {
        const nsc_kv *kv = &ctx->values[i];
        if (kv->key_len == key_len && (key_len == 0 || memcmp(kv->key, key, key_len) == 0)) {
            if (value != NULL) {
                *value = kv->value;
            }
            if (value_len != NULL) {
                *value_len = (size_t) kv->value_len;
            }
            return NSC_OK;
        }
    }
    if (value != NULL) {
        *value = NULL;
    }
    if (value_len != NULL) {
        *value_len = 0;
    }
    return NSC_NOT_FOUND;
}
