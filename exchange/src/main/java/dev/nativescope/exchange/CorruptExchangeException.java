package dev.nativescope.exchange;

import java.nio.file.Path;

/** A slot or header of an open exchange holds values no valid producer writes. */
public final class CorruptExchangeException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** @param file the exchange file; @param problem what is wrong */
    public CorruptExchangeException(Path file, String problem) {
        super(file + ": " + problem);
    }
}
