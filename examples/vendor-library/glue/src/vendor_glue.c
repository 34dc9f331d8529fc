/*
 * vendor_glue.c - see vendor_glue.h. Everything nativescope-specific about
 * the vendor example is in this file; the vendor library is untouched.
 */
#include "vendor_glue.h"

GLUE_API int glue_check_current(void *unused, int64_t step, int64_t steps)
{
    (void) unused;
    (void) step;
    (void) steps;
    /* A step is microseconds of work: the clock read (tens of ns) makes the deadline exact to a step. */
    return nsc_current_check_clock() != NSC_OK;
}

GLUE_API int glue_check_captured(void *ctx, int64_t step, int64_t steps)
{
    (void) step;
    (void) steps;
    return ctx != NULL && nsc_check_clock(ctx) != NSC_OK;
}

/* The cancel hook: runs once, in the cancelling thread; vendor_terminate is one atomic store. */
static void terminate_model(void *model, int status)
{
    (void) status;
    vendor_terminate(model);
}

/* Runs vendor_predict under a terminate hook on ctx (not NULL). */
static int predict_with_hook(nsc_context *ctx, vendor_model *model, const float *in, float *out)
{
    vendor_resume(model);
    nsc_hook_t *hook = NULL;
    int registered = nsc_hook_register(ctx, terminate_model, model, &hook);
    if (registered < 0) {
        return VENDOR_ERR_NOMEM;
    }
    /* registered != NSC_OK: already cancelled, the hook ran here: the predict returns VENDOR_TERMINATED at once. */
    int status = vendor_predict(model, in, out);
    /* Before returning: the hook must not outlive the call (nor run on a model freed later). */
    nsc_hook_deregister(hook);
    return status;
}

GLUE_API int glue_predict(vendor_model *model, const float *in, float *out)
{
    nsc_context *ctx = nsc_current();
    if (ctx == NULL) {
        return vendor_predict(model, in, out);
    }
    return predict_with_hook(ctx, model, in, out);
}

GLUE_API int glue_predict_own_thread(vendor_model *model, const float *in, float *out)
{
    nsc_context *ctx = nsc_current();
    if (ctx == NULL) {
        return vendor_predict(model, in, out);
    }
    /* The vendor calls back on its own thread: hand it the context at registration, take it back after. */
    vendor_set_step_callback(model, glue_check_captured, ctx);
    int status = predict_with_hook(ctx, model, in, out);
    vendor_set_step_callback(model, NULL, NULL);
    return status;
}
