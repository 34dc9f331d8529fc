package dev.nativescope.benchmarks.exchange;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.exchange.Consumer;
import dev.nativescope.exchange.Producer;
import dev.nativescope.exchange.ReadStatus;
import dev.nativescope.exchange.Received;
import dev.nativescope.exchange.TensorExchange;
import dev.nativescope.tensor.DType;
import io.aeron.Aeron;
import io.aeron.Publication;
import io.aeron.Subscription;
import io.aeron.driver.MediaDriver;
import io.aeron.driver.ThreadingMode;
import io.aeron.logbuffer.FragmentHandler;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.BusySpinIdleStrategy;
import org.agrona.concurrent.IdleStrategy;
import org.agrona.concurrent.SleepingMillisIdleStrategy;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * Cross-process figures of the tensor exchange, measured between two real processes (this JVM, the
 * consumer, and a child JVM, the producer), not in JMH: JMH measures one process. One-way times use
 * {@code System.nanoTime()}, which on Linux is CLOCK_MONOTONIC, one clock for every process: the
 * producer stamps the message right before it publishes, the consumer subtracts the stamp right
 * after it has the message.
 *
 * <pre>
 * java --enable-native-access=ALL-UNNAMED -cp benchmarks/target/nativescope-benchmarks.jar \
 *     dev.nativescope.benchmarks.exchange.ExchangeLatency [wake|blocked|handoff|death|all] [key=value...]
 * </pre>
 *
 * <ul>
 * <li>{@code wake}: publish-to-consumer-wake latency of 64-byte messages at one message per
 *     {@code interval} us ({@code messages}, after {@code warmup}), for a spinning consumer
 *     ({@code Consumer.next()} in a loop) and a blocked one ({@code awaitNext}: futex_waitv), beside
 *     the same handoff done by a tiny C program with a bare shared futex word ({@code futex_floor.c},
 *     compiled here with gcc) and Aeron IPC ({@code aeron:ipc}, embedded media driver in this
 *     process) with a busy-spin and with Aeron's default back-off idle strategy, all at the same
 *     rate.</li>
 * <li>{@code blocked}: the blocked consumer (platform and virtual thread) against the C FUTEX_WAIT floor in
 *     {@code pairs} alternating rounds, with the per-round ratios (the goal: within 1.5x of the floor); also
 *     the platform thread under a context with a far deadline ({@code block-bridged}), which waits through
 *     the call bridge as every wait did before {@code PlatformWait}, and with a far timeout ({@code block-timed}).</li>
 * <li>{@code interleaved}: one producer stream, the platform-thread consumer alternating message by message
 *     between the direct wait and the bridged one (far deadline), in {@code pairs} rounds: the two paths under
 *     the same scheduling, which the per-round cases of {@code blocked} do not share.</li>
 * <li>{@code handoff}: time from "the producer has the tensor in memory" to "the consumer can read
 *     it" for 4 KiB, 1 MiB and 64 MiB, through the exchange (the producer writes into the slot, then
 *     publishes) and through a UNIX domain socket (write of the bytes, read into a buffer of the
 *     consumer). One tensor at a time: the producer waits for an ack before the next.</li>
 * <li>{@code death}: a producer JVM SIGKILLed while publishing; time from kill to the blocked
 *     consumer's {@code PRODUCER_DEAD}, beside the time until the kernel reports the process gone
 *     ({@code Process.onExit}).</li>
 * </ul>
 */
public final class ExchangeLatency {
    private static final int MESSAGE = 64;
    private static final int AERON_STREAM = 1016;

