/*
 * nsc_exchange.c - the shared-memory tensor exchange (layout and protocol in
 * nsc_exchange.h): header and slot validation, the context wait on a
 * publication (futex_waitv on the notify word and the context's state word),
 * producer liveness, and a C producer and consumer.
 *
 * Everything read from the mapping is hostile: another process (or a
 * truncated file) controls it. Geometry is validated once at open from a
 * private copy; slot metadata is copied out under the seqlock and validated
 * before any pointer is formed from it.
 */
#define _GNU_SOURCE
#include "nsc_exchange.h"
#include "nsc_internal.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/stat.h>

_Static_assert(sizeof(nsc_xchg_header) == NSC_XCHG_HEADER_LENGTH, "header length");
_Static_assert(sizeof(nsc_xchg_lease) == NSC_XCHG_LEASE_LENGTH, "lease length");
_Static_assert(sizeof(nsc_xchg_slot) == NSC_XCHG_SLOT_META_LENGTH, "slot metadata length");

/*
 * nsc_exchange.h gives the layout twice: as the structs this file uses and as
 * the offsets the Java and Python sides use (ExchangeLayoutConformanceTest
 * holds those to the header). Every offset is its field's: X(struct, field, offset).
 */
#define NSC__XCHG_OFFSETS(X)                                            \
    X(nsc_xchg_header, magic, NSC_XCHG_OFF_MAGIC)                        \
    X(nsc_xchg_header, version, NSC_XCHG_OFF_VERSION)                    \
    X(nsc_xchg_header, header_length, NSC_XCHG_OFF_HEADER_LENGTH)        \
    X(nsc_xchg_header, slot_count, NSC_XCHG_OFF_SLOT_COUNT)              \
    X(nsc_xchg_header, slot_meta_length, NSC_XCHG_OFF_SLOT_META_LENGTH)  \
    X(nsc_xchg_header, slot_capacity, NSC_XCHG_OFF_SLOT_CAPACITY)        \
    X(nsc_xchg_header, data_offset, NSC_XCHG_OFF_DATA_OFFSET)            \
    X(nsc_xchg_header, file_length, NSC_XCHG_OFF_FILE_LENGTH)            \
    X(nsc_xchg_header, max_ndim, NSC_XCHG_OFF_MAX_NDIM)                  \
    X(nsc_xchg_header, lease_count, NSC_XCHG_OFF_LEASE_COUNT)            \
    X(nsc_xchg_header, producer_pid, NSC_XCHG_OFF_PRODUCER_PID)          \
    X(nsc_xchg_header, producer_epoch, NSC_XCHG_OFF_PRODUCER_EPOCH)      \
    X(nsc_xchg_header, producer_start, NSC_XCHG_OFF_PRODUCER_START)      \
    X(nsc_xchg_header, heartbeat_ns, NSC_XCHG_OFF_HEARTBEAT_NS)          \
    X(nsc_xchg_header, closed, NSC_XCHG_OFF_CLOSED)                      \
    X(nsc_xchg_header, notify, NSC_XCHG_OFF_NOTIFY)                      \
    X(nsc_xchg_header, latest_version, NSC_XCHG_OFF_LATEST_VERSION)      \
    X(nsc_xchg_header, latest_slot, NSC_XCHG_OFF_LATEST_SLOT)            \
    X(nsc_xchg_header, leases, NSC_XCHG_OFF_LEASES)                      \
    X(nsc_xchg_lease, pid, NSC_XCHG_LEASE_OFF_PID)                       \
    X(nsc_xchg_lease, slot, NSC_XCHG_LEASE_OFF_SLOT)                     \
    X(nsc_xchg_lease, start, NSC_XCHG_LEASE_OFF_START)                   \
    X(nsc_xchg_slot, seq, NSC_XCHG_SLOT_OFF_SEQ)                         \
    X(nsc_xchg_slot, dtype, NSC_XCHG_SLOT_OFF_DTYPE)                     \
    X(nsc_xchg_slot, version, NSC_XCHG_SLOT_OFF_VERSION)                 \
    X(nsc_xchg_slot, ndim, NSC_XCHG_SLOT_OFF_NDIM)                       \
    X(nsc_xchg_slot, flags, NSC_XCHG_SLOT_OFF_FLAGS)                     \
    X(nsc_xchg_slot, data_offset, NSC_XCHG_SLOT_OFF_DATA_OFFSET)         \
    X(nsc_xchg_slot, byte_length, NSC_XCHG_SLOT_OFF_BYTE_LENGTH)         \
    X(nsc_xchg_slot, publish_ns, NSC_XCHG_SLOT_OFF_PUBLISH_NS)           \
    X(nsc_xchg_slot, shape, NSC_XCHG_SLOT_OFF_SHAPE)                     \
    X(nsc_xchg_slot, strides, NSC_XCHG_SLOT_OFF_STRIDES)

#define NSC__XCHG_ASSERT_AT(type, field, off) _Static_assert(offsetof(type, field) == (off), #type "." #field);
NSC__XCHG_OFFSETS(NSC__XCHG_ASSERT_AT)
#undef NSC__XCHG_ASSERT_AT

