/*
 * vendor_glue.h - the user's side of the vendor example: a few lines of C that
 * make the unmodified vendor library (vendor_compute.h) stop when a
 * nativescope context is cancelled, without changing any of its signatures.
 *
 *   - the vendor's step callback polls the current context, nsc_current(),
 *     which nativescope's bridge (NativeCall.call) sets on the thread that
 *     runs the call;
 *   - a cancel hook on the current context calls the vendor's own
 *     vendor_terminate, for the stretches where the vendor calls no callback.
 *
 * Linked against libnativescope.so and libvendor_compute.so (DT_NEEDED,
 * no rpath): load both first (VendorModel.load() does).
 */
#ifndef VENDOR_GLUE_H
#define VENDOR_GLUE_H

#include <nativescope.h>

#include "vendor_compute.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(VENDOR_GLUE_BUILDING)
#define GLUE_API __attribute__((visibility("default")))
#else
#define GLUE_API
#endif

/*
 * A vendor_step_callback that polls nsc_current() (user_data unused): set
 * once with vendor_set_step_callback(model, glue_check_current, NULL). Outside
 * a bridged call (no current context) it never aborts.
 * @return nonzero once the current context is done or past its deadline.
 */
GLUE_API int glue_check_current(void *unused, int64_t step, int64_t steps);

/*
 * A vendor_step_callback for callbacks made on a thread of the vendor's own,
 * where nsc_current() is NULL: user_data is the nsc_context * captured when
 * the callback was registered (valid only during the bridged call).
 * @return nonzero once that context is done or past its deadline.
 */
GLUE_API int glue_check_captured(void *ctx, int64_t step, int64_t steps);

/*
 * vendor_predict, with the same signature, stoppable by the current context:
 * registers a cancel hook on nsc_current() that calls vendor_terminate(model)
 * for the duration of the call (after vendor_resume, so an earlier call's
 * terminate does not stop this one). Without a current context it is
 * vendor_predict.
 * @return what vendor_predict returned, or VENDOR_ERR_NOMEM (no hook).
 */
GLUE_API int glue_predict(vendor_model *model, const float *in, float *out);

/*
 * glue_predict for a model created with VENDOR_OWN_THREAD: also registers
 * glue_check_captured with the current context as its user_data for the
 * duration of the call, and clears the callback before returning.
 */
GLUE_API int glue_predict_own_thread(vendor_model *model, const float *in, float *out);

#ifdef __cplusplus
}
#endif

#endif /* VENDOR_GLUE_H */
