/*
 * nsc_current.c - the per-thread current context: the nsc_context of the
 * bridged call running on this thread, for native code that is not handed
 * one (a vendor API with fixed signatures, its callbacks, code deep below).
 *
 * One thread-local pointer. Only its own thread ever reads or writes it, so
 * it needs no atomics: a set is ordered before the native code it brackets by
 * program order, and no other thread can see a stale value of it.
 *
 * TLS model: initial-exec. The library is opened with dlopen (the JVM's
 * System.load), whose default for a -fPIC object is the dynamic model: a
 * __tls_get_addr call per access. Initial-exec is one %fs-relative load; for
 * a dlopen'ed library glibc serves it from the static TLS surplus it reserves
 * for exactly this (glibc.rtld.optional_static_tls, 512 bytes by default), of
 * which this takes 8. Measured (make bench-tls, BENCHMARKS.md section 14):
 * a read 1.00x an empty exported call against 2.83x for the default model
 * and 2.24x for TLS descriptors (-mtls-dialect=gnu2); a set + restore pair
 * 2.11x against 6.03x and 4.96x. Should the surplus ever be used up by other
 * libraries, dlopen fails with "cannot allocate memory in static TLS block"
 * (raise it with GLIBC_TUNABLES=glibc.rtld.optional_static_tls=...).
 *
 * nsc_current_slot hands out the slot's address, so the Java bridge sets and
 * restores it with two plain stores instead of two calls (BENCHMARKS.md 14b).
 * With initial-exec the slot sits at a fixed offset from the thread pointer,
 * so its address is fixed for the thread's life. Because the address escapes,
 * the compiler cannot keep `current` in a register across a call that leaves
 * this file (a callback, an upcall into Java that nests a call and stores).
 */
#include "nsc_internal.h"

static __thread nsc_context *current __attribute__((tls_model("initial-exec")));

NSC_API nsc_context *nsc_current(void)
{
    return current;
}

NSC_API nsc_context *nsc_current_set(nsc_context *ctx)
{
    nsc_context *previous = current;
    current = ctx;
    return previous;
}

NSC_API nsc_context **nsc_current_slot(void)
{
    return &current;
}

NSC_API int nsc_current_check(void)
{
    const nsc_context *ctx = current;
    return ctx == NULL ? NSC_OK : nsc_check(ctx);
}

NSC_API int nsc_current_check_clock(void)
{
    nsc_context *ctx = current;
    return ctx == NULL ? NSC_OK : nsc_check_clock(ctx);
}
