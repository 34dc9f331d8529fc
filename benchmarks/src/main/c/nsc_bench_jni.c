/*
 * nsc_bench_jni.c - the JNI side of CancellableCallBenchmark's "bare FFM vs
 * nativescope vs JNI" comparison. Not part of the library; it only exists so
 * that the benchmark can put a JNI call next to the same work done through FFM.
 *
 *   noop: returns at once (the JNI counterpart of nsc_noop_ctx);
 *   spin: busy-loops for duration_ns with the loop of nsc_predict_spin (a
 *         `pause` per iteration, a clock read every 64 iterations standing in
 *         for nsc_checker_poll's nsc_check_clock, and the own duration checked
 *         every 1024 iterations), so that it takes as long as
 *         nsc_predict_spin(ctx, duration_ns, NULL) and only the call mechanism
 *         differs.
 */
#include <jni.h>
#include <stdint.h>
#include <time.h>

#define CLOCK_INTERVAL 64

/* Written like the heartbeat in nsc_check_clock, so the periodic clock read is not dead code. */
static volatile int64_t heartbeat_ns;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

JNIEXPORT void JNICALL Java_dev_nativescope_benchmarks_JniNoop_noop(JNIEnv *env, jclass clazz)
{
    (void) env;
    (void) clazz;
}

/* @return how long the loop ran, CLOCK_MONOTONIC ns from entry to exit (like nsc_predict_stats) */
JNIEXPORT jlong JNICALL Java_dev_nativescope_benchmarks_JniNoop_spin(JNIEnv *env, jclass clazz, jlong duration_ns)
{
    (void) env;
    (void) clazz;
    const int64_t start = now_ns();
    const int64_t until = start + duration_ns;
    uint32_t countdown = CLOCK_INTERVAL;
    uint64_t spins = 0;
    for (;;) {
        if (--countdown == 0) {
            countdown = CLOCK_INTERVAL;
            heartbeat_ns = now_ns();
        }
        if ((spins & 1023) == 0 && now_ns() >= until) {
            return (jlong) (now_ns() - start);
        }
        __builtin_ia32_pause();
        spins++;
    }
}
