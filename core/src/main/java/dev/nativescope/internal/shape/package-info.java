/**
 * Shape arithmetic (not exported): {@link dev.nativescope.internal.shape.Shapes}, the one home of
 * the element count, byte size, contiguous strides and strided extent of every tensor, overflow
 * checked, with one message per failure.
 *
 * <p>Uses the JDK alone: it takes element sizes, not dtypes, so that {@code tensor} and the file
 * formats can use it without a cycle.
 */
package dev.nativescope.internal.shape;
