/*
 * nsc_exchange.h - the shared-memory tensor exchange: file layout, producer and
 * consumer C API, and the context wait on a publication.
 *
 * One producer process writes tensors into the slots of one file (normally
 * under /dev/shm); any number of consumer processes map the same file and read
 * them in place. The layout below is the contract between the Java module
 * (dev.nativescope.exchange.ExchangeDescriptor, which carries the same
 * diagram), this C code and the Python module (nativescope_exchange.py).
 * All integers are little-endian (x86-64), all offsets are from the start of
 * the file.
 *
 * Header (NSC_XCHG_HEADER_LENGTH = 1024 bytes)
 *
 *  0               8               16              24              32
 *  +-------------------------------+---------------+---------------+
 *  | magic "NSCXCHG\0"             | version (u32) | header_length |     version: published LAST
 *  +---------------+---------------+---------------+---------------+     (release store) by the creator
 *  | slot_count    | slot_meta_len | slot_capacity (u64)           | 32
 *  +---------------+---------------+-------------------------------+
 *  | data_offset (u64)             | file_length (u64)             | 48
 *  +---------------+---------------+-------------------------------+
 *  | max_ndim      | lease_count   | reserved                      | 64
 *  +---------------+---------------+-------------------------------+
 *  | producer_pid  | producer_epoch| producer_start (u64, ticks)   | 80    line 1: the producer
 *  +---------------+---------------+-------------------------------+
 *  | heartbeat_ns (u64)            | closed (u32)  | reserved      | 96..128
 *  +---------------+---------------+-------------------------------+
 *  | notify (u32)  | reserved      | latest_version (u64)          | 144   line 2: publication
 *  +---------------+---------------+-------------------------------+
 *  | latest_slot   | reserved ...                                  | 192
 *  +---------------+-----------------------------------------------+
 *  | leases[32]: { pid u32, slot u32, start u64 } (16 bytes each)  | 704
 *  +---------------------------------------------------------------+
 *  | reserved to 1024                                              |
 *  +---------------------------------------------------------------+
 *
 * Slot metadata i at NSC_XCHG_HEADER_LENGTH + i * NSC_XCHG_SLOT_META_LENGTH (320 bytes)
 *
 *  0               4               8               16
 *  +---------------+---------------+---------------+
 *  | seq (u32)     | dtype (u32)   | version (u64) |   seq: seqlock, odd while written
 *  +---------------+---------------+---------------+
 *  | ndim (u32)    | flags (u32)   | data_offset   | 32  data_offset: of element [0,..]
 *  +---------------+---------------+---------------+
 *  | byte_length (u64)             | publish_ns    | 48
 *  +-------------------------------+---------------+
 *  | reserved (16)                                 | 64
 *  +-----------------------------------------------+
 *  | shape[16] (i64)                               | 192
 *  +-----------------------------------------------+
 *  | strides[16] (i64, in elements)                | 320
 *  +-----------------------------------------------+
 *
 * Slot i's data: [data_offset_of_header + i * slot_capacity, + slot_capacity),
 * page-aligned. dtype = DLPack code | bits << 8 | lanes << 16.
 *
 * Protocol (the Java and Python sides follow the same):
 *   - creator: writes everything, then stores version with a release store;
 *     an opener refuses a file whose version is not NSC_XCHG_LAYOUT_VERSION.
 *   - producer, per tensor: picks a slot no live lease holds; seq := seq + 1
 *     (odd, seq_cst), re-checks the leases (seq_cst: Dekker with the lease
 *     taker, who stores its lease and then loads seq) and backs out (seq := seq
 *     - 1) if one appeared; writes data and metadata; seq := seq + 1 (even,
 *     release); latest_slot, latest_version (release); notify += 1 (seq_cst);
 *     FUTEX_WAKE(notify, all) on the shared mapping.
 *   - consumer: s1 := seq (acquire), odd means being written; reads metadata;
 *     s2 := seq (after an acquire fence); s1 == s2 means the metadata was
 *     consistent. The data of a zero-copy view stays valid while seq stays s1:
 *     re-check after reading, or hold a lease.
 *   - waiting: a waiter reads notify, looks for a new version, and only then
 *     waits for notify to change (FUTEX_WAIT compares it atomically).
 *   - liveness: producer_pid + producer_start (/proc/<pid>/stat field 22)
 *     name the producer; it is dead when that process is gone, a zombie, or
 *     the pid now belongs to a process with another start time. A new producer
 *     may then take the file over (CAS of producer_pid), repairs a slot left
 *     odd (marks it empty: version 0, seq even) and bumps producer_epoch.
 */
