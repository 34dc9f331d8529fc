package dev.nativescope.examples;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import static org.assertj.core.api.Assertions.assertThat;

/** Guards {@code ./run demo}: its table, and a whole run with a short timeout. */
class DemoTest {

    @Test
    void formatAlignsColumnsUnderAHeaderAndRule() {
        List<Demo.Row> rows = List.of(
                new Demo.Row("scope timeout 300 ms", "dense-0", "canceled", "scope timed out (interrupt)", 1_234_567,
                        301, 4242, "req-1"),
                new Demo.Row("sibling fails at 150 ms", "tokenizer", "failed", "tokenizer failed", 0, 0, 0, "-"));

        String table = Demo.format(rows);

        List<String> lines = table.lines().toList();
        assertThat(lines).hasSize(4);
        assertThat(lines.get(0)).startsWith("scenario").contains("trace-id (read natively)");
        assertThat(lines.get(1)).matches("[-+]+").contains("-+-");
        assertThat(cells(lines.get(2))).containsExactly("scope timeout 300 ms", "dense-0", "canceled",
                "scope timed out (interrupt)", "1,234.6 us", "301 ms", "4242", "req-1");
        // A zero latency means "no native call to time": shown as "-", not "0.0 us".
        assertThat(cells(lines.get(3))).containsExactly("sibling fails at 150 ms", "tokenizer", "failed",
                "tokenizer failed", "-", "0 ms", "0", "-");
        // Every column starts at the same offset on every line (the rule has "-+-" where the others have " | ").
        for (String line : List.of(lines.get(0), lines.get(2), lines.get(3))) {
            assertThat(separatorOffsets(line, " | ")).isEqualTo(separatorOffsets(lines.get(1), "-+-"));
        }
    }

    @Test
    @Timeout(value = 45, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void mainRunsTheThreeScenariosAndEveryPredictorIsStopped() throws Exception {
        String output = captureStdout(() -> Demo.main(new String[] {"200"}));

        List<List<String>> rows = output.lines().filter(line -> line.contains(" | "))
                .skip(1) // the header
                .map(DemoTest::cells).toList();
        Map<String, List<List<String>>> byScenario = rows.stream()
                .collect(Collectors.groupingBy(row -> row.get(0)));
        assertThat(byScenario).containsOnlyKeys("scope timeout 200 ms", "sibling fails at 100 ms",
                "context deadline 200 ms");
        assertNativeRows(byScenario.get("scope timeout 200 ms"), List.of("dense-0", "dense-1", "dense-2", "wait-fd"),
                "canceled", "req-timeout-1");
        assertNativeRows(nativeOnly(byScenario.get("sibling fails at 100 ms")), List.of("dense-0", "dense-1", "wait-fd"),
                "canceled", "req-sibling-2");
        assertThat(byScenario.get("sibling fails at 100 ms")).filteredOn(row -> row.get(1).equals("tokenizer"))
                .singleElement().satisfies(row -> assertThat(row.subList(2, 4))
                        .containsExactly("failed", "tokenizer failed"));
        assertNativeRows(byScenario.get("context deadline 200 ms"), List.of("dense-0", "dense-1", "wait-fd"),
                "deadline exceeded", "req-deadline-3");
    }

    /** Rows of native predictors: stopped (not completed), after entering native code, trace id read there. */
    private static void assertNativeRows(List<List<String>> rows, List<String> subtasks, String outcome, String traceId) {
        assertThat(rows).extracting(row -> row.get(1)).containsExactlyElementsOf(subtasks);
        assertThat(rows).allSatisfy(row -> {
            assertThat(row.get(2)).as("outcome of %s", row.get(1)).isEqualTo(outcome);
            assertThat(row.get(3)).as("stopped by, for %s", row.get(1)).doesNotContain("before native entry");
            assertThat(row.get(4)).as("trigger -> native return of %s", row.get(1)).endsWith(" us");
            assertThat(row.get(7)).as("trace id read natively by %s", row.get(1)).isEqualTo(traceId);
        });
    }

    private static List<List<String>> nativeOnly(List<List<String>> rows) {
        return rows.stream().filter(row -> !row.get(1).equals("tokenizer")).toList();
    }

    private static List<String> cells(String line) {
        return Arrays.stream(line.split(" \\| ", -1)).map(String::strip).toList();
    }

    private static List<Integer> separatorOffsets(String line, String separator) {
        List<Integer> offsets = new ArrayList<>();
        for (int at = line.indexOf(separator); at >= 0; at = line.indexOf(separator, at + 1)) {
            offsets.add(at);
        }
        return offsets;
    }

    @FunctionalInterface
    private interface Action {
        void run() throws Exception;
    }

    private static String captureStdout(Action action) throws Exception {
        PrintStream original = System.out;
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        try (PrintStream capture = new PrintStream(buffer, true, StandardCharsets.UTF_8)) {
            System.setOut(capture);
            action.run();
        } finally {
            System.setOut(original);
        }
        return buffer.toString(StandardCharsets.UTF_8);
    }
}
