/*
 * test_exchange.c - the shared-memory tensor exchange (nsc_exchange.h): round
 * trips, bad files, the context wait, and producers SIGKILLed mid-write.
 * Versions hold the pattern the Java and Python tests use: dtype and shape by
 * version, byte k = (v * 131 + k * 7 + (k >> 8)) & 0xff.
 */
#define _GNU_SOURCE
#include "nsc_test.h"
#include "nsc_exchange.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dirent.h>

static const DLDataType PATTERN_DTYPES[] = {
    { kDLFloat, 32, 1 }, { kDLFloat, 64, 1 }, { kDLInt, 8, 1 }, { kDLInt, 16, 1 }, { kDLInt, 32, 1 }, { kDLInt, 64, 1 },
    { kDLUInt, 8, 1 }, { kDLUInt, 16, 1 }, { kDLUInt, 32, 1 }, { kDLUInt, 64, 1 }, { kDLFloat, 16, 1 },
};
#define PATTERN_DTYPE_COUNT (sizeof PATTERN_DTYPES / sizeof PATTERN_DTYPES[0])

static int pattern_shape(uint64_t v, int64_t *shape)
{
    int rank = (int) (v % 4);
    for (int d = 0; d < rank; d++) {
        shape[d] = 1 + (int64_t) ((v * 7 + (uint64_t) d * 3) % 9);
    }
    return rank;
}

static uint8_t pattern_at(uint64_t v, uint64_t k)
{
    return (uint8_t) ((v * 131 + k * 7 + (k >> 8)) & 0xff);
}

static uint64_t view_bytes(const nsc_xchg_tensor *t)
{
    uint64_t n = t->dl.dtype.bits / 8;
    for (int d = 0; d < t->dl.ndim; d++) {
        n *= (uint64_t) t->shape[d];
    }
    return n;
}

static void publish_pattern(nsc_exchange *x, uint64_t v)
{
    int64_t shape[4];
    int rank = pattern_shape(v, shape);
    nsc_xchg_tensor t;
    CHECK_STATUS(nsc_exchange_claim(x, PATTERN_DTYPES[v % PATTERN_DTYPE_COUNT], rank, shape, &t), NSC_OK);
    uint8_t *data = (uint8_t *) t.dl.data + t.dl.byte_offset;
    uint64_t n = view_bytes(&t);
    for (uint64_t k = 0; k < n; k++) {
        data[k] = pattern_at(v, k);
    }
    uint64_t got = 0;
    CHECK_STATUS(nsc_exchange_publish(x, &t, &got), NSC_OK);
    CHECK_EQ(got, v);
}

/* @return 1 when the view holds version v's dtype, shape and bytes. */
static int matches_pattern(const nsc_xchg_tensor *t)
{
    uint64_t v = t->version;
    int64_t shape[4];
    int rank = pattern_shape(v, shape);
    DLDataType want = PATTERN_DTYPES[v % PATTERN_DTYPE_COUNT];
    if (t->dl.ndim != rank || t->dl.dtype.code != want.code || t->dl.dtype.bits != want.bits) {
        return 0;
    }
    for (int d = 0; d < rank; d++) {
        if (t->shape[d] != shape[d]) {
            return 0;
        }
    }
    const uint8_t *data = (const uint8_t *) t->dl.data + t->dl.byte_offset;
    uint64_t n = view_bytes(t);
    for (uint64_t k = 0; k < n; k++) {
        if (__atomic_load_n(&data[k], __ATOMIC_RELAXED) != pattern_at(v, k)) {
            return 0;
        }
    }
    return 1;
}

static void temp_path(char *buf, size_t len, const char *what)
{
    snprintf(buf, len, "/dev/shm/nsc-ctest-%s-%d-%llu", what, (int) getpid(), (unsigned long long) t_rand());
}

