/*
 * tls_model_bench.c - which TLS model for nsc_current()? dlopens each
 * variant of tls_model_lib.c named on the command line (RTLD_NOW |
 * RTLD_LOCAL, as the JVM's System.load does) and times, per variant, a read
 * of the slot (bench_current) and a set + restore pair (bench_current_set
 * twice), against an empty exported function of the same library
 * (bench_floor), timed in the same rounds. Several rounds, interleaved across variants, best round reported:
 * the machine is shared.
 *
 *   make bench-tls BUILD_DIR=/tmp/nsc     builds the variants and runs this
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CALLS 20000000L
#define ROUNDS 7
#define MAX_VARIANTS 8

typedef void *(*get_fn)(void);
typedef void *(*set_fn)(void *);

struct variant {
    const char *path;
    get_fn floor;
    get_fn get;
    set_fn set;
    double best_floor;
    double best_get;
    double best_pair;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Calls through volatile function pointers: as from another library (a PLT call), never inlined. */
static double time_get(get_fn get)
{
    get_fn volatile fn = get;
    uintptr_t sink = 0;
    int64_t start = now_ns();
    for (long i = 0; i < CALLS; i++) {
        sink += (uintptr_t) fn();
    }
    int64_t elapsed = now_ns() - start;
    __asm__ volatile("" : : "r"(sink));
    return (double) elapsed / CALLS;
}

static double time_pair(set_fn set)
{
    set_fn volatile fn = set;
    static char ctx[64];
    int64_t start = now_ns();
    for (long i = 0; i < CALLS; i++) {
        void *previous = fn(ctx);
        fn(previous);
    }
    return (double) (now_ns() - start) / CALLS;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc - 1 > MAX_VARIANTS) {
        fprintf(stderr, "usage: %s variant.so... (at most %d)\n", argv[0], MAX_VARIANTS);
        return 2;
    }
    struct variant variants[MAX_VARIANTS];
    int count = argc - 1;
    for (int v = 0; v < count; v++) {
        void *lib = dlopen(argv[v + 1], RTLD_NOW | RTLD_LOCAL);
        if (lib == NULL) {
            fprintf(stderr, "dlopen %s: %s\n", argv[v + 1], dlerror());
            return 1;
        }
        if (dlsym(lib, "bench_floor") == NULL || dlsym(lib, "bench_current") == NULL
            || dlsym(lib, "bench_current_set") == NULL) {
            fprintf(stderr, "%s: not a tls_model_lib.c build\n", argv[v + 1]);
            return 1;
        }
        variants[v] = (struct variant) {
            .path = argv[v + 1],
            .floor = (get_fn) dlsym(lib, "bench_floor"),
            .get = (get_fn) dlsym(lib, "bench_current"),
            .set = (set_fn) dlsym(lib, "bench_current_set"),
            .best_floor = 1e9,
            .best_get = 1e9,
            .best_pair = 1e9,
        };
    }
    for (int round = 0; round < ROUNDS; round++) {
        for (int v = 0; v < count; v++) {
            double floor = time_get(variants[v].floor);
            double get = time_get(variants[v].get);
            double pair = time_pair(variants[v].set);
            if (floor < variants[v].best_floor) {
                variants[v].best_floor = floor;
            }
            if (get < variants[v].best_get) {
                variants[v].best_get = get;
            }
            if (pair < variants[v].best_pair) {
                variants[v].best_pair = pair;
            }
        }
    }
    printf("%-24s %10s %10s %10s %16s %10s\n", "variant", "floor ns", "get ns", "get/floor", "set+restore ns",
           "pair/floor");
    for (int v = 0; v < count; v++) {
        const struct variant *r = &variants[v];
        const char *name = strrchr(r->path, '/') ? strrchr(r->path, '/') + 1 : r->path;
        printf("%-24s %10.2f %10.2f %10.2f %16.2f %10.2f\n", name, r->best_floor, r->best_get,
               r->best_get / r->best_floor, r->best_pair, r->best_pair / r->best_floor);
    }
    return 0;
}
