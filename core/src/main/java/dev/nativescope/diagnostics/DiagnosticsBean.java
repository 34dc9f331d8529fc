package dev.nativescope.diagnostics;

/** The MBean behind {@value Diagnostics#OBJECT_NAME}; stateless, thread-safe. */
final class DiagnosticsBean implements DiagnosticsMXBean {
    @Override
    public int getInFlightCount() {
        return Diagnostics.inFlight().size();
    }

    @Override
    public String dumpInFlight() {
        return Diagnostics.dump();
    }
}
