package dev.nativescope.exchange;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The producer side of the two-process tests, run in a child JVM.
 * <ul>
 * <li>{@code batches FILE COUNT BATCH}: creates FILE, publishes versions 1..COUNT of {@link Pattern}, and after
 *     every BATCH tensors waits for one byte on stdin (the consumer's ack), so that nothing is overrun.</li>
 * <li>{@code loop FILE}: creates FILE or takes it over, prints "ready", then publishes as fast as it can
 *     until it is killed.</li>
 * <li>{@code lease FILE}: opens FILE as a consumer, leases the newest tensor, prints "leased SLOT VERSION" and
 *     sleeps until it is killed.</li>
 * </ul>
 */
public final class ExchangeChild {
    private ExchangeChild() {
    }

    public static void main(String[] args) throws Exception {
        Path file = Path.of(args[1]);
        switch (args[0]) {
            case "batches" -> {
                int count = Integer.parseInt(args[2]);
                int batch = Integer.parseInt(args[3]);
                try (Producer producer = TensorExchange.create(file, batch + 1, 8192)) {
                    System.out.println("ready");
                    System.out.flush();
                    for (long v = 1; v <= count; v++) {
                        TensorExchangeTest.publish(producer, v);
                        if (v % batch == 0 && System.in.read() < 0) {
                            throw new IllegalStateException("the consumer went away at version " + v);
                        }
                    }
                }
            }
            case "loop" -> {
                Producer producer = Files.exists(file) ? TensorExchange.takeOver(file) : TensorExchange.create(file, 4, 8192);
                System.out.println("ready " + producer.epoch());
                System.out.flush();
                long v = producer.mapping().get(java.lang.foreign.ValueLayout.JAVA_LONG, ExchangeDescriptor.LATEST_VERSION_OFFSET);
                for (;;) {
                    TensorExchangeTest.publish(producer, ++v);
                }
            }
            case "lease" -> {
                Consumer consumer = TensorExchange.openConsumer(file);
                Received r = consumer.latest();
                Lease lease = consumer.lease(r).orElseThrow();
                System.out.println("leased " + lease.received().slot() + " " + lease.received().version());
                System.out.flush();
                Thread.sleep(Long.MAX_VALUE);
            }
            default -> throw new IllegalArgumentException(args[0]);
        }
    }
}
