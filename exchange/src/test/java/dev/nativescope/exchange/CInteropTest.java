package dev.nativescope.exchange;

import static org.assertj.core.api.Assertions.assertThat;

import dev.nativescope.tensor.Tensor;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The shim's C API (nsc_exchange.h) against Java, across two processes: {@code src/test/c/exchange_tool.c},
 * compiled here with gcc (ASan+UBSan) and linked with the built libnativescope.so, consumes what a Java
 * producer publishes and produces what a Java consumer reads. Both sides verify every tensor of
 * {@link Pattern} (changing dtypes and shapes) and that the consumer's view lies inside its mapping.
 */
class CInteropTest {
    private static final int COUNT = 2_000;
    private static final int BATCH = 7;

    @TempDir
    static Path work;
    private static Path tool;
    private Path file;

    @BeforeAll
    static void buildTheTool() throws Exception {
        tool = build(work, Path.of("src", "test", "c", "exchange_tool.c"), "exchange_tool");
    }

    /** Compiles a test C program against the shim's headers and links it with the built library. */
    static Path build(Path dir, Path source, String name) throws IOException, InterruptedException {
        return build(dir, source, name, true);
    }

    /** @param sanitize with ASan+UBSan (else -O2, for the kill loop, where process start-up counts) */
    static Path build(Path dir, Path source, String name, boolean sanitize) throws IOException, InterruptedException {
        Path include = ExchangeLayoutConformanceTest.header().getParent();
        Path lib = Path.of(System.getProperty("nsc.test.native.dir")).toAbsolutePath().normalize();
        Path binary = dir.resolve(name);
        List<String> command = new java.util.ArrayList<>(List.of("gcc", "-std=gnu11", "-Wall", "-Wextra", "-Werror"));
        command.addAll(sanitize ? List.of("-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all") : List.of("-O2"));
        command.addAll(List.of("-I" + include, "-o", binary.toString(),
                source.toAbsolutePath().toString(), "-L" + lib, "-lnativescope", "-Wl,-rpath," + lib));
        Process gcc = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(gcc.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(gcc.waitFor(120, TimeUnit.SECONDS)).isTrue();
        assertThat(gcc.exitValue()).as("%s%n%s", String.join(" ", command), out).isZero();
        return binary;
    }

    static Process start(Path binary, String... args) throws IOException {
        List<String> command = new java.util.ArrayList<>(List.of(binary.toString()));
        command.addAll(List.of(args));
        ProcessBuilder builder = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT);
        builder.environment().put("ASAN_OPTIONS", "halt_on_error=1:detect_leaks=1");
        builder.environment().put("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1");
        return builder.start();
    }

    @BeforeEach
    void name() {
        file = TensorExchange.defaultPath("nsc-testc-" + ProcessHandle.current().pid() + "-" + System.nanoTime());
    }

    @AfterEach
    void delete() throws Exception {
        TensorExchange.delete(file);
    }

    @Test
    void javaProducerCConsumer() throws Exception {
        try (Producer producer = TensorExchange.create(file, BATCH + 1, 8192)) {
            Process c = start(tool, "consume", file.toString(), Integer.toString(COUNT), Integer.toString(BATCH));
            try {
                BufferedReader out = new BufferedReader(new InputStreamReader(c.getInputStream(), StandardCharsets.UTF_8));
                assertThat(out.readLine()).isEqualTo("ready");
                for (long v = 1; v <= COUNT; v++) {
                    TensorExchangeTest.publish(producer, v);
                    if (v % BATCH == 0) {
                        assertThat(out.readLine()).isEqualTo("ack " + v);
                    }
                }
                producer.close();
                String rest = out.readLine();
                assertThat(c.waitFor(60, TimeUnit.SECONDS)).isTrue();
                assertThat(rest).isEqualTo("done " + COUNT + " NSC_XCHG_PRODUCER_CLOSED");
                assertThat(c.exitValue()).isZero();
            } finally {
                c.destroyForcibly().waitFor();
            }
        }
    }

    /** A C consumer's lease (nsc_exchange_lease) is the header's table: the Java producer skips the slot. */
    @Test
    void aJavaProducerSkipsASlotLeasedByACConsumer() throws Exception {
        try (Producer producer = TensorExchange.create(file, 3, 8192);
             Consumer consumer = TensorExchange.openConsumer(file)) {
            TensorExchangeTest.publish(producer, 1);
            Received first = consumer.latest();
            Process c = start(tool, "lease", file.toString());
            try {
                BufferedReader out = new BufferedReader(new InputStreamReader(c.getInputStream(), StandardCharsets.UTF_8));
                assertThat(out.readLine()).isEqualTo("leased " + first.slot() + " 1");
                for (long v = 2; v <= 20; v++) {
                    TensorExchangeTest.publish(producer, v);
                    assertThat(first.isStillValid()).as("after version %d", v).isTrue();
                }
                c.getOutputStream().write('\n');
                c.getOutputStream().flush();
                assertThat(out.readLine()).isEqualTo("released");
                assertThat(c.waitFor(60, TimeUnit.SECONDS)).isTrue();
                assertThat(c.exitValue()).isZero();
            } finally {
                c.destroyForcibly().waitFor();
            }
            for (long v = 21; v <= 26; v++) {
                TensorExchangeTest.publish(producer, v);
            }
            assertThat(first.isStillValid()).as("released: the slot is reused").isFalse();
        }
    }

    @Test
    void cProducerJavaConsumer() throws Exception {
        Process c = start(tool, "produce", file.toString(), Integer.toString(COUNT), Integer.toString(BATCH));
        try {
            BufferedReader out = new BufferedReader(new InputStreamReader(c.getInputStream(), StandardCharsets.UTF_8));
            assertThat(out.readLine()).isEqualTo("ready");
            OutputStream ack = c.getOutputStream();
            try (Consumer consumer = TensorExchange.openConsumer(file)) {
                MemorySegment map = consumer.mapping();
                for (long v = 1; v <= COUNT; v++) {
                    Received r = consumer.awaitNext(Duration.ofSeconds(30));
                    assertThat(r.status()).as("version %d", v).isEqualTo(ReadStatus.OK);
                    assertThat(r.version()).isEqualTo(v);
                    Tensor t = r.tensor();
                    assertThat(t.dtype()).as("version %d", v).isEqualTo(Pattern.dtype(v));
                    assertThat(t.shape()).as("version %d", v).isEqualTo(Pattern.shape(v));
                    MemorySegment data = t.data();
                    assertThat(data.address()).as("a view into the mapping, not a copy")
                            .isBetween(map.address() + ExchangeDescriptor.HEADER_LENGTH, map.address() + map.byteSize() - data.byteSize());
                    assertThat(data.isReadOnly()).isTrue();
                    assertThat(Pattern.mismatch(data, v)).as("version %d", v).isEqualTo(-1);
                    assertThat(r.isStillValid()).isTrue();
                    if (v % BATCH == 0) {
                        ack.write(1);
                        ack.flush();
                    }
                }
                assertThat(consumer.awaitNext(Duration.ofSeconds(30)).status()).isEqualTo(ReadStatus.PRODUCER_CLOSED);
            }
            assertThat(out.readLine()).isEqualTo("done " + COUNT);
            assertThat(c.waitFor(60, TimeUnit.SECONDS)).isTrue();
            assertThat(c.exitValue()).isZero();
        } finally {
            c.destroyForcibly().waitFor();
        }
    }
}