#ifndef NSC_EXCHANGE_H
#define NSC_EXCHANGE_H

#include "nativescope.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NSC_XCHG_MAGIC 0x004748435843534EULL /* "NSCXCHG\0" read as a little-endian u64 */
#define NSC_XCHG_LAYOUT_VERSION 1u
#define NSC_XCHG_HEADER_LENGTH 1024u
#define NSC_XCHG_SLOT_META_LENGTH 320u
#define NSC_XCHG_MAX_NDIM 16u
#define NSC_XCHG_LEASES 32u
#define NSC_XCHG_MAX_SLOTS 1024u
#define NSC_XCHG_DATA_ALIGN 4096u

/* Header offsets. */
#define NSC_XCHG_OFF_MAGIC 0
#define NSC_XCHG_OFF_VERSION 8
#define NSC_XCHG_OFF_HEADER_LENGTH 12
#define NSC_XCHG_OFF_SLOT_COUNT 16
#define NSC_XCHG_OFF_SLOT_META_LENGTH 20
#define NSC_XCHG_OFF_SLOT_CAPACITY 24
#define NSC_XCHG_OFF_DATA_OFFSET 32
#define NSC_XCHG_OFF_FILE_LENGTH 40
#define NSC_XCHG_OFF_MAX_NDIM 48
#define NSC_XCHG_OFF_LEASE_COUNT 52
#define NSC_XCHG_OFF_PRODUCER_PID 64
#define NSC_XCHG_OFF_PRODUCER_EPOCH 68
#define NSC_XCHG_OFF_PRODUCER_START 72
#define NSC_XCHG_OFF_HEARTBEAT_NS 80
#define NSC_XCHG_OFF_CLOSED 88
#define NSC_XCHG_OFF_NOTIFY 128
#define NSC_XCHG_OFF_LATEST_VERSION 136
#define NSC_XCHG_OFF_LATEST_SLOT 144
#define NSC_XCHG_OFF_LEASES 192
#define NSC_XCHG_LEASE_LENGTH 16
#define NSC_XCHG_LEASE_OFF_PID 0
#define NSC_XCHG_LEASE_OFF_SLOT 4
#define NSC_XCHG_LEASE_OFF_START 8

/* Slot metadata offsets (from the slot's metadata start). */
#define NSC_XCHG_SLOT_OFF_SEQ 0
#define NSC_XCHG_SLOT_OFF_DTYPE 4
#define NSC_XCHG_SLOT_OFF_VERSION 8
#define NSC_XCHG_SLOT_OFF_NDIM 16
#define NSC_XCHG_SLOT_OFF_FLAGS 20
#define NSC_XCHG_SLOT_OFF_DATA_OFFSET 24
#define NSC_XCHG_SLOT_OFF_BYTE_LENGTH 32
#define NSC_XCHG_SLOT_OFF_PUBLISH_NS 40
#define NSC_XCHG_SLOT_OFF_SHAPE 64
#define NSC_XCHG_SLOT_OFF_STRIDES 192

/*
 * Exchange outcomes. They are kept apart from enum nsc_status (and out of its
 * range) so that the shim's status list stays the contract header's; name
 * them with nsc_exchange_status_name.
 */
