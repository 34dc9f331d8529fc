/* heartbeat_cost.sh: user_conv2d timed in C (min of 400 runs), for the heartbeat cost in BENCHMARKS.md section 10. */
#include "nativescope.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
int user_conv2d(nsc_context *ctx, const DLTensor *in, const DLTensor *kernel, DLTensor *out, int64_t repeat, int64_t *rows_done);
static DLTensor t2(float *d, int64_t *shape) { DLTensor t = {0}; t.data = d; t.device.device_type = kDLCPU; t.ndim = 2; t.dtype.code = kDLFloat; t.dtype.bits = 32; t.dtype.lanes = 1; t.shape = shape; return t; }
static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3; }
int main(void) {
    static float x[256*256], k[25], y[252*252];
    for (int i = 0; i < 256*256; i++) x[i] = (float) rand() / RAND_MAX;
    for (int i = 0; i < 25; i++) k[i] = (float) rand() / RAND_MAX;
    int64_t sx[2] = {256,256}, sk[2] = {5,5}, sy[2] = {252,252};
    DLTensor tx = t2(x, sx), tk = t2(k, sk), ty = t2(y, sy);
    nsc_context *ctx = aligned_alloc(64, sizeof(nsc_context));
    nsc_context_init(ctx, NSC_NO_DEADLINE, NULL, 0);
    double best = 1e18;
    for (int round = 0; round < 400; round++) {
        double t0 = now();
        if (user_conv2d(ctx, &tx, &tk, &ty, 1, NULL) != 0) { puts("fail"); return 1; }
        double t = now() - t0;
        if (t < best) best = t;
    }
    printf("%s min %.1f us\n", VARIANT, best);
    return 0;
}
