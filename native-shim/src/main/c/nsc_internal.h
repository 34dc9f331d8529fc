/*
 * nsc_internal.h - shared internals of libnativescope; not installed, not ABI.
 *
 * Everything declared here is hidden (the library is built with
 * -fvisibility=hidden and only NSC_API symbols are exported), so the names
 * only have to avoid clashing inside the library; they use the nsc__ prefix.
 */
#ifndef NSC_INTERNAL_H
#define NSC_INTERNAL_H

#include "nativescope.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NSC__HIDDEN __attribute__((visibility("hidden")))

/*
 * Leak counters behind nsc_stats_get. They are only ever summed, never used
 * to order other memory accesses, so relaxed atomics are enough: a reader
 * gets some recent value of each counter, and once every thread that touched
 * them has been joined it gets the exact one.
 */
struct nsc__counters {
    int64_t live_contexts;
    int64_t live_fds;
    int64_t live_hooks;
    int64_t native_bytes;
};

extern NSC__HIDDEN struct nsc__counters nsc__counters;

static inline void nsc__count(int64_t *counter, int64_t delta)
{
    __atomic_fetch_add(counter, delta, __ATOMIC_RELAXED);
}

static inline int64_t nsc__timespec_ns(const struct timespec *ts)
{
    return (int64_t) ts->tv_sec * 1000000000 + ts->tv_nsec;
}

/* CLOCK_MONOTONIC cannot fail for a valid pointer on Linux, so no error path. */
static inline int64_t nsc__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return nsc__timespec_ns(&ts);
}

/* a + b for b >= 0, saturating at INT64_MAX so "very far" never wraps into the past. */
static inline int64_t nsc__add_sat(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) {
        return INT64_MAX;
    }
    return r;
}

static inline struct timespec nsc__ns_to_timespec(int64_t ns)
{
    struct timespec ts;
    ts.tv_sec = (time_t) (ns / 1000000000);
    ts.tv_nsec = (long) (ns % 1000000000);
    return ts;
}

/* Thin futex wrappers: glibc has none. Both are the process-private variants. */
static inline long nsc__futex_wait(uint32_t *word, uint32_t expected, const struct timespec *relative)
{
    return syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, relative, NULL, 0);
}

static inline long nsc__futex_wake(uint32_t *word, int count)
{
    return syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
}

