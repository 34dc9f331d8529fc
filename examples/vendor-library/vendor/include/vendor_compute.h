/*
 * vendor_compute.h - a stand-in for a vendor's inference library with a fixed
 * C API (think PaddlePaddle's paddle_infer_predict(predictor, in, out)): it
 * knows nothing of nativescope, and its signatures cannot change. It has a
 * long compute function, a progress callback, and its own terminate function.
 * Written here for the example (examples/vendor-library); treat it as a
 * binary you cannot modify.
 */
#ifndef VENDOR_COMPUTE_H
#define VENDOR_COMPUTE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(VENDOR_BUILDING)
#define VENDOR_API __attribute__((visibility("default")))
#else
#define VENDOR_API
#endif

enum vendor_status {
    VENDOR_OK = 0,
    VENDOR_ABORTED = 1,     /* the step callback asked to stop */
    VENDOR_TERMINATED = 2,  /* vendor_terminate was called */
    VENDOR_ERR_INVALID = -1,
    VENDOR_ERR_NOMEM = -2,
    VENDOR_ERR_THREAD = -3
};

/* vendor_create flags: run each predict's steps on a thread of the library's own. */
#define VENDOR_OWN_THREAD 1

typedef struct vendor_model vendor_model;

/*
 * Called after every step of vendor_predict, on the thread that computes
 * (the caller's, or the library's own with VENDOR_OWN_THREAD), with the
 * user_data given at registration. Return nonzero to abort the predict.
 */
typedef int (*vendor_step_callback)(void *user_data, int64_t step, int64_t steps);

/*
 * A model of `size` floats: vendor_predict first runs `prepare_rounds` rounds
 * of preparation (no callback; only vendor_terminate stops it), then `steps`
 * diffusion steps, out[i] <- 0.5 out[i] + 0.25 (out[i-1] + out[i+1]) (edges
 * repeat), starting from out = in, with the callback after each step.
 * @return the model, or NULL (invalid sizes, no memory).
 */
VENDOR_API vendor_model *vendor_create(int64_t size, int64_t steps, int64_t prepare_rounds, int flags);

/* Sets (or, with NULL, clears) the step callback. Not while a predict runs. */
VENDOR_API void vendor_set_step_callback(vendor_model *model, vendor_step_callback callback, void *user_data);

/*
 * The long compute function: in and out have the model's size. One predict
 * at a time per model.
 * @return VENDOR_OK with out complete, VENDOR_ABORTED, VENDOR_TERMINATED
 *         (out partial), VENDOR_ERR_INVALID, VENDOR_ERR_THREAD.
 */
VENDOR_API int vendor_predict(vendor_model *model, const float *in, float *out);

/*
 * From any thread: the running predict returns VENDOR_TERMINATED at its next
 * step or preparation round, and so does every later one until
 * vendor_resume. Async-safe: one atomic store.
 */
VENDOR_API void vendor_terminate(vendor_model *model);

/* Clears a terminate: the next predict runs. */
VENDOR_API void vendor_resume(vendor_model *model);

VENDOR_API void vendor_destroy(vendor_model *model);

#ifdef __cplusplus
}
#endif

#endif /* VENDOR_COMPUTE_H */
