/* A user's own predictor library, built against the headers of the native-shim jar
 * (-I <unpacked>/META-INF/native/include: nativescope.h and dlpack/dlpack.h) and linked with -lnativescope. */
#include <nativescope.h>

#include <string.h>

#define CONSUMER_API __attribute__((visibility("default")))

/* Sums a 1-D float32 tensor `repeat` times into *out, polling the context once per pass. */
CONSUMER_API int consumer_sum(nsc_context *ctx, const DLTensor *in, float *out, int64_t repeat)
{
    if (in == NULL || out == NULL || in->ndim != 1 || in->device.device_type != kDLCPU
            || in->dtype.code != kDLFloat || in->dtype.bits != 32 || in->dtype.lanes != 1 || repeat < 1) {
        return NSC_ERR_INVALID;
    }
    const float *x = (const float *) ((const char *) in->data + in->byte_offset);
    int64_t stride = in->strides ? in->strides[0] : 1;
    nsc_checker checker;
    nsc_checker_init(&checker, ctx, 0);
    float sum = 0;
    for (int64_t r = 0; r < repeat; r++) {
        int status = nsc_checker_poll(&checker);
        if (status != NSC_OK) {
            return status;                 /* NSC_CANCELED or NSC_DEADLINE_EXCEEDED */
        }
        sum = 0;
        for (int64_t i = 0; i < in->shape[0]; i++) {
            sum += x[i * stride];
        }
    }
    *out = sum;
    return NSC_OK;
}

/* Copies the request value of `key` (NUL-terminated) into buf; NSC_NOT_FOUND when the context has none. */
CONSUMER_API int consumer_value(const nsc_context *ctx, const char *key, char *buf, size_t cap)
{
    const char *value;
    size_t len;
    int status = nsc_value(ctx, key, strlen(key), &value, &len);
    if (status != NSC_OK) {
        return status;
    }
    if (len + 1 > cap) {
        return NSC_ERR_INVALID;
    }
    memcpy(buf, value, len);
    buf[len] = '\0';
    return NSC_OK;
}
