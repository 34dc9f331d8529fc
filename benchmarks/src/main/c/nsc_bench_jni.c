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
 *
 * And the plain C floors of CancelLatencyBenchmark (issue 12: each goal is a
 * ratio to a floor measured in the same JMH run):
 *   eventfdWake: one waiter pthread blocked in poll(2) on an eventfd; the
 *         calling thread lets settle_ns pass, reads the clock, writes the
 *         eventfd and blocks in read(2) on a reply eventfd until the waiter
 *         reports; returns waiter's clock after poll returned - clock before
 *         the write. The same hand-off as a cancel of an fd-blocked call, with
 *         no Java and no nativescope in it.
 *   ppollLate: one ppoll(2) on a never-signalled eventfd with a timeout_ns
 *         timespec (slack_ns > 0: with that timer slack, prctl
 *         PR_SET_TIMERSLACK, restored after); returns how late it returned:
 *         clock after - (clock just before + timeout_ns).
 *   spinStop: one spinner pthread, woken per sample through an eventfd as the
 *         Java worker is unparked, spins on a plain flag with `pause`; the
 *         calling thread waits until it spins, lets settle_ns pass, reads the
 *         clock, stores the flag and blocks in read(2) until the spinner
 *         reports; returns the spinner's clock after it saw the flag - clock
 *         before the store. The floor of a cancel of a spinning call: the same
 *         thread choreography as CancelLatencyBenchmark.cancelSpin, with a
 *         plain store instead of nativescope's cancel.
 *   wokenEventfdWake: eventfdWake with the same choreography: the waiter
 *         pthread is woken per sample through an eventfd (as the Java worker
 *         is unparked), announces itself and blocks in poll; the caller waits
 *         for the announcement, lets settle_ns pass, writes the eventfd and
 *         blocks until the waiter reports. The floor of the paired fd cases.
 */
#define _GNU_SOURCE
#include <jni.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

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

/* ---------------------------------------------------------------------------
 * Floors
 * ------------------------------------------------------------------------- */

static int wake_fd = -1;
static int reply_fd = -1;
static int idle_fd = -1;
static int64_t woke_at;
static pthread_once_t floors_once = PTHREAD_ONCE_INIT;
static int floors_ok;

/* @return whether a detached thread running fn was started */
static int start_detached(void *(*fn)(void *))
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int ok = pthread_create(&t, &attr, fn, NULL) == 0;
    pthread_attr_destroy(&attr);
    return ok;
}

/* Adds one to the eventfd `fd`, retrying an interrupted write: the floors' "done" reply. */
static void post(int fd)
{
    const uint64_t one = 1;
    while (write(fd, &one, sizeof one) < 0) {
    }
}

static void *wake_waiter(void *arg)
{
    (void) arg;
    for (;;) {
        struct pollfd p = { .fd = wake_fd, .events = POLLIN, .revents = 0 };
        if (poll(&p, 1, -1) < 0) {
            continue;
        }
        const int64_t t = now_ns();
        uint64_t v;
        if (read(wake_fd, &v, sizeof v) != (ssize_t) sizeof v) {
            continue;
        }
        __atomic_store_n(&woke_at, t, __ATOMIC_RELEASE);
        post(reply_fd);
    }
    return NULL;
}

