/**
 * The tensor model: {@link dev.nativescope.tensor.Tensor}, a strided view of typed elements over a
 * {@code MemorySegment} that owns no memory; {@link dev.nativescope.tensor.DType}, its element
 * types; {@link dev.nativescope.tensor.TensorSpec}, the dtype and shape of a tensor yet to be made;
 * and {@link dev.nativescope.tensor.DLPack}, zero-copy conversion to and from DLPack descriptors.
 * Package-private: the per-dtype element codec.
 *
 * <p>Uses the bindings (DLPack's structs) and {@code internal.shape}; nothing here uses the
 * context, call or interop packages, nor the file formats built on it.
 */
package dev.nativescope.tensor;
