/*
 * vendor_compute.c - the "vendor" library of the example: plain C with
 * pthreads, no nativescope (it is linked against libc only).
 */
#include "vendor_compute.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct vendor_model {
    int64_t size;
    int64_t steps;
    int64_t prepare_rounds;
    int flags;
    vendor_step_callback callback;
    void *user_data;
    int terminate; /* atomic: set by vendor_terminate, cleared by vendor_resume */
    float *scratch;
    volatile float prepared; /* what preparation computes: kept so that the loop is not optimised away */
};

/* One predict's work, run on the caller's thread or the model's own. */
struct run {
    vendor_model *model;
    const float *in;
    float *out;
    int status;
};

static int terminated(const vendor_model *model)
{
    return __atomic_load_n(&model->terminate, __ATOMIC_ACQUIRE);
}

static void compute(struct run *run)
{
    vendor_model *m = run->model;
    /* Preparation: busy work with no callback, as a vendor's graph optimisation or weight loading. */
    float acc = 1.0f;
    for (int64_t round = 0; round < m->prepare_rounds; round++) {
        if (terminated(m)) {
            run->status = VENDOR_TERMINATED;
            return;
        }
        for (int i = 0; i < 4096; i++) {
            acc = acc * 0.999f + 0.001f;
        }
    }
    m->prepared = acc;

    const int64_t n = m->size;
    float *y = run->out;
    float *z = m->scratch;
    memcpy(y, run->in, (size_t) n * sizeof *y);
    for (int64_t step = 0; step < m->steps; step++) {
        if (terminated(m)) {
            run->status = VENDOR_TERMINATED;
            return;
        }
        for (int64_t i = 0; i < n; i++) {
            float left = y[i > 0 ? i - 1 : 0];
            float right = y[i + 1 < n ? i + 1 : n - 1];
            z[i] = 0.5f * y[i] + 0.25f * (left + right);
        }
        memcpy(y, z, (size_t) n * sizeof *y);
        if (m->callback != NULL && m->callback(m->user_data, step + 1, m->steps) != 0) {
            run->status = VENDOR_ABORTED;
            return;
        }
    }
    run->status = VENDOR_OK;
}

static void *compute_thread(void *arg)
{
    compute(arg);
    return NULL;
}

VENDOR_API vendor_model *vendor_create(int64_t size, int64_t steps, int64_t prepare_rounds, int flags)
{
    if (size < 1 || size > (INT64_C(1) << 28) || steps < 0 || prepare_rounds < 0) {
        return NULL;
    }
    vendor_model *m = calloc(1, sizeof *m);
    if (m == NULL) {
        return NULL;
    }
    m->scratch = malloc((size_t) size * sizeof *m->scratch);
    if (m->scratch == NULL) {
        free(m);
        return NULL;
    }
    m->size = size;
    m->steps = steps;
    m->prepare_rounds = prepare_rounds;
    m->flags = flags;
    return m;
}

VENDOR_API void vendor_set_step_callback(vendor_model *model, vendor_step_callback callback, void *user_data)
{
    model->callback = callback;
    model->user_data = user_data;
}

VENDOR_API int vendor_predict(vendor_model *model, const float *in, float *out)
{
    if (model == NULL || in == NULL || out == NULL) {
        return VENDOR_ERR_INVALID;
    }
    struct run run = { model, in, out, VENDOR_OK };
    if ((model->flags & VENDOR_OWN_THREAD) == 0) {
        compute(&run);
        return run.status;
    }
    pthread_t thread;
    if (pthread_create(&thread, NULL, compute_thread, &run) != 0) {
        return VENDOR_ERR_THREAD;
    }
    pthread_join(thread, NULL);
    return run.status;
}

VENDOR_API void vendor_terminate(vendor_model *model)
{
    __atomic_store_n(&model->terminate, 1, __ATOMIC_RELEASE);
}

VENDOR_API void vendor_resume(vendor_model *model)
{
    __atomic_store_n(&model->terminate, 0, __ATOMIC_RELEASE);
}

VENDOR_API void vendor_destroy(vendor_model *model)
{
    if (model != NULL) {
        free(model->scratch);
        free(model);
    }
}