static void floors_init(void)
{
    wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    reply_fd = eventfd(0, EFD_CLOEXEC);
    idle_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd < 0 || reply_fd < 0 || idle_fd < 0) {
        return;
    }
    /* Lives until the JVM exits: one per process, blocked in poll between samples. */
    floors_ok = start_detached(wake_waiter);
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = { .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* @return the wake latency in ns, or -1 when the floor could not be set up */
JNIEXPORT jlong JNICALL Java_dev_nativescope_benchmarks_JniNoop_eventfdWake(JNIEnv *env, jclass clazz, jlong settle_ns)
{
    (void) env;
    (void) clazz;
    pthread_once(&floors_once, floors_init);
    if (!floors_ok) {
        return -1;
    }
    sleep_ns(settle_ns);
    const int64_t start = now_ns();
    const uint64_t one = 1;
    if (write(wake_fd, &one, sizeof one) != (ssize_t) sizeof one) {
        return -1;
    }
    uint64_t v;
    while (read(reply_fd, &v, sizeof v) != (ssize_t) sizeof v) {
    }
    return (jlong) (__atomic_load_n(&woke_at, __ATOMIC_ACQUIRE) - start);
}

/* @return how late ppoll returned after timeout_ns, in ns, or -1 on error */
JNIEXPORT jlong JNICALL Java_dev_nativescope_benchmarks_JniNoop_ppollLate(JNIEnv *env, jclass clazz, jlong timeout_ns,
                                                                          jlong slack_ns)
{
    (void) env;
    (void) clazz;
    pthread_once(&floors_once, floors_init);
    if (idle_fd < 0) {
        return -1;
    }
    int old_slack = 0;
    if (slack_ns > 0) {
        old_slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
        prctl(PR_SET_TIMERSLACK, (unsigned long) slack_ns, 0, 0, 0);
    }
    struct pollfd p = { .fd = idle_fd, .events = POLLIN, .revents = 0 };
    const int64_t start = now_ns();
    const struct timespec ts = { .tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000 };
    int n = ppoll(&p, 1, &ts, NULL);
    const int64_t end = now_ns();
    if (old_slack > 0) {
        prctl(PR_SET_TIMERSLACK, (unsigned long) old_slack, 0, 0, 0);
    }
    return n < 0 ? -1 : (jlong) (end - (start + timeout_ns));
}

/* ---------------------------------------------------------------------------
 * The spinning floor (spinStop)
 * ------------------------------------------------------------------------- */

static int spin_start_fd = -1;
static int spin_reply_fd = -1;
static int spin_stop_flag;
static int spin_running;
static int64_t spin_seen_at;
static int spin_spinner_cpu;
static int spin_caller_cpu;
static pthread_once_t spin_once = PTHREAD_ONCE_INIT;
static int spin_ok;

/* The floor thread's side of start_and_settle: blocks until woken, then announces itself. */
static void await_start(int start_fd, int *announced)
{
    uint64_t v;
    while (read(start_fd, &v, sizeof v) != (ssize_t) sizeof v) {
    }
    __atomic_store_n(announced, 1, __ATOMIC_RELEASE);
}

static void *stop_spinner(void *arg)
{
    (void) arg;
    for (;;) {
        await_start(spin_start_fd, &spin_running);
        while (!__atomic_load_n(&spin_stop_flag, __ATOMIC_ACQUIRE)) {
            __builtin_ia32_pause();
        }
        const int64_t t = now_ns();
        spin_spinner_cpu = sched_getcpu();
        __atomic_store_n(&spin_seen_at, t, __ATOMIC_RELEASE);
        post(spin_reply_fd);
    }
    return NULL;
}

static void spin_init(void)
{
    spin_start_fd = eventfd(0, EFD_CLOEXEC);
    spin_reply_fd = eventfd(0, EFD_CLOEXEC);
    if (spin_start_fd < 0 || spin_reply_fd < 0) {
        return;
    }
    /* Lives until the JVM exits: one per process, blocked in read between samples. */
    spin_ok = start_detached(stop_spinner);
}

/*
 * The worker's choreography, shared by the spinStop and wokenEventfdWake floors:
 * wakes the floor's thread through start_fd (as the benchmark unparks its
 * worker), waits until it sets *announced (spin, then yield, as
 * Worker.awaitInCall), then lets settle_ns pass. The thread is blocked in read
 * on start_fd when this is called, so the reset of *announced races with nothing.
 * @return 0, or -1 when the wake-up could not be written
 */
static int start_and_settle(int start_fd, int *announced, int64_t settle_ns)
{
    __atomic_store_n(announced, 0, __ATOMIC_RELAXED);
    const uint64_t one = 1;
    if (write(start_fd, &one, sizeof one) != (ssize_t) sizeof one) {
        return -1;
    }
    for (int spins = 0; !__atomic_load_n(announced, __ATOMIC_ACQUIRE); spins++) {
        if (spins > 1000) {
            sched_yield();
        }
        __builtin_ia32_pause();
    }
    sleep_ns(settle_ns);
    return 0;
}

/* @return ns from just before the store to the spinner's clock read after it saw it, or -1 on error */
JNIEXPORT jlong JNICALL Java_dev_nativescope_benchmarks_JniNoop_spinStop(JNIEnv *env, jclass clazz, jlong settle_ns)
{
    (void) env;
    (void) clazz;
    pthread_once(&spin_once, spin_init);
    if (!spin_ok) {
        return -1;
    }
    /* The spinner is blocked in read: nothing races with this reset. */
    __atomic_store_n(&spin_stop_flag, 0, __ATOMIC_RELAXED);
    if (start_and_settle(spin_start_fd, &spin_running, settle_ns) != 0) {
        return -1;
    }
    spin_caller_cpu = sched_getcpu();
    const int64_t start = now_ns();
    __atomic_store_n(&spin_stop_flag, 1, __ATOMIC_RELEASE);
    uint64_t v;
    while (read(spin_reply_fd, &v, sizeof v) != (ssize_t) sizeof v) {
    }
    return (jlong) (__atomic_load_n(&spin_seen_at, __ATOMIC_ACQUIRE) - start);
}

/* @return whether the last spinStop sample's spinner saw the store on the caller's CPU */
JNIEXPORT jboolean JNICALL Java_dev_nativescope_benchmarks_JniNoop_spinStopSameCpu(JNIEnv *env, jclass clazz)
{
    (void) env;
    (void) clazz;
    return spin_spinner_cpu == spin_caller_cpu ? JNI_TRUE : JNI_FALSE;
}

/* ---------------------------------------------------------------------------
 * The fd floor with the worker's choreography (wokenEventfdWake)
 * ------------------------------------------------------------------------- */

static int woken_start_fd = -1;
static int woken_wake_fd = -1;
static int woken_reply_fd = -1;
static int woken_polling;
static int64_t woken_at;
static pthread_once_t woken_once = PTHREAD_ONCE_INIT;
static int woken_ok;

static void *woken_waiter(void *arg)
{
    (void) arg;
    for (;;) {
        await_start(woken_start_fd, &woken_polling);
        uint64_t v;
        struct pollfd p = { .fd = woken_wake_fd, .events = POLLIN, .revents = 0 };
        while (poll(&p, 1, -1) != 1) {
        }
        const int64_t t = now_ns();
        while (read(woken_wake_fd, &v, sizeof v) != (ssize_t) sizeof v) {
        }
        __atomic_store_n(&woken_at, t, __ATOMIC_RELEASE);
        post(woken_reply_fd);
    }
    return NULL;
}

static void woken_init(void)
{
    woken_start_fd = eventfd(0, EFD_CLOEXEC);
    woken_wake_fd = eventfd(0, EFD_CLOEXEC);
    woken_reply_fd = eventfd(0, EFD_CLOEXEC);
    if (woken_start_fd < 0 || woken_wake_fd < 0 || woken_reply_fd < 0) {
        return;
    }
    /* Lives until the JVM exits: one per process, blocked in read between samples. */
    woken_ok = start_detached(woken_waiter);
}

/* @return ns from just before the write to the waiter's clock read after poll returned, or -1 on error */
JNIEXPORT jlong JNICALL Java_dev_nativescope_benchmarks_JniNoop_wokenEventfdWake(JNIEnv *env, jclass clazz,
                                                                                 jlong settle_ns)
{
    (void) env;
    (void) clazz;
    pthread_once(&woken_once, woken_init);
    if (!woken_ok) {
        return -1;
    }
    if (start_and_settle(woken_start_fd, &woken_polling, settle_ns) != 0) {
        return -1;
    }
    const int64_t start = now_ns();
    const uint64_t one = 1;
    if (write(woken_wake_fd, &one, sizeof one) != (ssize_t) sizeof one) {
        return -1;
    }
    uint64_t v;
    while (read(woken_reply_fd, &v, sizeof v) != (ssize_t) sizeof v) {
    }
    return (jlong) (__atomic_load_n(&woken_at, __ATOMIC_ACQUIRE) - start);
}
