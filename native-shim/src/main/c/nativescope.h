/*
 * nativescope.h - cancellation, deadlines and request values for native code
 * called from Java through the FFM API: the contract between nativescope and
 * a predictor author, and all that such an author needs to include.
 *
 * A Java nativescope Context hands native code a pointer to an nsc_context.
 * Native code polls it cheaply (nsc_check, one acquire load), polls it with a
 * bounded-rate clock read (nsc_checker_poll), blocks on it (nsc_wait_fd,
 * nsc_sleep), reads request values from it (nsc_value) and registers cancel
 * hooks on it (nsc_hook_register) to push third-party runtimes. Code that
 * is not handed the pointer (a vendor API with fixed signatures, its
 * callbacks, code deep below them) finds the context of the bridged call
 * running on its thread with nsc_current() (a thread-local). Tensors
 * arrive as DLPack DLTensor descriptors (<dlpack/dlpack.h>, Debian's
 * libdlpack-dev, version 0.6 or later), so any DLPack producer can call in.
 *
 * The library's other exports have headers of their own, shipped beside this
 * one, each including it: nsc_reference.h (the reference predictors and the
 * benchmark no-ops), nsc_stats.h (leak counters) and nsc_hold.h (the segment
 * hold of nativescope's Java side). A predictor needs none of them.
 *
 * Threading contract
 *   - The owner (normally the Java side) initialises the struct with
 *     nsc_context_init, cancels it with nsc_context_cancel from any thread,
 *     and destroys it with nsc_context_destroy once no native call uses it.
 *   - Native code never writes the struct except through the functions of
 *     this header: the heartbeat (nsc_check_clock) and, when a waiter needs
 *     it, the lazily created done_fd (nsc_done_fd).
 *   - The struct outlives every native call that received it.
 *
 * Every function that can fail returns an int status: 0 (NSC_OK), a positive
 * outcome (NSC_CANCELED, NSC_DEADLINE_EXCEEDED, NSC_TIMEOUT, ...) or a negative
 * error, all listed once in NSC_STATUS_LIST; nsc_strerror and nsc_status_name
 * name any of them. Functions that take a context and can fail also return
 * NSC_ERR_ABI when it was not initialised by this library version, or was
 * already destroyed.
 *
 * Misuse the library detects (a status, never a leak, a double close or a
 * crash): nsc_context_init over a live context (NSC_ERR_BUSY; destroy it
 * first), and any function of this header except nsc_check and
 * nsc_checker_poll (inline single loads, unchecked for speed) on a destroyed
 * context, a double nsc_context_destroy included (NSC_ERR_ABI). It does so by
 * abi_version: init sets it, destroy clears it. The limit: memory that was
 * never initialised may hold anything, NSC_ABI_VERSION included, so these
 * promises hold for a struct that was zeroed before its first init (calloc,
 * memset, `= {0}`) or destroyed since; garbage that happens to read
 * NSC_ABI_VERSION looks live (init then refuses it with NSC_ERR_BUSY, and the
 * other functions would use it). The struct must also still be mapped: use
 * after free() is not detected.
 */
#ifndef NATIVESCOPE_H
#define NATIVESCOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <dlpack/dlpack.h>

/* DLDevice (which replaced DLContext) arrived in DLPack 0.6; 1.x spells its version differently. */
#if !defined(DLPACK_MAJOR_VERSION) && (!defined(DLPACK_VERSION) || DLPACK_VERSION < 60)
#error "nativescope.h needs dlpack.h 0.6 or later (apt-get install libdlpack-dev)"
#endif

