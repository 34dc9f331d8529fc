/*
 * exchange_tool.c - the C side of the exchange module's interop tests
 * (CInteropTest), linked against the built libnativescope.so. Versions hold
 * the pattern of Pattern.java: dtype and shape by version, byte
 * k = (v * 131 + k * 7 + (k >> 8)) & 0xff.
 *
 *   exchange_tool consume FILE COUNT BATCH   reads versions 1..COUNT as zero-copy views, verifies each,
 *                                            prints "ack V" after every BATCH, then "done N <status>"
 *                                            once the producer closed
 *   exchange_tool produce FILE COUNT BATCH   creates FILE (BATCH + 1 slots), prints "ready", publishes
 *                                            1..COUNT, reading one byte of stdin after every BATCH
 *   exchange_tool loop FILE                  takes FILE over as its producer (the old one must be dead or
 *                                            closed), prints "ready EPOCH", publishes until killed
 *   exchange_tool lease FILE                 leases the newest tensor (nsc_exchange_lease), prints "leased
 *                                            SLOT VERSION", releases it after one byte of stdin, checks the
 *                                            view was never overwritten and prints "released"
 *
 * Exit status 0 on success; a failed check prints what failed and exits 1.
 */
#define _GNU_SOURCE
#include "nsc_exchange.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const DLDataType DTYPES[] = {
    { kDLFloat, 32, 1 }, { kDLFloat, 64, 1 }, { kDLInt, 8, 1 }, { kDLInt, 16, 1 }, { kDLInt, 32, 1 }, { kDLInt, 64, 1 },
    { kDLUInt, 8, 1 }, { kDLUInt, 16, 1 }, { kDLUInt, 32, 1 }, { kDLUInt, 64, 1 }, { kDLFloat, 16, 1 },
};
#define DTYPE_COUNT (sizeof DTYPES / sizeof DTYPES[0])

#define FAIL(...) do { fprintf(stdout, "FAIL: " __VA_ARGS__); fputc('\n', stdout); fflush(stdout); exit(1); } while (0)

static int shape_of(uint64_t v, int64_t *shape)
{
    int rank = (int) (v % 4);
    for (int d = 0; d < rank; d++) {
        shape[d] = 1 + (int64_t) ((v * 7 + (uint64_t) d * 3) % 9);
    }
    return rank;
}

static uint8_t at(uint64_t v, uint64_t k)
{
    return (uint8_t) ((v * 131 + k * 7 + (k >> 8)) & 0xff);
}

static uint64_t bytes_of(const nsc_xchg_tensor *t)
{
    uint64_t n = t->dl.dtype.bits / 8;
    for (int d = 0; d < t->dl.ndim; d++) {
        n *= (uint64_t) t->shape[d];
    }
    return n;
}

static void verify(const nsc_exchange *x, const nsc_xchg_tensor *t, uint64_t v)
{
    int64_t shape[4];
    int rank = shape_of(v, shape);
    DLDataType want = DTYPES[v % DTYPE_COUNT];
    if (t->version != v) {
        FAIL("version %llu, expected %llu", (unsigned long long) t->version, (unsigned long long) v);
    }
    if (t->dl.ndim != rank || t->dl.dtype.code != want.code || t->dl.dtype.bits != want.bits || t->dl.dtype.lanes != 1) {
        FAIL("version %llu: ndim %d dtype %u/%u", (unsigned long long) v, t->dl.ndim, t->dl.dtype.code, t->dl.dtype.bits);
    }
    for (int d = 0; d < rank; d++) {
        if (t->shape[d] != shape[d] || t->dl.shape != t->shape) {
            FAIL("version %llu: shape[%d] = %lld", (unsigned long long) v, d, (long long) t->shape[d]);
        }
    }
    uint64_t length = 0;
    const uint8_t *base = nsc_exchange_base(x, &length);
    const uint8_t *data = (const uint8_t *) t->dl.data + t->dl.byte_offset;
    uint64_t n = bytes_of(t);
    /* Zero copy: the view is the slot's bytes in the shared mapping. */
    if (data < base + NSC_XCHG_HEADER_LENGTH || data + n > base + length) {
        FAIL("version %llu: data %p is not inside the mapping [%p, +%llu)", (unsigned long long) v, (const void *) data,
             (const void *) base, (unsigned long long) length);
    }
    for (uint64_t k = 0; k < n; k++) {
        if (data[k] != at(v, k)) {
            FAIL("version %llu: byte %llu is %u, expected %u", (unsigned long long) v, (unsigned long long) k, data[k],
                 at(v, k));
        }
    }
    if (!nsc_exchange_still_valid(x, t)) {
        FAIL("version %llu was overwritten while read", (unsigned long long) v);
    }
}