TEST(exchange_round_trip_and_overrun)
{
    char path[128];
    temp_path(path, sizeof path, "rt");
    nsc_exchange *p = NULL, *c = NULL;
    CHECK_STATUS(nsc_exchange_create(path, 3, 8192, &p), NSC_OK);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    nsc_exchange *again = NULL;
    CHECK_STATUS(nsc_exchange_create(path, 3, 8192, &again), NSC_ERR_SYSTEM);
    CHECK_EQ(errno, EEXIST);
    CHECK_STATUS(nsc_exchange_open(path, 1, &again), NSC_XCHG_BUSY);
    CHECK_STATUS(nsc_exchange_open(path, 0, &c), NSC_OK);
    nsc_xchg_tensor t;
    CHECK_STATUS(nsc_exchange_read(c, 1, 0, &t), NSC_XCHG_EMPTY);
    for (uint64_t v = 1; v <= 100; v++) {
        publish_pattern(p, v);
        CHECK_STATUS(nsc_exchange_read(c, 1, v - 1, &t), NSC_OK);
        CHECK_EQ(t.version, v);
        CHECK(matches_pattern(&t));
        uint64_t len;
        uint8_t *base = nsc_exchange_base(c, &len);
        CHECK((uint8_t *) t.dl.data + t.dl.byte_offset >= base && (uint8_t *) t.dl.data + t.dl.byte_offset <= base + len);
        CHECK(nsc_exchange_still_valid(c, &t));
    }
    for (uint64_t v = 101; v <= 110; v++) {
        publish_pattern(p, v);
    }
    CHECK_STATUS(nsc_exchange_read(c, 1, 100, &t), NSC_XCHG_OVERRUN);
    CHECK_EQ(t.version, 108);
    CHECK_STATUS(nsc_exchange_read(c, 0, 0, &t), NSC_OK);
    CHECK_EQ(t.version, 110);
    CHECK_EQ(nsc_exchange_producer_state(c), 1);
    nsc_exchange_close(p);
    CHECK_EQ(nsc_exchange_producer_state(c), -1);
    /* Closed: a new producer may take over and the versions go on. */
    CHECK_STATUS(nsc_exchange_open(path, 1, &p), NSC_OK);
    publish_pattern(p, 111);
    CHECK_STATUS(nsc_exchange_read(c, 1, 110, &t), NSC_OK);
    CHECK(matches_pattern(&t));
    nsc_exchange_close(p);
    nsc_exchange_close(c);
    unlink(path);
}

static void write_file(const char *path, const void *bytes, size_t len, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, mode);
    CHECK(fd >= 0);
    CHECK(write(fd, bytes, len) == (ssize_t) len);
    fchmod(fd, mode);
    close(fd);
}

TEST(exchange_bad_files_are_refused)
{
    char path[128];
    temp_path(path, sizeof path, "bad");
    nsc_exchange *p = NULL, *c = NULL;
    CHECK_STATUS(nsc_exchange_create(path, 2, 4096, &p), NSC_OK);
    publish_pattern(p, 1);
    uint64_t len;
    uint8_t *base = nsc_exchange_base(p, &len);
    uint8_t *copy = malloc(len);
    memcpy(copy, base, len);
    nsc_exchange_close(p);

    CHECK_STATUS(nsc_exchange_validate(copy, len), NSC_OK);
    CHECK_STATUS(nsc_exchange_validate(copy, len - 1), NSC_XCHG_ERR_FORMAT);
    CHECK_STATUS(nsc_exchange_validate(copy, 100), NSC_XCHG_ERR_FORMAT);
    CHECK_STATUS(nsc_exchange_validate(NULL, len), NSC_XCHG_ERR_FORMAT);

    copy[NSC_XCHG_OFF_MAGIC] ^= 1;
    write_file(path, copy, len, 0600);
    CHECK_STATUS(nsc_exchange_open(path, 0, &c), NSC_XCHG_ERR_FORMAT);
    copy[NSC_XCHG_OFF_MAGIC] ^= 1;

    copy[NSC_XCHG_OFF_VERSION] = 9;
    write_file(path, copy, len, 0600);
    CHECK_STATUS(nsc_exchange_open(path, 0, &c), NSC_XCHG_ERR_FORMAT);
    copy[NSC_XCHG_OFF_VERSION] = NSC_XCHG_LAYOUT_VERSION;

    write_file(path, copy, len - 4096, 0600); /* truncated */
    CHECK_STATUS(nsc_exchange_open(path, 0, &c), NSC_XCHG_ERR_FORMAT);

    write_file(path, copy, len, 0666); /* writable by others */
    errno = 0;
    CHECK_STATUS(nsc_exchange_open(path, 0, &c), NSC_ERR_SYSTEM);
    CHECK_EQ(errno, EACCES);

    /* Slot metadata: outside the slot, overflowing shapes, unknown dtype, too many dims. */
    nsc_xchg_slot m;
    memcpy(&m, copy + NSC_XCHG_HEADER_LENGTH + NSC_XCHG_SLOT_META_LENGTH, sizeof m);
    CHECK_STATUS(nsc_exchange_validate_slot(copy, len, 1, &m), NSC_OK);
    nsc_xchg_slot bad = m;
    bad.data_offset = UINT64_MAX - 3;
    CHECK_STATUS(nsc_exchange_validate_slot(copy, len, 1, &bad), NSC_XCHG_ERR_FORMAT);
    bad = m;
    bad.ndim = 3;
    bad.shape[0] = bad.shape[1] = bad.shape[2] = (int64_t) 1 << 40;
    bad.strides[0] = bad.strides[1] = bad.strides[2] = 1;
    CHECK_STATUS(nsc_exchange_validate_slot(copy, len, 1, &bad), NSC_XCHG_ERR_FORMAT);
    bad = m;
    bad.dtype = 77;
    CHECK_STATUS(nsc_exchange_validate_slot(copy, len, 1, &bad), NSC_XCHG_ERR_FORMAT);
    bad = m;
    bad.ndim = 17;
    CHECK_STATUS(nsc_exchange_validate_slot(copy, len, 1, &bad), NSC_XCHG_ERR_FORMAT);
    CHECK_STATUS(nsc_exchange_validate_slot(copy, len, 2, &m), NSC_XCHG_ERR_FORMAT);
    free(copy);
    unlink(path);
}

