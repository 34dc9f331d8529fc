package dev.nativescope.diagnostics;

/**
 * The platform MBean {@value Diagnostics#OBJECT_NAME}, registered on the call bridge's first use: what
 * {@code nativescope inspect <pid>} (and any JMX client, e.g. JConsole) reads.
 */
public interface DiagnosticsMXBean {
    /** {@return the number of cancellable calls in flight} */
    int getInFlightCount();

    /** {@return the in-flight calls as a table, cancelled-but-not-returned first; see {@link Diagnostics#dump()}} */
    String dumpInFlight();
}