/* Makes a done eventfd readable for good: its counter only grows, nobody reads it. */
static inline void nsc__signal_done_fd(int fd)
{
    const uint64_t one = 1;
    /*
     * The fd is non-blocking and its counter cannot realistically overflow
     * (that takes 2^64 - 2 writes), so the only failure worth a retry is an
     * interrupted call; anything else would mean the fd was closed under us,
     * which the "struct outlives every call" contract rules out.
     */
    while (write(fd, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

/* abi_version is a context's "live" mark: set by init, cleared by destroy (nsc_context.c says why). */
static inline bool nsc__ctx_live(const nsc_context *ctx)
{
    return ctx->abi_version == NSC_ABI_VERSION;
}

/*
 * The entry check of every call that takes a context, in this order:
 * NSC_ERR_INVALID for a NULL context or when the call's own arguments are not
 * (args_valid false), NSC_ERR_ABI for a struct that is not live, else NSC_OK.
 */
static inline int nsc__ctx_entry(const nsc_context *ctx, bool args_valid)
{
    if (ctx == NULL || !args_valid) {
        return NSC_ERR_INVALID;
    }
    if (!nsc__ctx_live(ctx)) {
        return NSC_ERR_ABI;
    }
    return NSC_OK;
}

/* nsc_hooks.c: runs and unlinks every registered hook; called once, by the cancel winner. */
NSC__HIDDEN void nsc__hooks_run(nsc_context *ctx, int status);

/* nsc_hooks.c: true while a registration has not been deregistered (and freed). */
NSC__HIDDEN bool nsc__hooks_busy(nsc_context *ctx);

/*
 * A float32 DLTensor that nsc__dl_f32_view accepted (the rules are in
 * nsc_reference.h, above nsc_predict_dense_dl): element [0, ...] and strides in
 * elements, compact strides filled in when the descriptor had none, and the
 * byte range [lo, hi) that its indices reach (lo == hi when it has no element).
 */
struct nsc__dl_f32 {
    float *base;
    int ndim;
    int64_t count;
    int64_t shape[NSC_DL_MAX_NDIM];
    int64_t strides[NSC_DL_MAX_NDIM];
    uintptr_t lo;
    uintptr_t hi;
};

/*
 * nsc_dlpack.c: validates t (ndim must equal `ndim`, or be anything allowed
 * when `ndim` < 0) and fills *out. base is non-const because y is written
 * through it; read-only operands stay unwritten by their callers.
 * @return NSC_OK or NSC_ERR_INVALID.
 */
NSC__HIDDEN int nsc__dl_f32_view(const DLTensor *t, int ndim, struct nsc__dl_f32 *out);

/*
 * nsc_hold_run - an exported entry point for nativescope's own Java side
 * (dev.nativescope.interop.SegmentHold), bound by hand there and deliberately
 * not part of any public header or of the jextract bindings: not ABI.
 *
 * Calls run() once, on the calling thread, and returns. s0..s7 are never
 * touched: they exist for the Java FFM runtime, which keeps the arena of
 * every MemorySegment argument of a downcall open (a shared arena's close()
 * throws meanwhile; a confined one's owner is checked before the call) for
 * as long as the downcall is in flight. run is a Java upcall that does the
 * guarded work (or calls nsc_hold_run again for more segments) and never
 * lets an exception out. Unused slots are NULL.
 */
NSC_API void nsc_hold_run(void (*run)(void), const void *s0, const void *s1, const void *s2, const void *s3,
                          const void *s4, const void *s5, const void *s6, const void *s7);

/* ONNX Runtime's types and OrtApi::Run by their ABI (onnxruntime_c_api.h is not a build dependency of the shim). */
struct OrtSession;
struct OrtRunOptions;
struct OrtValue;
struct OrtStatus;
typedef struct OrtStatus *(*nsc__ort_run_fn)(struct OrtSession *session, const struct OrtRunOptions *run_options,
                                             const char *const *input_names, const struct OrtValue *const *inputs,
                                             size_t input_len, const char *const *output_names, size_t output_len,
                                             struct OrtValue **outputs);

/*
 * nsc_hold_ort_run - an exported entry point for nativescope's ONNX Runtime
 * adapter (dev.nativescope.onnxruntime.OrtDirectRun), bound by hand there;
 * not ABI, like nsc_hold_run.
 *
 * Calls ONNX Runtime's OrtApi::Run at address `run` with the next eight
 * arguments (handles and arrays as addresses: session, run options, input
 * names, input OrtValues, their count, output names, output OrtValues, their
 * count) and returns what it returned: NULL (0) on success, else the
 * OrtStatus* the caller reads and releases. s0..s3 are never touched: as for
 * nsc_hold_run, the Java FFM runtime keeps their arenas open for as long as
 * this downcall is in flight, so the tensors ORT reads and writes through the
 * OrtValues cannot be freed meanwhile. Unused slots are NULL.
 * @return the OrtStatus* of the run as an address, 0 when it succeeded.
 */
NSC_API uintptr_t nsc_hold_ort_run(uintptr_t run, uintptr_t session, uintptr_t run_options, uintptr_t input_names,
                                   uintptr_t inputs, size_t input_len, uintptr_t output_names, size_t output_len,
                                   uintptr_t outputs, const void *s0, const void *s1, const void *s2,
                                   const void *s3);

/*
 * nsc_context_init_idle - an exported entry point for nativescope's call
 * bridge (dev.nativescope.call.CallFrame), bound by hand there; not ABI, like
 * nsc_hold_run.
 *
 * nsc_context_init(ctx, NSC_NO_DEADLINE, NULL, 0): how the bridge initialises
 * a call frame's struct (each call arms the deadline and values itself). It
 * has the shape of nsc_context_cancel, int(pointer, int), which the Java side
 * links when the library loads (the first cancel must not wait for a link):
 * a shape of its own, like nsc_context_init's, costs a fresh JVM milliseconds
 * to link (BENCHMARKS.md "Cold start"). reserved exists for that shape and
 * must be 0 (NSC_ERR_INVALID otherwise); the statuses are nsc_context_init's.
 */
NSC_API int nsc_context_init_idle(nsc_context *ctx, int reserved);

/*
 * nsc_monotonic_ns_high, nsc_monotonic_ns_low - exported entry points for
 * nativescope's loader (dev.nativescope.library.LibraryLoader), bound by hand
 * there; not ABI, like nsc_hold_run.
 *
 * The upper and lower 32 bits of nsc_monotonic_ns() now, each read at its own
 * call. They have the int(void) shape of nsc_abi_version, which the loader
 * links anyway: its clock check reads them through that shape instead of
 * linking one of its own for an int64_t(void) function, which costs a fresh
 * JVM milliseconds (BENCHMARKS.md "Cold start"). The caller reads high, low,
 * high: when both highs are equal the low half belongs to them (the clock is
 * monotonic), and the reading is high << 32 | (uint32_t) low.
 */
NSC_API int nsc_monotonic_ns_high(void);
NSC_API int nsc_monotonic_ns_low(void);

#endif /* NSC_INTERNAL_H */
