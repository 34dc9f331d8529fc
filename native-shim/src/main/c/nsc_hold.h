/*
 * nsc_hold.h - an entry point of libnativescope for nativescope's own Java
 * side (its SegmentHold), not for predictor authors: a downcall that only
 * blocks, so that the FFM runtime keeps its segment arguments' arenas open.
 * Not part of the predictor contract (nativescope.h).
 */
#ifndef NSC_HOLD_H
#define NSC_HOLD_H

#include "nativescope.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Keeps up to eight Java memory segments alive for as long as it blocks.
 *
 * The C code never touches s0..s7: they exist for the Java FFM runtime,
 * which refuses to close the arena of a MemorySegment passed as an argument
 * to a downcall while that downcall is in flight (Arena.close() then throws
 * IllegalStateException). Java calls this on a holder thread with the
 * segments another native library (e.g. ONNX Runtime through JNI) reads or
 * writes, and those segments' memory then cannot be freed until it returns.
 * Unused slots are NULL.
 *
 * It stores 1 into *entered (a release store: the Java side polls it with an
 * acquire load to learn that the segments are held), then blocks in poll()
 * until release_fd is readable (an eventfd the Java side signals; never read
 * or drained here, so one signal releases every holder waiting on it).
 * @return NSC_OK once release_fd was readable; NSC_ERR_INVALID for a NULL
 *         entered or a negative release_fd (nothing held, *entered not set);
 *         NSC_ERR_SYSTEM when poll() fails other than with EINTR.
 */
NSC_API int nsc_hold_segments(uint32_t *entered, int release_fd, const void *s0, const void *s1,
                              const void *s2, const void *s3, const void *s4, const void *s5,
                              const void *s6, const void *s7);

#ifdef __cplusplus
}
#endif

#endif /* NSC_HOLD_H */