/* An action run by another thread after a delay: a cancel, a publication's notify, a stop. */
struct later {
    void (*action)(void *arg);
    void *arg;
    int64_t delay_ns;
};

static void *run_later(void *arg)
{
    struct later *l = arg;
    t_sleep_ns(l->delay_ns);
    l->action(l->arg);
    return NULL;
}

static void cancel_ctx(void *ctx)
{
    nsc_context_cancel(ctx, NSC_CANCELED);
}

static void stop_word(void *word)
{
    nsc_exchange_stop_wait(word);
}

TEST(exchange_waits_end_on_notify_cancel_stop_deadline_timeout_and_close)
{
    char path[128];
    temp_path(path, sizeof path, "wait");
    nsc_exchange *p = NULL;
    CHECK_STATUS(nsc_exchange_create(path, 2, 4096, &p), NSC_OK);
    nsc_xchg_header *h = nsc_exchange_base(p, NULL);
    uint32_t seen = __atomic_load_n(&h->notify, __ATOMIC_ACQUIRE);

    CHECK_STATUS(nsc_exchange_wait(NULL, h, seen, 20 * NS_PER_MS, 0), NSC_TIMEOUT);
    CHECK_STATUS(nsc_exchange_wait(NULL, h, seen + 1, -1, 0), NSC_OK);
    CHECK_STATUS(nsc_exchange_wait(NULL, (char *) h + 1, seen, -1, 0), NSC_ERR_INVALID);

    pthread_t thread;
    struct later n = { nsc_exchange_notify, h, 20 * NS_PER_MS };
    t_thread_start(&thread, run_later, &n);
    CHECK_STATUS(nsc_exchange_wait(NULL, h, seen, 10 * NS_PER_S, 0), NSC_OK);
    t_thread_join_within(thread, 10);
    seen = __atomic_load_n(&h->notify, __ATOMIC_ACQUIRE);

    nsc_context *ctx = t_ctx_new(NSC_NO_DEADLINE, NULL, 0);
    struct later c = { cancel_ctx, ctx, 20 * NS_PER_MS };
    t_thread_start(&thread, run_later, &c);
    int64_t t0 = t_now();
    CHECK_STATUS(nsc_exchange_wait(ctx, h, seen, 10 * NS_PER_S, 50 * NS_PER_MS), NSC_CANCELED);
    CHECK(t_now() - t0 < 5 * NS_PER_S);
    t_thread_join_within(thread, 10);
    CHECK_EQ(__atomic_load_n(&ctx->sleepers, __ATOMIC_SEQ_CST), 0);
    t_ctx_free(ctx);

    ctx = t_ctx_new(t_now() + 30 * NS_PER_MS, NULL, 0);
    CHECK_STATUS(nsc_exchange_wait(ctx, h, seen, 10 * NS_PER_S, 0), NSC_DEADLINE_EXCEEDED);
    CHECK(t_now() >= ctx->deadline_ns);
    t_ctx_free(ctx);

    /* The wait without a context (Java's platform-thread consumer): its stop word ends it like a cancel. */
    uint32_t word = 7;
    CHECK_STATUS(nsc_exchange_wait_stoppable(h, seen, &word, 7, 20 * NS_PER_MS, 0), NSC_TIMEOUT);
    CHECK_STATUS(nsc_exchange_wait_stoppable(h, seen, &word, 6, -1, 0), NSC_CANCELED); /* stopped before it began */
    CHECK_STATUS(nsc_exchange_wait_stoppable(h, seen + 1, &word, 7, -1, 0), NSC_OK);
    CHECK_STATUS(nsc_exchange_wait_stoppable(h, seen, NULL, 0, -1, 0), NSC_ERR_INVALID);
    CHECK_STATUS(nsc_exchange_wait_stoppable((char *) h + 1, seen, &word, 7, -1, 0), NSC_ERR_INVALID);
    CHECK_STATUS(nsc_exchange_wait_stoppable(h, seen, (uint32_t *) ((char *) &word + 1), 7, -1, 0), NSC_ERR_INVALID);

    /* Stopped from another thread while blocked without a timer. */
    struct later st = { stop_word, &word, 20 * NS_PER_MS };
    t_thread_start(&thread, run_later, &st);
    t0 = t_now();
    CHECK_STATUS(nsc_exchange_wait_stoppable(h, seen, &word, 7, -1, 0), NSC_CANCELED);
    CHECK(t_now() - t0 < 5 * NS_PER_S);
    t_thread_join_within(thread, 10);
    CHECK_EQ(word, 8u);

    n.delay_ns = 20 * NS_PER_MS;
    t_thread_start(&thread, run_later, &n);
    CHECK_STATUS(nsc_exchange_wait_stoppable(h, seen, &word, 8, -1, 0), NSC_OK);
    t_thread_join_within(thread, 10);
    nsc_exchange_stop_wait(NULL); /* ignored */

    /* Closing wakes waiters with PRODUCER_CLOSED: a consumer's own mapping stays valid. */
    nsc_exchange *cons = NULL;
    CHECK_STATUS(nsc_exchange_open(path, 0, &cons), NSC_OK);
    nsc_exchange_close(p);
    CHECK_STATUS(nsc_exchange_wait(NULL, nsc_exchange_base(cons, NULL), seen, 10 * NS_PER_S, 0), NSC_OK);
    nsc_xchg_header *hc = nsc_exchange_base(cons, NULL);
    CHECK_STATUS(nsc_exchange_wait(NULL, hc, __atomic_load_n(&hc->notify, __ATOMIC_ACQUIRE), 10 * NS_PER_S, 0),
                 NSC_XCHG_PRODUCER_CLOSED);
    CHECK_STATUS(nsc_exchange_wait_stoppable(hc, __atomic_load_n(&hc->notify, __ATOMIC_ACQUIRE), &word, word, -1, 0),
                 NSC_XCHG_PRODUCER_CLOSED);
    nsc_exchange_close(cons);
    unlink(path);
}

