package dev.nativescope.exchange;

import static org.assertj.core.api.Assertions.assertThat;

import dev.nativescope.tensor.Tensor;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class TwoProcessExchangeTest {
    private Path file;

    @BeforeEach
    void name() {
        file = TensorExchange.defaultPath("nsc-test2p-" + ProcessHandle.current().pid() + "-" + System.nanoTime());
    }

    @AfterEach
    void delete() throws Exception {
        TensorExchange.delete(file);
    }

    @Test
    void tenThousandTensorsOfChangingShapesAndDtypesArriveIntactAndUncopied() throws Exception {
        int count = 10_000;
        int batch = 3;
        Process child = Children.jvm("batches", file.toString(), Integer.toString(count), Integer.toString(batch));
        try {
            assertThat(Children.firstLine(child)).isEqualTo("ready");
            OutputStream ack = child.getOutputStream();
            try (Consumer consumer = TensorExchange.openConsumer(file)) {
                MemorySegment map = consumer.mapping();
                for (long v = 1; v <= count; v++) {
                    Received received = consumer.awaitNext(Duration.ofSeconds(60));
                    assertThat(received.status()).as("version %d", v).isEqualTo(ReadStatus.OK);
                    assertThat(received.version()).isEqualTo(v);
                    Tensor t = received.tensor();
                    assertThat(t.dtype()).isEqualTo(Pattern.dtype(v));
                    assertThat(t.shape()).isEqualTo(Pattern.shape(v));
                    MemorySegment data = t.data();
                    assertThat(data.address()).isBetween(map.address(), map.address() + map.byteSize() - data.byteSize());
                    assertThat(Pattern.mismatch(data, v)).as("version %d", v).isEqualTo(-1);
                    assertThat(received.isStillValid()).isTrue();
                    if (v % batch == 0) {
                        ack.write(1);
                        ack.flush();
                    }
                }
                assertThat(child.waitFor(60, TimeUnit.SECONDS)).isTrue();
                assertThat(child.exitValue()).isZero();
                assertThat(consumer.awaitNext(Duration.ofSeconds(10)).status()).isEqualTo(ReadStatus.PRODUCER_CLOSED);
            }
        } finally {
            child.destroyForcibly().waitFor();
        }
    }

    @Test
    void producersKilledMidWriteAreSeenDeadQuicklyAndTakenOverWithoutATornTensor() throws Exception {
        Random random = new Random(Long.getLong("nsc.test.seed", 16));
        int kills = Integer.getInteger("nsc.exchange.jvmKills", 6);
        List<Long> detectMicros = new ArrayList<>();
        long received = 0;
        long overwrittenWhileRead = 0;
        Consumer consumer = null;
        try {
            for (int round = 0; round < kills; round++) {
                Process child = Children.jvm("loop", file.toString());
                try {
                    assertThat(Children.firstLine(child)).isEqualTo("ready " + (round + 1));
                    if (consumer == null) {
                        consumer = TensorExchange.openConsumer(file);
                    }
                    long killAt = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(20 + random.nextInt(200));
                    long killed = 0;
                    for (;;) {
                        if (killed == 0 && System.nanoTime() >= killAt) {
                            child.destroyForcibly();
                            killed = System.nanoTime();
                        }
                        Received r = consumer.awaitNext(Duration.ofSeconds(20));
                        if (r.status() == ReadStatus.PRODUCER_DEAD) {
                            assertThat(killed).as("dead only after the kill").isNotZero();
                            detectMicros.add((System.nanoTime() - killed) / 1000);
                            break;
                        }
                        if (r.status() == ReadStatus.OVERRUN) {
                            continue;
                        }
                        assertThat(r.status()).isEqualTo(ReadStatus.OK);
                        long v = r.version();
                        Tensor t = r.tensor();
                        boolean layoutOk = t.dtype() == Pattern.dtype(v) && java.util.Arrays.equals(t.shape(), Pattern.shape(v));
                        long mismatch = layoutOk ? Pattern.mismatch(t.data(), v) : 0;
                        if (r.isStillValid()) {
                            assertThat(layoutOk).as("layout of version %d", v).isTrue();
                            assertThat(mismatch).as("a torn tensor, version %d", v).isEqualTo(-1);
                            received++;
                        } else {
                            overwrittenWhileRead++;
                        }
                    }
                    assertThat(child.waitFor(10, TimeUnit.SECONDS)).isTrue();
                } finally {
                    child.destroyForcibly().waitFor();
                }
            }
        } finally {
            if (consumer != null) {
                consumer.close();
            }
        }
        System.out.printf("%d kills: detection after kill (us) %s; %d tensors verified, %d overwritten while read%n",
                kills, detectMicros, received, overwrittenWhileRead);
        assertThat(received).isPositive();
        // Generous: the machine's 2 cores are shared; the shim's watcher wakes the wait when the pidfd reports the exit.
        assertThat(detectMicros).allSatisfy(us -> assertThat(us).isLessThan(2_000_000));
        assertThat(Files.exists(file)).isTrue();
    }
}
