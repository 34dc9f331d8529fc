/*
 * zero_copy_floor.c - the floor of ZeroCopyDenseBenchmark (BENCHMARKS.md section 23): one
 * inference from an input file to a new output file, done with nothing but the syscalls each
 * kind of path needs, so the kernel's share of "mapped vs copied" is measured apart from ours.
 *
 *   zero_copy_floor DIR SAMPLES THREADS BYTES...
 *
 * For each BYTES (the size of x and of y, as the benchmark's rows x 64 floats) it writes DIR/x
 * and then takes SAMPLES samples; a sample runs every path once, the order rotating per sample
 * (as AlternatedPairs does), each on a new output file that is unlinked outside the timing:
 *
 *   copied     open(x), pread(x) into a buffer, close; compute into a second buffer;
 *              open(y, O_CREAT|O_EXCL), pwrite(header), pwrite(data), close; the two buffers are
 *              allocated once per size and reused (the least a copying path can do)
 *   copied-fresh  the same with both buffers malloc'ed and freed per inference, as the
 *              benchmark's copied path allocates them in a fresh arena (glibc serves these
 *              sizes from mmap or from the heap depending on its dynamic threshold)
 *   mapped     open(x), fstat, pread(header), mmap(x), close; open(y, O_CREAT|O_EXCL),
 *              posix_fallocate, pwrite(header), mmap(y), close; compute x -> y in place; munmap x2
 *              (the minimum of a zero-copy path that reserves its output's storage, as
 *              MappedFile.create does)
 *   mapped-checked  the same with x opened as the library opens a hostile file: O_PATH open,
 *              statx, open("/proc/self/fd/N"), close of the O_PATH descriptor
 *   mapped-sparse   mapped with ftruncate instead of posix_fallocate (Option.SPARSE)
 *   mapped-populate mapped with madvise(MADV_POPULATE_WRITE) on y before the compute
 *   mapped-mappopulate  mapped with MAP_POPULATE on y's mmap
 *
 * "compute" is y[i] = x[i] + 1 over the floats: every byte of x read, every byte of y written,
 * the same for all paths, so only the way the bytes get in and out differs.
 *
 * THREADS idle threads (each sleeping 1 ms in a loop, as a JVM's periodic threads wake) make the
 * process multi-threaded like a JVM: munmap then has to consider other CPUs that ran the mm (TLB
 * shootdown IPIs).
 *
 * Prints per BYTES and path: "bytes=<n> <path> p50=<us> p90=<us>", then
 * "bytes=<n> copied/<path> p50 ratio=<r>" for each mapped path (> 1: the mapped path is faster).
 * Built by hand: gcc -std=gnu11 -O2 -Wall -Wextra -Werror -pthread -o /tmp/zcf
 * benchmarks/src/main/c/zero_copy_floor.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define HEADER 128
#define PATHS 7

enum path { COPIED, COPIED_FRESH, MAPPED, MAPPED_CHECKED, MAPPED_SPARSE, MAPPED_POPULATE, MAPPED_MAPPOPULATE };
static const char *const NAMES[PATHS] = {
    "copied", "copied-fresh", "mapped", "mapped-checked", "mapped-sparse", "mapped-populate", "mapped-mappopulate"};

static void die(const char *what) {
    perror(what);
    exit(1);
}

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void *idle_thread(void *unused) {
    (void)unused;
    struct timespec ms = {0, 1000000};
    for (;;) {
        nanosleep(&ms, NULL);
    }
    return NULL;
}

static void compute(const float *x, float *y, size_t floats) {
    for (size_t i = 0; i < floats; i++) {
        y[i] = x[i] + 1.0f;
    }
}

static void pread_all(int fd, void *buffer, size_t bytes, off_t offset) {
    size_t done = 0;
    while (done < bytes) {
        ssize_t n = pread(fd, (char *)buffer + done, bytes - done, offset + (off_t)done);
        if (n <= 0) {
            die("pread");
        }
        done += (size_t)n;
    }
}

static void pwrite_all(int fd, const void *buffer, size_t bytes, off_t offset) {
    size_t done = 0;
    while (done < bytes) {
        ssize_t n = pwrite(fd, (const char *)buffer + done, bytes - done, offset + (off_t)done);
        if (n <= 0) {
            die("pwrite");
        }
        done += (size_t)n;
    }
}

static int open_x(const char *x, int checked) {
    if (!checked) {
        int fd = open(x, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            die("open x");
        }
        return fd;
    }
    int name = open(x, O_PATH | O_CLOEXEC);
    if (name < 0) {
        die("open x O_PATH");
    }
    struct statx status;
    if (statx(name, "", AT_EMPTY_PATH, STATX_TYPE | STATX_MODE | STATX_UID | STATX_SIZE, &status) != 0
            || !S_ISREG(status.stx_mode)) {
        die("statx x");
    }
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", name);
    int fd = open(proc, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        die("reopen x");
    }
    close(name);
    return fd;
}

/* The reused buffers of the copied path: allocated and touched once per size. */
static float *reused_in;
static float *reused_out;

