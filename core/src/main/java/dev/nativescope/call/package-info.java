/**
 * The cancellable call bridge: {@link dev.nativescope.call.NativeCall} runs a downcall that takes an
 * {@code nsc_context *} under a {@link dev.nativescope.Context}, so that the context's cancellation,
 * its deadline and an interrupt of the calling thread stop the native code, and translates the
 * status; {@link dev.nativescope.call.NativeResources} counts what the bridge holds natively (call
 * frames, value blocks) for leak checks; {@link dev.nativescope.call.CallMode},
 * {@link dev.nativescope.call.NativeThreads} and {@link dev.nativescope.call.Affinity} run long calls on
 * a bounded pool of platform threads so that virtual threads never pin their carriers. Package-private:
 * the pooled call frames, the native copies of context values, the pool and its handoffs.
 *
 * <p>Uses {@code dev.nativescope}, {@code library}, {@code interop} (the cancellation protocol), the
 * bindings and {@code internal.access} / {@code internal.posix}; never the tensor packages. Each call
 * frame is its own entry in the in-flight registry that {@code dev.nativescope.diagnostics} dumps
 * (through {@code internal.access.CallAccess}); the bridge fires that package's JFR events through
 * {@code internal.access.DiagnosticsHooks}, never by naming its types.
 */
package dev.nativescope.call;