/* The child of the kill test: takes the exchange over and publishes until killed. */
static void produce_until_killed(const char *path)
{
    nsc_exchange *x = NULL;
    for (int attempt = 0; nsc_exchange_open(path, 1, &x) != NSC_OK; attempt++) {
        if (attempt > 1000) {
            _exit(3);
        }
        usleep(100);
    }
    nsc_xchg_header *h = nsc_exchange_base(x, NULL);
    uint64_t v = __atomic_load_n(&h->latest_version, __ATOMIC_ACQUIRE);
    for (;;) {
        v++;
        int64_t shape[4];
        int rank = pattern_shape(v, shape);
        nsc_xchg_tensor t;
        if (nsc_exchange_claim(x, PATTERN_DTYPES[v % PATTERN_DTYPE_COUNT], rank, shape, &t) != NSC_OK) {
            _exit(4);
        }
        uint8_t *data = (uint8_t *) t.dl.data + t.dl.byte_offset;
        uint64_t n = view_bytes(&t);
        for (uint64_t k = 0; k < n; k++) {
            data[k] = pattern_at(v, k);
        }
        nsc_exchange_publish(x, &t, NULL);
    }
}

TEST(exchange_producers_killed_mid_write_1000_times)
{
#if defined(__SANITIZE_ADDRESS__)
    const int rounds = 200; /* fork under ASan copies a large shadow: fewer rounds */
#else
    const int rounds = ITERS(1000);
#endif
    char path[128];
    temp_path(path, sizeof path, "kill");
    nsc_exchange *p = NULL, *c = NULL;
    CHECK_STATUS(nsc_exchange_create(path, 4, 8192, &p), NSC_OK);
    publish_pattern(p, 1);
    nsc_exchange_close(p);
    CHECK_STATUS(nsc_exchange_open(path, 0, &c), NSC_OK);
    nsc_xchg_header *h = nsc_exchange_base(c, NULL);
    uint64_t verified = 0, torn_caught = 0;
    int64_t worst_detect = 0;
    for (int round = 0; round < rounds; round++) {
        uint32_t epoch = __atomic_load_n(&h->producer_epoch, __ATOMIC_ACQUIRE);
        pid_t child = fork();
        CHECK(child >= 0);
        if (child == 0) {
            produce_until_killed(path);
        }
        /* Read while it writes, until it took over and a random time passed. */
        int64_t until = t_now() + 200000 + (int64_t) t_rand_below(1500000);
        while (__atomic_load_n(&h->producer_epoch, __ATOMIC_ACQUIRE) == epoch || t_now() < until) {
            nsc_xchg_tensor t;
            if (nsc_exchange_read(c, 0, 0, &t) == NSC_OK) {
                int ok = matches_pattern(&t);
                if (nsc_exchange_still_valid(c, &t)) {
                    CHECK(ok); /* a view still valid after the read must be the published tensor */
                    verified++;
                } else if (!ok) {
                    torn_caught++;
                }
            }
            if (t_now() > until + 5 * NS_PER_S) {
                break;
            }
        }
        kill(child, SIGKILL);
        int64_t killed = t_now();
        uint32_t seen = __atomic_load_n(&h->notify, __ATOMIC_ACQUIRE);
        int st;
        for (;;) {
            st = nsc_exchange_wait(NULL, h, seen, 5 * NS_PER_S, 60 * NS_PER_S); /* the watcher, not polling, sees it */
            if (st != NSC_OK) {
                break;
            }
            seen = __atomic_load_n(&h->notify, __ATOMIC_ACQUIRE);
        }
        CHECK_STATUS(st, NSC_XCHG_PRODUCER_DEAD);
        int64_t detect = t_now() - killed;
        if (detect > worst_detect) {
            worst_detect = detect;
        }
        int status;
        CHECK(waitpid(child, &status, 0) == child && WIFSIGNALED(status));
        nsc_xchg_tensor t;
        CHECK_STATUS(nsc_exchange_read(c, 0, 0, &t), NSC_OK);
        CHECK(matches_pattern(&t));
    }
    printf("       %d kills, %llu reads verified, %llu overwritten reads caught, slowest death seen %lld us\n", rounds,
           (unsigned long long) verified, (unsigned long long) torn_caught, (long long) (worst_detect / 1000));
    CHECK(worst_detect < 2 * NS_PER_S);
    nsc_exchange_close(c);
    unlink(path);
}

