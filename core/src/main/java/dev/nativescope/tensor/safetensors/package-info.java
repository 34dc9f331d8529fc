/**
 * The safetensors format: {@link dev.nativescope.tensor.safetensors.SafeTensors} maps, creates and
 * writes files of named tensors, and {@link dev.nativescope.tensor.safetensors.SafeTensorsFile} is
 * one mapped file. Package-private: the validated header, its entries and the layout of a new file.
 *
 * <p>Uses {@code tensor}, {@code tensor.io}, {@code internal.json} and {@code internal.shape};
 * nothing here uses call or interop.
 */
package dev.nativescope.tensor.safetensors;
