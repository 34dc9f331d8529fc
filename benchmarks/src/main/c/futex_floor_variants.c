/*
 * futex_floor_variants.c - futex_floor.c with the variants that located the exchange's blocked-wake
 * gap (BENCHMARKS.md section 10): mode block | block-waitv | block-file | block-waitv-file |
 * block-waitv-file-timeout (futex_waitv on a /dev/shm file mapping with a 2 ms absolute timeout,
 * as nsc_exchange_wait did for its liveness checks) | block-waitv-file-timeout30s (the same with a
 * 30 s timeout: what a wait with a caller's timeout or deadline arms). A one-off, not run by ExchangeLatency:
 *   gcc -std=gnu11 -O2 -Wall -Wextra -o /tmp/ffv benchmarks/src/main/c/futex_floor_variants.c
 *   for m in block-waitv-file block-waitv-file-timeout; do /tmp/ffv $m 20000 5000 100; done
 *
 * (futex_floor.c's description follows.)
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
#include <fcntl.h>
struct fwv { uint64_t val, uaddr; uint32_t flags, pad; };
static uint32_t private_word;

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
    const int block = strcmp(argv[1], "spin") != 0;
    const int waitv = strstr(argv[1], "waitv") != NULL, filemap = strstr(argv[1], "file") != NULL;
    const long messages = atol(argv[2]), warmup = atol(argv[3]), total = messages + warmup;
    const long interval_us = atol(argv[4]);
    size_t size = sizeof(struct shared) + (size_t) total * sizeof(int64_t);
    int fd = -1;
    if (filemap) { fd = open("/dev/shm/xch2-floorfile", O_RDWR | O_CREAT | O_TRUNC, 0600); if (ftruncate(fd, (off_t) size)) return 1; unlink("/dev/shm/xch2-floorfile"); }
    struct shared *s = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | (filemap ? 0 : MAP_ANONYMOUS), fd, 0);
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
        while (seen < (uint32_t) total) {
            uint32_t cur;
            while ((cur = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE)) == seen) {
                if (block) {
                    if (waitv) {
                        struct fwv w[2] = { { seen, (uint64_t) (uintptr_t) &s->seq, 2, 0 }, { 0, (uint64_t) (uintptr_t) &private_word, 2 | 128, 0 } };
                        if (strstr(argv[1], "timeout")) { struct timespec abs; clock_gettime(CLOCK_MONOTONIC, &abs); if (strstr(argv[1], "timeout30s")) abs.tv_sec += 30; else abs.tv_nsec += 2000000; if (abs.tv_nsec >= 1000000000) { abs.tv_sec++; abs.tv_nsec -= 1000000000; } syscall(449, w, 2, 0, &abs, CLOCK_MONOTONIC); } else syscall(449, w, 2, 0, NULL, CLOCK_MONOTONIC);
                    } else {
                        syscall(SYS_futex, &s->seq, FUTEX_WAIT, seen, NULL, NULL, 0);
                    }
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
        __atomic_store_n(&s->stamp, now_ns(), __ATOMIC_RELAXED);
        __atomic_fetch_add(&s->seq, 1, __ATOMIC_SEQ_CST);
        if (block) {
            syscall(SYS_futex, &s->seq, FUTEX_WAKE, 1, NULL, NULL, 0);
        }
    }
    int status;
    waitpid(child, &status, 0);
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
