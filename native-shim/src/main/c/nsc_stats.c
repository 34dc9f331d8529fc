/*
 * nsc_stats.c - the leak counters (nsc_stats.h): their storage, updated by
 * the rest of the library through nsc__count, and nsc_stats_get.
 */
#include "nsc_internal.h"
#include "nsc_stats.h"

struct nsc__counters nsc__counters;

NSC_API void nsc_stats_get(nsc_stats *out)
{
    if (out == NULL) {
        return;
    }
    out->live_contexts = __atomic_load_n(&nsc__counters.live_contexts, __ATOMIC_RELAXED);
    out->live_fds = __atomic_load_n(&nsc__counters.live_fds, __ATOMIC_RELAXED);
    out->live_hooks = __atomic_load_n(&nsc__counters.live_hooks, __ATOMIC_RELAXED);
    out->native_bytes = __atomic_load_n(&nsc__counters.native_bytes, __ATOMIC_RELAXED);
}
