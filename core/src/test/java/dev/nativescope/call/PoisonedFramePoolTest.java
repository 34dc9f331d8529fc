package dev.nativescope.call;

import dev.nativescope.childjvm.ChildJvm;
import dev.nativescope.childjvm.PoisonedFrameProbe;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A pool that heals (issue 12, "a leaked hook poisons the frame pool"): native code that registers a
 * cancel hook on its call context and never deregisters it must not make later calls fail. Run in a
 * child JVM ({@link PoisonedFrameProbe}), whose leaked registrations die with it.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class PoisonedFramePoolTest {
    private static final Pattern SUMMARY = Pattern.compile(
            "poisoned=(\\d+) retired=(\\d+) liveCallFrames=(\\d+) failures=(\\d+) firstFailure=(.*)");

    @Test
    void framesWithLeakedHooksAreRetiredUnderConcurrentCallsAndLaterCallsAreUnaffected() throws Exception {
        ChildJvm.Result result = ChildJvm.run(List.of("--enable-native-access=ALL-UNNAMED"), List.of(),
                PoisonedFrameProbe.class.getName(), "4", "400");
        Matcher summary = SUMMARY.matcher(result.output());
        assertThat(summary.find()).as("child output:%n%s", result.output()).isTrue();
        assertThat(result.exitCode()).as(result.output()).isZero();
        assertThat(summary.group(4)).as("failed calls; first: %s", summary.group(5)).isEqualTo("0");
        long poisoned = Long.parseLong(summary.group(1));
        assertThat(poisoned).isPositive();
        assertThat(Long.parseLong(summary.group(2))).as("frames retired, one per leaking call").isEqualTo(poisoned);
        assertThat(summary.group(3)).as("no frame left counted as live").isEqualTo("0");
        // Reported once, naming what to fix, however many frames were retired.
        assertThat(occurrences(result.output(), "nsc_hook_deregister")).as(result.output()).isEqualTo(1);
    }

    private static int occurrences(String text, String word) {
        int count = 0;
        for (int at = text.indexOf(word); at >= 0; at = text.indexOf(word, at + 1)) {
            count++;
        }
        return count;
    }
}
