/**
 * The context API: {@link dev.nativescope.Context} carries cancellation, a deadline and request
 * values across API boundaries, into other threads and into native code, as Go's
 * {@code context.Context} does; {@link dev.nativescope.CancellableContext} is the handle that
 * cancels; {@link dev.nativescope.ContextKey}, {@link dev.nativescope.Registration} and
 * {@link dev.nativescope.DeadlineExceededException} complete it.
 *
 * <p>Uses the JDK only (and registers its internals with {@code internal.access}); it knows nothing
 * of native code: the call bridge ({@code dev.nativescope.call}) and the adapters build on it.
 */
package dev.nativescope;
