/**
 * Seeing what native calls do: the registry of cancellable calls in flight
 * ({@link dev.nativescope.diagnostics.Diagnostics#inFlight()}, a formatted dump, the platform MBean
 * {@code dev.nativescope:type=Diagnostics} that {@code nativescope inspect <pid>} reads) and JFR
 * events in the {@code dev.nativescope} namespace (native calls, cancels requested and observed,
 * deadlines exceeded, stuck cancels, late returns of native code that does not check its context).
 *
 * <p>Uses {@code dev.nativescope} (the public context API), {@code internal.access} (the call
 * bridge's frames through {@code CallAccess}, the context internals), {@code internal.text}, and the
 * JDK's {@code jdk.jfr} and {@code java.management}, which it loads lazily: the JFR events once JFR is
 * initialised in the JVM, the platform MBean server from a background thread a second after the
 * bridge's first use. The call bridge uses it only through {@code internal.access}'s
 * {@code DiagnosticsHooks}; it never uses the call bridge's types.
 */
package dev.nativescope.diagnostics;
