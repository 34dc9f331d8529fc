package dev.nativescope.examples;

import static org.assertj.core.api.Assertions.assertThat;

import dev.nativescope.examples.exchange.ExchangeDemo;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The exchange's worked example, once and quickly: a JVM producer running the dense predictor, Python checking it. */
class ExchangeDemoTest {
    @Test
    void pythonConsumerAgreesWithNumPyOnEveryPredictionItRead() throws Exception {
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        ExchangeDemo.Result result = ExchangeDemo.run(120, 500, System.getProperty("nsc.test.python", "python3"),
                new PrintStream(log, true, StandardCharsets.UTF_8));
        String text = log.toString(StandardCharsets.UTF_8);
        assertThat(result.exitCode()).as(text).isZero();
        assertThat(result.consumerOutput()).as(text).anySatisfy(l -> assertThat(l).startsWith("checked ").endsWith("producer PRODUCER_CLOSED"));
        assertThat(text).doesNotContain("MISMATCH");
    }
}