#define NSC_XCHG_PRODUCER_DEAD 101   /* the producer process is gone (or its pid was reused) */
#define NSC_XCHG_PRODUCER_CLOSED 102 /* the producer closed the exchange */
#define NSC_XCHG_OVERRUN 103         /* the consumer was lapped: the version it wanted was overwritten */
#define NSC_XCHG_EMPTY 104           /* nothing (new) published yet */
#define NSC_XCHG_BUSY 105            /* a live producer holds the exchange, or every slot is leased */
#define NSC_XCHG_ERR_FORMAT (-101)   /* not an exchange file, unknown version, bad sizes or metadata */

/* The file layout as C structs (offsets asserted against the constants in nsc_exchange.c). */
typedef struct nsc_xchg_lease {
    uint32_t pid;   /* atomic: 0 = free */
    uint32_t slot;
    uint64_t start; /* the holder's start time, against pid reuse */
} nsc_xchg_lease;

typedef struct nsc_xchg_header {
    uint64_t magic;
    uint32_t version;        /* atomic, release-stored last by the creator */
    uint32_t header_length;
    uint32_t slot_count;
    uint32_t slot_meta_length;
    uint64_t slot_capacity;
    uint64_t data_offset;
    uint64_t file_length;
    uint32_t max_ndim;
    uint32_t lease_count;
    uint64_t reserved0[1];
    uint32_t producer_pid;   /* atomic */
    uint32_t producer_epoch; /* atomic */
    uint64_t producer_start; /* atomic */
    uint64_t heartbeat_ns;   /* atomic (relaxed), CLOCK_MONOTONIC */
    uint32_t closed;         /* atomic */
    uint32_t reserved1[9];
    uint32_t notify;         /* atomic, shared futex word */
    uint32_t reserved2;
    uint64_t latest_version; /* atomic */
    uint32_t latest_slot;    /* atomic */
    uint32_t reserved3[11];
    nsc_xchg_lease leases[NSC_XCHG_LEASES];
    uint8_t reserved4[NSC_XCHG_HEADER_LENGTH - NSC_XCHG_OFF_LEASES - NSC_XCHG_LEASES * NSC_XCHG_LEASE_LENGTH];
} nsc_xchg_header;

typedef struct nsc_xchg_slot {
    uint32_t seq;            /* atomic seqlock word */
    uint32_t dtype;
    uint64_t version;
    uint32_t ndim;
    uint32_t flags;
    uint64_t data_offset;
    uint64_t byte_length;
    int64_t publish_ns;
    uint64_t reserved[2];
    int64_t shape[NSC_XCHG_MAX_NDIM];
    int64_t strides[NSC_XCHG_MAX_NDIM];
} nsc_xchg_slot;

/* An open exchange (either side). Opaque. */
typedef struct nsc_exchange nsc_exchange;

/* A tensor in a slot: a DLPack view into the mapping plus its version. */
typedef struct nsc_xchg_tensor {
    DLTensor dl;                         /* data points into the mapping; shape/strides point below */
    int64_t shape[NSC_XCHG_MAX_NDIM];
    int64_t strides[NSC_XCHG_MAX_NDIM];
    uint64_t version;
    uint32_t slot;
    uint32_t seq;                        /* the slot's (even) seq the view was read under */
    int64_t publish_ns;
} nsc_xchg_tensor;

/** @return a static symbolic name of an exchange outcome or any nsc_status ("NSC_XCHG_OVERRUN", ...). */
NSC_API const char *nsc_exchange_status_name(int status);

/**
 * Checks that the `length` bytes at `base` (a mapping of a whole exchange file
 * of file_length bytes) hold a valid header and valid slot geometry. Reads
 * only inside [base, base + length).
 * @return NSC_OK or NSC_XCHG_ERR_FORMAT.
 */
NSC_API int nsc_exchange_validate(const void *base, uint64_t length);

/**
 * Validates slot `slot`'s metadata as read in *meta (a private copy) against
 * the geometry of the header at base: dtype known, ndim <= max, no negative
 * dimension, no overflow, every addressed byte inside the slot's data.
 * @return NSC_OK or NSC_XCHG_ERR_FORMAT.
 */
