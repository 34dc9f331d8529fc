/* The tensors both heartbeat harnesses (harness.c, callgrind_harness.c) pass to user_conv2d: the
 * JMH benchmark's shapes, a 256x256 input, a 5x5 kernel and the 252x252 output, random floats. */
#include "nativescope.h"
#include <stdlib.h>
typedef struct conv2d_inputs {
    DLTensor x, k, y;
} conv2d_inputs;
static DLTensor conv2d_tensor(float *d, int64_t *shape)
{
    DLTensor t = {0};
    t.data = d;
    t.device.device_type = kDLCPU;
    t.ndim = 2;
    t.dtype.code = kDLFloat;
    t.dtype.bits = 32;
    t.dtype.lanes = 1;
    t.shape = shape;
    return t;
}
static conv2d_inputs conv2d_inputs_make(void)
{
    static float x[256 * 256], k[25], y[252 * 252];
    static int64_t sx[2] = {256, 256}, sk[2] = {5, 5}, sy[2] = {252, 252};
    for (int i = 0; i < 256 * 256; i++) x[i] = (float) rand() / RAND_MAX;
    for (int i = 0; i < 25; i++) k[i] = (float) rand() / RAND_MAX;
    conv2d_inputs in = {conv2d_tensor(x, sx), conv2d_tensor(k, sk), conv2d_tensor(y, sy)};
    return in;
}