/* ---------------------------------------------------------------------------
 * Dead producers wake untimed waits: the watcher thread (no liveness polling)
 * ------------------------------------------------------------------------- */

static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    CHECK(d != NULL);
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
        n += e->d_name[0] != '.';
    }
    if (d != NULL) {
        closedir(d);
    }
    return n - 1; /* the directory's own descriptor */
}

/* Lets a watcher left by earlier waits end (it lingers ~200 ms), then counts descriptors. */
static int settled_fds(int at_most)
{
    int n = count_fds();
    for (int i = 0; i < 300 && n > at_most; i++) {
        t_sleep_ns(10 * NS_PER_MS);
        n = count_fds();
    }
    return n;
}

/*
 * Forks a child that runs setup(path, &word), sends word to the parent through
 * a pipe and sleeps until killed (exit 3 when setup fails). @return its pid, with *word.
 */
static pid_t fork_sleeping_child(const char *path, int (*setup)(const char *, uint32_t *), uint32_t *word)
{
    int pipefd[2];
    CHECK(pipe(pipefd) == 0);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        close(pipefd[0]);
        uint32_t w = 0;
        if (setup(path, &w) != 0) {
            _exit(3);
        }
        (void) !write(pipefd[1], &w, sizeof w);
        for (;;) {
            pause();
        }
    }
    close(pipefd[1]);
    CHECK(read(pipefd[0], word, sizeof *word) == (ssize_t) sizeof *word);
    close(pipefd[0]);
    return child;
}

static int take_over(const char *path, uint32_t *word)
{
    nsc_exchange *x = NULL;
    *word = 1;
    return nsc_exchange_open(path, 1, &x) == NSC_OK ? 0 : -1;
}

/* A child that takes over the exchange at path (once it has, the parent goes on) and sleeps until killed. */
static pid_t fork_idle_producer(const char *path)
{
    uint32_t ready = 0;
    pid_t child = fork_sleeping_child(path, take_over, &ready);
    CHECK_EQ(ready, 1);
    return child;
}

/* Untimed and timed waits of one round, each thread filling its own entry of the arrays. */
struct untimed_round {
    const nsc_xchg_header *h;
    uint32_t seen;
    int status[4];
    int64_t returned[4];
    int next;                   /* atomic: the index the next thread takes */
};

static void *wait_untimed(void *arg)
{
    struct untimed_round *r = arg;
    int i = __atomic_fetch_add(&r->next, 1, __ATOMIC_SEQ_CST);
    /* Liveness 60 s: a wait that polled would see the death a minute late. Even threads wait untimed. */
    r->status[i] = nsc_exchange_wait(NULL, r->h, r->seen, i % 2 == 0 ? -1 : 10 * NS_PER_S, 60 * NS_PER_S);
    r->returned[i] = t_now();
    return NULL;
}