NSC_API int nsc_exchange_validate_slot(const void *base, uint64_t length, uint32_t slot, const nsc_xchg_slot *meta);

/**
 * Blocks until the header's notify word differs from `expected`, the context
 * is done (ctx may be NULL: never), its deadline passes, timeout_ns elapses
 * (< 0: none), or the producer is found dead or closed. One futex_waitv on the
 * notify word (shared), ctx->state (private; nsc_context_cancel wakes it) and
 * a private word that the process's watcher thread bumps when a watched
 * producer's pidfd reports its exit, so a dead producer wakes its waiters at
 * once (milliseconds: the kernel's teardown of the process) and a wait with
 * neither timeout nor deadline arms no timer. The watcher starts with the
 * first wait on a producer of another process, and ends, closing its
 * descriptors, when no wait used it for a fraction of a second. Only when it
 * cannot watch (Linux < 5.3 without pidfd_open, out of descriptors, 64
 * producers waited for at once) does the wait wake every liveness_ns (<= 0:
 * 2 ms) to read /proc itself. Falls back to a futex wait on notify alone, in
 * slices of at most 1 ms, where futex_waitv is missing (Linux < 5.16).
 * @return NSC_OK, NSC_CANCELED, NSC_DEADLINE_EXCEEDED, NSC_TIMEOUT,
 *         NSC_XCHG_PRODUCER_DEAD, NSC_XCHG_PRODUCER_CLOSED, NSC_ERR_INVALID,
 *         NSC_ERR_ABI, NSC_XCHG_ERR_FORMAT, NSC_ERR_SYSTEM.
 */
NSC_API int nsc_exchange_wait(nsc_context *ctx, const void *header, uint32_t expected, int64_t timeout_ns,
                              int64_t liveness_ns);

/**
 * nsc_exchange_wait for a caller that stops its wait without an nsc_context
 * (the Java consumer on a platform thread, whose cancel and interrupt hooks
 * call nsc_exchange_stop_wait): the same futex_waitv, with the process-private
 * `stop_word` in the place of ctx->state. The wait ends when *stop_word
 * differs from `stop_seen` (read it before arranging for the stop, so a stop
 * that comes before the wait ends it at once). No deadline but timeout_ns.
 * @return NSC_OK, NSC_CANCELED (the stop word moved), NSC_TIMEOUT,
 *         NSC_XCHG_PRODUCER_DEAD, NSC_XCHG_PRODUCER_CLOSED, NSC_ERR_INVALID
 *         (NULL or misaligned header or stop word), NSC_XCHG_ERR_FORMAT,
 *         NSC_ERR_SYSTEM.
 */
NSC_API int nsc_exchange_wait_stoppable(const void *header, uint32_t expected, const uint32_t *stop_word,
                                        uint32_t stop_seen, int64_t timeout_ns, int64_t liveness_ns);

/** Ends the nsc_exchange_wait_stoppable waits on stop_word: increments it (seq_cst) and FUTEX_WAKE_PRIVATEs it. NULL is ignored. */
NSC_API void nsc_exchange_stop_wait(uint32_t *stop_word);

/** Increments the header's notify word and wakes every waiter (FUTEX_WAKE, shared). */
NSC_API void nsc_exchange_notify(void *header);

/**
 * @return 1 when the producer named in the header is alive, 0 when it is dead,
 *         gone or no producer is named; pid 0 counts as dead.
 */
NSC_API int nsc_exchange_process_alive(uint32_t pid, uint64_t start);

/** @return this process's start time (/proc/self/stat field 22), 0 if unreadable. */
NSC_API uint64_t nsc_exchange_self_start(void);

/* ------------------------------------------------------------------------
 * C producer and consumer
 * ---------------------------------------------------------------------- */

/**
 * Creates a new exchange file (O_CREAT|O_EXCL, mode 0600, storage reserved
 * with posix_fallocate) and becomes its producer.
 * @return NSC_OK with *out set, NSC_ERR_INVALID, NSC_ERR_SYSTEM (errno set: EEXIST, ENOSPC...).
 */
