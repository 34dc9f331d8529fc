/* heartbeat_callgrind.sh: runs user_conv2d from the library named on the command line (dlopen, as
 * the JMH benchmark's FFM lookup does), on the benchmark's tensors (256x256 input, 5x5 kernel,
 * repeat 1) and a live context, RUNS times, for callgrind to count the instructions of
 * user_conv2d and what it calls (--toggle-collect). Instruction counts do not depend on the load.
 * Outside valgrind it also prints the fastest run's time (the minimum resists a loaded machine). */
#include "conv2d_inputs.h"
#include <dlfcn.h>
#include <stdio.h>
#include <time.h>
typedef int (*conv2d_fn)(nsc_context *, const DLTensor *, const DLTensor *, DLTensor *, int64_t, int64_t *);
int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s LIBRARY RUNS\n", argv[0]);
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW);
    conv2d_fn conv2d = lib == NULL ? NULL : (conv2d_fn) dlsym(lib, "user_conv2d");
    if (conv2d == NULL) {
        fprintf(stderr, "cannot load user_conv2d from %s: %s\n", argv[1], dlerror());
        return 1;
    }
    conv2d_inputs in = conv2d_inputs_make();
    nsc_context *ctx = aligned_alloc(64, sizeof(nsc_context));
    nsc_context_init(ctx, NSC_NO_DEADLINE, NULL, 0);
    int runs = atoi(argv[2]);
    double best = 1e18;
    for (int run = 0; run < runs; run++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (conv2d(ctx, &in.x, &in.k, &in.y, 1, NULL) != NSC_OK) {
            puts("user_conv2d failed");
            return 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double us = (t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) / 1e3;
        best = us < best ? us : best;
    }
    printf("%s: fastest of %d runs %.1f us\n", argv[1], runs, best);
    nsc_context_destroy(ctx);
    free(ctx);
    return 0;
}
