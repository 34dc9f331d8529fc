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
 *
 * Ending at the deadline by themselves: both waits give the kernel the time
 * left until min(deadline, own timeout) in nanoseconds (ppoll's timespec, the
 * futex's relative timespec; never poll's milliseconds, which would round),
 * computed from a clock read taken just before the system call, and recomputed
 * after every early wake-up. The kernel still lets a timer of a normal-policy
 * thread fire up to its timer slack late (50 us by default, prctl
 * PR_SET_TIMERSLACK), which is the whole lateness of a plain C ppoll here, and
 * which also let the Java side's deadline timer (itself a timed park with the
 * same slack) cancel the context first in most calls. So a timed wait runs
 * with a 1 ns slack and restores the thread's own slack before returning (two
 * prctl calls, well under a microsecond, only when the wait has a finite
 * wake-up time): the wait then wakes within microseconds of its deadline, by
 * its own timer, and reports NSC_DEADLINE_EXCEEDED itself.
 */
/* ppoll(2) is a GNU extension; must precede every system header. */
#define _GNU_SOURCE
#include "nsc_internal.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>

/* The timer slack of a timed wait, in ns (0 would mean "reset to the default" to prctl). */
#define WAIT_TIMER_SLACK_NS 1UL

/*
 * Sets the calling thread's timer slack to WAIT_TIMER_SLACK_NS for a timed
 * wait. @return the slack to restore with slack_restore, or 0 when nothing was
 * changed (the slack could not be read, or already is that tight).
 */
static unsigned long slack_tighten(void)
{
    const int old = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    if (old <= 0 || (unsigned long) old == WAIT_TIMER_SLACK_NS) {
        return 0;
    }
    if (prctl(PR_SET_TIMERSLACK, WAIT_TIMER_SLACK_NS, 0, 0, 0) != 0) {
        return 0;
    }
    return (unsigned long) old;
}

static void slack_restore(unsigned long old)
{
    if (old != 0) {
        /* Cannot fail for a value PR_GET_TIMERSLACK returned; errno is left as the wait set it. */
        const int saved_errno = errno;
        (void) prctl(PR_SET_TIMERSLACK, old, 0, 0, 0);
        errno = saved_errno;
    }
}

/*
 * The entry checks of nsc_wait_fd and nsc_sleep: nsc__ctx_entry's (args_valid:
 * the call's own arguments are), then the state word, so that a context done
 * on entry is answered without creating an fd or blocking.
 * @return NSC_OK to go on, else the status the wait returns.
 */
static int wait_entry(const nsc_context *ctx, bool args_valid)
{
    int entry = nsc__ctx_entry(ctx, args_valid);
    if (entry != NSC_OK) {
        return entry;
    }
    return (int) __atomic_load_n(&ctx->state, __ATOMIC_ACQUIRE);
}

NSC_API int nsc_done_fd(nsc_context *ctx)
{
    int entry = nsc__ctx_entry(ctx, true);
    if (entry != NSC_OK) {
        return entry;
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
    /*
     * The context's own done fd as the fd to wait for: a caller that closed its
     * fd just before the call sees the number reused by the done fd that
     * nsc_done_fd has just created (the lowest free number), and would wait
     * for the context instead of failing. Refused like a closed fd.
     */
    if (fd == done_fd) {
        errno = EBADF;
        return NSC_ERR_INVALID;
    }

    struct pollfd pfd[2] = {
        { .fd = fd, .events = events, .revents = 0 },
        { .fd = done_fd, .events = POLLIN, .revents = 0 },
    };
    /* INT64_MAX stands for both "no deadline" and "no timeout". */
    const int64_t wake_at = until < deadline ? until : deadline;
    const unsigned long slack = wake_at != INT64_MAX ? slack_tighten() : 0;
    for (;;) {
        struct timespec ts;
        const struct timespec *tsp = NULL;
        if (wake_at != INT64_MAX) {
            /* A fresh clock read: the done fd's creation or an early wake-up may have taken a while. */
            now = nsc__now();
            ts = nsc__ns_to_timespec(wake_at > now ? wake_at - now : 0);
            tsp = &ts;
        }
        pfd[0].revents = 0;
        pfd[1].revents = 0;
        int n = ppoll(pfd, 2, tsp, NULL);
        if (n < 0 && errno != EINTR) {
            status = NSC_ERR_SYSTEM;
            break;
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
            break;
        }
        now = nsc__now();
        if (deadline != NSC_NO_DEADLINE && now >= deadline) {
            status = NSC_DEADLINE_EXCEEDED;
            break;
        }
        if (n > 0 && pfd[0].revents != 0) {
            if (pfd[0].revents & POLLNVAL) {
                /* fd is not open: a caller bug, not a readiness. */
                status = NSC_ERR_INVALID;
                slack_restore(slack);
                errno = EBADF;
                return status;
            }
            status = NSC_OK;
            break;
        }
        if (now >= until) {
            status = NSC_TIMEOUT;
            break;
        }
        /* EINTR, or a wake-up that by our clock came early: recompute and wait again. */
    }
    slack_restore(slack);
    return status;
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
    /* until is finite (duration_ns >= 0), so the futex wait is always timed. */
    const unsigned long slack = slack_tighten();
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
    slack_restore(slack);
    /* Order does not matter here: a canceller that still counts us only pays a needless wake. */
    __atomic_sub_fetch(&ctx->sleepers, 1, __ATOMIC_SEQ_CST);
    return result;
}
