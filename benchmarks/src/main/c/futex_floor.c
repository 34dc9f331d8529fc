/*
 * futex_floor.c - the floors of ExchangeLatency's publish-to-wake figures: the
 * same one-way handoff between two processes (fork, a MAP_SHARED page) done
 * with nothing but a counter word, a timestamp and (blocked mode) a shared
 * futex. The producer stamps CLOCK_MONOTONIC, increments the word and, in
 * block mode, FUTEX_WAKEs it; the consumer spins on the word (spin) or
 * FUTEX_WAITs on it (block) and records now - stamp.
 *
 *   futex_floor MODE MESSAGES WARMUP INTERVAL_US [WORK_NS]
 *
 * WORK_NS (default 0): the consumer busy-waits that long after each message, as
 * a consumer that does something with it would run (BENCHMARKS.md section 19:
 * from ~6 us of work per message, the blocked wake often takes ~10 us more).
 *
 * MODE is spin or block (the two ExchangeLatency runs), or one of the variants
 * that located the exchange's blocked-wake gap (BENCHMARKS.md section 10), run
 * by hand; each blocks like nsc_exchange_wait in one more respect:
 *   block-file                the page is a /dev/shm file mapping, not anonymous memory
 *   block-waitv               futex_waitv on the word and a private second word (as on
 *                             notify and a context's state), instead of FUTEX_WAIT
 *   block-waitv-file          both
 *   block-waitv-file-timeout  and a 2 ms absolute timeout (its old liveness check), on the
 *                             word alone (as a wait without a context)
 *   block-waitv-file-timeout30s  the same with a 30 s timeout: what a wait with a caller's
 *                             timeout or deadline arms
 *
 * Built with -DNSC_FLOOR_WITH_SHIM against the shim, one more mode, shim, does the
 * same handoff through the exchange's C API (the producer claims and publishes a
 * slot holding the stamp, the consumer waits in nsc_exchange_wait without a
 * timeout and reads with nsc_exchange_read): the shim's share of the blocked
 * wake, without a JVM. A one-off, not run by ExchangeLatency:
 *   make -C native-shim lib BUILD_DIR=/tmp/nsc OUT_DIR=/tmp/nsc/out
 *   gcc -std=gnu11 -O2 -Wall -Wextra -Werror -DNSC_FLOOR_WITH_SHIM -Inative-shim/src/main/c \
 *       -I/usr/include/dlpack -o /tmp/ffs benchmarks/src/main/c/futex_floor.c \
 *       -L/tmp/nsc/out -lnativescope -Wl,-rpath,/tmp/nsc/out
 *   for r in 1 2 3; do for m in block shim; do /tmp/ffs $m 3000 1000 100; done; done
 * (LD_LIBRARY_PATH=... runs it against another build of the shim.)
 *
 * Prints one line: "<mode> n=<n> p50=<ns> p90=<ns> p99=<ns> p999=<ns> max=<ns>".
 * Built and run by ExchangeLatency (gcc -O2); compiled with -Wall -Wextra -Werror.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/futex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef NSC_FLOOR_WITH_SHIM
#include "nsc_exchange.h"
#endif

/* struct futex_waitv and its flags (<linux/futex.h> of 5.16+), spelled out so older headers build. */
#define FLOOR_SYS_FUTEX_WAITV 449
#define FLOOR_FUTEX2_SIZE_U32 0x02u
#define FLOOR_FUTEX2_PRIVATE 128u
struct floor_waitv {
    uint64_t val;
    uint64_t uaddr;
    uint32_t flags;
    uint32_t reserved;
};

struct shared {
    uint32_t seq;           /* the futex word, its own cache line (as the exchange's notify word) */
    char pad1[60];
    int64_t stamp;          /* the "data", another cache line (as a slot's bytes) */
    char pad2[56];
    int64_t latencies[];    /* the consumer's results, read by the parent */
};

struct mode {
    int block, waitv, file, timeout, shim;
    long timeout_ns;
};

