/**
 * Tensor files on disk: {@link dev.nativescope.tensor.io.MappedFile} maps, creates and grows files
 * safely against hostile or changing files (no symlinks where none is expected, no files other
 * users can write, storage reserved before a mapping is written);
 * {@link dev.nativescope.tensor.io.IfExists} says what creating over an existing file does; and
 * {@link dev.nativescope.tensor.io.TensorFormatException} reports a malformed file by name.
 *
 * <p>Uses {@code internal.posix} (libc file calls) and {@code internal.access}, with which it
 * registers the creation hook the formats need; nothing here uses {@code tensor}, call or interop.
 */
package dev.nativescope.tensor.io;
