package dev.nativescope.exchange;

import static org.assertj.core.api.Assertions.assertThat;

import dev.nativescope.tensor.Tensor;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

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

    /** Python ends within a minute with status 0 (its output in the failure message). */
    private static void exitsCleanly(Process python) throws Exception {
        assertThat(python.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(python.exitValue()).as(new String(python.getInputStream().readAllBytes(), StandardCharsets.UTF_8)).isZero();
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
            exitsCleanly(python);
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

    /**
     * A Python consumer's lease (Exchange.lease, a CAS on the header's table) holds its slot against
     * the Java producer, with either compare-and-swap the module can use; a view overwritten before
     * the lease took hold is refused (None).
     */
    @ParameterizedTest
    @ValueSource(strings = {"code", "libatomic"})
    void aJavaProducerSkipsASlotLeasedByAPythonConsumer(String cas) throws Exception {
        String script = PATTERN + """
                x = nx.Exchange.open(sys.argv[1])
                assert nx._cas.backend == sys.argv[2], nx._cas.backend
                stale = x.latest()
                print("read", stale.slot, stale.version, flush=True)
                sys.stdin.readline()                         # the producer lapped the slot meanwhile
                print("stale", x.lease(stale), flush=True)
                r = x.latest()
                lease = x.lease(r)
                expected = pattern(r.version, r.array.nbytes)
                print("leased", r.slot, r.version, lease.entry, flush=True)
                sys.stdin.readline()                         # 20 more versions published meanwhile
                assert r.still_valid(), "overwritten while leased"
                assert (np.frombuffer(r.array.tobytes(), np.uint8) == expected).all()
                with lease:
                    pass
                assert x._u32(nx.OFF_LEASES + lease.entry * nx.LEASE_LENGTH) == 0
                print("released", flush=True)
                """;
        try (Producer producer = TensorExchange.create(file, 3, 8192);
             Consumer consumer = TensorExchange.openConsumer(file)) {
            TensorExchangeTest.publish(producer, 1);
            int firstSlot = consumer.latest().slot();
            Process python = Children.python(Map.of("NSC_EXCHANGE_CAS", cas), script, file.toString(), cas);
            try {
                BufferedReader out = new BufferedReader(new InputStreamReader(python.getInputStream(), StandardCharsets.UTF_8));
                PrintWriter in = new PrintWriter(python.getOutputStream(), true, StandardCharsets.UTF_8);
                assertThat(out.readLine()).isEqualTo("read " + firstSlot + " 1");
                TensorExchangeTest.publish(producer, 2, 4); // round-robin over 3 slots: version 4 reuses version 1's
                in.println();
                assertThat(out.readLine()).isEqualTo("stale None");
                Received leased = consumer.latest();
                String[] line = out.readLine().split(" ");
                assertThat(line).as(String.join(" ", line)).hasSize(4).startsWith("leased", Integer.toString(leased.slot()), "4");
                int entry = Integer.parseInt(line[3]);
                assertThat(producer.mapping().get(java.lang.foreign.ValueLayout.JAVA_INT, Leases.entry(entry)))
                        .as("the entry names the Python process").isEqualTo((int) python.pid());
                for (long v = 5; v <= 24; v++) {
                    TensorExchangeTest.publish(producer, v);
                    assertThat(leased.isStillValid()).as("after version %d", v).isTrue();
                }
                in.println();
                String rest = out.readLine() + new String(python.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                assertThat(python.waitFor(60, TimeUnit.SECONDS)).isTrue();
                assertThat(rest).startsWith("released");
                assertThat(python.exitValue()).as(rest).isZero();
            } finally {
                python.destroyForcibly().waitFor();
            }
            TensorExchangeTest.publish(producer, 25, 30);
            assertThat(consumer.latest().version()).isEqualTo(30);
        }
    }

    /** The Python producer honours a Java consumer's lease (its odd seq store is a CAS: Dekker with the taker). */
    @Test
    void aPythonProducerSkipsASlotLeasedByAJavaConsumer() throws Exception {
        String script = PATTERN + """
                x = nx.Exchange.create(sys.argv[1], 3, 8192)
                v = 0
                def publish(n):
                    global v
                    for _ in range(n):
                        v += 1
                        a = x.claim(dtype(v), shape(v))
                        a.reshape(-1).view(np.uint8)[:] = pattern(v, a.nbytes)
                        assert x.publish() == v
                publish(1)
                print("ready", flush=True)
                for line in sys.stdin:
                    publish(int(line))
                    print("published", v, flush=True)
                x.close()
                """;
        Process python = Children.python(script, file.toString());
        try {
            BufferedReader out = new BufferedReader(new InputStreamReader(python.getInputStream(), StandardCharsets.UTF_8));
            PrintWriter in = new PrintWriter(python.getOutputStream(), true, StandardCharsets.UTF_8);
            assertThat(out.readLine()).isEqualTo("ready");
            try (Consumer consumer = TensorExchange.openConsumer(file)) {
                Received first = consumer.latest();
                try (Lease lease = consumer.lease(first).orElseThrow()) {
                    in.println(20);
                    assertThat(out.readLine()).isEqualTo("published 21");
                    assertThat(first.isStillValid()).as("the Python producer reused a leased slot").isTrue();
                    assertThat(Pattern.mismatch(first.tensor().data(), 1)).isEqualTo(-1);
                    assertThat(lease.received().version()).isEqualTo(1);
                }
                in.println(6);
                assertThat(out.readLine()).isEqualTo("published 27");
                assertThat(first.isStillValid()).as("released: the slot is reused").isFalse();
            }
            in.close();
            exitsCleanly(python);
        } finally {
            python.destroyForcibly().waitFor();
        }
    }

    /**
     * The lease-entry race of the Python producer: it reads an entry's pid, slot and start in three
     * loads, so the holder may release the entry and another consumer take it in between; the stale
     * start then fails the liveness check. The producer must not free the new holder's lease (a
     * plain store of 0 did; a CAS from the pid it read does not). The interleaving is forced by a
     * liveness check that re-takes the entry before answering.
     */
    @Test
    void thePythonProducerNeverFreesALeaseTakenWhileItChecked() throws Exception {
        String script = """
                import os, sys, nativescope_exchange as nx
                x = nx.Exchange.create(sys.argv[1], 3, 8192)
                x.publish_array([1.0])
                e = nx.OFF_LEASES
                x._set_u32(e + nx.LEASE_OFF_SLOT, 1)
                x._set_u64(e + nx.LEASE_OFF_START, 1)           # the first holder, about to release
                x._set_u32(e + nx.LEASE_OFF_PID, os.getppid())
                real = nx.process_alive
                def retaken_while_checking(pid, start):
                    # The first holder releases, a second consumer (this process) takes the entry for slot 1.
                    x._set_u32(e + nx.LEASE_OFF_SLOT, 0xFFFFFFFF); x._set_u64(e + nx.LEASE_OFF_START, 0)
                    x._set_u32(e + nx.LEASE_OFF_PID, os.getpid())  # (a CAS from 0 in a real taker)
                    x._set_u64(e + nx.LEASE_OFF_START, nx._SELF_START); x._set_u32(e + nx.LEASE_OFF_SLOT, 1)
                    nx.process_alive = real
                    return False                                  # what the old holder's pid with the new start gives
                nx.process_alive = retaken_while_checking
                held = x._leased(1)
                print("pid", x._u32(e + nx.LEASE_OFF_PID) == os.getpid(), "held", x._leased(1), "first", held, flush=True)
                x.close()
                """;
        Process python = Children.python(script, file.toString());
        try {
            String out = new String(python.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(python.waitFor(60, TimeUnit.SECONDS)).isTrue();
            assertThat(python.exitValue()).as(out).isZero();
            assertThat(out.strip()).as("the new holder's entry survives and holds the slot").isEqualTo("pid True held True first False");
        } finally {
            python.destroyForcibly().waitFor();
        }
    }

    /** A Python consumer killed while it holds a lease leaves nothing behind: the Java producer frees its entry. */
    @Test
    void aPythonConsumerKilledHoldingALeaseLeavesNothingBehind() throws Exception {
        String script = """
                import sys, time, nativescope_exchange as nx
                x = nx.Exchange.open(sys.argv[1])
                r = x.latest()
                lease = x.lease(r)
                print("leased", r.slot, lease.entry, flush=True)
                time.sleep(600)
                """;
        try (Producer producer = TensorExchange.create(file, 3, 8192);
             Consumer consumer = TensorExchange.openConsumer(file)) {
            TensorExchangeTest.publish(producer, 1);
            Received first = consumer.latest();
            Process python = Children.python(script, file.toString());
            int entry;
            try {
                String[] line = Children.firstLine(python).split(" ");
                assertThat(line[0]).as(String.join(" ", line)).isEqualTo("leased");
                entry = Integer.parseInt(line[2]);
                TensorExchangeTest.publish(producer, 2, 6);
                assertThat(first.isStillValid()).as("held by the live Python process").isTrue();
            } finally {
                python.destroyForcibly().waitFor();
            }
            TensorExchangeTest.publish(producer, 7, 12);
            assertThat(first.isStillValid()).as("the dead holder's slot is reused").isFalse();
            assertThat(producer.mapping().get(java.lang.foreign.ValueLayout.JAVA_INT, Leases.entry(entry))).isZero();
        }
    }
}
