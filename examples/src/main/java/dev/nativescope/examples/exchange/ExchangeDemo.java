package dev.nativescope.examples.exchange;

import dev.nativescope.Context;
import dev.nativescope.exchange.Producer;
import dev.nativescope.exchange.TensorExchange;
import dev.nativescope.reference.ReferencePredictors;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * The exchange's worked example ({@code ./run exchange-demo}): this JVM is the producer, running the
 * shim's dense reference predictor ({@link ReferencePredictors#denseDLPack}, relu(x w + bias)) with
 * each prediction's output tensor being a slot of a shared-memory exchange, so the native code
 * writes its result straight into shared memory; a Python consumer
 * ({@code check_predictions.py}, with the shipped {@code nativescope_exchange.py} and NumPy) reads
 * every prediction in place and checks it against NumPy.
 *
 * <p>Both Python files are taken from the classpath (the exchange jar ships its module under
 * {@code META-INF/python/}), as a user of the jars would. Usage:
 * {@code ExchangeDemo [predictions] [interval-us] [python3]} (defaults 500, 1000, python3). The exit
 * status is the consumer's.
 */
public final class ExchangeDemo {
    static final int ROWS = 64;
    static final int INNER = 32;
    static final int COLS = 16;

    private ExchangeDemo() {
    }

    public static void main(String[] args) throws Exception {
        int predictions = args.length > 0 ? Integer.parseInt(args[0]) : 500;
        long intervalMicros = args.length > 1 ? Long.parseLong(args[1]) : 1000;
        String python = args.length > 2 ? args[2] : "python3";
        Result result = run(predictions, intervalMicros, python, System.out);
        System.exit(result.exitCode());
    }

    /** What a run produced: the consumer's exit code and its output lines. */
    public record Result(int exitCode, List<String> consumerOutput) {
    }

    /**
     * Creates an exchange under /dev/shm, starts the Python consumer on it, publishes
     * {@code predictions} dense predictions one every {@code intervalMicros}, closes the exchange
     * and waits for the consumer's verdict.
     */
    public static Result run(int predictions, long intervalMicros, String python, java.io.PrintStream log)
            throws IOException, InterruptedException {
        Path scripts = Files.createTempDirectory("nsc-exchange-demo");
        Path file = TensorExchange.defaultPath("nsc-exchange-demo-" + ProcessHandle.current().pid());
        try {
            extract("META-INF/python/nativescope_exchange.py", scripts);
            Path checker = extract("META-INF/python/check_predictions.py", scripts);
            try (Producer producer = TensorExchange.create(file, 8, (long) ROWS * COLS * Float.BYTES);
                 Arena arena = Arena.ofConfined()) {
                log.printf("producer: %s, 8 slots of %dx%d float32; consumer: %s %s%n", file, ROWS, COLS, python, checker);
                ProcessBuilder builder = new ProcessBuilder(python, checker.toString(), file.toString()).redirectErrorStream(true);
                builder.environment().put("PYTHONPATH", scripts.toString());
                builder.environment().put("PYTHONDONTWRITEBYTECODE", "1");
                Process consumer = builder.start();
                List<String> output = new ArrayList<>();
                BufferedReader out = new BufferedReader(new InputStreamReader(consumer.getInputStream(), StandardCharsets.UTF_8));
                try {
                    String first = out.readLine();
                    if (!"ready".equals(first)) {
                        output.add(String.valueOf(first));
                        out.lines().forEach(output::add);
                        output.forEach(l -> log.println("consumer: " + l));
                        return new Result(consumer.waitFor(), output);
                    }
                    Thread reader = Thread.ofPlatform().daemon().start(() -> out.lines().forEach(l -> {
                        synchronized (output) {
                            output.add(l);
                        }
                        log.println("consumer: " + l);
                    }));
                    Tensor x = Tensor.of(arena.allocate((long) ROWS * INNER * Float.BYTES, 64), DType.FLOAT32, ROWS, INNER);
                    Tensor w = Tensor.of(arena.allocate((long) INNER * COLS * Float.BYTES, 64), DType.FLOAT32, INNER, COLS);
                    Tensor bias = Tensor.of(arena.allocate((long) COLS * Float.BYTES, 64), DType.FLOAT32, COLS);
                    weights(w, bias);
                    long next = System.nanoTime();
                    for (long v = 1; v <= predictions; v++) {
                        inputs(x, v);
                        Producer.Slot slot = producer.claim(DType.FLOAT32, ROWS, COLS);
                        // The native predictor writes relu(x w + bias) into the slot, in shared memory.
                        ReferencePredictors.denseDLPack(Context.background(), x, w, bias, slot.tensor(), 1, null);
                        long published = slot.publish();
                        if (published != v) {
                            throw new IllegalStateException("published version " + published + ", expected " + v);
                        }
                        next += intervalMicros * 1000;
                        LockSupport.parkNanos(next - System.nanoTime());
                    }
                    log.printf("producer: published %d predictions; closing%n", predictions);
                    producer.close();
                    if (!consumer.waitFor(60, TimeUnit.SECONDS)) {
                        throw new IllegalStateException("the consumer did not finish within 60 s");
                    }
                    reader.join(10_000);
                    synchronized (output) {
                        return new Result(consumer.exitValue(), List.copyOf(output));
                    }
                } finally {
                    consumer.destroyForcibly();
                }
            }
        } finally {
            TensorExchange.delete(file);
            try (var files = Files.list(scripts)) {
                for (Path p : files.toList()) {
                    Files.deleteIfExists(p);
                }
            }
            Files.deleteIfExists(scripts);
        }
    }

    /** x for version v: ((v * 31 + i * 7 + k * 3) % 17 - 8) / 8, exact in float32 (as check_predictions.py). */
    static void inputs(Tensor x, long v) {
        MemorySegment s = x.segment();
        for (int i = 0; i < ROWS; i++) {
            for (int k = 0; k < INNER; k++) {
                s.setAtIndex(ValueLayout.JAVA_FLOAT, (long) i * INNER + k, (((v * 31 + i * 7 + k * 3) % 17) - 8) / 8.0f);
            }
        }
    }

    /** w = ((k * 5 + j * 11) % 13 - 6) / 4 and bias = (j % 5 - 2) / 2 (as check_predictions.py). */
    static void weights(Tensor w, Tensor bias) {
        for (int k = 0; k < INNER; k++) {
            for (int j = 0; j < COLS; j++) {
                w.segment().setAtIndex(ValueLayout.JAVA_FLOAT, (long) k * COLS + j, (((k * 5 + j * 11) % 13) - 6) / 4.0f);
            }
        }
        for (int j = 0; j < COLS; j++) {
            bias.segment().setAtIndex(ValueLayout.JAVA_FLOAT, j, ((j % 5) - 2) / 2.0f);
        }
    }

    private static Path extract(String resource, Path dir) throws IOException {
        Path target = dir.resolve(resource.substring(resource.lastIndexOf('/') + 1));
        try (InputStream in = ExchangeDemo.class.getClassLoader().getResourceAsStream(resource)) {
            if (in == null) {
                throw new UncheckedIOException(new IOException(resource + " is not on the classpath"));
            }
            Files.copy(in, target, StandardCopyOption.REPLACE_EXISTING);
        }
        return target;
    }
}
