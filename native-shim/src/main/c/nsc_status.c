/*
 * nsc_status.c - library information: ABI version, clock, status names,
 * leak counters.
 */
#include "nsc_internal.h"

struct nsc__counters nsc__counters;

NSC_API int nsc_abi_version(void)
{
    return NSC_ABI_VERSION;
}

NSC_API int64_t nsc_monotonic_ns(void)
{
    return nsc__now();
}

/*
 * Switches rather than tables indexed by status: statuses run from negative to
 * positive, and any int the caller passes (a status from a newer library, a
 * garbage value) must land in `default` instead of indexing past a table.
 */
NSC_API const char *nsc_strerror(int status)
{
    switch (status) {
    case NSC_OK:
        return "success";
    case NSC_CANCELED:
        return "the context was cancelled";
    case NSC_DEADLINE_EXCEEDED:
        return "the context's deadline passed";
    case NSC_TIMEOUT:
        return "the wait's own timeout elapsed";
    case NSC_NOT_FOUND:
        return "no value under that key";
    case NSC_ALREADY_DONE:
        return "already done";
    case NSC_ERR_INVALID:
        return "invalid argument";
    case NSC_ERR_SYSTEM:
        return "a system call failed (see errno)";
    case NSC_ERR_NOMEM:
        return "out of memory";
    case NSC_ERR_ABI:
        return "the context was initialised by another ABI version, or not at all";
    case NSC_ERR_BUSY:
        return "cancel hooks are still registered";
    default:
        return "unknown status";
    }
}

NSC_API const char *nsc_status_name(int status)
{
    switch (status) {
    case NSC_OK:
        return "NSC_OK";
    case NSC_CANCELED:
        return "NSC_CANCELED";
    case NSC_DEADLINE_EXCEEDED:
        return "NSC_DEADLINE_EXCEEDED";
    case NSC_TIMEOUT:
        return "NSC_TIMEOUT";
    case NSC_NOT_FOUND:
        return "NSC_NOT_FOUND";
    case NSC_ALREADY_DONE:
        return "NSC_ALREADY_DONE";
    case NSC_ERR_INVALID:
        return "NSC_ERR_INVALID";
    case NSC_ERR_SYSTEM:
        return "NSC_ERR_SYSTEM";
    case NSC_ERR_NOMEM:
        return "NSC_ERR_NOMEM";
    case NSC_ERR_ABI:
        return "NSC_ERR_ABI";
    case NSC_ERR_BUSY:
        return "NSC_ERR_BUSY";
    default:
        return "NSC_UNKNOWN";
    }
}

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
