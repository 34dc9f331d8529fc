/*
 * futex_floor.c - the floors of ExchangeLatency's publish-to-wake figures: the
 * same one-way handoff between two processes (fork, a MAP_SHARED page) done
 * with nothing but a counter word, a timestamp and (blocked mode) a shared
 * futex. The producer stamps CLOCK_MONOTONIC, increments the word and, in
 * block mode, FUTEX_WAKEs it; the consumer spins on the word (spin) or
 * FUTEX_WAITs on it (block) and records now - stamp.
 *
 *   futex_floor spin|block MESSAGES WARMUP INTERVAL_US
 *
 * Prints one line: "<mode> n=<n> p50=<ns> p90=<ns> p99=<ns> p999=<ns> max=<ns>".
 * Built and run by ExchangeLatency (gcc -O2); compiled with -Wall -Wextra -Werror.
 *
 * Built with -DNSC_FLOOR_WITH_SHIM against the shim, a third mode, shim, does
 * the same handoff through the exchange's C API (the producer claims and
 * publishes a slot holding the stamp, the consumer waits in nsc_exchange_wait
 * without a timeout and reads with nsc_exchange_read): the shim's share of
 * the blocked wake, without a JVM. A one-off, not run by ExchangeLatency:
 *   make -C native-shim lib BUILD_DIR=/tmp/nsc OUT_DIR=/tmp/nsc/out
 *   gcc -std=gnu11 -O2 -Wall -Wextra -Werror -DNSC_FLOOR_WITH_SHIM -Inative-shim/src/main/c \
 *       -I/usr/include/dlpack -o /tmp/ffs benchmarks/src/main/c/futex_floor.c \
 *       -L/tmp/nsc/out -lnativescope -Wl,-rpath,/tmp/nsc/out
 *   for r in 1 2 3; do for m in block shim; do /tmp/ffs $m 3000 1000 100; done; done
 * (LD_LIBRARY_PATH=... runs it against another build of the shim.)
 */
#define _GNU_SOURCE
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

struct shared {
    uint32_t seq;           /* the futex word, its own cache line (as the exchange's notify word) */
    char pad1[60];
    int64_t stamp;          /* the "data", another cache line (as a slot's bytes) */
    char pad2[56];
    int64_t latencies[];    /* the consumer's results, read by the parent */
};

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

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s spin|block MESSAGES WARMUP INTERVAL_US\n", argv[0]);
        return 2;
    }
    const int block = strcmp(argv[1], "block") == 0;
#ifdef NSC_FLOOR_WITH_SHIM
    const int shim = strcmp(argv[1], "shim") == 0;
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/nsc-futex-floor-%d", (int) getpid());
    nsc_exchange *producer = NULL;
    if (shim && nsc_exchange_create(path, 4, 4096, &producer) != NSC_OK) {
        perror(path);
        return 1;
    }
#endif
    const long messages = atol(argv[2]), warmup = atol(argv[3]), total = messages + warmup;
    const long interval_us = atol(argv[4]);
    size_t size = sizeof(struct shared) + (size_t) total * sizeof(int64_t);
    struct shared *s = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
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
        if (shim && nsc_exchange_open(path, 0, &consumer) != NSC_OK) {
            _exit(2);
        }
        while (shim && seen < (uint32_t) total) {
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
                if (block) {
                    syscall(SYS_futex, &s->seq, FUTEX_WAIT, seen, NULL, NULL, 0);
                } else {
                    __builtin_ia32_pause();
                }
            }
            int64_t t = now_ns();
            s->latencies[cur - 1] = t - __atomic_load_n(&s->stamp, __ATOMIC_RELAXED);
            seen = cur;
        }
        _exit(0);
    }
    /* Producer: one message per interval (the consumer is back waiting by then). */
    struct timespec pause = { interval_us / 1000000, (interval_us % 1000000) * 1000 };
    usleep(100000);
    for (long i = 0; i < total; i++) {
        nanosleep(&pause, NULL);
#ifdef NSC_FLOOR_WITH_SHIM
        if (shim) {
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
        if (block) {
            syscall(SYS_futex, &s->seq, FUTEX_WAKE, 1, NULL, NULL, 0);
        }
    }
    int status;
    waitpid(child, &status, 0);
#ifdef NSC_FLOOR_WITH_SHIM
    if (shim) {
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
