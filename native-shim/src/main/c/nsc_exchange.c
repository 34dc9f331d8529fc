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
#include <sys/eventfd.h>
#include <pthread.h>

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

/* This process's start time, read once per process (a forked child reads its own). */
static uint64_t self_start_cached(void)
{
    static uint32_t cached_pid;
    static uint64_t cached_start;
    uint32_t pid = (uint32_t) getpid();
    if (__atomic_load_n(&cached_pid, __ATOMIC_ACQUIRE) != pid) {
        __atomic_store_n(&cached_start, nsc_exchange_self_start(), __ATOMIC_RELAXED);
        __atomic_store_n(&cached_pid, pid, __ATOMIC_RELEASE);
    }
    return __atomic_load_n(&cached_start, __ATOMIC_RELAXED);
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

/*
 * The watcher: one thread per process that learns of producer deaths for
 * every blocked wait of the process, so that a wait sleeps in one futex_waitv
 * without a timeout and does no liveness syscall before it sleeps. A wait used
 * to look at the producer (pidfd_open, /proc/<pid>/stat, poll) before each
 * sleep and to wake every 2 ms to look again: on the KVM guest measured each
 * of the two alone made a blocked consumer's wake ~10 us slower, 6-11x a plain
 * futex wake (BENCHMARKS.md section 11).
 *
 * A wait registers the producer it depends on (pid + start time) in `watched`
 * and adds the process-private word `deaths` to its futex_waitv. The watcher
 * blocks in poll() on the pidfds of the registered producers and an eventfd
 * (new registrations); a pidfd becomes readable when its process exits (also
 * while it is a zombie). It then stores `dead` in the entry and increments
 * `deaths` (seq_cst) and FUTEX_WAKEs it, so every waiter of the process
 * wakes and looks at its own entry.
 *
 * Why no wake-up is lost: a waiter loads `deaths` (seq_cst), then its entry's
 * `dead` (seq_cst), then sleeps while `deaths` still has the loaded value
 * (the kernel compares). The watcher stores `dead` before incrementing
 * `deaths`. So either the waiter's load of `deaths` follows the increment, and
 * then its load of `dead` sees 1, or it precedes it, and then the kernel's
 * compare fails or the watcher's FUTEX_WAKE finds the waiter queued.
 *
 * Entries: a fixed table (entries never move: a waiter keeps a pointer to its
 * entry under a reference count), under `watch_lock`. Entries without
 * waiters stay for NSC__WATCH_LINGER_NS (a consumer waits again at once,
 * without another pidfd_open), then the watcher closes their pidfd (or a
 * registration that finds the table full reuses the longest idle one); with no
 * entry left it ends, closing its eventfd, so an idle process holds no
 * descriptor and no thread. When the table is full, pidfd_open fails (Linux
 * < 5.3, out of descriptors) or the watcher cannot start, a wait falls back
 * to waking every liveness_ns to poll the producer itself, as before.
 * A forked child starts with an empty table and no watcher (pthread_atfork).
 */
#define NSC__WATCH_SLOTS 64
#define NSC__WATCH_LINGER_NS 200000000LL

struct nsc__watched {
    uint32_t pid;      /* 0: the entry is free */
    uint64_t start;
    int pidfd;         /* -1: no pidfd (the waiters poll /proc themselves) */
    int dead;          /* atomic: set by the watcher (or at registration) */
    int waiters;       /* under watch_lock */
    int64_t idle_since;
    uint32_t generation; /* under watch_lock: changes when an idle entry is reused for another producer */
};

static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static struct nsc__watched watched[NSC__WATCH_SLOTS];
static int watcher_running; /* under watch_lock */
static int watcher_wake = -1; /* eventfd; under watch_lock */
static uint32_t deaths;     /* atomic, process-private futex word */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* Closes an entry's pidfd and frees it, with a new generation. Caller holds watch_lock; no waiter uses it. */
static void watch_free_locked(struct nsc__watched *w)
{
    if (w->pidfd >= 0) {
        close(w->pidfd);
    }
    uint32_t generation = w->generation + 1;
    memset(w, 0, sizeof *w);
    w->pidfd = -1;
    w->generation = generation;
}

/* fork: the lock is held across it, so the child's copy of the table is consistent. */
static void watch_before_fork(void)
{
    pthread_mutex_lock(&watch_lock);
}

static void watch_after_fork_in_parent(void)
{
    pthread_mutex_unlock(&watch_lock);
}

static void watch_reset_in_child(void)
{
    /* The child has one thread (no watcher) and copies of the parent's descriptors: start over. */
    for (int i = 0; i < NSC__WATCH_SLOTS; i++) {
        if (watched[i].pid != 0) {
            watch_free_locked(&watched[i]);
        }
    }
    if (watcher_wake >= 0) {
        close(watcher_wake);
    }
    watcher_wake = -1;
    watcher_running = 0;
    pthread_mutex_unlock(&watch_lock);
}

static void watch_register_atfork(void)
{
    pthread_atfork(watch_before_fork, watch_after_fork_in_parent, watch_reset_in_child);
}

static void *watcher_main(void *unused)
{
    (void) unused;
    struct pollfd fds[NSC__WATCH_SLOTS + 1];
    int index[NSC__WATCH_SLOTS + 1];
    uint32_t generation[NSC__WATCH_SLOTS + 1];
    pthread_mutex_lock(&watch_lock);
    for (;;) {
        int64_t now = nsc__now(), timeout_ns = -1;
        int n = 0, entries = 0;
        fds[n++] = (struct pollfd) { .fd = watcher_wake, .events = POLLIN, .revents = 0 };
        for (int i = 0; i < NSC__WATCH_SLOTS; i++) {
            struct nsc__watched *w = &watched[i];
            if (w->pid == 0) {
                continue;
            }
            if (w->waiters == 0) {
                int64_t left = w->idle_since + NSC__WATCH_LINGER_NS - now;
                if (left <= 0) {
                    watch_free_locked(w);
                    continue;
                }
                timeout_ns = timeout_ns < 0 || left < timeout_ns ? left : timeout_ns;
            }
            entries++;
            if (w->pidfd >= 0 && !__atomic_load_n(&w->dead, __ATOMIC_SEQ_CST)) {
                index[n] = i;
                generation[n] = w->generation;
                fds[n++] = (struct pollfd) { .fd = w->pidfd, .events = POLLIN, .revents = 0 };
            }
        }
        if (entries == 0) {
            close(watcher_wake);
            watcher_wake = -1;
            watcher_running = 0;
            pthread_mutex_unlock(&watch_lock);
            return NULL;
        }
        if (timeout_ns < 0) {
            timeout_ns = NSC__WATCH_LINGER_NS; /* a wait may end meanwhile: look again then (releases make no syscall) */
        }
        pthread_mutex_unlock(&watch_lock);
        /*
         * Only this thread closes the eventfd. A pidfd is closed here or, for
         * an idle entry reused, by watch_acquire under the lock: a descriptor
         * closed while we poll it is still polled safely (poll holds the
         * file), and the generation check below ignores what it reports.
         */
        int ready = poll(fds, (nfds_t) n, timeout_ns < 0 ? -1 : (int) (timeout_ns / 1000000 + 1));
        pthread_mutex_lock(&watch_lock);
        if (ready <= 0) {
            continue; /* a linger ended (or EINTR) */
        }
        if (fds[0].revents != 0) {
            uint64_t count;
            (void) !read(watcher_wake, &count, sizeof count);
        }
        int died = 0;
        for (int k = 1; k < n; k++) {
            /* An entry reused while we polled (its old pidfd closed by watch_acquire) is not the one that fired. */
            if (fds[k].revents != 0 && watched[index[k]].generation == generation[k]) {
                __atomic_store_n(&watched[index[k]].dead, 1, __ATOMIC_SEQ_CST);
                died = 1;
            }
        }
        if (died) {
            __atomic_add_fetch(&deaths, 1, __ATOMIC_SEQ_CST);
            syscall(SYS_futex, &deaths, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
        }
    }
}

/* Starts the watcher if it is not running. Caller holds watch_lock. @return 1 when it runs. */
static int watcher_ensure_locked(void)
{
    if (watcher_running) {
        return 1;
    }
    pthread_once(&atfork_once, watch_register_atfork);
    watcher_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (watcher_wake < 0) {
        return 0;
    }
    pthread_attr_t attr;
    pthread_t thread;
    int ok = pthread_attr_init(&attr) == 0;
    ok = ok && pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0;
    ok = ok && pthread_attr_setstacksize(&attr, 64 * 1024) == 0;
    ok = ok && pthread_create(&thread, &attr, watcher_main, NULL) == 0;
    pthread_attr_destroy(&attr);
    if (!ok) {
        close(watcher_wake);
        watcher_wake = -1;
        return 0;
    }
    watcher_running = 1;
    return 1;
}

/*
 * Registers a wait on the producer (pid, start).
 * @return the entry (its dead flag tells whether the producer was already
 *         gone), or NULL when the watcher cannot watch it: poll instead.
 */
static struct nsc__watched *watch_acquire(uint32_t pid, uint64_t start)
{
    pthread_mutex_lock(&watch_lock);
    struct nsc__watched *found = NULL, *free_entry = NULL, *idle = NULL;
    for (int i = 0; i < NSC__WATCH_SLOTS && found == NULL; i++) {
        if (watched[i].pid == pid && watched[i].start == start) {
            found = &watched[i];
        } else if (watched[i].pid == 0 && free_entry == NULL) {
            free_entry = &watched[i];
        } else if (watched[i].pid != 0 && watched[i].waiters == 0
                   && (idle == NULL || watched[i].idle_since < idle->idle_since)) {
            idle = &watched[i];
        }
    }
    if (found == NULL && free_entry == NULL && idle != NULL) {
        /*
         * Full of lingering entries (many producers waited for in a short
         * time): reuse the longest idle one. The watcher may be polling its
         * pidfd; closing it there is safe (poll holds the file), and the new
         * generation makes the watcher ignore what that poll reports for it.
         */
        watch_free_locked(idle);
        free_entry = idle;
    }
    if (found == NULL && free_entry != NULL && watcher_ensure_locked()) {
        int pidfd = (int) syscall(SYS_pidfd_open, (pid_t) pid, 0);
        if (pidfd >= 0) {
            found = free_entry;
            found->pid = pid;
            found->start = start;
            found->pidfd = pidfd;
            found->waiters = 0;
            /* The pidfd names whatever process has the pid now: it is ours only if the start time matches. */
            __atomic_store_n(&found->dead, !nsc_exchange_process_alive(pid, start), __ATOMIC_SEQ_CST);
            uint64_t one = 1;
            (void) !write(watcher_wake, &one, sizeof one);
        }
    }
    if (found != NULL && found->pidfd >= 0) {
        found->waiters++;
    } else {
        found = NULL;
    }
    pthread_mutex_unlock(&watch_lock);
    return found;
}

static void watch_release(struct nsc__watched *w)
{
    if (w == NULL) {
        return;
    }
    pthread_mutex_lock(&watch_lock);
    if (--w->waiters == 0) {
        w->idle_since = nsc__now(); /* the watcher frees it after the linger: no syscall here */
    }
    pthread_mutex_unlock(&watch_lock);
}

/* What a wait knows about its producer. */
struct liveness {
    uint32_t pid;
    uint64_t start;
    struct nsc__watched *watch; /* NULL: none needed (self, closed) or not available (poll) */
    int self;
    int dead;                   /* polled verdict (no watch) */
};

/* @return NSC_OK while the producer lives, else PRODUCER_DEAD / PRODUCER_CLOSED. `poll_now`: no watch, look. */
static int liveness_check(struct liveness *l, const nsc_xchg_header *h, int poll_now)
{
    if (LOAD_ACQ(&h->closed)) {
        return NSC_XCHG_PRODUCER_CLOSED;
    }
    int dead;
    if (l->self) {
        dead = 0;
    } else if (l->watch != NULL) {
        dead = __atomic_load_n(&l->watch->dead, __ATOMIC_SEQ_CST);
    } else {
        if (poll_now) {
            l->dead = !nsc_exchange_process_alive(l->pid, l->start);
        }
        dead = l->dead;
    }
    if (dead && LOAD_ACQ(&h->closed)) {
        return NSC_XCHG_PRODUCER_CLOSED;
    }
    return dead ? NSC_XCHG_PRODUCER_DEAD : NSC_OK;
}

static int waitv_missing = 0; /* set once futex_waitv answered ENOSYS */

/*
 * What ends a wait besides a publication, a bound or the producer: a
 * process-private word that differs from `seen`. For nsc_exchange_wait it is
 * ctx->state (seen NSC_OK; its value is the status returned); for
 * nsc_exchange_wait_stoppable the caller's stop word (NSC_CANCELED).
 */
struct stop {
    const uint32_t *word; /* NULL: none */
    uint32_t seen;
    int is_state;         /* 1: the word's value is the status to return */
};

static int wait_publication(const nsc_xchg_header *h, uint32_t expected, struct stop stop, int64_t deadline,
                            int64_t timeout_ns, int64_t liveness_ns);

/* The checks both waits make on their header. @return NSC_OK or the status to return. */
static int wait_header_ok(const void *header)
{
    if (header == NULL || ((uintptr_t) header & 63) != 0) {
        return NSC_ERR_INVALID;
    }
    const nsc_xchg_header *h = header;
    if (h->magic != NSC_XCHG_MAGIC || LOAD_ACQ(&h->version) != NSC_XCHG_LAYOUT_VERSION) {
        return NSC_XCHG_ERR_FORMAT;
    }
    return NSC_OK;
}

NSC_API int nsc_exchange_wait(nsc_context *ctx, const void *header, uint32_t expected, int64_t timeout_ns,
                              int64_t liveness_ns)
{
    if (header == NULL || ((uintptr_t) header & 63) != 0) {
        return NSC_ERR_INVALID;
    }
    if (ctx != NULL && !nsc__ctx_live(ctx)) {
        return NSC_ERR_ABI;
    }
    int ok = wait_header_ok(header);
    if (ok != NSC_OK) {
        return ok;
    }
    /*
     * As in nsc_sleep: announce ourselves on ctx->sleepers (seq_cst) before
     * the first load of state, so that nsc_context_cancel (CAS state, then
     * load sleepers) either sees us and FUTEX_WAKEs the state word, or its
     * state store precedes our load and futex_waitv's compare of state with
     * NSC_OK fails with EAGAIN.
     */
    if (ctx != NULL) {
        __atomic_add_fetch(&ctx->sleepers, 1, __ATOMIC_SEQ_CST);
    }
    struct stop stop = { .word = ctx != NULL ? (const uint32_t *) &ctx->state : NULL, .seen = NSC_OK, .is_state = 1 };
    int result = wait_publication(header, expected, stop, ctx != NULL ? ctx->deadline_ns : NSC_NO_DEADLINE,
                                  timeout_ns, liveness_ns);
    if (ctx != NULL) {
        __atomic_sub_fetch(&ctx->sleepers, 1, __ATOMIC_SEQ_CST);
    }
    return result;
}

NSC_API int nsc_exchange_wait_stoppable(const void *header, uint32_t expected, const uint32_t *stop_word,
                                        uint32_t stop_seen, int64_t timeout_ns, int64_t liveness_ns)
{
    if (stop_word == NULL || ((uintptr_t) stop_word & 3) != 0) {
        return NSC_ERR_INVALID;
    }
    int ok = wait_header_ok(header);
    if (ok != NSC_OK) {
        return ok;
    }
    struct stop stop = { .word = stop_word, .seen = stop_seen, .is_state = 0 };
    return wait_publication(header, expected, stop, NSC_NO_DEADLINE, timeout_ns, liveness_ns);
}

NSC_API void nsc_exchange_stop_wait(uint32_t *stop_word)
{
    if (stop_word == NULL) {
        return;
    }
    /* seq_cst, then the wake: a wait that loaded the old value either sees the new one or is queued (EAGAIN). */
    __atomic_add_fetch(stop_word, 1, __ATOMIC_SEQ_CST);
    syscall(SYS_futex, stop_word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static int wait_publication(const nsc_xchg_header *h, uint32_t expected, struct stop stop, int64_t deadline,
                            int64_t timeout_ns, int64_t liveness_ns)
{
    if (liveness_ns <= 0) {
        liveness_ns = NSC__DEFAULT_LIVENESS_NS;
    }
    const int64_t until = timeout_ns < 0 ? INT64_MAX : nsc__add_sat(nsc__now(), timeout_ns);
    uint32_t *notify = (uint32_t *) &h->notify;

    /*
     * The producer this wait depends on. A take-over or a close while we
     * sleep bumps notify, so the wait returns NSC_OK and the caller's next
     * wait looks at the new producer.
     */
    struct liveness l = { .pid = LOAD_ACQ(&h->producer_pid), .start = 0, .watch = NULL, .self = 0, .dead = 0 };
    l.start = LOAD_ACQ(&h->producer_start);
    l.self = l.pid == (uint32_t) getpid() && l.start == self_start_cached();
    if (!l.self && !LOAD_ACQ(&h->closed)) {
        if (l.pid == 0 || l.pid > INT32_MAX) {
            l.dead = 1;
        } else {
            l.watch = watch_acquire(l.pid, l.start);
        }
    }
    const int polling = !l.self && l.watch == NULL && !l.dead;
    int result;

    /*
     * The stop word (a context's state or a caller's stop word) and `deaths`
     * are process-private memory: waited on with FUTEX2_PRIVATE, matching the
     * FUTEX_WAKE_PRIVATEs. The notify word is in the shared mapping: no
     * FUTEX2_PRIVATE, so the producer's FUTEX_WAKE from another process
     * reaches us. A wake that lands between our load of a word and the
     * kernel queueing us is not lost: the kernel compares each word with the
     * value we loaded and returns EAGAIN when one changed.
     */
    int64_t next_check = 0;
    for (;;) {
        uint32_t deaths_seen = __atomic_load_n(&deaths, __ATOMIC_SEQ_CST);
        if (stop.word != NULL) {
            uint32_t now_stop = __atomic_load_n(stop.word, __ATOMIC_SEQ_CST);
            if (now_stop != stop.seen) {
                result = stop.is_state ? (int) now_stop : NSC_CANCELED;
                break;
            }
        }
        if (__atomic_load_n(notify, __ATOMIC_SEQ_CST) != expected) {
            result = NSC_OK;
            break;
        }
        /* Only a polling wait reads the clock when it has no bound: the watched one sleeps untimed. */
        int64_t now = polling || until != INT64_MAX || deadline != NSC_NO_DEADLINE ? nsc__now() : 0;
        if (deadline != NSC_NO_DEADLINE && now >= deadline) {
            result = NSC_DEADLINE_EXCEEDED;
            break;
        }
        int live = liveness_check(&l, h, polling && now >= next_check);
        if (live != NSC_OK) {
            /* A publication that raced with the death still counts. */
            result = __atomic_load_n(notify, __ATOMIC_SEQ_CST) != expected ? NSC_OK : live;
            break;
        }
        if (polling && now >= next_check) {
            next_check = nsc__add_sat(now, liveness_ns);
        }
        if (now >= until) {
            result = NSC_TIMEOUT;
            break;
        }
        int64_t wake_at = polling ? next_check : INT64_MAX;
        if (until < wake_at) {
            wake_at = until;
        }
        if (deadline < wake_at) {
            wake_at = deadline;
        }
        long rc;
        if (!__atomic_load_n(&waitv_missing, __ATOMIC_RELAXED)) {
            struct nsc__futex_waitv fw[3] = {
                { .val = expected, .uaddr = (uint64_t) (uintptr_t) notify, .flags = NSC__FUTEX2_SIZE_U32, .reserved = 0 },
                { .val = deaths_seen, .uaddr = (uint64_t) (uintptr_t) &deaths,
                  .flags = NSC__FUTEX2_SIZE_U32 | NSC__FUTEX2_PRIVATE, .reserved = 0 },
                { .val = stop.seen, .uaddr = (uint64_t) (uintptr_t) stop.word,
                  .flags = NSC__FUTEX2_SIZE_U32 | NSC__FUTEX2_PRIVATE, .reserved = 0 },
            };
            /* No timer unless the wait has a bound: arming one costs the wake several microseconds. */
            struct timespec abs = nsc__ns_to_timespec(wake_at);
            rc = syscall(SYS_futex_waitv, fw, stop.word != NULL ? 3u : 2u, 0u, wake_at == INT64_MAX ? NULL : &abs,
                         CLOCK_MONOTONIC);
            if (rc < 0 && errno == ENOSYS) {
                __atomic_store_n(&waitv_missing, 1, __ATOMIC_RELAXED);
                continue;
            }
        } else {
            /* Fallback (Linux < 5.16): the notify word alone, in slices short enough to see a cancel or a death. */
            if (now == 0) {
                now = nsc__now();
            }
            int64_t slice = wake_at - now;
            if (slice > 1000000) {
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
    watch_release(l.watch);
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

NSC_API int nsc_exchange_lease(nsc_exchange *x, const nsc_xchg_tensor *view, uint32_t *entry)
{
    if (x == NULL || view == NULL || entry == NULL || view->slot >= x->slot_count) {
        return NSC_ERR_INVALID;
    }
    nsc_xchg_header *h = hdr(x);
    uint32_t pid = (uint32_t) getpid();
    for (uint32_t i = 0; i < NSC_XCHG_LEASES; i++) {
        nsc_xchg_lease *l = &h->leases[i];
        uint32_t expected = 0;
        if (__atomic_load_n(&l->pid, __ATOMIC_SEQ_CST) != 0
            || !__atomic_compare_exchange_n(&l->pid, &expected, pid, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
            continue;
        }
        __atomic_store_n(&l->start, self_start_cached(), __ATOMIC_SEQ_CST);
        __atomic_store_n(&l->slot, view->slot, __ATOMIC_SEQ_CST);
        /* seq_cst after our slot store: Dekker with the producer's odd seq store (see claim). */
        if (__atomic_load_n(&slot_at(x, view->slot)->seq, __ATOMIC_SEQ_CST) != view->seq) {
            nsc_exchange_lease_release(x, i);
            return NSC_XCHG_OVERRUN;
        }
        *entry = i;
        return NSC_OK;
    }
    return NSC_XCHG_BUSY;
}

NSC_API int nsc_exchange_lease_release(nsc_exchange *x, uint32_t entry)
{
    if (x == NULL || entry >= NSC_XCHG_LEASES) {
        return NSC_ERR_INVALID;
    }
    nsc_xchg_lease *l = &hdr(x)->leases[entry];
    if (__atomic_load_n(&l->pid, __ATOMIC_SEQ_CST) != (uint32_t) getpid()) {
        return NSC_ERR_INVALID; /* not ours (never taken, released twice, or another process's) */
    }
    /* As Java's Leases.release: slot, start, then the pid that frees the entry. */
    __atomic_store_n(&l->slot, UINT32_MAX, __ATOMIC_SEQ_CST);
    __atomic_store_n(&l->start, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&l->pid, 0, __ATOMIC_SEQ_CST);
    return NSC_OK;
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
