/*
 * test_hold.c - nsc_hold_segments: rejects bad arguments, sets the entered
 * flag, stays blocked until the release fd is signalled (also through signals
 * interrupting poll), returns NSC_OK once it is, and never drains the fd.
 */
#include "nsc_test.h"
#include "nsc_internal.h" /* nsc_hold_run, nsc_hold_ort_run: exported, but for the Java side only */

#include <poll.h>
#include <string.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct holder {
    uint32_t entered;
    int fd;
    int returned; /* atomic: set after nsc_hold_segments returns */
    int status;
};

static void *hold_thread(void *arg)
{
    struct holder *h = arg;
    static const char bytes[8] = { 0 };
    h->status = nsc_hold_segments(&h->entered, h->fd, bytes, bytes + 1, NULL, NULL, NULL, NULL, NULL, bytes + 7);
    __atomic_store_n(&h->returned, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void wait_entered(struct holder *h)
{
    int64_t give_up = t_now() + 10 * NS_PER_S;
    while (__atomic_load_n(&h->entered, __ATOMIC_ACQUIRE) == 0) {
        if (t_now() > give_up) {
            nsc_test_abort(__FILE__, __LINE__, "nsc_hold_segments never set entered");
        }
        t_sleep_ns(NS_PER_MS / 10);
    }
}

static void on_usr1(int sig)
{
    (void) sig;
}

TEST(hold_segments_rejects_bad_arguments)
{
    uint32_t entered = 0;
    CHECK_STATUS(nsc_hold_segments(NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL), NSC_ERR_INVALID);
    CHECK_STATUS(nsc_hold_segments(&entered, -1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL), NSC_ERR_INVALID);
    CHECK_EQ(entered, 0);
}

TEST(hold_segments_returns_only_after_the_fd_is_signalled)
{
    int fd = eventfd(0, EFD_CLOEXEC);
    CHECK(fd >= 0);
    struct holder h = { .entered = 0, .fd = fd, .returned = 0, .status = 99 };
    pthread_t thread;
    t_thread_start(&thread, hold_thread, &h);
    wait_entered(&h);

    /* Interrupt poll with a signal: EINTR must loop, not return. */
    struct sigaction sa = { 0 };
    struct sigaction old;
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGUSR1, &sa, &old), 0);
    CHECK_EQ(pthread_kill(thread, SIGUSR1), 0);

    /* Not before: still blocked a while after entering. */
    t_sleep_ns(50 * NS_PER_MS);
    CHECK_EQ(__atomic_load_n(&h.returned, __ATOMIC_ACQUIRE), 0);

    uint64_t one = 1;
    CHECK_EQ(write(fd, &one, sizeof one), (long long) sizeof one);
    t_thread_join_within(thread, 10);
    CHECK_EQ(h.returned, 1);
    CHECK_STATUS(h.status, NSC_OK);
    CHECK_EQ(sigaction(SIGUSR1, &old, NULL), 0);

    /* Never drained: the fd is still readable, so another holder on it returns at once. */
    struct pollfd p = { .fd = fd, .events = POLLIN, .revents = 0 };
    CHECK_EQ(poll(&p, 1, 0), 1);
    uint32_t entered = 0;
    CHECK_STATUS(nsc_hold_segments(&entered, fd, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL), NSC_OK);
    CHECK_EQ(entered, 1);
    close(fd);
}

TEST(hold_segments_many_holders_on_one_fd)
{
    enum { N = 8 };
    int fd = eventfd(0, EFD_CLOEXEC);
    CHECK(fd >= 0);
    struct holder hs[N];
    pthread_t threads[N];
    for (int i = 0; i < N; i++) {
        hs[i] = (struct holder) { .entered = 0, .fd = fd, .returned = 0, .status = 99 };
        t_thread_start(&threads[i], hold_thread, &hs[i]);
    }
    for (int i = 0; i < N; i++) {
        wait_entered(&hs[i]);
    }
    for (int i = 0; i < N; i++) {
        CHECK_EQ(__atomic_load_n(&hs[i].returned, __ATOMIC_ACQUIRE), 0);
    }
    uint64_t one = 1;
    CHECK_EQ(write(fd, &one, sizeof one), (long long) sizeof one);
    for (int i = 0; i < N; i++) {
        t_thread_join_within(threads[i], 10);
        CHECK_STATUS(hs[i].status, NSC_OK);
    }
    close(fd);
}

static int hold_run_calls;

static void count_run(void)
{
    hold_run_calls++;
}

TEST(hold_run_calls_back_once_and_tolerates_null)
{
    char bytes[8] = { 0 };
    hold_run_calls = 0;
    nsc_hold_run(count_run, bytes, NULL, NULL, NULL, NULL, NULL, NULL, bytes + 7);
    CHECK(hold_run_calls == 1);
    nsc_hold_run(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    CHECK(hold_run_calls == 1);
}

/* Stands in for OrtApi::Run: records what it was given, fails when asked to (a non-NULL OrtStatus*). */
static struct {
    uintptr_t session, run_options, input_names, inputs, output_names, outputs;
    size_t input_len, output_len;
    int calls;
} fake_run;

static struct OrtStatus *fake_ort_run(struct OrtSession *session, const struct OrtRunOptions *run_options,
                                      const char *const *input_names, const struct OrtValue *const *inputs,
                                      size_t input_len, const char *const *output_names, size_t output_len,
                                      struct OrtValue **outputs)
{
    fake_run.calls++;
    fake_run.session = (uintptr_t) session;
    fake_run.run_options = (uintptr_t) run_options;
    fake_run.input_names = (uintptr_t) input_names;
    fake_run.inputs = (uintptr_t) inputs;
    fake_run.input_len = input_len;
    fake_run.output_names = (uintptr_t) output_names;
    fake_run.output_len = output_len;
    fake_run.outputs = (uintptr_t) outputs;
    return input_len == 0 ? (struct OrtStatus *) (uintptr_t) 0x5a : NULL;
}

TEST(hold_ort_run_passes_every_argument_and_returns_the_status)
{
    char bytes[8] = { 0 };
    memset(&fake_run, 0, sizeof fake_run);
    uintptr_t status = nsc_hold_ort_run((uintptr_t) fake_ort_run, 0x10, 0x20, 0x30, 0x40, 2, 0x50, 1, 0x60, bytes,
                                        NULL, NULL, bytes + 7);
    CHECK(status == 0);
    CHECK(fake_run.calls == 1);
    CHECK(fake_run.session == 0x10 && fake_run.run_options == 0x20 && fake_run.input_names == 0x30);
    CHECK(fake_run.inputs == 0x40 && fake_run.input_len == 2 && fake_run.output_names == 0x50);
    CHECK(fake_run.output_len == 1 && fake_run.outputs == 0x60);
    status = nsc_hold_ort_run((uintptr_t) fake_ort_run, 0x10, 0, 0, 0, 0, 0x50, 1, 0x60, NULL, NULL, NULL, NULL);
    CHECK(status == 0x5a);
    CHECK(fake_run.calls == 2);
}
