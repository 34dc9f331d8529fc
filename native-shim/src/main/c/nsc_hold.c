/*
 * nsc_hold.c - nsc_hold_segments: a downcall that only blocks, so that the
 * Java side can keep memory segments' arenas open (see nsc_hold.h), and
 * nsc_hold_run, the same guarantee without a thread: a downcall that calls
 * back into Java (see nsc_internal.h).
 */
#include "nsc_internal.h"
#include "nsc_hold.h"

#include <errno.h>
#include <poll.h>

/* The segments are deliberately unused: holding them is the FFM runtime's job, for the duration of the call. */
static void unused_segments(const void *s0, const void *s1, const void *s2, const void *s3, const void *s4,
                            const void *s5, const void *s6, const void *s7)
{
    (void) s0;
    (void) s1;
    (void) s2;
    (void) s3;
    (void) s4;
    (void) s5;
    (void) s6;
    (void) s7;
}

NSC_API int nsc_hold_segments(uint32_t *entered, int release_fd, const void *s0, const void *s1,
                              const void *s2, const void *s3, const void *s4, const void *s5,
                              const void *s6, const void *s7)
{
    unused_segments(s0, s1, s2, s3, s4, s5, s6, s7);
    if (entered == NULL || release_fd < 0) {
        return NSC_ERR_INVALID;
    }
    /*
     * Release: the Java caller reads the flag with an acquire load and from then on relies on the
     * downcall being in flight (its arguments' arenas pinned), which is already true by now.
     */
    __atomic_store_n(entered, 1, __ATOMIC_RELEASE);
    for (;;) {
        struct pollfd p = { .fd = release_fd, .events = POLLIN, .revents = 0 };
        int n = poll(&p, 1, -1);
        if (n > 0) {
            /* Readable, or an error/hang-up on the fd: either way nothing more will come, stop holding. */
            return NSC_OK;
        }
        if (n < 0 && errno != EINTR) {
            return NSC_ERR_SYSTEM;
        }
    }
}

NSC_API void nsc_hold_run(void (*run)(void), const void *s0, const void *s1, const void *s2, const void *s3,
                          const void *s4, const void *s5, const void *s6, const void *s7)
{
    unused_segments(s0, s1, s2, s3, s4, s5, s6, s7);
    if (run != NULL) {
        run();
    }
}

NSC_API uintptr_t nsc_hold_ort_run(uintptr_t run, uintptr_t session, uintptr_t run_options, uintptr_t input_names,
                                   uintptr_t inputs, size_t input_len, uintptr_t output_names, size_t output_len,
                                   uintptr_t outputs, const void *s0, const void *s1, const void *s2,
                                   const void *s3)
{
    unused_segments(s0, s1, s2, s3, NULL, NULL, NULL, NULL);
    nsc__ort_run_fn fn = (nsc__ort_run_fn) run;
    return (uintptr_t) fn((struct OrtSession *) session, (const struct OrtRunOptions *) run_options,
                          (const char *const *) input_names, (const struct OrtValue *const *) inputs, input_len,
                          (const char *const *) output_names, output_len, (struct OrtValue **) outputs);
}
