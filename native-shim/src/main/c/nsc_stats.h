/*
 * nsc_stats.h - the leak counters of libnativescope: what the shim holds
 * (contexts, done fds, hooks, bytes), read by nativescope's Java leak checks
 * and by tests. Not part of the predictor contract (nativescope.h).
 */
#ifndef NSC_STATS_H
#define NSC_STATS_H

#include "nativescope.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Counters of what the shim holds, for leak checks. */
typedef struct nsc_stats {
    int64_t live_contexts;     /* initialised and not yet destroyed */
    int64_t live_fds;          /* done fds created and not yet closed */
    int64_t live_hooks;        /* hooks registered and not yet deregistered */
    int64_t native_bytes;      /* bytes the shim allocated and has not freed */
} nsc_stats;

/**
 * Copies the shim's leak counters into *out (no-op if out is NULL). Each is
 * a recent value; once every thread that touched the shim has been joined,
 * the exact one.
 */
NSC_API void nsc_stats_get(nsc_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* NSC_STATS_H */
