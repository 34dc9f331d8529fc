/*
 * user_predictor.h - an example of a predictor library written outside
 * nativescope, the way a user writes one: it includes <nativescope.h> (from the
 * native-shim jar, META-INF/native/include/) and <dlpack/dlpack.h>
 * (libdlpack-dev), takes an nsc_context * first, and returns an nsc_status.
 *
 * Linked against libnativescope.so (DT_NEEDED libnativescope.so, no rpath):
 * load it after NativeLibrary.load(), which has the shim in the process
 * already, so the dynamic loader reuses that copy (see docs/predictor-sdk.md).
 */
#ifndef USER_PREDICTOR_H
#define USER_PREDICTOR_H

#include <stdint.h>

#include <nativescope.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(USER_PREDICTOR_BUILDING)
#define USER_API __attribute__((visibility("default")))
#else
#define USER_API
#endif

/**
 * 2D convolution (cross-correlation, "valid" padding) over float32 DLPack
 * tensors on the CPU: out[i][j] = sum over (a, b) of in[i + a][j + b] * k[a][b],
 * with in [H, W], k [KH, KW] and out [H - KH + 1, W - KW + 1]; any strides.
 * The whole output is computed `repeat` times (repeat >= 1) to make work.
 * One nsc_checker_poll per output row. rows_done (may be NULL) receives the
 * number of output rows completed, over all repetitions.
 * @return NSC_OK with out complete, NSC_CANCELED / NSC_DEADLINE_EXCEEDED with
 *         out partial, NSC_ERR_INVALID for a tensor of another dtype, device,
 *         rank or shape, or an output that overlaps the input or the kernel.
 */
USER_API int user_conv2d(nsc_context *ctx, const DLTensor *in, const DLTensor *kernel, DLTensor *out,
                         int64_t repeat, int64_t *rows_done);

/**
 * Reads one frame from fd into out, a compact (strides NULL or row-major)
 * float32 CPU tensor of any shape: exactly its byte size, native byte order.
 * Waits for fd with nsc_wait_fd before every read, so a cancel, the deadline
 * or timeout_ns (< 0: none) stops it while no byte is coming. fd may be
 * blocking. bytes_read (may be NULL) receives the bytes read so far.
 * @return NSC_OK with the frame complete, NSC_CANCELED, NSC_DEADLINE_EXCEEDED,
 *         NSC_TIMEOUT, NSC_NOT_FOUND when fd reached end of file first,
 *         NSC_ERR_INVALID, NSC_ERR_SYSTEM (errno set).
 */
USER_API int user_read_frame(nsc_context *ctx, int fd, DLTensor *out, int64_t timeout_ns, int64_t *bytes_read);

#ifdef __cplusplus
}
#endif

#endif /* USER_PREDICTOR_H */