#define LOAD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#define NSC__FUTEX2_SIZE_U32 0x02u
#define NSC__FUTEX2_PRIVATE 128u
#define NSC__DEFAULT_LIVENESS_NS 2000000LL

/* struct futex_waitv of <linux/futex.h> (5.16+), spelled out so older headers build. */
struct nsc__futex_waitv {
    uint64_t val;
    uint64_t uaddr;
    uint32_t flags;
    uint32_t reserved;
};

struct nsc_exchange {
    int fd;
    int producer;
    uint8_t *base;
    uint64_t length;
    uint32_t slot_count;
    uint64_t slot_capacity;
    uint64_t data_offset;
    uint32_t max_ndim;
    uint32_t claimed_slot; /* producer: UINT32_MAX when none */
    uint64_t start;        /* this process's start time */
};

NSC_API const char *nsc_exchange_status_name(int status)
{
    switch (status) {
    case NSC_XCHG_PRODUCER_DEAD: return "NSC_XCHG_PRODUCER_DEAD";
    case NSC_XCHG_PRODUCER_CLOSED: return "NSC_XCHG_PRODUCER_CLOSED";
    case NSC_XCHG_OVERRUN: return "NSC_XCHG_OVERRUN";
    case NSC_XCHG_EMPTY: return "NSC_XCHG_EMPTY";
    case NSC_XCHG_BUSY: return "NSC_XCHG_BUSY";
    case NSC_XCHG_ERR_FORMAT: return "NSC_XCHG_ERR_FORMAT";
    default: return nsc_status_name(status);
    }
}

/* ---------------------------------------------------------------------------
 * Validation (also the libFuzzer target's subject)
 * ------------------------------------------------------------------------- */

static uint32_t rd32(const void *base, uint64_t off)
{
    uint32_t v;
    memcpy(&v, (const uint8_t *) base + off, sizeof v);
    return v;
}

static uint64_t rd64(const void *base, uint64_t off)
{
    uint64_t v;
    memcpy(&v, (const uint8_t *) base + off, sizeof v);
    return v;
}

/* The file length a geometry needs, or 0 when it overflows. */
static uint64_t required_length(uint32_t slots, uint64_t capacity, uint64_t *data_offset)
{
    uint64_t meta_end = (uint64_t) NSC_XCHG_HEADER_LENGTH + (uint64_t) slots * NSC_XCHG_SLOT_META_LENGTH;
    uint64_t data = (meta_end + NSC_XCHG_DATA_ALIGN - 1) / NSC_XCHG_DATA_ALIGN * NSC_XCHG_DATA_ALIGN;
    uint64_t total;
    if (__builtin_mul_overflow(capacity, (uint64_t) slots, &total) || __builtin_add_overflow(total, data, &total)) {
        return 0;
    }
    if (data_offset != NULL) {
        *data_offset = data;
    }
    return total;
}

NSC_API int nsc_exchange_validate(const void *base, uint64_t length)
{
    if (base == NULL || length < NSC_XCHG_HEADER_LENGTH) {
        return NSC_XCHG_ERR_FORMAT;
    }
    if (rd64(base, NSC_XCHG_OFF_MAGIC) != NSC_XCHG_MAGIC
        || rd32(base, NSC_XCHG_OFF_VERSION) != NSC_XCHG_LAYOUT_VERSION
        || rd32(base, NSC_XCHG_OFF_HEADER_LENGTH) != NSC_XCHG_HEADER_LENGTH
        || rd32(base, NSC_XCHG_OFF_SLOT_META_LENGTH) != NSC_XCHG_SLOT_META_LENGTH
        || rd32(base, NSC_XCHG_OFF_MAX_NDIM) != NSC_XCHG_MAX_NDIM
        || rd32(base, NSC_XCHG_OFF_LEASE_COUNT) != NSC_XCHG_LEASES) {
        return NSC_XCHG_ERR_FORMAT;
    }
    uint32_t slots = rd32(base, NSC_XCHG_OFF_SLOT_COUNT);
    uint64_t capacity = rd64(base, NSC_XCHG_OFF_SLOT_CAPACITY);
    if (slots < 1 || slots > NSC_XCHG_MAX_SLOTS || capacity % 64 != 0) {
        return NSC_XCHG_ERR_FORMAT;
    }
    uint64_t data_offset = 0;
    uint64_t need = required_length(slots, capacity, &data_offset);
    if (need == 0 || rd64(base, NSC_XCHG_OFF_DATA_OFFSET) != data_offset
        || rd64(base, NSC_XCHG_OFF_FILE_LENGTH) != need || need != length) {
        return NSC_XCHG_ERR_FORMAT;
    }
    return NSC_OK;
}

static int dtype_ok(uint32_t dtype, uint32_t *elem_bytes)
{
    uint32_t code = dtype & 0xff, bits = (dtype >> 8) & 0xff, lanes = dtype >> 16;
    if (lanes != 1) {
        return 0;
    }
    int ok;
    switch (code) {
    case kDLInt: case kDLUInt: ok = bits == 8 || bits == 16 || bits == 32 || bits == 64; break;
    case kDLFloat: ok = bits == 16 || bits == 32 || bits == 64; break;
    case kDLBfloat: ok = bits == 16; break;
    case 6 /* kDLBool */: ok = bits == 8; break;
    default: ok = 0;
    }
    *elem_bytes = bits / 8;
    return ok;
}

