package dev.nativescope.testing;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * The {@code WARNING} (and more severe) messages one logger publishes while this is open, for
 * tests that assert what the library logs through {@link System.Logger}, whose default backend is
 * {@code java.util.logging}. Thread-safe: records may arrive from any thread.
 */
public final class CapturedWarnings implements AutoCloseable {
    private final Logger logger;
    private final List<String> messages = new CopyOnWriteArrayList<>();
    private final Handler handler = new Handler() {
        @Override
        public void publish(LogRecord record) {
            if (record.getLevel().intValue() >= Level.WARNING.intValue()) {
                messages.add(record.getMessage());
            }
        }

        @Override
        public void flush() {
        }

        @Override
        public void close() {
        }
    };

    private CapturedWarnings(String loggerName) {
        // Held here: java.util.logging keeps loggers only weakly, and a collected one loses its handler.
        this.logger = Logger.getLogger(loggerName);
        logger.addHandler(handler);
    }

    /** @param loggerName the logger's name, e.g. the logging class's name */
    public static CapturedWarnings of(String loggerName) {
        return new CapturedWarnings(loggerName);
    }

    /** @return the messages so far, oldest first */
    public List<String> messages() {
        return List.copyOf(messages);
    }

    @Override
    public void close() {
        logger.removeHandler(handler);
    }
}
