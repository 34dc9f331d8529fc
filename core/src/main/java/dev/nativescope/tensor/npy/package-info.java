/**
 * NumPy's {@code .npy} format, versions 1.0 to 3.0: {@link dev.nativescope.tensor.npy.Npy} maps
 * and creates files as {@code Tensor}s, {@link dev.nativescope.tensor.npy.NpyFile} is one mapped
 * file and {@link dev.nativescope.tensor.npy.NpyHeader} its validated header. Package-private: the
 * Python dict-literal parser and the dtype strings.
 *
 * <p>Uses {@code tensor}, {@code tensor.io}, {@code internal.shape} and {@code internal.access};
 * nothing here uses call or interop.
 */
package dev.nativescope.tensor.npy;