NSC_API int nsc_exchange_validate_slot(const void *base, uint64_t length, uint32_t slot, const nsc_xchg_slot *m)
{
    if (nsc_exchange_validate(base, length) != NSC_OK || m == NULL) {
        return NSC_XCHG_ERR_FORMAT;
    }
    uint32_t slots = rd32(base, NSC_XCHG_OFF_SLOT_COUNT);
    uint64_t capacity = rd64(base, NSC_XCHG_OFF_SLOT_CAPACITY);
    uint64_t data_offset = rd64(base, NSC_XCHG_OFF_DATA_OFFSET);
    uint32_t elem;
    if (slot >= slots || m->ndim > NSC_XCHG_MAX_NDIM || !dtype_ok(m->dtype, &elem)) {
        return NSC_XCHG_ERR_FORMAT;
    }
    /* Exact arithmetic in 128 bits: extents of hostile shapes and strides cannot wrap. */
    __int128 lo = 0, hi = 0, count = 1;
    for (uint32_t d = 0; d < m->ndim; d++) {
        int64_t n = m->shape[d], s = m->strides[d];
        if (n < 0 || n > (int64_t) 1 << 48 || s > (int64_t) 1 << 48 || s < -((int64_t) 1 << 48)) {
            return NSC_XCHG_ERR_FORMAT;
        }
        count *= n;
        if (count > (__int128) 1 << 62) {
            return NSC_XCHG_ERR_FORMAT;
        }
        if (n > 0) {
            __int128 reach = (__int128) (n - 1) * s * elem;
            if (reach < 0) {
                lo += reach;
            } else {
                hi += reach;
            }
        }
    }
    uint64_t slot_lo = data_offset + (uint64_t) slot * capacity;
    __int128 first = (__int128) m->data_offset;
    if (count == 0) {
        /* No element: the offset must still lie in the slot, so a view can be formed. */
        return first >= slot_lo && first <= (__int128) (slot_lo + capacity) && m->byte_length == 0
                   ? NSC_OK : NSC_XCHG_ERR_FORMAT;
    }
    __int128 begin = first + lo, end = first + hi + elem;
    if (begin < (__int128) slot_lo || end > (__int128) (slot_lo + capacity) || m->byte_length > capacity
        || (__int128) m->byte_length < end - begin || first % elem != 0) {
        return NSC_XCHG_ERR_FORMAT;
    }
    return NSC_OK;
}

/* ---------------------------------------------------------------------------
 * Liveness
 * ------------------------------------------------------------------------- */

/* Reads state (field 3) and start time (field 22) of /proc/<pid>/stat. @return 0, or -1 when gone. */
static int proc_stat(const char *path, char *state, uint64_t *start)
{
    char buf[1024];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) {
        return -1;
    }
    buf[n] = '\0';
    /* comm (field 2) may hold spaces and parentheses: fields resume after the last ')'. */
    char *p = strrchr(buf, ')');
    if (p == NULL || p[1] != ' ') {
        return -1;
    }
    p += 2;
    *state = *p;
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (p == NULL) {
            return -1;
        }
        p++;
    }
    *start = strtoull(p, NULL, 10);
    return 0;
}

NSC_API uint64_t nsc_exchange_self_start(void)
{
    char state;
    uint64_t start;
    return proc_stat("/proc/self/stat", &state, &start) == 0 ? start : 0;
}

