/*
 * nsc_wait.c - blocking on a context: the lazily created done fd, a wait on
 * an fd plus the done fd, and a futex sleep on the state word.
 *
 * Outcome precedence, used by both nsc_wait_fd and nsc_sleep when several
 * things have happened by the time the thread looks (it was descheduled, or
 * the fd became ready in the same instant as the cancel): the context wins.
 * First the state word (a cancel, with its first-wins status), then the
 * deadline on the clock, then the call's own outcome (fd ready, own timeout,
 * full sleep). The caller has to stop in the first two cases anyway, and
 * reporting them at once saves it a second check that would say the same.
 * The deadline is only ever reported once a fresh clock read is at or past
 * it, never merely because a timer fired, so a caller can rely on "returned
 * DEADLINE_EXCEEDED" implying "the deadline has passed" (the Java side turns
 * it into a timeout exception and may compare against System.nanoTime()).
 */
/* ppoll(2) is a GNU extension; must precede every system header. */
#define _GNU_SOURCE
#include "nsc_internal.h"

#include <poll.h>
#include <sys/eventfd.h>

/*
 * The entry checks of nsc_wait_fd and nsc_sleep: the arguments (args_valid:
 * the call's own ones are), then the ABI version, then the state word, so
 * that a context done on entry is answered without creating an fd or blocking.
 * @return NSC_OK to go on, else the status the wait returns.
 */
static int wait_entry(const nsc_context *ctx, bool args_valid)
{
    if (ctx == NULL || !args_valid) {
        return NSC_ERR_INVALID;
    }
    if (ctx->abi_version != NSC_ABI_VERSION) {
        return NSC_ERR_ABI;
    }
    return (int) __atomic_load_n(&ctx->state, __ATOMIC_ACQUIRE);
}