#ifdef __cplusplus
extern "C" {
#endif

#if defined(NSC_BUILDING_LIBRARY)
#define NSC_API __attribute__((visibility("default")))
#else
#define NSC_API
#endif

/* Bumped on any change of a struct layout or of a function's meaning. */
#define NSC_ABI_VERSION 1

/* deadline_ns value meaning "no deadline". */
#define NSC_NO_DEADLINE INT64_MAX

/* Default number of nsc_checker_poll calls between two clock reads. */
#define NSC_DEFAULT_CHECK_INTERVAL 64

/*
 * The largest DLTensor ndim nativescope accepts in a descriptor (the Java
 * side's DLPack import, the DLPack functions of nsc_reference.h); a predictor
 * may bound its own descriptors by it too.
 */
#define NSC_DL_MAX_NDIM 64

/* The key under which a request's trace id travels (the reference predictors echo its value). */
#define NSC_TRACE_ID_KEY "trace-id"

/*
 * Every status, listed once: X(name, value, description). The enum below,
 * nsc_status_name (the name) and nsc_strerror (the description) are generated
 * from it, and the Java ABI test checks the bindings against it. Positive
 * values are outcomes, negative ones errors; the first three are also the
 * values of nsc_context.state. A comment before an entry says who returns it.
 */
#define NSC_STATUS_LIST(X)                                                                          \
    /* success; for the state word: live */                                                         \
    X(NSC_OK, 0, "success")                                                                         \
    X(NSC_CANCELED, 1, "the context was cancelled")                                                 \
    X(NSC_DEADLINE_EXCEEDED, 2, "the context's deadline passed")                                    \
    /* a wait's own timeout: the context is still live */                                           \
    X(NSC_TIMEOUT, 3, "the wait's own timeout elapsed")                                             \
    /* nsc_value */                                                                                 \
    X(NSC_NOT_FOUND, 4, "no value under that key")                                                  \
    /* nsc_context_cancel: the context was already done; nsc_hook_deregister: the hook had run */   \
    X(NSC_ALREADY_DONE, 5, "already done")                                                          \
    /* a NULL pointer, negative size or unknown status argument */                                  \
    X(NSC_ERR_INVALID, -1, "invalid argument")                                                      \
    X(NSC_ERR_SYSTEM, -2, "a system call failed (see errno)")                                       \
    X(NSC_ERR_NOMEM, -3, "out of memory")                                                           \
    X(NSC_ERR_ABI, -4, "the context was initialised by another ABI version, or not at all")         \
    /* nsc_context_destroy (hooks left); nsc_context_init (ctx is live: destroy it first) */        \
    X(NSC_ERR_BUSY, -5, "cancel hooks are still registered")

#define NSC__STATUS_ENUMERATOR(name, value, description) name = value,
enum nsc_status { NSC_STATUS_LIST(NSC__STATUS_ENUMERATOR) };
#undef NSC__STATUS_ENUMERATOR

/* One request value: UTF-8 bytes with explicit lengths, each also NUL-terminated. */
typedef struct nsc_kv {
    const char *key;
    const char *value;
    uint64_t key_len;
    uint64_t value_len;
} nsc_kv;

/* An opaque cancel hook registration. */
typedef struct nsc_hook nsc_hook_t;

/*
 * The context struct. Its fields are the ABI (checked by NSC_ABI_VERSION and
 * by the Java ABI test); they are laid out in two 64-byte cache lines so that
 * the heartbeat written by native code does not share a line with the state
 * word that every check reads. Allocate it 64-byte aligned.
 *
 *  0               4               8                              16
 *  +---------------+---------------+-------------------------------+
 *  | abi_version   | state (atomic)| deadline_ns                   |
 *  +---------------+---------------+-------------------------------+
 *  | done_fd (atom)| sleepers (at.)| cancel_ns                     | 32
 *  +---------------+---------------+-------------------------------+
 *  | values                        | value_count                   | 48
 *  +-------------------------------+-------------------------------+
 *  | reserved0[2]                                                  | 64
 *  +-------------------------------+-------------------------------+
 *  | heartbeat_count (atomic)      | heartbeat_ns (atomic)         | 80
 *  +---------------+---------------+-------------------------------+
 *  | hooks_lock    | hook_count    | hooks                         | 96
 *  +---------------+---------------+-------------------------------+
 *  | reserved1[4]                                                  | 128
 *  +---------------------------------------------------------------+
 */
typedef struct nsc_context {
    /* --- line 0: written by the owner and the canceller, read by native code --- */
    uint32_t abi_version;      /* NSC_ABI_VERSION, written by nsc_context_init */
    uint32_t state;            /* atomic: NSC_OK while live, then NSC_CANCELED or
                                  NSC_DEADLINE_EXCEEDED, set once, only by
                                  nsc_context_cancel (a seq_cst CAS: the done fd and
                                  the futex sleepers rely on it; never store it directly) */
    int64_t deadline_ns;       /* absolute CLOCK_MONOTONIC ns, or NSC_NO_DEADLINE */
    int32_t done_fd;           /* atomic: eventfd readable once done, -1 until a waiter needs it */
    uint32_t sleepers;         /* atomic: threads blocked in a futex wait on state */
    int64_t cancel_ns;         /* CLOCK_MONOTONIC ns when state was set, 0 while live */
    const nsc_kv *values;      /* request values, read-only to native code */
    uint64_t value_count;
    uint64_t reserved0[2];
    /* --- line 1: written by native code while it runs, and by hook registration --- */
    uint64_t heartbeat_count;  /* atomic (relaxed): checks made (nsc_check, nsc_check_clock and
                                  what calls them), approximately: racing checkers may lose counts */
    int64_t heartbeat_ns;      /* atomic (relaxed): CLOCK_MONOTONIC ns of the last clock check
                                  (nsc_check_clock), 0 before the first one */
    uint32_t hooks_lock;       /* internal: lock word of the hook list */
    uint32_t hook_count;       /* internal: hook registrations not yet freed */
    nsc_hook_t *hooks;         /* internal: registered cancel hooks */
    uint64_t reserved1[4];
} nsc_context;

/*
 * A per-thread poller: nsc_checker_poll loads the state word on every call and
 * reads the clock (checking the deadline and updating the heartbeat) once
 * every `interval` calls. Keep it on the stack of the thread that polls.
 */
typedef struct nsc_checker {
    nsc_context *ctx;
    uint32_t countdown;
    uint32_t interval;
} nsc_checker;

/* ---------------------------------------------------------------------------
 * Library information
 * ------------------------------------------------------------------------- */

/** @return NSC_ABI_VERSION of the loaded library. */
NSC_API int nsc_abi_version(void);

/** @return CLOCK_MONOTONIC now, in nanoseconds. */
NSC_API int64_t nsc_monotonic_ns(void);

/** @return a static, human-readable description of status (never NULL). */
NSC_API const char *nsc_strerror(int status);

/** @return the static symbolic name of status, e.g. "NSC_CANCELED" (never NULL). */
NSC_API const char *nsc_status_name(int status);

/* ---------------------------------------------------------------------------
 * Owner side
 * ------------------------------------------------------------------------- */

/**
 * Initialises a context: live, no done fd, no hooks.
 * values (an array of value_count entries) must stay valid and unchanged until
 * nsc_context_destroy; value_count may be 0 with values NULL. Zero the struct
 * before its first init (see "Misuse" above); a destroyed struct may be
 * initialised again.
 * @return NSC_OK, NSC_ERR_INVALID when ctx is NULL or values is NULL with
 *         value_count > 0, NSC_ERR_BUSY when ctx is live (initialised and not
 *         destroyed; nothing is changed, nothing leaks).
 */
NSC_API int nsc_context_init(nsc_context *ctx, int64_t deadline_ns, const nsc_kv *values, uint64_t value_count);

/**
 * Makes the context done with status (NSC_CANCELED or NSC_DEADLINE_EXCEEDED),
 * from any thread: sets state (seq_cst CAS), records cancel_ns, makes done_fd
 * readable, wakes sleepers and runs every registered hook in this thread.
 * Only the first call has an effect.
 * @return NSC_OK when this call made the context done, NSC_ALREADY_DONE when it
 *         was already done, NSC_ERR_INVALID for a NULL ctx or another status,
 *         NSC_ERR_ABI when ctx was destroyed (or not initialised by this library).
 */
NSC_API int nsc_context_cancel(nsc_context *ctx, int status);

/**
 * Releases what the context holds (its done fd). Call it once no native call
 * uses the context any more, nsc_context_cancel included: a cancel touches the
 * struct until it returns (it runs the hooks).
 * @return NSC_OK, NSC_ERR_BUSY while a hook registration has not been
 *         deregistered, even one whose hook already ran (nothing is
 *         released then), NSC_ERR_INVALID for NULL, NSC_ERR_ABI when ctx was not
 *         initialised by this library or was already destroyed (a second
 *         destroy closes nothing and counts nothing).
 */
NSC_API int nsc_context_destroy(nsc_context *ctx);

/* ---------------------------------------------------------------------------
 * Native code side: checks
 * ------------------------------------------------------------------------- */

/**
 * The cheap check: one acquire load of the state word, no clock read. Also
 * counts the check in heartbeat_count (a relaxed load and store on the
 * struct's second cache line, not a locked instruction: two threads polling
 * one context may lose a count), so that a diagnostics dump can tell whether
 * native code has looked at its context since a cancel. ctx is const for the
 * caller: the heartbeat is the one field native code may write (the struct
 * itself is never const, it lives in the owner's writable memory).
 * @return NSC_OK while live, else NSC_CANCELED or NSC_DEADLINE_EXCEEDED.
 */
static inline int nsc_check(const nsc_context *ctx)
{
    uint64_t *count = (uint64_t *) &ctx->heartbeat_count;
    __atomic_store_n(count, __atomic_load_n(count, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
    return (int) __atomic_load_n(&ctx->state, __ATOMIC_ACQUIRE);
}

/**
 * The full check: the state word, then the clock against deadline_ns. Counts
 * the check in heartbeat_count and stores the clock in heartbeat_ns (relaxed;
 * only this path writes the timestamp). Costs one clock read (a vDSO call,
 * tens of nanoseconds).
 * @return NSC_OK while live and before the deadline, else NSC_CANCELED or
 *         NSC_DEADLINE_EXCEEDED; NSC_ERR_INVALID for NULL, NSC_ERR_ABI when ctx
 *         was destroyed or not initialised by this library (the heartbeat is
 *         then not written).
 */
NSC_API int nsc_check_clock(nsc_context *ctx);

/** Prepares a checker that reads the clock every `interval` polls (0: the default). */
static inline void nsc_checker_init(nsc_checker *checker, nsc_context *ctx, uint32_t interval)
{
    checker->ctx = ctx;
    checker->interval = interval ? interval : NSC_DEFAULT_CHECK_INTERVAL;
    checker->countdown = checker->interval;
}

/**
 * The check to put in a work loop: nsc_check on every call, nsc_check_clock
 * once every interval calls. A checker with a NULL ctx never stops.
 * @return NSC_OK while live, else NSC_CANCELED or NSC_DEADLINE_EXCEEDED.
 */
static inline int nsc_checker_poll(nsc_checker *checker)
{
    if (checker->ctx == NULL) {
        return NSC_OK;
    }
    if (--checker->countdown == 0) {
        checker->countdown = checker->interval;
        /* Loads the state word first, like nsc_check, and counts the check once. */
        return nsc_check_clock(checker->ctx);
    }
    return nsc_check(checker->ctx);
}

/**
 * ggml/llama.cpp abort callback: pass nsc_abort_callback as `abort_callback`
 * and the nsc_context pointer as `abort_callback_data`.
 * @return true once the context is done or its deadline has passed, and for
 *         a destroyed context (stop rather than run unchecked); false for NULL.
 */
NSC_API bool nsc_abort_callback(void *ctx);

/* ---------------------------------------------------------------------------
 * Native code side: waiting
 * ------------------------------------------------------------------------- */

/**
 * The context's done fd, created on first use (an eventfd that becomes and
 * stays readable once the context is done; never read it, never close it).
 * Creation is ordered against nsc_context_cancel so that no wake-up is lost.
 * @return the fd (>= 0), or NSC_ERR_SYSTEM, NSC_ERR_INVALID (NULL),
 *         NSC_ERR_ABI (destroyed: no fd is created).
 */
NSC_API int nsc_done_fd(nsc_context *ctx);

/**
 * Blocks until fd has one of `events` (poll(2) events), or the context is
 * done, or its deadline passes, or timeout_ns elapses (negative: no timeout),
 * with one ppoll on fd and the done fd. Never returns NSC_DEADLINE_EXCEEDED
 * before the deadline, and ends at it by its own timer: the ppoll timeout is
 * the nanoseconds left until min(deadline_ns, now + timeout_ns), taken from a
 * fresh CLOCK_MONOTONIC read, and a timed wait runs with a 1 ns timer slack
 * (prctl PR_SET_TIMERSLACK; the thread's own slack is restored before
 * returning), so it wakes microseconds after the deadline rather than up to
 * the default 50 us slack late, whether or not the owner cancels.
 * revents (may be NULL) receives fd's poll revents.
 * @return NSC_OK when fd is ready, NSC_CANCELED, NSC_DEADLINE_EXCEEDED,
 *         NSC_TIMEOUT, NSC_ERR_SYSTEM, NSC_ERR_INVALID (NULL ctx, fd < 0, fd
 *         not open: POLLNVAL, or fd is ctx's own done fd, which is what a
 *         just-closed fd's number becomes when the wait creates the done fd;
 *         errno EBADF), NSC_ERR_ABI (ctx destroyed).
 */
NSC_API int nsc_wait_fd(nsc_context *ctx, int fd, short events, int64_t timeout_ns, short *revents);

/**
 * Sleeps duration_ns unless the context is done or its deadline comes first.
 * Needs no fd: it waits on the state word as a futex, with a nanosecond
 * timeout up to min(deadline_ns, now + duration_ns) and a 1 ns timer slack
 * like nsc_wait_fd's, so it ends at the deadline by itself.
 * @return NSC_OK after the full duration, NSC_CANCELED, NSC_DEADLINE_EXCEEDED,
 *         NSC_ERR_SYSTEM, NSC_ERR_INVALID (NULL ctx, negative duration),
 *         NSC_ERR_ABI (ctx destroyed).
 */
NSC_API int nsc_sleep(nsc_context *ctx, int64_t duration_ns);

/* ---------------------------------------------------------------------------
 * Native code side: the current context
 *
 * For native code whose signatures cannot take an nsc_context * (a vendor's
 * C API, a callback it calls, a kernel or plugin below it): the Java bridge
 * (NativeCall.call, for downcalls without a context parameter) makes the
 * call's own context current on the thread that runs the native call (the
 * caller's, or the native thread of an offloaded call) just before the call,
 * and restores the previous one (NULL outside any call) just after, also
 * when the call throws or is cancelled. So nsc_current() is the call's
 * context while the call runs on this thread, the outer call's again after a
 * nested call returns, and NULL on a thread that runs no bridged call (a
 * pooled thread included, once its call has returned). It is never another
 * thread's: a callback that a runtime makes on a thread of its own sees NULL,
 * and must get the context from the code that registered it (capture the
 * nsc_context * at registration, deregister before the call returns).
 * The pointer is valid until the call returns: never keep it beyond that.
 * ------------------------------------------------------------------------- */

/**
 * The context of the bridged call running on this thread: one thread-local
 * load (initial-exec TLS), no lock, no system call.
 * @return the context, or NULL when no bridged call that sets it runs here.
 */
NSC_API nsc_context *nsc_current(void);

/**
 * Makes ctx (may be NULL) this thread's current context and returns the
 * previous one. For nativescope's bridge, and for native code that runs a
 * call's work on threads of its own: set it on the worker thread before the
 * work and restore the returned value after it (also on error paths), in
 * strict nesting, while the context is valid. ctx is not dereferenced here.
 * @return the previous current context (NULL if none).
 */
NSC_API nsc_context *nsc_current_set(nsc_context *ctx);

/**
 * The address of the calling thread's current-context slot: the variable
 * that nsc_current() reads and nsc_current_set() swaps. For a bridge that
 * sets and restores the context with its own loads and stores instead of a
 * call each (nativescope's Java side caches it per platform thread). The
 * address is fixed for the whole life of the calling thread (initial-exec
 * TLS: a constant offset from the thread pointer), differs between threads
 * alive at the same time, and may be reused by a thread started after this
 * one ended: never use it on another thread or after the thread ends. Reads
 * and writes through it follow nsc_current_set's rules: only the calling
 * thread, strict nesting, the previous value restored on every path.
 * @return the calling thread's slot, never NULL.
 */
NSC_API nsc_context **nsc_current_slot(void);

/**
 * nsc_check on the current context: one thread-local load and one acquire
 * load of its state word, no clock. The poll for code without any context
 * plumbing.
 * @return NSC_OK while live, and when there is no current context (code run
 *         outside a bridged call never stops), else NSC_CANCELED or
 *         NSC_DEADLINE_EXCEEDED.
 */
NSC_API int nsc_current_check(void);

/**
 * nsc_check_clock on the current context: also compares the clock with its
 * deadline (tens of nanoseconds) and updates its heartbeat.
 * @return NSC_OK while live and before the deadline, and when there is no
 *         current context, else NSC_CANCELED, NSC_DEADLINE_EXCEEDED or
 *         NSC_ERR_ABI (a current context that was destroyed: a bug of
 *         whoever set it).
 */
NSC_API int nsc_current_check_clock(void);

/* ---------------------------------------------------------------------------
 * Native code side: values and hooks
 * ------------------------------------------------------------------------- */

/**
 * Looks up the value of a key (key_len bytes, no NUL needed). The value
 * stays valid as long as the context.
 * @return NSC_OK with *value and *value_len set (either may be NULL),
 *         NSC_NOT_FOUND, NSC_ERR_INVALID, or NSC_ERR_ABI (ctx destroyed).
 */
NSC_API int nsc_value(const nsc_context *ctx, const char *key, size_t key_len,
                      const char **value, size_t *value_len);

/** Cancel hook: runs once, with the status that made the context done. */
typedef void (*nsc_cancel_fn)(void *arg, int status);

/**
 * Registers fn(arg, status) to run once when the context is cancelled, in the
 * cancelling thread (C++20 stop_callback semantics). If the context is already
 * cancelled, fn runs at once in this thread and *hook is set to NULL.
 * A deadline noticed only by the clock does not run hooks; the owner's
 * nsc_context_cancel(ctx, NSC_DEADLINE_EXCEEDED) does.
 * @return NSC_OK when registered (*hook set), NSC_CANCELED or
 *         NSC_DEADLINE_EXCEEDED when fn already ran here, NSC_ERR_INVALID,
 *         NSC_ERR_NOMEM, NSC_ERR_ABI (ctx destroyed).
 */
NSC_API int nsc_hook_register(nsc_context *ctx, nsc_cancel_fn fn, void *arg, nsc_hook_t **hook);

/**
 * Removes a hook and frees it (NULL is accepted). If the hook is running in
 * another thread, waits until it has returned; from inside the hook itself it
 * does not wait. After this returns, fn is not running and will never run.
 * Every successful registration must be deregistered exactly once, also
 * after the hook ran (nsc_context_destroy is NSC_ERR_BUSY until then).
 * @return NSC_OK when removed before running, NSC_ALREADY_DONE when it ran
 *         (also for NULL: what nsc_hook_register leaves when fn ran at once).
 */
NSC_API int nsc_hook_deregister(nsc_hook_t *hook);

#ifdef __cplusplus
}
#endif

#endif /* NATIVESCOPE_H */
