/*
 * nsc_status.c - library information: ABI version, clock, status names.
 */
#include "nsc_internal.h"

NSC_API int nsc_abi_version(void)
{
    return NSC_ABI_VERSION;
}

NSC_API int64_t nsc_monotonic_ns(void)
{
    return nsc__now();
}

NSC_API int nsc_monotonic_ns_high(void)
{
    return (int) (uint32_t) ((uint64_t) nsc__now() >> 32);
}

NSC_API int nsc_monotonic_ns_low(void)
{
    return (int) (uint32_t) (uint64_t) nsc__now();
}

/*
 * Switches rather than tables indexed by status: statuses run from negative to
 * positive, and any int the caller passes (a status from a newer library, a
 * garbage value) must land in `default` instead of indexing past a table.
 * Both are generated from NSC_STATUS_LIST, so a status added there is named.
 */
#define DESCRIPTION_CASE(name, value, description) \
    case name:                                     \
        return description;
#define NAME_CASE(name, value, description) \
    case name:                              \
        return #name;

NSC_API const char *nsc_strerror(int status)
{
    switch (status) {
    NSC_STATUS_LIST(DESCRIPTION_CASE)
    default:
        return "unknown status";
    }
}

NSC_API const char *nsc_status_name(int status)
{
    switch (status) {
    NSC_STATUS_LIST(NAME_CASE)
    default:
        return "NSC_UNKNOWN";
    }
}
