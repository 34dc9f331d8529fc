package dev.nativescope.exchange;

/** The producer of an exchange as its header names it (pid and start time, the closed flag). */
public enum ProducerState {
    /** The process that holds the exchange is running. */
    ALIVE,
    /** It is gone, a zombie, or its pid belongs to a process with another start time: the exchange can be taken over. */
    DEAD,
    /** It closed the exchange; a new producer may take it over. */
    CLOSED
}