NSC_API int nsc_exchange_create(const char *path, uint32_t slot_count, uint64_t slot_capacity, nsc_exchange **out);

/**
 * Opens an existing exchange file. As a producer (producer != 0) it takes the
 * exchange over when the current producer is dead (repairing a half-written
 * slot), else NSC_XCHG_BUSY. Refuses files that another user can write
 * (owner other than the effective user, group or world writable).
 * @return NSC_OK, NSC_XCHG_BUSY, NSC_XCHG_ERR_FORMAT, NSC_ERR_SYSTEM (errno: EACCES for the permission check).
 */
NSC_API int nsc_exchange_open(const char *path, int producer, nsc_exchange **out);

/** Unmaps and closes (a producer marks the exchange closed and wakes waiters). NULL is accepted. */
NSC_API void nsc_exchange_close(nsc_exchange *x);

/** @return the mapping's base address and length. */
NSC_API void *nsc_exchange_base(const nsc_exchange *x, uint64_t *length);

/**
 * Producer: claims a slot for a tensor of dtype/ndim/shape (C-contiguous) and
 * fills *out with a writable view. The slot is odd (being written) until
 * nsc_exchange_publish.
 * @return NSC_OK, NSC_ERR_INVALID (not the producer, too big, bad shape), NSC_XCHG_BUSY (every slot leased).
 */
NSC_API int nsc_exchange_claim(nsc_exchange *x, DLDataType dtype, int32_t ndim, const int64_t *shape,
                               nsc_xchg_tensor *out);

/** Producer: publishes the claimed slot. @return NSC_OK or NSC_ERR_INVALID. */
NSC_API int nsc_exchange_publish(nsc_exchange *x, nsc_xchg_tensor *claimed, uint64_t *version);

/**
 * Consumer: reads the newest published tensor (after_version == 0 or any) or
 * the next after after_version (next != 0) into *out, seqlock-checked.
 * @return NSC_OK, NSC_XCHG_EMPTY, NSC_XCHG_OVERRUN (next: the wanted version
 *         was overwritten; out->version is the oldest still there when one is),
 *         NSC_XCHG_ERR_FORMAT (bad slot metadata).
 */
NSC_API int nsc_exchange_read(nsc_exchange *x, int next, uint64_t after_version, nsc_xchg_tensor *out);

/** @return 1 while the view's slot still holds it (seq unchanged), else 0. */
NSC_API int nsc_exchange_still_valid(const nsc_exchange *x, const nsc_xchg_tensor *view);

/**
 * Consumer: holds the view's slot against reuse (the producer skips leased
 * slots) until nsc_exchange_lease_release, so native code may read the view
 * for as long as it needs. The lease table is the header's (shared with the
 * Java Consumer.lease and the Python module): this process's pid is CASed into
 * a free entry, then its start time and the slot are stored (seq_cst), and
 * only then is the slot's seq re-checked; the producer makes a seq odd
 * (seq_cst) before it reads the table, so one of the two sees the other. A
 * process that dies holding leases leaves nothing behind: the producer frees
 * entries whose holder is gone (pid + start time).
 * @return NSC_OK with *entry set; NSC_XCHG_OVERRUN when the slot was
 *         overwritten before the lease took hold (nothing held: read again);
 *         NSC_XCHG_BUSY when all NSC_XCHG_LEASES entries are taken;
 *         NSC_ERR_INVALID.
 */
NSC_API int nsc_exchange_lease(nsc_exchange *x, const nsc_xchg_tensor *view, uint32_t *entry);

/** Releases a lease taken by nsc_exchange_lease (entry as it returned). @return NSC_OK or NSC_ERR_INVALID. */
NSC_API int nsc_exchange_lease_release(nsc_exchange *x, uint32_t entry);

/** Producer liveness as the header names it. @return 1 alive, 0 dead, -1 closed. */
NSC_API int nsc_exchange_producer_state(const nsc_exchange *x);

#ifdef __cplusplus
}
#endif

#endif /* NSC_EXCHANGE_H */
