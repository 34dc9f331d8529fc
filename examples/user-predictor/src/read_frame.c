/*
 * read_frame.c - a blocking predictor step: reads a tensor's bytes from an fd,
 * waiting with nsc_wait_fd, so that a cancel reaches it while it waits.
 */
#include "user_predictor.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <unistd.h>

/* The byte size of a compact CPU float32 tensor, or -1 when t is not one. */
static int64_t compact_f32_bytes(const DLTensor *t)
{
    if (t == NULL || t->device.device_type != kDLCPU || t->dtype.code != kDLFloat || t->dtype.bits != 32
        || t->dtype.lanes != 1 || t->ndim < 0 || t->ndim > NSC_DL_MAX_NDIM || (t->ndim > 0 && t->shape == NULL)) {
        return -1;
    }
    int64_t elements = 1;
    int64_t expected_stride = 1;
    for (int32_t d = t->ndim - 1; d >= 0; d--) {
        int64_t n = t->shape[d];
        if (n < 0 || (n > 0 && elements > INT64_MAX / 4 / n)) {
            return -1;
        }
        if (t->strides != NULL && n > 1 && t->strides[d] != expected_stride) {
            return -1;
        }
        expected_stride *= n > 0 ? n : 1;
        elements *= n;
    }
    if (elements > 0 && (t->data == NULL || (uintptr_t) ((char *) t->data + t->byte_offset) % sizeof(float) != 0)) {
        return -1;
    }
    return elements * (int64_t) sizeof(float);
}

int user_read_frame(nsc_context *ctx, int fd, DLTensor *out, int64_t timeout_ns, int64_t *bytes_read)
{
    if (bytes_read != NULL) {
        *bytes_read = 0;
    }
    int64_t size = compact_f32_bytes(out);
    if (size < 0 || fd < 0 || ctx == NULL) {
        return NSC_ERR_INVALID;
    }
    char *dst = (char *) out->data + out->byte_offset;
    int64_t got = 0;
    /* The timeout is for the whole frame: each wait gets what is left of it. */
    int64_t give_up_ns = timeout_ns < 0 ? -1 : nsc_monotonic_ns() + timeout_ns;
    int status = NSC_OK;
    while (got < size) {
        int64_t left_ns = -1;
        if (give_up_ns >= 0) {
            left_ns = give_up_ns - nsc_monotonic_ns();
            if (left_ns <= 0) {
                status = NSC_TIMEOUT;
                break;
            }
        }
        /* Never read without waiting first: a read on a blocking fd would not
         * hear the context. */
        status = nsc_wait_fd(ctx, fd, POLLIN, left_ns, NULL);
        if (status != NSC_OK) {
            break;
        }
        ssize_t n = read(fd, dst + got, (size_t) (size - got));
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            status = NSC_ERR_SYSTEM;
            break;
        }
        if (n == 0) {
            status = NSC_NOT_FOUND;
            break;
        }
        got += n;
    }
    if (bytes_read != NULL) {
        *bytes_read = got;
    }
    return status;
}
