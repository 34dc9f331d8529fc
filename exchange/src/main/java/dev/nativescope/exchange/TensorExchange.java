package dev.nativescope.exchange;

import static dev.nativescope.exchange.ExchangeDescriptor.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Zero-copy tensor exchange between processes through one memory-mapped file: one
 * {@link Producer}, any number of {@link Consumer}s, in Java, C ({@code nsc_exchange.h}) or Python
 * ({@code nativescope_exchange.py}, shipped in this jar under {@code META-INF/python/}). The layout
 * is {@link ExchangeDescriptor}'s.
 *
 * <p><b>Files.</b> {@link #create} makes the file with {@code O_CREAT|O_EXCL} and mode 0600,
 * reserves its storage ({@code posix_fallocate}, so a full {@code /dev/shm} is an exception now,
 * not a {@code SIGBUS} later) and writes the header, its version last. {@link #openConsumer} and
 * {@link #takeOver} map it read-write and refuse a file that other users can write, as
 * {@code MappedFile} does, and one whose header is not valid ({@code TensorFormatException}).
 *
 * <p><b>One producer.</b> The header names its producer by pid and start time. {@link #takeOver}
 * refuses while that process lives; once it died (or closed the exchange) the caller becomes the
 * producer (a CAS of the pid decides between two candidates), repairs a slot left half-written
 * (it reads as empty) and wakes every waiter. Stateless and thread-safe.
 */
public final class TensorExchange {
    /** Where {@link #defaultPath(String)} puts exchange files. */
    public static final Path DEFAULT_DIRECTORY = Path.of("/dev/shm");

    private TensorExchange() {
    }

    /** @return {@code /dev/shm/<name>} */
    public static Path defaultPath(String name) {
        return DEFAULT_DIRECTORY.resolve(name);
    }

    /**
     * Creates a new exchange file and becomes its producer.
     *
     * @param slotCount slots (1..{@value ExchangeDescriptor#MAX_SLOTS}; at least 2 so a consumer can read the
     *        newest tensor while the next one is written)
     * @param slotCapacity bytes per slot (rounded up to a multiple of 64)
     * @throws java.nio.file.FileAlreadyExistsException when the file exists
     */
    public static Producer create(Path file, int slotCount, long slotCapacity) throws IOException {
        return new Producer(ExchangeFile.create(file, slotCount, slotCapacity));
    }

    /**
     * Becomes the producer of an existing exchange whose producer died or closed it.
     *
     * @throws ExchangeBusyException when its producer is alive
     */
    public static Producer takeOver(Path file) throws IOException {
        ExchangeFile exchange = ExchangeFile.open(file);
        boolean success = false;
        try {
            int old = exchange.intVolatile(PRODUCER_PID_OFFSET);
            ProducerState state = exchange.producerState();
            if (state == ProducerState.ALIVE) {
                throw new ExchangeBusyException(file, "its producer, pid " + old + ", is alive");
            }
            if (!exchange.intCas(PRODUCER_PID_OFFSET, old, ProcessIdentity.selfPid())) {
                throw new ExchangeBusyException(file, "another process took it over first");
            }
            exchange.longVolatile(PRODUCER_START_OFFSET, ProcessIdentity.selfStart());
            int epoch = exchange.intVolatile(PRODUCER_EPOCH_OFFSET);
            exchange.intVolatile(PRODUCER_EPOCH_OFFSET, epoch + 1);
            Slots.repair(exchange);
            exchange.intVolatile(CLOSED_OFFSET, 0);
            exchange.longVolatile(HEARTBEAT_NS_OFFSET, System.nanoTime());
            ExchangeNative.notify(exchange.header);
            success = true;
            return new Producer(exchange);
        } finally {
            if (!success) {
                exchange.close();
            }
        }
    }

    /** Opens an existing exchange as a consumer. */
    public static Consumer openConsumer(Path file) throws IOException {
        return new Consumer(ExchangeFile.open(file));
    }

    /** Deletes the exchange file (mappings stay valid until closed). */
    public static void delete(Path file) throws IOException {
        Files.deleteIfExists(file);
    }
}
