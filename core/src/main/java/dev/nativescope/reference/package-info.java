/**
 * The shim's reference predictors and their fixtures, for tests, the demo and the benchmarks; not
 * API to build on: {@link dev.nativescope.reference.ReferencePredictors} (a dense layer, a predictor
 * that blocks on a file descriptor, a spinning one and no-ops, each called through the bridge), {@link
 * dev.nativescope.reference.PredictionStats} and {@link dev.nativescope.reference.EventFd}.
 *
 * <p>Uses {@code dev.nativescope}, {@code library}, {@code call}, {@code interop}, {@code tensor},
 * {@code internal.posix} and the bindings; no other package of the core uses it.
 */
package dev.nativescope.reference;
