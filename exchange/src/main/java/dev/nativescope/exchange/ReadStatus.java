package dev.nativescope.exchange;

/** What a {@link Consumer} read or wait found. */
public enum ReadStatus {
    /** A tensor: {@link Received#tensor()} is a zero-copy view of it. */
    OK,
    /** Nothing (new) has been published. */
    EMPTY,
    /**
     * The consumer was lapped: the version it wanted was overwritten before it read it.
     * {@link Received#missed()} says how many versions were lost; the next {@code next()} returns
     * the oldest version still there.
     */
    OVERRUN,
    /** The wait's own timeout passed (the context is still live). */
    TIMEOUT,
    /** The producer process died (or its pid now names another process); a new producer may take over. */
    PRODUCER_DEAD,
    /** The producer closed the exchange. */
    PRODUCER_CLOSED
}