NSC_API int nsc_done_fd(nsc_context *ctx)
{
    if (ctx == NULL) {
        return NSC_ERR_INVALID;
    }
    if (ctx->abi_version != NSC_ABI_VERSION) {
        return NSC_ERR_ABI;
    }

    int fd = __atomic_load_n(&ctx->done_fd, __ATOMIC_SEQ_CST);
    if (fd < 0) {
        /*
         * Creation is optimistic: several first waiters may each create an fd,
         * exactly one CAS installs its own, the losers close theirs and use the
         * winner's. No lock, so a waiter never blocks on another waiter.
         */
        int created = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (created < 0) {
            return NSC_ERR_SYSTEM;
        }
        int expected = -1;
        if (__atomic_compare_exchange_n(&ctx->done_fd, &expected, created, false,
                                        __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
            fd = created;
            nsc__count(&nsc__counters.live_fds, 1);
        } else {
            close(created);
            fd = expected;
        }
    }

    /*
     * The other half of the Dekker hand-off in nsc_context_cancel (there:
     * CAS state, then load done_fd; here: CAS done_fd, then load state; all
     * seq_cst). If the canceller's load ran before our CAS it read -1 and did
     * not signal, but then its state CAS precedes our load below in the total
     * order, so we see the done state and signal the fd ourselves. A waiter
     * that found the fd already installed (the fast path) re-checks too: the
     * installer may not have reached this line yet, and an extra write is
     * harmless because the eventfd counter only grows and is never read.
     */
    if (__atomic_load_n(&ctx->state, __ATOMIC_SEQ_CST) != NSC_OK) {
        nsc__signal_done_fd(fd);
    }
    return fd;
}

NSC_API int nsc_wait_fd(nsc_context *ctx, int fd, short events, int64_t timeout_ns, short *revents)
{
    if (revents != NULL) {
        *revents = 0;
    }
    int status = wait_entry(ctx, fd >= 0);
    if (status != NSC_OK) {
        return status;
    }
    /* Past the deadline on entry: likewise answer at once. */
    const int64_t deadline = ctx->deadline_ns;
    int64_t now = nsc__now();
    if (deadline != NSC_NO_DEADLINE && now >= deadline) {
        return NSC_DEADLINE_EXCEEDED;
    }
    const int64_t until = timeout_ns < 0 ? INT64_MAX : nsc__add_sat(now, timeout_ns);

    int done_fd = nsc_done_fd(ctx);
    if (done_fd < 0) {
        return done_fd;
    }

    struct pollfd pfd[2] = {
        { .fd = fd, .events = events, .revents = 0 },
        { .fd = done_fd, .events = POLLIN, .revents = 0 },
    };
    for (;;) {
        /* INT64_MAX stands for both "no deadline" and "no timeout". */
        const int64_t wake_at = until < deadline ? until : deadline;
        struct timespec ts;
        const struct timespec *tsp = NULL;
        if (wake_at != INT64_MAX) {
            ts = nsc__ns_to_timespec(wake_at > now ? wake_at - now : 0);
            tsp = &ts;
        }
        pfd[0].revents = 0;
        pfd[1].revents = 0;
        int n = ppoll(pfd, 2, tsp, NULL);
        if (n < 0 && errno != EINTR) {
            return NSC_ERR_SYSTEM;
        }
        if (revents != NULL) {
            *revents = pfd[0].revents;
        }

        /*
         * The done fd is only written after state became done (by the
         * canceller, or by nsc_done_fd after it saw the done state), so
         * whenever it woke us this load sees the status.
         */
        status = (int) __atomic_load_n(&ctx->state, __ATOMIC_ACQUIRE);
        if (status != NSC_OK) {
            return status;
        }
        now = nsc__now();
        if (deadline != NSC_NO_DEADLINE && now >= deadline) {
            return NSC_DEADLINE_EXCEEDED;
        }
        if (n > 0 && pfd[0].revents != 0) {
            if (pfd[0].revents & POLLNVAL) {
                /* fd is not open: a caller bug, not a readiness. */
                errno = EBADF;
                return NSC_ERR_INVALID;
            }
            return NSC_OK;
        }
        if (now >= until) {
            return NSC_TIMEOUT;
        }
        /* EINTR, or a wake-up that by our clock came early: recompute and wait again. */
    }
}

NSC_API int nsc_sleep(nsc_context *ctx, int64_t duration_ns)
{
    int status = wait_entry(ctx, duration_ns >= 0);
    if (status != NSC_OK) {
        return status;
    }

    const int64_t deadline = ctx->deadline_ns;
    const int64_t until = nsc__add_sat(nsc__now(), duration_ns);
    int result;

    /*
     * Announce ourselves before the first look at state. Pairs with
     * nsc_context_cancel, which stores state and then loads sleepers, both
     * seq_cst: either the canceller sees sleepers > 0 and issues FUTEX_WAKE, or
     * our increment is later in the total order than its state store and the
     * load below (and the kernel's compare of the word with 0 inside
     * FUTEX_WAIT) sees the done state. The futex word itself closes the
     * remaining gap: a wake that comes after our load but before we are queued
     * finds state != 0 in FUTEX_WAIT's compare, which fails with EAGAIN.
     */
    __atomic_add_fetch(&ctx->sleepers, 1, __ATOMIC_SEQ_CST);
    for (;;) {
        status = (int) __atomic_load_n(&ctx->state, __ATOMIC_SEQ_CST);
        if (status != NSC_OK) {
            result = status;
            break;
        }
        const int64_t now = nsc__now();
        if (deadline != NSC_NO_DEADLINE && now >= deadline) {
            result = NSC_DEADLINE_EXCEEDED;
            break;
        }
        if (now >= until) {
            result = NSC_OK;
            break;
        }
        const int64_t wake_at = until < deadline ? until : deadline;
        const struct timespec ts = nsc__ns_to_timespec(wake_at - now);
        if (nsc__futex_wait(&ctx->state, NSC_OK, &ts) < 0 && errno != EAGAIN && errno != EINTR
            && errno != ETIMEDOUT) {
            result = NSC_ERR_SYSTEM;
            break;
        }
        /* Woken, interrupted, timed out or the word changed: the loop head decides which. */
    }
    /* Order does not matter here: a canceller that still counts us only pays a needless wake. */
    __atomic_sub_fetch(&ctx->sleepers, 1, __ATOMIC_SEQ_CST);
    return result;
}