    private ExchangeLatency() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].startsWith("child-")) {
            child(args);
            return;
        }
        String what = args.length > 0 ? args[0] : "all";
        Options o = Options.parse(Arrays.copyOfRange(args, Math.min(1, args.length), args.length));
        System.out.printf("# ExchangeLatency %s; %s; JDK %s; %d cpus; load average %s%n", what, o,
                Runtime.version(), Runtime.getRuntime().availableProcessors(), loadAverage());
        if (what.equals("wake") || what.equals("all")) {
            wake(o);
        }
        if (what.equals("blocked")) {
            blocked(o);
        }
        if (what.equals("interleaved")) {
            interleaved(o);
        }
        if (what.equals("handoff") || what.equals("all")) {
            handoff(o);
        }
        if (what.equals("death") || what.equals("all")) {
            death(o);
        }
        System.out.printf("# load average at the end: %s%n", loadAverage());
    }

    record Options(int messages, int warmup, long intervalMicros, int rounds, double handoffScale, boolean aeron,
                   long spinMicros, boolean handoffTouchOnly, int pairs) {
        static Options parse(String[] args) {
            int messages = 20_000;
            int warmup = 5_000;
            long interval = 100;
            int rounds = 20;
            double scale = 1;
            boolean aeron = true;
            long spin = 150;
            boolean touchOnly = false;
            int pairs = 6;
            for (String a : args) {
                String[] kv = a.split("=", 2);
                switch (kv[0]) {
                    case "messages" -> messages = Integer.parseInt(kv[1]);
                    case "warmup" -> warmup = Integer.parseInt(kv[1]);
                    case "interval" -> interval = Long.parseLong(kv[1]);
                    case "rounds" -> rounds = Integer.parseInt(kv[1]);
                    case "handoffScale" -> scale = Double.parseDouble(kv[1]);
                    case "aeron" -> aeron = Boolean.parseBoolean(kv[1]);
                    case "spin" -> spin = Long.parseLong(kv[1]);
                    case "pairs" -> pairs = Integer.parseInt(kv[1]);
                    case "handoffFill" -> touchOnly = switch (kv[1]) {
                        case "full" -> false;
                        case "touch" -> true;
                        default -> throw new IllegalArgumentException("handoffFill=full|touch, not " + kv[1]);
                    };
                    default -> throw new IllegalArgumentException("unknown option " + a
                            + " (messages, warmup, interval [us], rounds, handoffScale, aeron, spin [us], handoffFill=full|touch, pairs)");
                }
            }
            return new Options(messages, warmup, interval, rounds, scale, aeron, spin, touchOnly, pairs);
        }

        @Override
        public String toString() {
            return "messages=" + messages + " warmup=" + warmup + " interval=" + intervalMicros + "us rounds=" + rounds
                    + " handoffScale=" + handoffScale + " aeron=" + aeron + " spin=" + spinMicros + "us"
                    + " handoffFill=" + (handoffTouchOnly ? "touch" : "full") + " pairs=" + pairs;
        }
    }

    // ------------------------------------------------------------------ wake

    static void wake(Options o) throws Exception {
        System.out.println("## publish-to-wake, one-way, 64-byte messages, one per " + o.intervalMicros() + " us (us)");
        System.out.println(Stats.HEADER);
        Path floor = buildFloor();
        for (String mode : List.of("spin", "block")) {
            Process p = new ProcessBuilder(floor.toString(), mode, Integer.toString(o.messages()), Integer.toString(o.warmup()),
                    Long.toString(o.intervalMicros())).redirectErrorStream(true).start();
            String line = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
            if (p.waitFor() != 0) {
                throw new IllegalStateException("futex_floor " + mode + ": " + line);
            }
            System.out.println(Stats.fromFloorLine("C futex word, " + (mode.equals("spin") ? "spinning" : "FUTEX_WAIT"), line));
        }
        for (String mode : List.of("spin", "block", "block-virtual", "spin-then-block")) {
            System.out.println(exchangeWake(o, mode));
        }
        if (o.aeron()) {
            for (boolean spin : new boolean[] {true, false}) {
                System.out.println(aeronWake(o, spin));
            }
        }
    }

    /**
     * The blocked wake against its floor, in {@code pairs} rounds that alternate the C FUTEX_WAIT floor, the
     * blocked exchange consumer on a platform thread and on a virtual thread (the order rotating), so that all
     * three see the same load; prints every round and, per exchange case, the median over rounds of its p50 and
     * p90 divided by the floor's of the same round.
     */
    static void blocked(Options o) throws Exception {
        System.out.println("## blocked publish-to-wake against the C futex floor, " + o.pairs() + " alternating rounds of "
                + o.messages() + " messages, one per " + o.intervalMicros() + " us (us)");
        System.out.println(Stats.HEADER);
        Path floor = buildFloor();
        List<String> cases = List.of("floor", "block", "block-bridged", "block-timed", "block-virtual");
        double[][] p50 = new double[cases.size()][o.pairs()];
        double[][] p90 = new double[cases.size()][o.pairs()];
        for (int round = 0; round < o.pairs(); round++) {
            for (int k = 0; k < cases.size(); k++) {
                int c = (k + round) % cases.size();
                Stats stats;
                if (cases.get(c).equals("floor")) {
                    Process p = new ProcessBuilder(floor.toString(), "block", Integer.toString(o.messages()),
                            Integer.toString(o.warmup()), Long.toString(o.intervalMicros())).redirectErrorStream(true).start();
                    String line = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
                    if (p.waitFor() != 0) {
                        throw new IllegalStateException("futex_floor block: " + line);
                    }
                    stats = Stats.fromFloorLine("round " + round + ": C futex word, FUTEX_WAIT", line);
                } else {
                    Stats e = exchangeWake(o, cases.get(c));
                    stats = e.renamed("round " + round + ": " + e.name().replace("nativescope exchange, ", "exchange, "));
                }
                p50[c][round] = stats.p50();
                p90[c][round] = stats.p90();
                System.out.println(stats);
            }
        }
        for (int c = 1; c < cases.size(); c++) {
            double[] r50 = new double[o.pairs()];
            double[] r90 = new double[o.pairs()];
            for (int round = 0; round < o.pairs(); round++) {
                r50[round] = p50[c][round] / p50[0][round];
                r90[round] = p90[c][round] / p90[0][round];
            }
            System.out.printf("# %s / floor, same round: p50 ratios %s (median %.2f), p90 ratios %s (median %.2f)%n",
                    cases.get(c), ratios(r50), median(r50), ratios(r90), median(r90));
        }
    }

    /** The direct and the bridged wait alternating per message behind one producer: their p50 ratio per round. */
    static void interleaved(Options o) throws Exception {
        System.out.println("## blocked wake, direct (PlatformWait) and bridged (far deadline) waits alternating per message, "
                + o.pairs() + " rounds (us)");
        System.out.println(Stats.HEADER);
        double[] ratio = new double[o.pairs()];
        for (int round = 0; round < o.pairs(); round++) {
            INTERLEAVED_BRIDGED[0] = null;
            Stats direct = exchangeWake(o, "block-interleaved");
            Stats bridged = INTERLEAVED_BRIDGED[0];
            System.out.println(direct.renamed("round " + round + ": direct (awaitNext, no deadline)"));
            System.out.println(bridged.renamed("round " + round + ": bridged (awaitNext, far deadline)"));
            ratio[round] = bridged.p50() / direct.p50();
        }
        System.out.printf("# bridged / direct, same stream: p50 ratios %s (median %.2f)%n", ratios(ratio), median(ratio));
    }

    /** The bridged half of the last {@code block-interleaved} run (its direct half is returned). */
    private static final Stats[] INTERLEAVED_BRIDGED = new Stats[1];

    private static String ratios(double[] r) {
        StringBuilder b = new StringBuilder();
        for (double x : r) {
            b.append(b.isEmpty() ? "" : " ").append(String.format("%.2f", x));
        }
        return b.toString();
    }

    private static double median(double[] values) {
        double[] s = values.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    /**
     * @param mode spin: {@code next()} in a loop; block: {@code awaitNext} (no timeout); block-virtual: the same on a
     *        virtual thread (the wait offloaded to a native thread); spin-then-block: with {@code spinBeforeBlocking}
     */
    static Stats exchangeWake(Options o, String mode) throws Exception {
        if (mode.equals("block-virtual")) {
            Stats[] result = new Stats[1];
            Exception[] failure = new Exception[1];
            Thread consumer = Thread.ofVirtual().start(() -> {
                try {
                    result[0] = exchangeWakeOnThisThread(o, mode);
                } catch (Exception e) {
                    failure[0] = e;
                }
            });
            consumer.join();
            if (failure[0] != null) {
                throw failure[0];
            }
            return result[0];
        }
        return exchangeWakeOnThisThread(o, mode);
    }

    private static Stats exchangeWakeOnThisThread(Options o, String mode) throws Exception {
        boolean spin = mode.equals("spin");
        Path file = TensorExchange.defaultPath("nsc-bench-wake-" + ProcessHandle.current().pid());
        TensorExchange.delete(file);
        Process child = childJvm("child-exchange-wake", file.toString(), Integer.toString(o.messages() + o.warmup()),
                Long.toString(o.intervalMicros()));
        try {
            expectLine(child, "ready");
            long total = o.messages() + o.warmup();
            long[] latencies = new long[o.messages()];
            long[] bridgedLatencies = new long[o.messages()];
            int n = 0;
            int nb = 0;
            boolean interleave = mode.equals("block-interleaved");
            try (Consumer consumer = TensorExchange.openConsumer(file);
                 CancellableContext bridged = mode.equals("block-bridged") || interleave
                         ? Context.background().withTimeout(Duration.ofHours(1)) : null) {
                if (mode.equals("spin-then-block")) {
                    consumer.spinBeforeBlocking(Duration.ofNanos(o.spinMicros() * 1000));
                }
                child.getOutputStream().write('\n');
                child.getOutputStream().flush();
                long last = 0;
                while (last < total) {
                    Received r;
                    if (spin) {
                        do {
                            r = consumer.next();
                            if (r.status() == ReadStatus.EMPTY) {
                                Thread.onSpinWait();
                            }
                        } while (r.status() == ReadStatus.EMPTY);
                    } else if (mode.equals("block-timed")) {
                        r = consumer.awaitNext(Duration.ofHours(1)); // as "block", with a far timer armed per wait
                    } else if (bridged != null && (!interleave || (last & 1) == 1)) {
                        r = consumer.awaitNext(bridged, null); // a deadline: through NativeCall.invoke
                    } else {
                        r = consumer.awaitNext(); // no timeout: no timer armed; a dead producer still ends it
                    }
                    long now = System.nanoTime();
                    if (r.status() == ReadStatus.OVERRUN) {
                        continue;
                    }
                    if (r.status() != ReadStatus.OK) {
                        throw new IllegalStateException("exchange wake: " + r.status() + " after version " + last);
                    }
                    long stamp = r.tensor().data().get(ValueLayout.JAVA_LONG, 0);
                    boolean viaBridge = interleave && (last & 1) == 1; // the mode the wait for this version ran in
                    last = r.version();
                    if (viaBridge && last > o.warmup() && nb < bridgedLatencies.length) {
                        bridgedLatencies[nb++] = now - stamp;
                    } else if (last > o.warmup() && n < latencies.length) {
                        latencies[n++] = now - stamp;
                    }
                }
            }
            finish(child);
            if (interleave) {
                INTERLEAVED_BRIDGED[0] = Stats.of("bridged", Arrays.copyOf(bridgedLatencies, nb));
            }
            return Stats.of("nativescope exchange, " + switch (mode) {
                        case "spin" -> "spinning (next())";
                        case "block" -> "blocked (awaitNext)";
                        case "block-bridged" -> "blocked (awaitNext), far deadline: bridge";
                        case "block-timed" -> "blocked (awaitNext), far timeout";
                        case "block-interleaved" -> "blocked (awaitNext), direct half of the interleaved run";
                        case "block-virtual" -> "blocked (awaitNext), virtual thread";
                        default -> "awaitNext, spinBeforeBlocking " + o.spinMicros() + " us";
                    },
                    Arrays.copyOf(latencies, n));
        } finally {
            child.destroyForcibly().waitFor();
            TensorExchange.delete(file);
        }
    }

    static Stats aeronWake(Options o, boolean spin) throws Exception {
        String dir = "/dev/shm/aeron-nsc-bench-" + ProcessHandle.current().pid();
        MediaDriver.Context ctx = new MediaDriver.Context().aeronDirectoryName(dir).threadingMode(ThreadingMode.SHARED)
                // The driver is not on the IPC data path (publisher and subscriber share the log buffer);
                // a sleeping conductor leaves the 2 cores to the two processes measured.
                .sharedIdleStrategy(new SleepingMillisIdleStrategy(1)).ipcTermBufferLength(1 << 20)
                .dirDeleteOnStart(true).dirDeleteOnShutdown(true);
        try (MediaDriver driver = MediaDriver.launchEmbedded(ctx);
             Aeron aeron = Aeron.connect(new Aeron.Context().aeronDirectoryName(driver.aeronDirectoryName()));
             Subscription sub = aeron.addSubscription("aeron:ipc", AERON_STREAM)) {
            long total = o.messages() + o.warmup();
            Process child = childJvm("child-aeron-wake", driver.aeronDirectoryName(), Long.toString(total),
                    Long.toString(o.intervalMicros()));
            try {
                expectLine(child, "ready");
                long[] latencies = new long[o.messages()];
                long[] count = {0};
                int[] n = {0};
                FragmentHandler handler = (buffer, offset, length, header) -> {
                    long now = System.nanoTime();
                    long seq = buffer.getLong(offset + 8);
                    count[0] = seq;
                    if (seq > o.warmup() && n[0] < latencies.length) {
                        latencies[n[0]++] = now - buffer.getLong(offset);
                    }
                };
                IdleStrategy idle = spin ? new BusySpinIdleStrategy() : new BackoffIdleStrategy();
                while (count[0] < total) {
                    idle.idle(sub.poll(handler, 16));
                }
                finish(child);
                return Stats.of("Aeron IPC, " + (spin ? "BusySpinIdleStrategy" : "default BackoffIdleStrategy"),
                        Arrays.copyOf(latencies, n[0]));
            } finally {
                child.destroyForcibly().waitFor();
            }
        }
    }

    // ------------------------------------------------------------------ handoff

    static void handoff(Options o) throws Exception {
        System.out.println("## handoff: producer has the tensor in memory -> consumer can read it, one at a time (us)");
        System.out.println(Stats.HEADER);
        long[][] cases = {{4 << 10, 2000}, {1 << 20, 300}, {64 << 20, 20}};
        for (long[] c : cases) {
            int count = Math.max(5, (int) (c[1] * o.handoffScale()));
            System.out.println(exchangeHandoff(c[0], count, o.handoffTouchOnly()));
            if (!o.handoffTouchOnly()) {
                System.out.println(socketHandoff(c[0], count));
            }
        }
    }

    static String size(long bytes) {
        return bytes >= 1 << 20 ? (bytes >> 20) + " MiB" : (bytes >> 10) + " KiB";
    }

    /** @param touchOnly the producer writes only the stamp and the last byte, not the whole tensor (a control: what the fill costs the wake) */
    static Stats exchangeHandoff(long bytes, int count, boolean touchOnly) throws Exception {
        Path file = TensorExchange.defaultPath("nsc-bench-handoff-" + ProcessHandle.current().pid());
        TensorExchange.delete(file);
        int warm = Math.max(2, count / 10);
        Process child = childJvm("child-exchange-handoff", file.toString(), Long.toString(bytes), Integer.toString(count + warm),
                Boolean.toString(touchOnly));
        try {
            expectLine(child, "ready");
            long[] latencies = new long[count];
            OutputStream ack = child.getOutputStream();
            try (Consumer consumer = TensorExchange.openConsumer(file)) {
                for (int i = 0; i < count + warm; i++) {
                    ack.write('\n');
                    ack.flush();
                    Received r = consumer.awaitNext();
                    long now = System.nanoTime();
                    if (r.status() != ReadStatus.OK) {
                        throw new IllegalStateException("exchange handoff: " + r.status());
                    }
                    MemorySegment data = r.tensor().data();
                    long stamp = data.get(ValueLayout.JAVA_LONG, 0);
                    if (data.byteSize() != bytes || data.get(ValueLayout.JAVA_BYTE, bytes - 1) != (byte) r.version()) {
                        throw new IllegalStateException("exchange handoff: wrong bytes");
                    }
                    if (i >= warm) {
                        latencies[i - warm] = now - stamp;
                    }
                }
            }
            finish(child);
            return Stats.of("exchange " + size(bytes) + (touchOnly ? " (producer writes 2 words only)" : ""), latencies);
        } finally {
            child.destroyForcibly().waitFor();
            TensorExchange.delete(file);
        }
    }

    static Stats socketHandoff(long bytes, int count) throws Exception {
        Path socket = Path.of(System.getProperty("java.io.tmpdir"), "nsc-bench-uds-" + ProcessHandle.current().pid());
        Files.deleteIfExists(socket);
        int warm = Math.max(2, count / 10);
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(socket));
            Process child = childJvm("child-socket-handoff", socket.toString(), Long.toString(bytes), Integer.toString(count + warm));
            try (SocketChannel channel = server.accept()) {
                ByteBuffer in = ByteBuffer.allocateDirect((int) bytes).order(ByteOrder.LITTLE_ENDIAN);
                ByteBuffer ack = ByteBuffer.allocateDirect(1);
                long[] latencies = new long[count];
                for (int i = 0; i < count + warm; i++) {
                    ack.clear().put((byte) 1).flip();
                    channel.write(ack);
                    in.clear();
                    while (in.hasRemaining()) {
                        if (channel.read(in) < 0) {
                            throw new IllegalStateException("socket closed");
                        }
                    }
                    long now = System.nanoTime();
                    if (in.get((int) bytes - 1) != (byte) (i + 1)) {
                        throw new IllegalStateException("socket handoff: wrong bytes");
                    }
                    if (i >= warm) {
                        latencies[i - warm] = now - in.getLong(0);
                    }
                }
                ack.clear().put((byte) 0).flip();
                channel.write(ack);
                finish(child);
                return Stats.of("UNIX socket " + size(bytes), latencies);
            } finally {
                child.destroyForcibly().waitFor();
                Files.deleteIfExists(socket);
            }
        }
    }

    // ------------------------------------------------------------------ death

    static void death(Options o) throws Exception {
        System.out.println("## dead-producer detection: SIGKILL of a publishing producer JVM -> PRODUCER_DEAD (us)");
        System.out.println(Stats.HEADER);
        Path file = TensorExchange.defaultPath("nsc-bench-death-" + ProcessHandle.current().pid());
        TensorExchange.delete(file);
        Random random = new Random(16);
        long[] detect = new long[o.rounds()];
        long[] exited = new long[o.rounds()];
        try {
            Consumer consumer = null;
            try {
                for (int round = 0; round < o.rounds(); round++) {
                    Process child = childJvm("child-exchange-loop", file.toString());
                    try {
                        expectLine(child, "ready");
                        if (consumer == null) {
                            consumer = TensorExchange.openConsumer(file);
                        }
                        long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(50 + random.nextInt(100));
                        while (System.nanoTime() < until) {
                            consumer.awaitNext(Duration.ofMillis(100));
                        }
                        long[] gone = {0};
                        long killed = System.nanoTime();
                        var onExit = child.onExit().thenRun(() -> gone[0] = System.nanoTime());
                        child.destroyForcibly();
                        Received r;
                        do {
                            r = consumer.awaitNext(Duration.ofSeconds(20));
                        } while (r.status() == ReadStatus.OK || r.status() == ReadStatus.OVERRUN);
                        long now = System.nanoTime();
                        if (r.status() != ReadStatus.PRODUCER_DEAD) {
                            throw new IllegalStateException("death: " + r.status());
                        }
                        onExit.get(20, TimeUnit.SECONDS);
                        detect[round] = now - killed;
                        exited[round] = gone[0] - killed;
                    } finally {
                        child.destroyForcibly().waitFor();
                    }
                }
            } finally {
                if (consumer != null) {
                    consumer.close();
                }
            }
        } finally {
            TensorExchange.delete(file);
        }
        System.out.println(Stats.of("kill -> PRODUCER_DEAD (consumer blocked)", detect));
        System.out.println(Stats.of("kill -> Process.onExit (the kernel's own)", exited));
    }

    // ------------------------------------------------------------------ children (producers)

    static void child(String[] args) throws Exception {
        switch (args[0]) {
            case "child-exchange-wake" -> {
                Path file = Path.of(args[1]);
                long total = Long.parseLong(args[2]);
                long interval = Long.parseLong(args[3]) * 1000;
                try (Producer producer = TensorExchange.create(file, 8, 4096)) {
                    System.out.println("ready");
                    System.out.flush();
                    System.in.read();
                    for (long v = 1; v <= total; v++) {
                        LockSupport.parkNanos(interval);
                        Producer.Slot slot = producer.claim(DType.INT64, MESSAGE / 8);
                        MemorySegment data = slot.tensor().data();
                        data.set(ValueLayout.JAVA_LONG, 8, v);
                        data.set(ValueLayout.JAVA_LONG, 0, System.nanoTime());
                        slot.publish();
                    }
                    System.in.read();
                }
            }
            case "child-aeron-wake" -> {
                long total = Long.parseLong(args[2]);
                long interval = Long.parseLong(args[3]) * 1000;
                try (Aeron aeron = Aeron.connect(new Aeron.Context().aeronDirectoryName(args[1]));
                     Publication pub = aeron.addPublication("aeron:ipc", AERON_STREAM)) {
                    while (!pub.isConnected()) {
                        Thread.sleep(1);
                    }
                    System.out.println("ready");
                    System.out.flush();
                    UnsafeBuffer buffer = new UnsafeBuffer(ByteBuffer.allocateDirect(MESSAGE));
                    for (long v = 1; v <= total; v++) {
                        LockSupport.parkNanos(interval);
                        buffer.putLong(8, v);
                        buffer.putLong(0, System.nanoTime());
                        while (pub.offer(buffer, 0, MESSAGE) < 0) {
                            Thread.onSpinWait();
                        }
                    }
                    System.in.read();
                }
            }
            case "child-exchange-handoff" -> {
                long bytes = Long.parseLong(args[2]);
                int count = Integer.parseInt(args[3]);
                boolean touchOnly = Boolean.parseBoolean(args[4]);
                try (Producer producer = TensorExchange.create(Path.of(args[1]), 2, bytes)) {
                    System.out.println("ready");
                    System.out.flush();
                    for (int i = 1; i <= count; i++) {
                        if (System.in.read() != '\n') {
                            throw new IllegalStateException("no ack");
                        }
                        Producer.Slot slot = producer.claim(DType.UINT8, bytes);
                        MemorySegment data = slot.tensor().data();
                        if (touchOnly) {
                            data.set(ValueLayout.JAVA_BYTE, bytes - 1, (byte) i);
                        } else {
                            data.fill((byte) i); // the tensor, produced in place (not timed: the socket fills its buffer too)
                        }
                        data.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, System.nanoTime());
                        slot.publish();
                    }
                    System.in.read();
                }
            }
            case "child-socket-handoff" -> {
                long bytes = Long.parseLong(args[2]);
                int count = Integer.parseInt(args[3]);
                try (SocketChannel channel = SocketChannel.open(UnixDomainSocketAddress.of(Path.of(args[1])))) {
                    ByteBuffer out = ByteBuffer.allocateDirect((int) bytes).order(ByteOrder.LITTLE_ENDIAN);
                    ByteBuffer ack = ByteBuffer.allocateDirect(1);
                    for (int i = 1; i <= count; i++) {
                        ack.clear();
                        if (channel.read(ack) < 0) {
                            throw new IllegalStateException("no ack");
                        }
                        out.clear();
                        while (out.hasRemaining()) {
                            out.put((byte) i);
                        }
                        out.putLong(0, System.nanoTime());
                        out.flip();
                        while (out.hasRemaining()) {
                            channel.write(out);
                        }
                    }
                    ack.clear();
                    channel.read(ack);
                }
            }
            case "child-exchange-loop" -> {
                Path file = Path.of(args[1]);
                Producer producer = Files.exists(file) ? TensorExchange.takeOver(file) : TensorExchange.create(file, 4, 4096);
                System.out.println("ready");
                System.out.flush();
                for (long v = 1; ; v++) {
                    Producer.Slot slot = producer.claim(DType.INT64, MESSAGE / 8);
                    slot.tensor().data().set(ValueLayout.JAVA_LONG, 0, v);
                    slot.publish();
                    LockSupport.parkNanos(100_000);
                }
            }
            default -> throw new IllegalArgumentException(args[0]);
        }
    }

    // ------------------------------------------------------------------ helpers

    static Process childJvm(String... args) throws IOException {
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.add("--enable-native-access=ALL-UNNAMED");
        if (Runtime.version().feature() >= 23) {
            command.add("--sun-misc-unsafe-memory-access=allow"); // Agrona (Aeron) uses sun.misc.Unsafe
        }
        String nativeDir = System.getProperty("nativescope.library.path");
        if (nativeDir != null) {
            command.add("-Dnativescope.library.path=" + nativeDir);
        }
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(ExchangeLatency.class.getName());
        command.addAll(List.of(args));
        return new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start();
    }

    static void expectLine(Process child, String expected) throws IOException {
        String line = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8)).readLine();
        if (!expected.equals(line)) {
            throw new IllegalStateException("child said " + line + ", expected " + expected);
        }
    }

    static void finish(Process child) throws Exception {
        try {
            child.getOutputStream().write('q');
            child.getOutputStream().flush();
        } catch (IOException e) {
            // the child needs no 'q' (the socket producer ends on its own) and may be gone already
        }
        if (!child.waitFor(30, TimeUnit.SECONDS) || child.exitValue() != 0) {
            throw new IllegalStateException("the producer did not finish cleanly");
        }
    }

    /** Compiles futex_floor.c (shipped in this jar) with gcc into a temporary directory. */
    static Path buildFloor() throws Exception {
        Path dir = Files.createTempDirectory("nsc-futex-floor");
        Path source = dir.resolve("futex_floor.c");
        try (InputStream in = ExchangeLatency.class.getResourceAsStream("/META-INF/bench-c/futex_floor.c")) {
            if (in == null) {
                throw new IllegalStateException("futex_floor.c is not in the jar");
            }
            Files.copy(in, source);
        }
        Path binary = dir.resolve("futex_floor");
        Process gcc = new ProcessBuilder("gcc", "-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-o", binary.toString(),
                source.toString()).redirectErrorStream(true).start();
        String out = new String(gcc.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (gcc.waitFor() != 0) {
            throw new IllegalStateException("gcc futex_floor.c: " + out);
        }
        binary.toFile().deleteOnExit();
        source.toFile().deleteOnExit();
        dir.toFile().deleteOnExit();
        return binary;
    }

    static String loadAverage() {
        try {
            return Files.readString(Path.of("/proc/loadavg")).strip();
        } catch (IOException e) {
            return "?";
        }
    }

    /** Percentiles of one-way times (ns in, us out). */
    record Stats(String name, long n, double p50, double p90, double p99, double p999, double max) {
        static final String HEADER = String.format("%-52s %7s %9s %9s %9s %9s %9s", "case", "n", "p50", "p90", "p99", "p99.9", "max");

        static Stats of(String name, long[] nanos) {
            long[] s = nanos.clone();
            Arrays.sort(s);
            int n = s.length;
            return new Stats(name, n, s[n / 2] / 1e3, s[(int) (n * 0.90)] / 1e3, s[(int) (n * 0.99)] / 1e3,
                    s[Math.min(n - 1, (int) (n * 0.999))] / 1e3, s[n - 1] / 1e3);
        }

        Stats renamed(String newName) {
            return new Stats(newName, n, p50, p90, p99, p999, max);
        }

        static Stats fromFloorLine(String name, String line) {
            long[] v = new long[6];
            String[] parts = line.split(" ");
            for (int i = 0; i < 6; i++) {
                v[i] = Long.parseLong(parts[i + 1].split("=")[1]);
            }
            return new Stats(name, v[0], v[1] / 1e3, v[2] / 1e3, v[3] / 1e3, v[4] / 1e3, v[5] / 1e3);
        }

        @Override
        public String toString() {
            return String.format("%-52s %7d %9.2f %9.2f %9.2f %9.2f %9.1f", name, n, p50, p90, p99, p999, max);
        }
    }
}