static float run(enum path path, const char *x, const char *y, size_t bytes, const char *header) {
    size_t floats = bytes / sizeof(float);
    float result;
    if (path == COPIED || path == COPIED_FRESH) {
        float *in = path == COPIED ? reused_in : malloc(bytes);
        float *out = path == COPIED ? reused_out : malloc(bytes);
        if (in == NULL || out == NULL) {
            die("malloc");
        }
        int fd = open(x, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            die("open x");
        }
        pread_all(fd, in, bytes, HEADER);
        close(fd);
        compute(in, out, floats);
        fd = open(y, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0) {
            die("open y");
        }
        pwrite_all(fd, header, HEADER, 0);
        pwrite_all(fd, out, bytes, HEADER);
        close(fd);
        result = out[floats - 1];
        if (path == COPIED_FRESH) {
            free(in);
            free(out);
        }
        return result;
    }
    int fd = open_x(x, path == MAPPED_CHECKED);
    struct stat st;
    char head[HEADER];
    if (fstat(fd, &st) != 0 || (size_t)st.st_size < bytes + HEADER) {
        die("fstat x");
    }
    pread_all(fd, head, HEADER, 0);
    char *in = mmap(NULL, bytes + HEADER, PROT_READ, MAP_SHARED, fd, 0);
    if (in == MAP_FAILED) {
        die("mmap x");
    }
    close(fd);
    fd = open(y, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        die("open y");
    }
    if (path == MAPPED_SPARSE) {
        if (ftruncate(fd, (off_t)(bytes + HEADER)) != 0) {
            die("ftruncate y");
        }
    } else {
        int error = posix_fallocate(fd, 0, (off_t)(bytes + HEADER));
        if (error != 0) {
            errno = error;
            die("posix_fallocate y");
        }
    }
    pwrite_all(fd, header, HEADER, 0);
    int flags = MAP_SHARED | (path == MAPPED_MAPPOPULATE ? MAP_POPULATE : 0);
    char *out = mmap(NULL, bytes + HEADER, PROT_READ | PROT_WRITE, flags, fd, 0);
    if (out == MAP_FAILED) {
        die("mmap y");
    }
    close(fd);
    if (path == MAPPED_POPULATE && madvise(out, bytes + HEADER, MADV_POPULATE_WRITE) != 0) {
        die("madvise MADV_POPULATE_WRITE");
    }
    compute((const float *)(in + HEADER), (float *)(out + HEADER), floats);
    result = ((float *)(out + HEADER))[floats - 1];
    munmap(in, bytes + HEADER);
    munmap(out, bytes + HEADER);
    return result;
}

static int compare(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double percentile(uint64_t *samples, int n, int percent) {
    qsort(samples, (size_t)n, sizeof *samples, compare);
    return (double)samples[(size_t)n * (size_t)percent / 100] / 1000.0;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s DIR SAMPLES THREADS BYTES...\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    int samples = atoi(argv[2]);
    int threads = atoi(argv[3]);
    if (samples < 1 || threads < 0) {
        fprintf(stderr, "SAMPLES must be >= 1 and THREADS >= 0\n");
        return 2;
    }
    for (int i = 0; i < threads; i++) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, idle_thread, NULL) != 0) {
            die("pthread_create");
        }
    }
    char header[HEADER];
    memset(header, ' ', sizeof header);
    header[HEADER - 1] = '\n';
    char x[4096];
    char y[4096];
    snprintf(x, sizeof x, "%s/x", dir);
    uint64_t *times[PATHS];
    for (int p = 0; p < PATHS; p++) {
        times[p] = malloc(sizeof(uint64_t) * (size_t)samples);
        if (times[p] == NULL) {
            die("malloc");
        }
    }
    volatile float sink = 0;
    for (int a = 4; a < argc; a++) {
        size_t bytes = (size_t)strtoull(argv[a], NULL, 10);
        if (bytes < sizeof(float)) {
            fprintf(stderr, "BYTES must be >= 4\n");
            return 2;
        }
        int fd = open(x, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            die("create x");
        }
        char *data = calloc(1, bytes + HEADER);
        if (data == NULL) {
            die("calloc");
        }
        pwrite_all(fd, data, bytes + HEADER, 0);
        free(data);
        close(fd);
        free(reused_in);
        free(reused_out);
        reused_in = calloc(1, bytes);
        reused_out = calloc(1, bytes);
        if (reused_in == NULL || reused_out == NULL) {
            die("calloc");
        }
        memset(reused_in, 0, bytes); /* touched: calloc's fresh mmap pages would fault once */
        memset(reused_out, 0, bytes);
        /* A sixth of the samples (at least 1) warm up: page cache, allocator, branch predictors. */
        int warmup = samples / 6 + 1;
        for (int s = -warmup; s < samples; s++) {
            for (int k = 0; k < PATHS; k++) {
                int p = (k + (s < 0 ? -s : s)) % PATHS;
                snprintf(y, sizeof y, "%s/y-%d", dir, p);
                uint64_t start = now_ns();
                sink += run((enum path)p, x, y, bytes, header);
                uint64_t elapsed = now_ns() - start;
                if (unlink(y) != 0) {
                    die("unlink y");
                }
                if (s >= 0) {
                    times[p][s] = elapsed;
                }
            }
        }
        double p50[PATHS];
        for (int p = 0; p < PATHS; p++) {
            p50[p] = percentile(times[p], samples, 50);
            printf("bytes=%zu threads=%d %s p50=%.1f p90=%.1f\n", bytes, threads, NAMES[p], p50[p],
                   percentile(times[p], samples, 90));
        }
        for (int p = 1; p < PATHS; p++) {
            printf("bytes=%zu threads=%d copied/%s p50 ratio=%.2f\n", bytes, threads, NAMES[p], p50[0] / p50[p]);
        }
        fflush(stdout);
    }
    unlink(x);
    return sink == 12345.0f ? 3 : 0;
}
