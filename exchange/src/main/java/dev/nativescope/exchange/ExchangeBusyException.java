package dev.nativescope.exchange;

import java.nio.file.Path;

/** A live producer holds the exchange: there is one producer per exchange. */
public final class ExchangeBusyException extends IllegalStateException {
    private static final long serialVersionUID = 1L;

    /** @param file the exchange file; @param why who holds it */
    public ExchangeBusyException(Path file, String why) {
        super(file + " already has a producer: " + why + "; a new producer may take over only once it died or closed");
    }
}
