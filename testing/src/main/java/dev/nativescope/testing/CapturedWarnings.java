package dev.nativescope.testing;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * The {@code WARNING} (and more severe) messages one logger publishes while each test runs, for
 * tests that assert what the library logs through {@link System.Logger}, whose default backend is
 * {@code java.util.logging}. Register it on an instance field:
 * {@code @RegisterExtension final CapturedWarnings warnings = CapturedWarnings.of(name);}; it
 * listens from before each test until after it. Thread-safe: records may arrive from any thread.
 */
public final class CapturedWarnings implements BeforeEachCallback, AfterEachCallback {
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
    }

    /** @param loggerName the logger's name, e.g. the logging class's name; nothing is captured before a test starts */
    public static CapturedWarnings of(String loggerName) {
        return new CapturedWarnings(loggerName);
    }

    /** @return the messages so far, oldest first */
    public List<String> messages() {
        return List.copyOf(messages);
    }

    @Override
    public void beforeEach(ExtensionContext context) {
        messages.clear();
        logger.addHandler(handler);
    }

    @Override
    public void afterEach(ExtensionContext context) {
        logger.removeHandler(handler);
    }
}
