package dev.nativescope.exchange;

/**
 * Holds a slot against reuse: while the lease is open the producer skips the slot, so the
 * {@link Received} view's bytes do not change. A consumer process that dies leaves its leases to
 * be freed by the producer (the holder's pid and start time are in the entry). Close it as soon as
 * possible: a producer with every slot leased cannot publish. Not thread-safe; close once.
 */
public final class Lease implements AutoCloseable {
    private final ExchangeFile file;
    private final int entry;
    private final Received received;
    private boolean closed;

    Lease(ExchangeFile file, int entry, Received received) {
        this.file = file;
        this.entry = entry;
        this.received = received;
    }

    /** @return what the lease protects */
    public Received received() {
        return received;
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            Leases.release(file, entry);
        }
    }
}