static int create_closed_exchange(char *path, size_t size, const char *name)
{
    temp_path(path, size, name);
    nsc_exchange *p = NULL;
    CHECK_STATUS(nsc_exchange_create(path, 2, 4096, &p), NSC_OK);
    nsc_exchange_close(p);
    return 0;
}

TEST(exchange_dead_producer_wakes_untimed_waits_and_the_watcher_leaves_nothing)
{
    t_sleep_ns(400 * NS_PER_MS); /* a watcher left by earlier tests' waits ends after its linger */
    int fds_before = count_fds();
    char path[128];
    create_closed_exchange(path, sizeof path, "untimed");
    nsc_exchange *c = NULL;
    CHECK_STATUS(nsc_exchange_open(path, 0, &c), NSC_OK);
    const nsc_xchg_header *h = nsc_exchange_base(c, NULL);
    for (int round = 0; round < 3; round++) {
        pid_t child = fork_idle_producer(path);
        uint32_t seen = __atomic_load_n(&h->notify, __ATOMIC_ACQUIRE);
        struct untimed_round r = { .h = h, .seen = seen, .next = 0 };
        pthread_t threads[4];
        for (int i = 0; i < 4; i++) {
            t_thread_start(&threads[i], wait_untimed, &r);
        }
        t_sleep_ns(30 * NS_PER_MS); /* asleep in the kernel by now (a later start only makes it easier) */
        int64_t killed = t_now();
        kill(child, SIGKILL);
        for (int i = 0; i < 4; i++) {
            t_thread_join_within(threads[i], 20);
        }
        for (int i = 0; i < 4; i++) {
            CHECK_STATUS(r.status[i], NSC_XCHG_PRODUCER_DEAD);
            CHECK(r.returned[i] - killed < 2 * NS_PER_S);
        }
        /* Still a zombie (not reaped): a wait that starts now sees it dead at once. */
        CHECK_STATUS(nsc_exchange_wait(NULL, h, seen, -1, 60 * NS_PER_S), NSC_XCHG_PRODUCER_DEAD);
        int status;
        CHECK(waitpid(child, &status, 0) == child && WIFSIGNALED(status));
        CHECK_STATUS(nsc_exchange_wait(NULL, h, seen, -1, 60 * NS_PER_S), NSC_XCHG_PRODUCER_DEAD);
    }
    nsc_exchange_close(c);
    unlink(path);
    /* The watcher closes its pidfds and eventfd and ends once no wait needs it. */
    CHECK(settled_fds(fds_before) <= fds_before);
}

