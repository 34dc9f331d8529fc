/* The pre-heartbeat poll (main before issue 17): no counter in nsc_check. */
#include "nativescope.h"
static inline int old_poll(nsc_checker *c) {
    if (c->ctx == NULL) return NSC_OK;
    int s = (int) __atomic_load_n(&c->ctx->state, __ATOMIC_ACQUIRE);
    if (s != NSC_OK) return s;
    if (--c->countdown == 0) { c->countdown = c->interval; return nsc_check_clock(c->ctx); }
    return NSC_OK;
}
#define nsc_checker_poll old_poll
