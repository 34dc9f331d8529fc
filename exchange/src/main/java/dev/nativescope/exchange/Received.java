package dev.nativescope.exchange;

import dev.nativescope.tensor.Tensor;

/**
 * The result of a read or wait: a status and, for {@link ReadStatus#OK}, a read-only zero-copy
 * {@link Tensor} over the slot in the shared mapping.
 *
 * <p><b>How long a view stays valid.</b> The producer reuses a slot after at least
 * {@code slotCount - 1} further publications, and then overwrites the view's bytes in place: the
 * view never becomes unreadable (until the consumer is closed), but its contents may change. Read
 * it, then call {@link #isStillValid()}: true means nothing changed while you read (a seqlock
 * check). To keep a slot from being reused, e.g. while native code reads it, take a
 * {@link Consumer#lease(Received) lease}. Immutable; the view may be read from any thread.
 */
public final class Received {
    private final ReadStatus status;
    private final Tensor tensor;
    private final long version;
    private final int slot;
    private final int seq;
    private final long missed;
    private final long publishNanos;
    private final ExchangeFile file;

    Received(ReadStatus status, Tensor tensor, long version, int slot, int seq, long missed, long publishNanos,
             ExchangeFile file) {
        this.status = status;
        this.tensor = tensor;
        this.version = version;
        this.slot = slot;
        this.seq = seq;
        this.missed = missed;
        this.publishNanos = publishNanos;
        this.file = file;
    }

    /** Per status, the one result without a tensor (immutable, so shared: a spinning next() allocates nothing). */
    private static final Received[] WITHOUT_TENSOR = new Received[ReadStatus.values().length];

    static {
        for (ReadStatus status : ReadStatus.values()) {
            WITHOUT_TENSOR[status.ordinal()] = new Received(status, null, 0, -1, 0, 0, 0, null);
        }
    }

    static Received of(ReadStatus status) {
        return WITHOUT_TENSOR[status.ordinal()];
    }

    static Received overrun(long missed) {
        return new Received(ReadStatus.OVERRUN, null, 0, -1, 0, missed, 0, null);
    }

    /** @return what was found */
    public ReadStatus status() {
        return status;
    }

    /** @return true for {@link ReadStatus#OK} */
    public boolean isOk() {
        return status == ReadStatus.OK;
    }

    /**
     * @return the read-only zero-copy view
     * @throws IllegalStateException when the status is not {@link ReadStatus#OK}
     */
    public Tensor tensor() {
        if (tensor == null) {
            throw new IllegalStateException("no tensor: " + status);
        }
        return tensor;
    }

    /** @return the version (1, 2, ...), 0 without a tensor */
    public long version() {
        return version;
    }

    /** @return the slot index, -1 without a tensor */
    public int slot() {
        return slot;
    }

    int seq() {
        return seq;
    }

    /** @return for {@link ReadStatus#OVERRUN}, how many versions were lost */
    public long missed() {
        return missed;
    }

    /** @return the producer's {@code System.nanoTime()} (CLOCK_MONOTONIC) at publish */
    public long publishNanos() {
        return publishNanos;
    }

    /** @return true while the slot still holds this version: what was read since the read is intact */
    public boolean isStillValid() {
        if (tensor == null) {
            return false;
        }
        java.lang.invoke.VarHandle.loadLoadFence();
        return file.slotSeq(slot) == seq;
    }

    @Override
    public String toString() {
        return status == ReadStatus.OK ? "Received[v" + version + " slot " + slot + " " + tensor + "]"
                : status == ReadStatus.OVERRUN ? "Received[OVERRUN, " + missed + " missed]" : "Received[" + status + "]";
    }
}