#if !defined(__SANITIZE_THREAD__) /* TSan kills a forked child of a threaded process that starts a thread */
TEST(exchange_forked_child_waits_with_its_own_watcher)
{
    char path[128];
    create_closed_exchange(path, sizeof path, "forkwait");
    nsc_exchange *c = NULL;
    CHECK_STATUS(nsc_exchange_open(path, 0, &c), NSC_OK);
    const nsc_xchg_header *h = nsc_exchange_base(c, NULL);
    pid_t producer = fork_idle_producer(path);
    /* The parent's watcher runs (its wait times out while watching the producer) ... */
    uint32_t seen = __atomic_load_n(&h->notify, __ATOMIC_ACQUIRE);
    CHECK_STATUS(nsc_exchange_wait(NULL, h, seen, 5 * NS_PER_MS, 60 * NS_PER_S), NSC_TIMEOUT);
    pid_t waiter = fork();
    CHECK(waiter >= 0);
    if (waiter == 0) {
        /* ... and the child, which inherited its table but not its thread, must start its own. */
        _exit(nsc_exchange_wait(NULL, h, seen, -1, 60 * NS_PER_S) == NSC_XCHG_PRODUCER_DEAD ? 0 : 5);
    }
    t_sleep_ns(30 * NS_PER_MS);
    kill(producer, SIGKILL);
    int status = 0;
    pid_t done = 0;
    for (int i = 0; i < 2000 && done == 0; i++) {
        done = waitpid(waiter, &status, WNOHANG);
        if (done == 0) {
            t_sleep_ns(5 * NS_PER_MS);
        }
    }
    if (done == 0) {
        kill(waiter, SIGKILL);
        waitpid(waiter, &status, 0);
    }
    CHECK(done == waiter && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(waitpid(producer, &status, 0) == producer);
    nsc_exchange_close(c);
    unlink(path);
}
#endif

/* Randomized: waiters on random exchanges, untimed or with short timeouts, while producers die at random times. */
#define STRESS_EXCHANGES 3
#define STRESS_WAITERS 6

struct stress {
    const nsc_xchg_header *h[STRESS_EXCHANGES];
    int killed[STRESS_EXCHANGES];      /* atomic: set just before the SIGKILL */
    int64_t killed_at[STRESS_EXCHANGES];
    int all_killed;                     /* atomic */
    int violations;                     /* atomic */
    int64_t worst;                      /* atomic max, ns from kill to DEAD in the final waits */
};

static void *stress_waiter(void *arg)
{
    struct stress *s = arg;
    while (!__atomic_load_n(&s->all_killed, __ATOMIC_ACQUIRE)) {
        int k = (int) t_rand_below(STRESS_EXCHANGES);
        uint32_t seen = __atomic_load_n(&s->h[k]->notify, __ATOMIC_ACQUIRE);
        int killed_before = __atomic_load_n(&s->killed[k], __ATOMIC_ACQUIRE);
        /* Untimed waits only on producers already killed: they must end; the others churn registrations. */
        int64_t timeout = killed_before && t_rand_below(2) ? -1 : (int64_t) t_rand_below(3 * NS_PER_MS);
        int st = nsc_exchange_wait(NULL, s->h[k], seen, timeout, 60 * NS_PER_S);
        int killed_after = __atomic_load_n(&s->killed[k], __ATOMIC_ACQUIRE);
        if ((st == NSC_XCHG_PRODUCER_DEAD && !killed_after) || (st != NSC_XCHG_PRODUCER_DEAD && st != NSC_TIMEOUT)) {
            __atomic_add_fetch(&s->violations, 1, __ATOMIC_SEQ_CST);
        }
    }
    for (int k = 0; k < STRESS_EXCHANGES; k++) {
        uint32_t seen = __atomic_load_n(&s->h[k]->notify, __ATOMIC_ACQUIRE);
        int st = nsc_exchange_wait(NULL, s->h[k], seen, 10 * NS_PER_S, 60 * NS_PER_S);
        int64_t late = t_now() - __atomic_load_n(&s->killed_at[k], __ATOMIC_ACQUIRE);
        if (st != NSC_XCHG_PRODUCER_DEAD) {
            __atomic_add_fetch(&s->violations, 1, __ATOMIC_SEQ_CST);
        }
        int64_t worst = __atomic_load_n(&s->worst, __ATOMIC_RELAXED);
        while (late > worst && !__atomic_compare_exchange_n(&s->worst, &worst, late, 0, __ATOMIC_SEQ_CST,
                                                            __ATOMIC_RELAXED)) {
        }
    }
    return NULL;
}

TEST(exchange_watcher_stress_random_deaths_and_waits)
{
    const int rounds = ITERS(12);
    int64_t worst = 0;
    for (int round = 0; round < rounds; round++) {
        char paths[STRESS_EXCHANGES][128];
        nsc_exchange *c[STRESS_EXCHANGES];
        pid_t children[STRESS_EXCHANGES];
        struct stress s;
        memset(&s, 0, sizeof s);
        for (int k = 0; k < STRESS_EXCHANGES; k++) {
            char name[32];
            snprintf(name, sizeof name, "stress%d", k);
            create_closed_exchange(paths[k], sizeof paths[k], name);
            CHECK_STATUS(nsc_exchange_open(paths[k], 0, &c[k]), NSC_OK);
            s.h[k] = nsc_exchange_base(c[k], NULL);
            children[k] = fork_idle_producer(paths[k]);
        }
        pthread_t threads[STRESS_WAITERS];
        for (int i = 0; i < STRESS_WAITERS; i++) {
            t_thread_start(&threads[i], stress_waiter, &s);
        }
        int order[STRESS_EXCHANGES] = { 0, 1, 2 };
        for (int k = STRESS_EXCHANGES - 1; k > 0; k--) {
            int j = (int) t_rand_below((uint64_t) k + 1), tmp = order[k];
            order[k] = order[j];
            order[j] = tmp;
        }
        for (int k = 0; k < STRESS_EXCHANGES; k++) {
            t_sleep_ns((int64_t) t_rand_below(20 * NS_PER_MS));
            int victim = order[k];
            __atomic_store_n(&s.killed_at[victim], t_now(), __ATOMIC_RELEASE);
            __atomic_store_n(&s.killed[victim], 1, __ATOMIC_RELEASE);
            kill(children[victim], SIGKILL);
        }
        t_sleep_ns((int64_t) t_rand_below(10 * NS_PER_MS));
        __atomic_store_n(&s.all_killed, 1, __ATOMIC_RELEASE);
        for (int i = 0; i < STRESS_WAITERS; i++) {
            t_thread_join_within(threads[i], 30);
        }
        CHECK_EQ(s.violations, 0);
        if (s.worst > worst) {
            worst = s.worst;
        }
        for (int k = 0; k < STRESS_EXCHANGES; k++) {
            int status;
            CHECK(waitpid(children[k], &status, 0) == children[k]);
            nsc_exchange_close(c[k]);
            unlink(paths[k]);
        }
    }
    printf("       %d rounds, slowest death seen by a waiter %lld us after its kill\n", rounds,
           (long long) (worst / 1000));
    CHECK(worst < 2 * NS_PER_S);
}

/* ---------------------------------------------------------------------------
 * C consumers' leases (the header's table, shared with Java and Python)
 * ------------------------------------------------------------------------- */

/* In a child: leases the newest tensor of the exchange at path and reports its slot. */
static int lease_newest(const char *path, uint32_t *slot)
{
    nsc_exchange *x = NULL;
    nsc_xchg_tensor t;
    uint32_t entry;
    if (nsc_exchange_open(path, 0, &x) != NSC_OK || nsc_exchange_read(x, 0, 0, &t) != NSC_OK
        || nsc_exchange_lease(x, &t, &entry) != NSC_OK) {
        return -1;
    }
    *slot = t.slot;
    return 0;
}

TEST(exchange_c_lease_keeps_a_slot_from_reuse_and_a_dead_holder_leaves_nothing)
{
    char path[128];
    temp_path(path, sizeof path, "lease");
    nsc_exchange *p = NULL, *c = NULL;
    CHECK_STATUS(nsc_exchange_create(path, 3, 8192, &p), NSC_OK);
    CHECK_STATUS(nsc_exchange_open(path, 0, &c), NSC_OK);
    publish_pattern(p, 1);
    nsc_xchg_tensor held;
    CHECK_STATUS(nsc_exchange_read(c, 0, 0, &held), NSC_OK);
    uint32_t entry = 0;
    CHECK_STATUS(nsc_exchange_lease(c, &held, &entry), NSC_OK);
    /* Many publications later the leased slot still holds version 1, untouched. */
    for (uint64_t v = 2; v <= 30; v++) {
        publish_pattern(p, v);
        CHECK(nsc_exchange_still_valid(c, &held));
    }
    CHECK_EQ(held.version, 1);
    CHECK(matches_pattern(&held));
    CHECK_STATUS(nsc_exchange_lease_release(c, entry), NSC_OK);
    CHECK_STATUS(nsc_exchange_lease_release(c, entry), NSC_ERR_INVALID); /* released twice */
    for (uint64_t v = 31; v <= 36; v++) {
        publish_pattern(p, v);
    }
    CHECK(!nsc_exchange_still_valid(c, &held)); /* free again: reused */
    /* A view already overwritten cannot be leased. */
    CHECK_STATUS(nsc_exchange_lease(c, &held, &entry), NSC_XCHG_OVERRUN);

    /* A child leases the newest tensor and is killed holding it: the producer frees the entry. */
    uint32_t child_slot = UINT32_MAX;
    pid_t child = fork_sleeping_child(path, lease_newest, &child_slot);
    nsc_xchg_tensor newest;
    CHECK_STATUS(nsc_exchange_read(c, 0, 0, &newest), NSC_OK);
    CHECK_EQ(newest.slot, child_slot);
    for (uint64_t v = 37; v <= 45; v++) {
        publish_pattern(p, v);
        CHECK(nsc_exchange_still_valid(c, &newest)); /* the child's lease holds it */
    }
    kill(child, SIGKILL);
    int status;
    CHECK(waitpid(child, &status, 0) == child);
    for (uint64_t v = 46; v <= 52; v++) {
        publish_pattern(p, v);
    }
    CHECK(!nsc_exchange_still_valid(c, &newest)); /* the dead holder's entry was freed */
    const nsc_xchg_header *h = nsc_exchange_base(c, NULL);
    for (uint32_t i = 0; i < NSC_XCHG_LEASES; i++) {
        CHECK_EQ(__atomic_load_n(&h->leases[i].pid, __ATOMIC_SEQ_CST), 0);
    }

    /* Every entry taken: BUSY, and nothing half-taken is left. */
    nsc_xchg_tensor t;
    CHECK_STATUS(nsc_exchange_read(c, 0, 0, &t), NSC_OK);
    uint32_t entries[NSC_XCHG_LEASES];
    for (uint32_t i = 0; i < NSC_XCHG_LEASES; i++) {
        CHECK_STATUS(nsc_exchange_lease(c, &t, &entries[i]), NSC_OK);
    }
    CHECK_STATUS(nsc_exchange_lease(c, &t, &entry), NSC_XCHG_BUSY);
    for (uint32_t i = 0; i < NSC_XCHG_LEASES; i++) {
        CHECK_STATUS(nsc_exchange_lease_release(c, entries[i]), NSC_OK);
    }
    nsc_exchange_close(c);
    nsc_exchange_close(p);
    unlink(path);
}
