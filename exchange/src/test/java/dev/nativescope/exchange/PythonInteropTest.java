package dev.nativescope.exchange;

import static org.assertj.core.api.Assertions.assertThat;

import dev.nativescope.tensor.Tensor;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The shipped Python module (src/main/python/nativescope_exchange.py, Debian's python3-numpy) against Java. */
class PythonInteropTest {
    static final String PATTERN = """
            import sys, numpy as np, nativescope_exchange as nx
            DT = [np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.float16]
            def dtype(v): return np.dtype(DT[v % len(DT)])
            def shape(v): return tuple(1 + (v * 7 + d * 3) % 9 for d in range(v % 4))
            def pattern(v, n):
                k = np.arange(n, dtype=np.int64)
                return ((v * 131 + k * 7 + (k >> 8)) & 0xff).astype(np.uint8)
            """;
    private static final int COUNT = 300;
    private Path file;

    @BeforeEach
    void name() {
        file = TensorExchange.defaultPath("nsc-testpy-" + ProcessHandle.current().pid() + "-" + System.nanoTime());
    }

    @AfterEach
    void delete() throws Exception {
        TensorExchange.delete(file);
    }

    @Test
    void javaProducerPythonConsumer() throws Exception {
        String script = PATTERN + """
                x = nx.Exchange.open(sys.argv[1])
                print("ready", flush=True)
                lo = x._base_address; hi = lo + len(x._mm)
                for v in range(1, int(sys.argv[2]) + 1):
                    r = x.wait_next(timeout=30)
                    assert r.status == nx.OK and r.version == v, r
                    a = r.array
                    assert a.dtype == dtype(v) and a.shape == shape(v), (v, a.dtype, a.shape)
                    assert not a.flags.writeable
                    p = a.__array_interface__["data"][0]
                    assert lo <= p and p + a.nbytes <= hi, "a copy"
                    assert (np.frombuffer(a.tobytes(), np.uint8) == pattern(v, a.nbytes)).all(), v
                    assert r.still_valid()
                r = x.wait_next(timeout=30)
                print("done", r.status, flush=True)
                """;
        try (Producer producer = TensorExchange.create(file, COUNT + 1, 8192)) {
            Process python = Children.python(script, file.toString(), Integer.toString(COUNT));
            try {
                BufferedReader out = new BufferedReader(new InputStreamReader(python.getInputStream(), StandardCharsets.UTF_8));
                assertThat(out.readLine()).isEqualTo("ready");
                for (long v = 1; v <= COUNT; v++) {
                    TensorExchangeTest.publish(producer, v);
                }
                producer.close();
                String rest = out.readLine() + "\n" + new String(python.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                assertThat(python.waitFor(60, TimeUnit.SECONDS)).isTrue();
                assertThat(rest).startsWith("done PRODUCER_CLOSED");
                assertThat(python.exitValue()).as(rest).isZero();
            } finally {
                python.destroyForcibly().waitFor();
            }
        }
    }

    @Test
    void pythonProducerJavaConsumer() throws Exception {
        String script = PATTERN + """
                x = nx.Exchange.create(sys.argv[1], int(sys.argv[2]) + 1, 8192)
                print("ready", flush=True)
                for v in range(1, int(sys.argv[2]) + 1):
                    a = x.claim(dtype(v), shape(v))
                    a.reshape(-1).view(np.uint8)[:] = pattern(v, a.nbytes)
                    assert x.publish() == v
                x.close()
                """;
        Process python = Children.python(script, file.toString(), Integer.toString(COUNT));
        try {
            assertThat(Children.firstLine(python)).isEqualTo("ready");
            try (Consumer consumer = TensorExchange.openConsumer(file)) {
                for (long v = 1; v <= COUNT; v++) {
                    Received r = consumer.awaitNext(Duration.ofSeconds(30));
                    assertThat(r.status()).as("version %d", v).isEqualTo(ReadStatus.OK);
                    assertThat(r.version()).isEqualTo(v);
                    Tensor t = r.tensor();
                    assertThat(t.dtype()).isEqualTo(Pattern.dtype(v));
                    assertThat(t.shape()).isEqualTo(Pattern.shape(v));
                    assertThat(Pattern.mismatch(t.data(), v)).isEqualTo(-1);
                }
                assertThat(consumer.awaitNext(Duration.ofSeconds(30)).status()).isEqualTo(ReadStatus.PRODUCER_CLOSED);
            }
            assertThat(python.waitFor(60, TimeUnit.SECONDS)).isTrue();
            assertThat(python.exitValue()).as(new String(python.getInputStream().readAllBytes(), StandardCharsets.UTF_8)).isZero();
        } finally {
            python.destroyForcibly().waitFor();
        }
    }

    @Test
    void pythonRefusesBadFilesWithClearErrors() throws Exception {
        try (Producer producer = TensorExchange.create(file, 2, 8192)) {
            TensorExchangeTest.publish(producer, 3);
        }
        String script = """
                import os, struct, sys, nativescope_exchange as nx
                path = sys.argv[1]
                good = open(path, "rb").read()
                def attempt(data, mode=0o600):
                    with open(path, "wb") as f: f.write(data)
                    os.chmod(path, mode)
                    try:
                        x = nx.Exchange.open(path); r = x.latest(); x.close(); return "ok"
                    except nx.ExchangeFormatError as e: return "format: " + str(e)
                    except PermissionError as e: return "permission: " + str(e)
                print(attempt(good))
                print(attempt(b"XXXXXXXX" + good[8:]))
                print(attempt(good[:8] + struct.pack("<I", 9) + good[12:]))
                print(attempt(good[:-4096]))
                print(attempt(good, 0o666))
                slot = struct.unpack_from("<I", good, 144)[0]
                off = 1024 + slot * 320 + 24
                print(attempt(good[:off] + struct.pack("<Q", 2**63) + good[off + 8:]))
                """;
        Process python = Children.python(script, file.toString());
        String out = new String(python.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(python.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(out.lines().toList()).as(out).hasSize(6).satisfiesExactly(
                l -> assertThat(l).isEqualTo("ok"),
                l -> assertThat(l).contains("format:", "bad magic"),
                l -> assertThat(l).contains("format:", "layout version 9"),
                l -> assertThat(l).contains("format:", "truncated or resized"),
                l -> assertThat(l).contains("permission:", "other users can write"),
                l -> assertThat(l).contains("format:", "outside the slot"));
    }
}