static int consume(const char *path, uint64_t count, uint64_t batch)
{
    nsc_exchange *x = NULL;
    int st = nsc_exchange_open(path, 0, &x);
    if (st != NSC_OK) {
        FAIL("open %s: %s", path, nsc_exchange_status_name(st));
    }
    const nsc_xchg_header *h = nsc_exchange_base(x, NULL);
    printf("ready\n");
    fflush(stdout);
    for (uint64_t v = 1; v <= count; v++) {
        for (;;) {
            uint32_t seen = __atomic_load_n(&h->notify, __ATOMIC_ACQUIRE);
            nsc_xchg_tensor t;
            st = nsc_exchange_read(x, 1, v - 1, &t);
            if (st == NSC_OK) {
                verify(x, &t, v);
                break;
            }
            if (st != NSC_XCHG_EMPTY) {
                FAIL("read after %llu: %s", (unsigned long long) (v - 1), nsc_exchange_status_name(st));
            }
            st = nsc_exchange_wait(NULL, h, seen, 30LL * 1000000000LL, 0);
            if (st != NSC_OK) {
                FAIL("wait for %llu: %s", (unsigned long long) v, nsc_exchange_status_name(st));
            }
        }
        if (v % batch == 0) {
            printf("ack %llu\n", (unsigned long long) v);
            fflush(stdout);
        }
    }
    /* The producer closes after the last version. */
    for (;;) {
        uint32_t seen = __atomic_load_n(&h->notify, __ATOMIC_ACQUIRE);
        nsc_xchg_tensor t;
        if (nsc_exchange_read(x, 1, count, &t) != NSC_XCHG_EMPTY) {
            FAIL("a version after the last one");
        }
        st = nsc_exchange_wait(NULL, h, seen, 30LL * 1000000000LL, 0);
        if (st != NSC_OK) {
            break;
        }
    }
    printf("done %llu %s\n", (unsigned long long) count, nsc_exchange_status_name(st));
    fflush(stdout);
    nsc_exchange_close(x);
    return st == NSC_XCHG_PRODUCER_CLOSED ? 0 : 1;
}

/* Claims a slot for version v (its dtype and shape) and fills it with v's bytes, ready to publish. */
static void claim_filled(nsc_exchange *x, uint64_t v, nsc_xchg_tensor *t)
{
    int64_t shape[4];
    int rank = shape_of(v, shape);
    int st = nsc_exchange_claim(x, DTYPES[v % DTYPE_COUNT], rank, shape, t);
    if (st != NSC_OK) {
        FAIL("claim %llu: %s", (unsigned long long) v, nsc_exchange_status_name(st));
    }
    uint8_t *data = (uint8_t *) t->dl.data + t->dl.byte_offset;
    uint64_t n = bytes_of(t);
    for (uint64_t k = 0; k < n; k++) {
        data[k] = at(v, k);
    }
}

static int produce(const char *path, uint64_t count, uint64_t batch)
{
    nsc_exchange *x = NULL;
    int st = nsc_exchange_create(path, (uint32_t) batch + 1, 8192, &x);
    if (st != NSC_OK) {
        FAIL("create %s: %s", path, nsc_exchange_status_name(st));
    }
    printf("ready\n");
    fflush(stdout);
    for (uint64_t v = 1; v <= count; v++) {
        nsc_xchg_tensor t;
        claim_filled(x, v, &t);
        uint64_t published = 0;
        st = nsc_exchange_publish(x, &t, &published);
        if (st != NSC_OK || published != v) {
            FAIL("publish %llu: %s, version %llu", (unsigned long long) v, nsc_exchange_status_name(st),
                 (unsigned long long) published);
        }
        char ack;
        if (v % batch == 0 && read(0, &ack, 1) != 1) {
            FAIL("the consumer went away at version %llu", (unsigned long long) v);
        }
    }
    nsc_exchange_close(x);
    printf("done %llu\n", (unsigned long long) count);
    fflush(stdout);
    return 0;
}

static int loop(const char *path)
{
    nsc_exchange *x = NULL;
    int st = nsc_exchange_open(path, 1, &x);
    if (st != NSC_OK) {
        FAIL("take over %s: %s", path, nsc_exchange_status_name(st));
    }
    nsc_xchg_header *h = nsc_exchange_base(x, NULL);
    uint64_t v = __atomic_load_n(&h->latest_version, __ATOMIC_ACQUIRE);
    printf("ready %u\n", __atomic_load_n(&h->producer_epoch, __ATOMIC_ACQUIRE));
    fflush(stdout);
    for (;;) {
        v++;
        nsc_xchg_tensor t;
        claim_filled(x, v, &t);
        nsc_exchange_publish(x, &t, NULL);
    }
}

static int lease(const char *path)
{
    nsc_exchange *x = NULL;
    nsc_xchg_tensor t;
    uint32_t entry;
    if (nsc_exchange_open(path, 0, &x) != NSC_OK || nsc_exchange_read(x, 0, 0, &t) != NSC_OK
        || nsc_exchange_lease(x, &t, &entry) != NSC_OK) {
        fprintf(stderr, "lease: cannot open, read or lease %s\n", path);
        return 1;
    }
    printf("leased %u %llu\n", t.slot, (unsigned long long) t.version);
    fflush(stdout);
    (void) getchar();
    int intact = nsc_exchange_still_valid(x, &t);
    if (nsc_exchange_lease_release(x, entry) != NSC_OK || !intact) {
        fprintf(stderr, "lease: the leased view was overwritten (or the release failed)\n");
        return 1;
    }
    printf("released\n");
    fflush(stdout);
    nsc_exchange_close(x);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "loop") == 0) {
        return loop(argv[2]);
    }
    if (argc == 3 && strcmp(argv[1], "lease") == 0) {
        return lease(argv[2]);
    }
    if (argc != 5) {
        fprintf(stderr, "usage: %s consume|produce FILE COUNT BATCH | loop|lease FILE\n", argv[0]);
        return 2;
    }
    uint64_t count = strtoull(argv[3], NULL, 10), batch = strtoull(argv[4], NULL, 10);
    if (batch == 0) {
        return 2;
    }
    if (strcmp(argv[1], "consume") == 0) {
        return consume(argv[2], count, batch);
    }
    if (strcmp(argv[1], "produce") == 0) {
        return produce(argv[2], count, batch);
    }
    return 2;
}