static const char *const MODES[] = {
    "spin", "block", "block-file", "block-waitv", "block-waitv-file", "block-waitv-file-timeout",
    "block-waitv-file-timeout30s",
#ifdef NSC_FLOOR_WITH_SHIM
    "shim",
#endif
};

/* The second futex_waitv word: never written, so it only ever costs its compare. */
static uint32_t private_word;

static int parse_mode(const char *name, struct mode *m)
{
    for (size_t i = 0; i < sizeof MODES / sizeof MODES[0]; i++) {
        if (strcmp(name, MODES[i]) == 0) {
            m->block = strcmp(name, "spin") != 0;
            m->waitv = strstr(name, "-waitv") != NULL;
            m->file = strstr(name, "-file") != NULL;
            m->timeout = strstr(name, "-timeout") != NULL;
            m->timeout_ns = strstr(name, "-timeout30s") != NULL ? 30000000000L : 2000000L;
            m->shim = strcmp(name, "shim") == 0;
            return 0;
        }
    }
    return -1;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

/* The shared page of `size` bytes (anonymous, or a /dev/shm file's); MAP_FAILED, errno set, on failure. */
static struct shared *map_shared(size_t size, int file)
{
    if (!file) {
        return mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    }
    const char *path = "/dev/shm/xch2-floorfile";
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        return MAP_FAILED;
    }
    unlink(path);
    struct shared *s = MAP_FAILED;
    if (ftruncate(fd, (off_t) size) == 0) {
        s = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    }
    close(fd);
    return s;
}

/* One block of the consumer while the word is `seen`; it may return early (the caller re-checks). */
static void wait_word(uint32_t *word, uint32_t seen, const struct mode *m)
{
    if (!m->waitv) {
        syscall(SYS_futex, word, FUTEX_WAIT, seen, NULL, NULL, 0);
        return;
    }
    struct floor_waitv w[2] = {
        {seen, (uint64_t) (uintptr_t) word, FLOOR_FUTEX2_SIZE_U32, 0},
        {0, (uint64_t) (uintptr_t) &private_word, FLOOR_FUTEX2_SIZE_U32 | FLOOR_FUTEX2_PRIVATE, 0},
    };
    if (!m->timeout) {
        syscall(FLOOR_SYS_FUTEX_WAITV, w, 2, 0, NULL, CLOCK_MONOTONIC);
        return;
    }
    struct timespec abs;
    clock_gettime(CLOCK_MONOTONIC, &abs);
    abs.tv_sec += m->timeout_ns / 1000000000L;
    abs.tv_nsec += m->timeout_ns % 1000000000L;
    if (abs.tv_nsec >= 1000000000) {
        abs.tv_sec++;
        abs.tv_nsec -= 1000000000;
    }
    syscall(FLOOR_SYS_FUTEX_WAITV, w, 1, 0, &abs, CLOCK_MONOTONIC);
}