NSC_API int nsc_exchange_process_alive(uint32_t pid, uint64_t start)
{
    if (pid == 0 || pid > INT32_MAX) {
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/%u/stat", pid);
    char state;
    uint64_t actual;
    if (proc_stat(path, &state, &actual) != 0) {
        return 0;
    }
    /* A zombie has exited: it will never publish again, though its pid is still taken. */
    return actual == start && state != 'Z' && state != 'X';
}

/* ---------------------------------------------------------------------------
 * The wait
 * ------------------------------------------------------------------------- */

/* Tracks one producer through a pidfd: polling it costs no /proc read per slice. */
struct watch {
    uint32_t pid;
    uint64_t start;
    int pidfd;
    int dead;
};

static void watch_close(struct watch *w)
{
    if (w->pidfd >= 0) {
        close(w->pidfd);
        w->pidfd = -1;
    }
}

/* @return NSC_OK while the header's producer lives, else PRODUCER_DEAD / PRODUCER_CLOSED. */
static int watch_check(struct watch *w, const nsc_xchg_header *h)
{
    if (LOAD_ACQ(&h->closed)) {
        return NSC_XCHG_PRODUCER_CLOSED;
    }
    uint32_t pid = LOAD_ACQ(&h->producer_pid);
    uint64_t start = LOAD_ACQ(&h->producer_start);
    if (pid != w->pid || start != w->start) {
        /* First look, or a take-over: follow the new producer. */
        watch_close(w);
        w->pid = pid;
        w->start = start;
        w->dead = 0;
        if (pid != 0 && pid <= INT32_MAX) {
            w->pidfd = (int) syscall(SYS_pidfd_open, (pid_t) pid, 0);
        }
        /* The pidfd names whatever process has the pid now: it is ours only if the start time matches. */
        w->dead = !nsc_exchange_process_alive(pid, start);
    }
    if (!w->dead && w->pidfd >= 0) {
        struct pollfd p = { .fd = w->pidfd, .events = POLLIN, .revents = 0 };
        if (poll(&p, 1, 0) > 0) {
            w->dead = 1; /* readable: the process exited (also while it is a zombie) */
        }
    } else if (!w->dead) {
        w->dead = !nsc_exchange_process_alive(pid, start); /* no pidfd (old kernel): read /proc */
    }
    if (w->dead && LOAD_ACQ(&h->closed)) {
        return NSC_XCHG_PRODUCER_CLOSED;
    }
    return w->dead ? NSC_XCHG_PRODUCER_DEAD : NSC_OK;
}

static int waitv_missing = 0; /* set once futex_waitv answered ENOSYS */

NSC_API int nsc_exchange_wait(nsc_context *ctx, const void *header, uint32_t expected, int64_t timeout_ns,
                              int64_t liveness_ns)
{
    if (header == NULL || ((uintptr_t) header & 63) != 0) {
        return NSC_ERR_INVALID;
    }
    if (ctx != NULL && !nsc__ctx_live(ctx)) {
        return NSC_ERR_ABI;
    }
    const nsc_xchg_header *h = header;
    if (h->magic != NSC_XCHG_MAGIC || LOAD_ACQ(&h->version) != NSC_XCHG_LAYOUT_VERSION) {
        return NSC_XCHG_ERR_FORMAT;
    }
    if (liveness_ns <= 0) {
        liveness_ns = NSC__DEFAULT_LIVENESS_NS;
    }
    const int64_t deadline = ctx != NULL ? ctx->deadline_ns : NSC_NO_DEADLINE;
    const int64_t until = timeout_ns < 0 ? INT64_MAX : nsc__add_sat(nsc__now(), timeout_ns);
    struct watch w = { .pid = 0, .start = 0, .pidfd = -1, .dead = 0 };
    uint32_t *notify = (uint32_t *) &h->notify;
    int result;

    /*
     * As in nsc_sleep: announce ourselves on ctx->sleepers (seq_cst) before
     * the first load of state, so that nsc_context_cancel (CAS state, then
     * load sleepers) either sees us and FUTEX_WAKEs the state word, or its
     * state store precedes our load and futex_waitv's compare of state with
     * NSC_OK fails with EAGAIN. The state word is process-private memory:
     * it is waited on with FUTEX2_PRIVATE, matching the canceller's
     * FUTEX_WAKE_PRIVATE. The notify word is in the shared mapping: no
     * FUTEX2_PRIVATE, so the producer's FUTEX_WAKE from another process
     * reaches us. A wake that lands between our load of notify and the
     * kernel queueing us is not lost: the kernel compares notify with
     * `expected` and returns EAGAIN when it changed.
     */
    if (ctx != NULL) {
        __atomic_add_fetch(&ctx->sleepers, 1, __ATOMIC_SEQ_CST);
    }
    int64_t next_check = 0;
    for (;;) {
        if (ctx != NULL) {
            int status = (int) __atomic_load_n(&ctx->state, __ATOMIC_SEQ_CST);
            if (status != NSC_OK) {
                result = status;
                break;
            }
        }
        if (__atomic_load_n(notify, __ATOMIC_SEQ_CST) != expected) {
            result = NSC_OK;
            break;
        }
        int64_t now = nsc__now();
        if (deadline != NSC_NO_DEADLINE && now >= deadline) {
            result = NSC_DEADLINE_EXCEEDED;
            break;
        }
        if (now >= next_check) {
            int live = watch_check(&w, h);
            if (live != NSC_OK) {
                /* A publication that raced with the death still counts. */
                result = __atomic_load_n(notify, __ATOMIC_SEQ_CST) != expected ? NSC_OK : live;
                break;
            }
            next_check = nsc__add_sat(now, liveness_ns);
        }
        if (now >= until) {
            result = NSC_TIMEOUT;
            break;
        }
        int64_t wake_at = next_check;
        if (until < wake_at) {
            wake_at = until;
        }
        if (deadline < wake_at) {
            wake_at = deadline;
        }
        long rc;
        if (!__atomic_load_n(&waitv_missing, __ATOMIC_RELAXED)) {
            struct nsc__futex_waitv fw[2] = {
                { .val = expected, .uaddr = (uint64_t) (uintptr_t) notify, .flags = NSC__FUTEX2_SIZE_U32, .reserved = 0 },
                { .val = NSC_OK, .uaddr = ctx != NULL ? (uint64_t) (uintptr_t) &ctx->state : 0,
                  .flags = NSC__FUTEX2_SIZE_U32 | NSC__FUTEX2_PRIVATE, .reserved = 0 },
            };
            struct timespec abs = nsc__ns_to_timespec(wake_at);
            rc = syscall(SYS_futex_waitv, fw, ctx != NULL ? 2u : 1u, 0u, &abs, CLOCK_MONOTONIC);
            if (rc < 0 && errno == ENOSYS) {
                __atomic_store_n(&waitv_missing, 1, __ATOMIC_RELAXED);
                continue;
            }
        } else {
            /* Fallback (Linux < 5.16): the notify word alone, in slices short enough to see a cancel. */
            int64_t slice = wake_at - now;
            if (ctx != NULL && slice > 1000000) {
                slice = 1000000;
            }
            struct timespec rel = nsc__ns_to_timespec(slice);
            rc = syscall(SYS_futex, notify, FUTEX_WAIT, expected, &rel, NULL, 0);
        }
        if (rc < 0 && errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT) {
            result = NSC_ERR_SYSTEM;
            break;
        }
    }
    if (ctx != NULL) {
        __atomic_sub_fetch(&ctx->sleepers, 1, __ATOMIC_SEQ_CST);
    }
    watch_close(&w);
    return result;
}

NSC_API void nsc_exchange_notify(void *header)
{
    if (header == NULL) {
        return;
    }
    uint32_t *notify = &((nsc_xchg_header *) header)->notify;
    __atomic_add_fetch(notify, 1, __ATOMIC_SEQ_CST);
    syscall(SYS_futex, notify, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* ---------------------------------------------------------------------------
 * C producer and consumer
 * ------------------------------------------------------------------------- */

static nsc_xchg_header *hdr(const nsc_exchange *x)
{
    return (nsc_xchg_header *) x->base;
}

static nsc_xchg_slot *slot_at(const nsc_exchange *x, uint32_t i)
{
    return (nsc_xchg_slot *) (x->base + NSC_XCHG_HEADER_LENGTH + (uint64_t) i * NSC_XCHG_SLOT_META_LENGTH);
}

static int map_fd(int fd, uint64_t length, int producer, nsc_exchange **out)
{
    void *base = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        return NSC_ERR_SYSTEM;
    }
    nsc_exchange *x = calloc(1, sizeof *x);
    if (x == NULL) {
        munmap(base, length);
        return NSC_ERR_NOMEM;
    }
    x->fd = fd;
    x->producer = producer;
    x->base = base;
    x->length = length;
    x->slot_count = rd32(base, NSC_XCHG_OFF_SLOT_COUNT);
    x->slot_capacity = rd64(base, NSC_XCHG_OFF_SLOT_CAPACITY);
    x->data_offset = rd64(base, NSC_XCHG_OFF_DATA_OFFSET);
    x->max_ndim = NSC_XCHG_MAX_NDIM;
    x->claimed_slot = UINT32_MAX;
    x->start = nsc_exchange_self_start();
    *out = x;
    return NSC_OK;
}

NSC_API int nsc_exchange_create(const char *path, uint32_t slot_count, uint64_t slot_capacity, nsc_exchange **out)
{
    if (path == NULL || out == NULL || slot_count < 1 || slot_count > NSC_XCHG_MAX_SLOTS || slot_capacity == 0) {
        return NSC_ERR_INVALID;
    }
    *out = NULL;
    slot_capacity = (slot_capacity + 63) / 64 * 64;
    uint64_t data_offset;
    uint64_t length = required_length(slot_count, slot_capacity, &data_offset);
    if (length == 0 || length > (uint64_t) INT64_MAX) {
        return NSC_ERR_INVALID;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        return NSC_ERR_SYSTEM;
    }
    int err = posix_fallocate(fd, 0, (off_t) length);
    if (err != 0) {
        close(fd);
        unlink(path);
        errno = err;
        return NSC_ERR_SYSTEM;
    }
    nsc_exchange *x;
    int status = map_fd(fd, length, 1, &x);
    if (status != NSC_OK) {
        int saved = errno;
        close(fd);
        unlink(path);
        errno = saved;
        return status;
    }
    nsc_xchg_header *h = hdr(x);
    h->magic = NSC_XCHG_MAGIC;
    h->header_length = NSC_XCHG_HEADER_LENGTH;
    h->slot_count = slot_count;
    h->slot_meta_length = NSC_XCHG_SLOT_META_LENGTH;
    h->slot_capacity = slot_capacity;
    h->data_offset = data_offset;
    h->file_length = length;
    h->max_ndim = NSC_XCHG_MAX_NDIM;
    h->lease_count = NSC_XCHG_LEASES;
    h->producer_start = x->start;
    h->producer_epoch = 1;
    h->heartbeat_ns = (uint64_t) nsc__now();
    x->slot_count = slot_count;
    x->slot_capacity = slot_capacity;
    x->data_offset = data_offset;
    STORE_REL(&h->producer_pid, (uint32_t) getpid());
    /* Published last: an opener that sees the version sees everything above. */
    STORE_REL(&h->version, NSC_XCHG_LAYOUT_VERSION);
    *out = x;
    return NSC_OK;
}

static int writable_by_others(const struct stat *st)
{
    return st->st_uid != geteuid() || (st->st_mode & (S_IWGRP | S_IWOTH)) != 0;
}

/* Marks a slot left odd by a dead producer as empty (version 0, even seq). */
static void repair(nsc_exchange *x)
{
    for (uint32_t i = 0; i < x->slot_count; i++) {
        nsc_xchg_slot *s = slot_at(x, i);
        uint32_t seq = LOAD_ACQ(&s->seq);
        if (seq & 1u) {
            s->version = 0;
            s->ndim = 0;
            s->byte_length = 0;
            STORE_REL(&s->seq, seq + 1);
        }
    }
}

NSC_API int nsc_exchange_open(const char *path, int producer, nsc_exchange **out)
{
    if (path == NULL || out == NULL) {
        return NSC_ERR_INVALID;
    }
    *out = NULL;
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return NSC_ERR_SYSTEM;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return NSC_ERR_SYSTEM;
    }
    if (!S_ISREG(st.st_mode) || writable_by_others(&st)) {
        close(fd);
        errno = S_ISREG(st.st_mode) ? EACCES : EINVAL;
        return NSC_ERR_SYSTEM;
    }
    /* Validate a private copy of the header before mapping anything of the size it names. */
    uint8_t head[NSC_XCHG_HEADER_LENGTH];
    if (st.st_size < (off_t) sizeof head || pread(fd, head, sizeof head, 0) != (ssize_t) sizeof head
        || rd64(head, NSC_XCHG_OFF_MAGIC) != NSC_XCHG_MAGIC
        || rd64(head, NSC_XCHG_OFF_FILE_LENGTH) != (uint64_t) st.st_size) {
        close(fd);
        return NSC_XCHG_ERR_FORMAT;
    }
    nsc_exchange *x;
    int status = map_fd(fd, (uint64_t) st.st_size, producer, &x);
    if (status != NSC_OK) {
        close(fd);
        return status;
    }
    if (nsc_exchange_validate(x->base, x->length) != NSC_OK
        || x->slot_count != rd32(head, NSC_XCHG_OFF_SLOT_COUNT)
        || x->slot_capacity != rd64(head, NSC_XCHG_OFF_SLOT_CAPACITY)) {
        x->producer = 0;
        nsc_exchange_close(x);
        return NSC_XCHG_ERR_FORMAT;
    }
    if (producer) {
        nsc_xchg_header *h = hdr(x);
        uint32_t old = LOAD_ACQ(&h->producer_pid);
        int closed = (int) LOAD_ACQ(&h->closed);
        if (!closed && nsc_exchange_process_alive(old, LOAD_ACQ(&h->producer_start))) {
            x->producer = 0;
            nsc_exchange_close(x);
            return NSC_XCHG_BUSY;
        }
        /* The CAS decides between two processes taking over at once. */
        if (!__atomic_compare_exchange_n(&h->producer_pid, &old, (uint32_t) getpid(), false, __ATOMIC_SEQ_CST,
                                         __ATOMIC_SEQ_CST)) {
            x->producer = 0;
            nsc_exchange_close(x);
            return NSC_XCHG_BUSY;
        }
        __atomic_store_n(&h->producer_start, x->start, __ATOMIC_SEQ_CST);
        __atomic_add_fetch(&h->producer_epoch, 1, __ATOMIC_SEQ_CST);
        repair(x);
        __atomic_store_n(&h->closed, 0, __ATOMIC_SEQ_CST);
        __atomic_store_n(&h->heartbeat_ns, (uint64_t) nsc__now(), __ATOMIC_RELAXED);
        nsc_exchange_notify(h);
    }
    *out = x;
    return NSC_OK;
}

NSC_API void nsc_exchange_close(nsc_exchange *x)
{
    if (x == NULL) {
        return;
    }
    if (x->producer) {
        nsc_xchg_header *h = hdr(x);
        if (x->claimed_slot != UINT32_MAX) {
            repair(x);
        }
        __atomic_store_n(&h->closed, 1, __ATOMIC_SEQ_CST);
        nsc_exchange_notify(h);
    }
    munmap(x->base, x->length);
    close(x->fd);
    free(x);
}

NSC_API void *nsc_exchange_base(const nsc_exchange *x, uint64_t *length)
{
    if (x == NULL) {
        return NULL;
    }
    if (length != NULL) {
        *length = x->length;
    }
    return x->base;
}

static int leased(nsc_exchange *x, uint32_t slot)
{
    nsc_xchg_header *h = hdr(x);
    for (uint32_t i = 0; i < NSC_XCHG_LEASES; i++) {
        nsc_xchg_lease *l = &h->leases[i];
        uint32_t pid = __atomic_load_n(&l->pid, __ATOMIC_SEQ_CST);
        if (pid == 0 || __atomic_load_n(&l->slot, __ATOMIC_SEQ_CST) != slot) {
            continue;
        }
        uint64_t start = __atomic_load_n(&l->start, __ATOMIC_SEQ_CST);
        /* start 0: the lease is being taken; its holder counts as alive while its pid exists. */
        if (start == 0 ? kill((pid_t) pid, 0) == 0 || errno == EPERM : nsc_exchange_process_alive(pid, start)) {
            return 1;
        }
        /* The holder died: free its lease (a CAS, in case it was just re-taken). */
        __atomic_compare_exchange_n(&l->pid, &pid, 0, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    }
    return 0;
}

static void fill_view(const nsc_exchange *x, uint32_t slot, const nsc_xchg_slot *m, uint32_t seq, nsc_xchg_tensor *out)
{
    memset(out, 0, sizeof *out);
    for (uint32_t d = 0; d < m->ndim; d++) {
        out->shape[d] = m->shape[d];
        out->strides[d] = m->strides[d];
    }
    out->dl.data = x->base;
    out->dl.byte_offset = m->data_offset;
    out->dl.device.device_type = kDLCPU;
    out->dl.device.device_id = 0;
    out->dl.ndim = (int32_t) m->ndim;
    out->dl.dtype.code = (uint8_t) (m->dtype & 0xff);
    out->dl.dtype.bits = (uint8_t) ((m->dtype >> 8) & 0xff);
    out->dl.dtype.lanes = (uint16_t) (m->dtype >> 16);
    out->dl.shape = out->shape;
    out->dl.strides = out->strides;
    out->version = m->version;
    out->slot = slot;
    out->seq = seq;
    out->publish_ns = m->publish_ns;
}

NSC_API int nsc_exchange_claim(nsc_exchange *x, DLDataType dtype, int32_t ndim, const int64_t *shape,
                               nsc_xchg_tensor *out)
{
    if (x == NULL || out == NULL || !x->producer || x->claimed_slot != UINT32_MAX || ndim < 0
        || (uint32_t) ndim > NSC_XCHG_MAX_NDIM || (ndim > 0 && shape == NULL)) {
        return NSC_ERR_INVALID;
    }
    uint32_t code = dtype.code | (uint32_t) dtype.bits << 8 | (uint32_t) dtype.lanes << 16;
    uint32_t elem;
    if (!dtype_ok(code, &elem)) {
        return NSC_ERR_INVALID;
    }
    uint64_t bytes = elem;
    for (int32_t d = 0; d < ndim; d++) {
        if (shape[d] < 0 || __builtin_mul_overflow(bytes, (uint64_t) shape[d], &bytes)) {
            return NSC_ERR_INVALID;
        }
    }
    if (bytes > x->slot_capacity) {
        return NSC_ERR_INVALID;
    }
    nsc_xchg_header *h = hdr(x);
    uint32_t start = (LOAD_ACQ(&h->latest_slot) + 1) % x->slot_count;
    for (uint32_t k = 0; k < x->slot_count; k++) {
        uint32_t i = (start + k) % x->slot_count;
        if (x->slot_count > 1 && i == LOAD_ACQ(&h->latest_slot) && LOAD_ACQ(&h->latest_version) != 0) {
            continue; /* never overwrite the newest tensor while another slot is possible */
        }
        nsc_xchg_slot *s = slot_at(x, i);
        if (leased(x, i)) {
            continue;
        }
        uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
        __atomic_store_n(&s->seq, seq + 1, __ATOMIC_SEQ_CST);
        if (leased(x, i)) {
            /* A lease landed between the check and the odd store: nothing written yet, back out. */
            __atomic_store_n(&s->seq, seq, __ATOMIC_SEQ_CST);
            continue;
        }
        nsc_xchg_slot m;
        memset(&m, 0, sizeof m);
        m.dtype = code;
        m.ndim = (uint32_t) ndim;
        m.data_offset = x->data_offset + (uint64_t) i * x->slot_capacity;
        m.byte_length = bytes;
        int64_t stride = 1;
        for (int32_t d = ndim - 1; d >= 0; d--) {
            m.shape[d] = shape[d];
            m.strides[d] = stride;
            stride *= shape[d] > 0 ? shape[d] : 1;
        }
        x->claimed_slot = i;
        fill_view(x, i, &m, seq + 2, out);
        return NSC_OK;
    }
    return NSC_XCHG_BUSY;
}

NSC_API int nsc_exchange_publish(nsc_exchange *x, nsc_xchg_tensor *claimed, uint64_t *version)
{
    if (x == NULL || claimed == NULL || !x->producer || x->claimed_slot != claimed->slot) {
        return NSC_ERR_INVALID;
    }
    nsc_xchg_header *h = hdr(x);
    nsc_xchg_slot *s = slot_at(x, claimed->slot);
    uint64_t v = LOAD_ACQ(&h->latest_version) + 1;
    s->dtype = claimed->dl.dtype.code | (uint32_t) claimed->dl.dtype.bits << 8
               | (uint32_t) claimed->dl.dtype.lanes << 16;
    s->ndim = (uint32_t) claimed->dl.ndim;
    s->data_offset = claimed->dl.byte_offset;
    uint32_t elem = claimed->dl.dtype.bits / 8;
    uint64_t bytes = elem;
    for (int32_t d = 0; d < claimed->dl.ndim; d++) {
        s->shape[d] = claimed->shape[d];
        s->strides[d] = claimed->strides[d];
        bytes *= (uint64_t) claimed->shape[d];
    }
    s->byte_length = bytes;
    s->version = v;
    s->publish_ns = nsc__now();
    STORE_REL(&s->seq, claimed->seq);
    STORE_REL(&h->latest_slot, claimed->slot);
    STORE_REL(&h->latest_version, v);
    __atomic_store_n(&h->heartbeat_ns, (uint64_t) s->publish_ns, __ATOMIC_RELAXED);
    x->claimed_slot = UINT32_MAX;
    nsc_exchange_notify(h);
    if (version != NULL) {
        *version = v;
    }
    return NSC_OK;
}

/* Seqlock read of one slot's metadata. @return NSC_OK, NSC_XCHG_EMPTY (being written / empty). */
static int read_slot(const nsc_exchange *x, uint32_t i, nsc_xchg_slot *m, uint32_t *seq)
{
    const nsc_xchg_slot *s = slot_at(x, i);
    for (int attempt = 0; attempt < 64; attempt++) {
        uint32_t s1 = LOAD_ACQ(&s->seq);
        if (s1 & 1u) {
            continue;
        }
        /* Acquire loads: a racing writer makes them stale, never undefined, and none moves below the re-check. */
        m->dtype = __atomic_load_n(&s->dtype, __ATOMIC_ACQUIRE);
        m->version = __atomic_load_n(&s->version, __ATOMIC_ACQUIRE);
        m->ndim = __atomic_load_n(&s->ndim, __ATOMIC_ACQUIRE);
        m->data_offset = __atomic_load_n(&s->data_offset, __ATOMIC_ACQUIRE);
        m->byte_length = __atomic_load_n(&s->byte_length, __ATOMIC_ACQUIRE);
        m->publish_ns = __atomic_load_n(&s->publish_ns, __ATOMIC_ACQUIRE);
        uint32_t n = m->ndim < NSC_XCHG_MAX_NDIM ? m->ndim : NSC_XCHG_MAX_NDIM;
        for (uint32_t d = 0; d < n; d++) {
            m->shape[d] = __atomic_load_n(&s->shape[d], __ATOMIC_ACQUIRE);
            m->strides[d] = __atomic_load_n(&s->strides[d], __ATOMIC_ACQUIRE);
        }
        if (__atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) == s1) {
            *seq = s1;
            return m->version == 0 ? NSC_XCHG_EMPTY : NSC_OK;
        }
    }
    return NSC_XCHG_EMPTY;
}

NSC_API int nsc_exchange_read(nsc_exchange *x, int next, uint64_t after_version, nsc_xchg_tensor *out)
{
    if (x == NULL || out == NULL) {
        return NSC_ERR_INVALID;
    }
    nsc_xchg_header *h = hdr(x);
    nsc_xchg_slot m;
    uint32_t seq;
    if (!next) {
        for (int attempt = 0; attempt < 64; attempt++) {
            uint64_t latest = LOAD_ACQ(&h->latest_version);
            uint32_t i = LOAD_ACQ(&h->latest_slot);
            if (latest == 0 || latest <= after_version) {
                return NSC_XCHG_EMPTY;
            }
            if (i >= x->slot_count) {
                return NSC_XCHG_ERR_FORMAT;
            }
            if (read_slot(x, i, &m, &seq) == NSC_OK && m.version == latest) {
                if (nsc_exchange_validate_slot(x->base, x->length, i, &m) != NSC_OK) {
                    return NSC_XCHG_ERR_FORMAT;
                }
                fill_view(x, i, &m, seq, out);
                return NSC_OK;
            }
        }
        /*
         * latest_slot and latest_version are two stores: a producer killed
         * between them leaves them disagreeing. The newest complete slot is
         * then found by a scan.
         */
        uint64_t best = 0;
        for (uint32_t i = 0; i < x->slot_count; i++) {
            if (read_slot(x, i, &m, &seq) != NSC_OK || m.version <= best || m.version <= after_version) {
                continue;
            }
            if (nsc_exchange_validate_slot(x->base, x->length, i, &m) != NSC_OK) {
                return NSC_XCHG_ERR_FORMAT;
            }
            best = m.version;
            fill_view(x, i, &m, seq, out);
        }
        return best != 0 ? NSC_OK : NSC_XCHG_EMPTY;
    }
    uint64_t latest = LOAD_ACQ(&h->latest_version);
    if (latest <= after_version) {
        return NSC_XCHG_EMPTY;
    }
    uint64_t best = UINT64_MAX;
    for (uint32_t i = 0; i < x->slot_count; i++) {
        if (read_slot(x, i, &m, &seq) != NSC_OK || m.version <= after_version || m.version >= best) {
            continue;
        }
        if (nsc_exchange_validate_slot(x->base, x->length, i, &m) != NSC_OK) {
            return NSC_XCHG_ERR_FORMAT;
        }
        best = m.version;
        fill_view(x, i, &m, seq, out);
    }
    if (best == UINT64_MAX) {
        return NSC_XCHG_OVERRUN;
    }
    return best == after_version + 1 ? NSC_OK : NSC_XCHG_OVERRUN;
}

NSC_API int nsc_exchange_still_valid(const nsc_exchange *x, const nsc_xchg_tensor *view)
{
    if (x == NULL || view == NULL || view->slot >= x->slot_count) {
        return 0;
    }
    /* The caller's plain reads of the view must not move below the re-check (TSan has no fences). */
#if !defined(__SANITIZE_THREAD__)
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
#endif
    return __atomic_load_n(&slot_at(x, view->slot)->seq, __ATOMIC_ACQUIRE) == view->seq;
}

NSC_API int nsc_exchange_producer_state(const nsc_exchange *x)
{
    if (x == NULL) {
        return 0;
    }
    nsc_xchg_header *h = hdr(x);
    if (LOAD_ACQ(&h->closed)) {
        return -1;
    }
    return nsc_exchange_process_alive(LOAD_ACQ(&h->producer_pid), LOAD_ACQ(&h->producer_start));
}
