/**
 * Building blocks for adapters of third-party native runtimes (ONNX Runtime, a CUDA stream,
 * llama.cpp's abort flag, a socket): {@link dev.nativescope.interop.CancellationSignal}, the one
 * cancellation protocol (context, deadline, interrupt and an owner's close turned into one stop
 * action and one exception translation); {@link dev.nativescope.interop.InterruptHook}, which hears
 * {@code Thread.interrupt()} during a call the JDK cannot interrupt; and
 * {@link dev.nativescope.interop.SegmentHold}, which keeps memory segments alive (and checks their
 * owner thread) while native code uses them; and {@link dev.nativescope.interop.WritableMemory},
 * which refuses read-only memory as a native output.
 *
 * <p>Uses {@code dev.nativescope}, {@code library} and the {@code internal} packages; not the call
 * bridge, which builds on it.
 */
package dev.nativescope.interop;
