package dev.nativescope.internal.access;

import java.util.List;

/**
 * What diagnostics read of the call bridge: the calls in flight. Implemented in
 * {@code dev.nativescope.call}, reached through {@link SharedAccess#CALLS}.
 *
 * <p>Thread-safe: any thread may take a snapshot while calls start and end.
 */
public interface CallAccess {
    /** {@return a snapshot of every cancellable call in flight now; calls that end meanwhile may be left out} */
    List<CallSnapshot> inFlight();
}
