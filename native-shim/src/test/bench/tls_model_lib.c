/*
 * tls_model_lib.c - the current-context slot of nsc_current.c alone, built
 * once per TLS model by `make bench-tls` (-ftls-model=..., -mtls-dialect=...)
 * into a shared object that tls_model_bench.c dlopens, as the JVM opens the
 * shim. Not part of the library.
 */
#include <stddef.h>

static __thread void *current;

/* The floor: an exported call that touches no TLS. */
__attribute__((visibility("default"))) void *bench_floor(void)
{
    return NULL;
}

__attribute__((visibility("default"))) void *bench_current(void)
{
    return current;
}

__attribute__((visibility("default"))) void *bench_current_set(void *ctx)
{
    void *previous = current;
    current = ctx;
    return previous;
}