int main(int argc, char **argv)
{
    struct mode m;
    if ((argc != 5 && argc != 6) || parse_mode(argv[1], &m) != 0) {
        fprintf(stderr, "usage: %s spin|block|block-file|block-waitv|block-waitv-file|block-waitv-file-timeout"
                "|block-waitv-file-timeout30s MESSAGES WARMUP INTERVAL_US [WORK_NS]\n", argv[0]);
        return 2;
    }
#ifdef NSC_FLOOR_WITH_SHIM
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/nsc-futex-floor-%d", (int) getpid());
    nsc_exchange *producer = NULL;
    if (m.shim && nsc_exchange_create(path, 4, 4096, &producer) != NSC_OK) {
        perror(path);
        return 1;
    }
#endif
    const long messages = atol(argv[2]), warmup = atol(argv[3]), total = messages + warmup;
    const long interval_us = atol(argv[4]);
    const int64_t work_ns = argc == 6 ? atol(argv[5]) : 0;
    size_t size = sizeof(struct shared) + (size_t) total * sizeof(int64_t);
    struct shared *s = map_shared(size, m.file);
    if (s == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    memset(s, 0, sizeof *s);
    for (long i = 0; i < total; i++) {
        s->latencies[i] = -1;
    }
    pid_t child = fork();
    if (child < 0) {
        perror("fork");
        return 1;
    }
    if (child == 0) {
        /* Consumer: the latest message when it wakes (a late wake can coalesce two: the earlier is lost, as
         * with the exchange, whose consumers read the newest). */
        uint32_t seen = 0;
#ifdef NSC_FLOOR_WITH_SHIM
        nsc_exchange *consumer = NULL;
        if (m.shim && nsc_exchange_open(path, 0, &consumer) != NSC_OK) {
            _exit(2);
        }
        while (m.shim && seen < (uint32_t) total) {
            const nsc_xchg_header *h = nsc_exchange_base(consumer, NULL);
            uint32_t notified = __atomic_load_n(&h->notify, __ATOMIC_SEQ_CST);
            nsc_xchg_tensor t;
            if (nsc_exchange_read(consumer, 0, seen, &t) == NSC_OK) {
                int64_t t_now = now_ns();
                s->latencies[t.version - 1] = t_now - *(const int64_t *) ((const char *) t.dl.data + t.dl.byte_offset);
                seen = (uint32_t) t.version;
            } else if (nsc_exchange_wait(NULL, h, notified, -1, 0) != NSC_OK) {
                _exit(3);
            }
        }
#endif
        while (seen < (uint32_t) total) {
            uint32_t cur;
            while ((cur = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE)) == seen) {
                if (m.block) {
                    wait_word(&s->seq, seen, &m);
                } else {
                    __builtin_ia32_pause();
                }
            }
            int64_t t = now_ns();
            s->latencies[cur - 1] = t - __atomic_load_n(&s->stamp, __ATOMIC_RELAXED);
            seen = cur;
            while (now_ns() - t < work_ns) {
                __builtin_ia32_pause();
            }
        }
        _exit(0);
    }
    /* Producer: one message per interval (the consumer is back waiting by then). */
    struct timespec pause = { interval_us / 1000000, (interval_us % 1000000) * 1000 };
    usleep(100000);
    for (long i = 0; i < total; i++) {
        nanosleep(&pause, NULL);
#ifdef NSC_FLOOR_WITH_SHIM
        if (m.shim) {
            int64_t shape[1] = { 8 };
            nsc_xchg_tensor t;
            if (nsc_exchange_claim(producer, (DLDataType) { kDLInt, 64, 1 }, 1, shape, &t) != NSC_OK) {
                return 1;
            }
            *(int64_t *) ((char *) t.dl.data + t.dl.byte_offset) = now_ns();
            nsc_exchange_publish(producer, &t, NULL);
            continue;
        }
#endif
        __atomic_store_n(&s->stamp, now_ns(), __ATOMIC_RELAXED);
        __atomic_fetch_add(&s->seq, 1, __ATOMIC_SEQ_CST);
        if (m.block) {
            syscall(SYS_futex, &s->seq, FUTEX_WAKE, 1, NULL, NULL, 0);
        }
    }
    int status;
    waitpid(child, &status, 0);
#ifdef NSC_FLOOR_WITH_SHIM
    if (m.shim) {
        nsc_exchange_close(producer);
        unlink(path);
    }
#endif
    /* Messages the consumer saw (a coalesced one stays -1), after the warm-up. */
    int64_t *l = s->latencies + warmup;
    long n = 0;
    for (long i = 0; i < messages; i++) {
        if (l[i] >= 0) {
            l[n++] = l[i];
        }
    }
    if (n == 0) {
        return 1;
    }
    qsort(l, (size_t) n, sizeof *l, cmp);
    printf("%s n=%ld p50=%lld p90=%lld p99=%lld p999=%lld max=%lld\n", argv[1], n,
           (long long) l[n / 2], (long long) l[n * 90 / 100], (long long) l[n * 99 / 100],
           (long long) l[n * 999 / 1000], (long long) l[n - 1]);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
