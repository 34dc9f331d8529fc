package dev.nativescope.diagnostics;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.DeadlineExceededException;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.call.CallMode;
import dev.nativescope.call.NativeCall;
import dev.nativescope.reference.ReferencePredictors;
import dev.nativescope.testing.Allocations;
import dev.nativescope.testing.CapturedWarnings;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The JFR events of the call bridge, read back from a recording made here. */
class DiagnosticsJfrTest {
    @RegisterExtension
    final CapturedWarnings warnings = CapturedWarnings.of(NativeCall.class.getName());

    private static List<RecordedEvent> named(List<RecordedEvent> events, String name) {
        return events.stream().filter(e -> e.getEventType().getName().equals(name)).toList();
    }

    private static List<RecordedEvent> labelled(List<RecordedEvent> events, String name, String label) {
        return named(events, name).stream().filter(e -> label.equals(e.getString("label"))).toList();
    }

    /**
     * A recording that enables the native-call event costs a call no allocation: each call frame
     * begins and ends its own event again (it used to allocate one per call, 128 bytes).
     */
    @Test
    void aRecordingDoesNotAllocateAnEventPerCall() throws Exception {
        try (Recording recording = new Recording()) {
            recording.enable("dev.nativescope.NativeCall").withThreshold(Duration.ofMillis(20));
            recording.start();
            // Warmed up until C2 has compiled the path (as NativeCallFastPathTest): the best of the rounds.
            int calls = 200_000;
            double best = Double.MAX_VALUE;
            for (int round = 0; round < 15 && best >= 1.0; round++) {
                long before = Allocations.currentThread();
                for (int i = 0; i < calls; i++) {
                    // INLINE: also inline in the suite's forced-offload run, whose handoffs allocate.
                    NativeCall.invoke(Context.background(), "nsc_noop_ctx", CallMode.INLINE, nativescope_h::nsc_noop_ctx);
                }
                best = Math.min(best, (Allocations.currentThread() - before) / (double) calls);
            }
            recording.stop();
            assertThat(best).as("bytes allocated per call while recording").isLessThan(8);
        }
    }

    @Test
    void recordingHoldsCallsCancelsDeadlinesStuckCancelsAndLateReturns() throws Exception {
        ReferencePredictors.noop(Context.background()); // the first call loads the library: hundreds of ms
        Path file = Files.createTempFile("nativescope-diagnostics", ".jfr");
        try {
            try (Recording recording = new Recording()) {
                recording.enable("dev.nativescope.NativeCall").withThreshold(Duration.ofMillis(100));
                recording.enable("dev.nativescope.CancelRequested");
                recording.enable("dev.nativescope.CancelObserved");
                recording.enable("dev.nativescope.DeadlineExceeded");
                recording.enable("dev.nativescope.LateReturn");
                recording.enable("dev.nativescope.CancelStuck").withPeriod(Duration.ofMillis(100));
                recording.start();

                for (int i = 0; i < 100; i++) {
                    ReferencePredictors.noop(Context.background()); // below the threshold: not recorded
                }
                NativeCall.invoke(Context.background(), "slow-usleep", ignored -> (int) DiagnosticsTest.USLEEP.invokeExact(300_000));
                // Back to back on one thread, so on one call frame and its one reused event: each gets its own times.
                for (int i = 0; i < 2; i++) {
                    NativeCall.invoke(Context.background(), "reused-usleep", ignored -> (int) DiagnosticsTest.USLEEP.invokeExact(150_000));
                    ReferencePredictors.noop(Context.background()); // between the two: begun, not committed
                }

                try (CancellableContext context = Context.background().withCancel()) {
                    Thread caller = Thread.ofPlatform().start(() ->
                            NativeCall.invoke(context, "stuck-usleep", ignored -> (int) DiagnosticsTest.USLEEP.invokeExact(700_000)));
                    DiagnosticsTest.awaitOne("stuck-usleep", c -> true);
                    context.cancel(new IllegalStateException("give up"));
                    caller.join(Duration.ofSeconds(30));
                }

                // 2 s: under heavy load a shorter deadline can pass before the call enters (then no event).
                try (CancellableContext context = Context.background().withTimeout(Duration.ofSeconds(2))) {
                    assertThatThrownBy(() -> ReferencePredictors.spin(context, Duration.ofSeconds(10), stats -> { }))
                            .isInstanceOf(DeadlineExceededException.class);
                }
                recording.stop();
                recording.dump(file);
            }
            List<RecordedEvent> events = RecordingFile.readAllEvents(file);

            assertThat(labelled(events, "dev.nativescope.NativeCall", "nsc_noop_ctx")).as("threshold respected").isEmpty();
            assertThat(named(events, "dev.nativescope.NativeCall")).allSatisfy(e ->
                    assertThat(e.getDuration()).isGreaterThanOrEqualTo(Duration.ofMillis(100)));
            RecordedEvent slow = labelled(events, "dev.nativescope.NativeCall", "slow-usleep").getFirst();
            assertThat(slow.getString("outcome")).isEqualTo("NSC_OK");
            assertThat(slow.getLong("contextId")).isPositive();
            assertThat(labelled(events, "dev.nativescope.NativeCall", "stuck-usleep")).hasSize(1);
            List<RecordedEvent> reused = labelled(events, "dev.nativescope.NativeCall", "reused-usleep").stream()
                    .sorted(java.util.Comparator.comparing(RecordedEvent::getStartTime)).toList();
            assertThat(reused).hasSize(2).allSatisfy(e -> {
                assertThat(e.getDuration()).isBetween(Duration.ofMillis(140), Duration.ofSeconds(30));
                assertThat(e.getString("outcome")).isEqualTo("NSC_OK");
                assertThat(e.getLong("contextId")).isPositive();
                assertThat(e.getThread().getJavaName()).isEqualTo(Thread.currentThread().getName());
            });
            assertThat(reused.get(1).getStartTime()).isAfterOrEqualTo(reused.get(0).getEndTime());

            RecordedEvent requested = labelled(events, "dev.nativescope.CancelRequested", "stuck-usleep").getFirst();
            assertThat(requested.getString("cause")).startsWith("cancel");
            assertThat(requested.getString("canceller")).contains(Thread.currentThread().getName());
            RecordedEvent observed = labelled(events, "dev.nativescope.CancelObserved", "stuck-usleep").getFirst();
            assertThat(observed.getLong("latency")).isGreaterThanOrEqualTo(Duration.ofMillis(300).toNanos());
            assertThat(observed.getString("outcome")).isEqualTo("NSC_OK");
            RecordedEvent late = labelled(events, "dev.nativescope.LateReturn", "stuck-usleep").getFirst();
            assertThat(late.getLong("lateBy")).isGreaterThan(Duration.ofMillis(100).toNanos());
            RecordedEvent stuck = labelled(events, "dev.nativescope.CancelStuck", "stuck-usleep").getFirst();
            assertThat(stuck.getString("cause")).isEqualTo(IllegalStateException.class.getName());
            assertThat(stuck.getLong("sinceCancel")).isGreaterThanOrEqualTo(Duration.ofMillis(Diagnostics.DEFAULT_STUCK_MILLIS).toNanos());
            assertThat(stuck.getLong("checks")).isZero();

            RecordedEvent deadline = labelled(events, "dev.nativescope.DeadlineExceeded", "nsc_predict_spin").getFirst();
            assertThat(deadline.getLong("lateness")).isGreaterThanOrEqualTo(0);
            // The timer's cancel and native code's own clock check race: a cancel event only when the timer won.
            assertThat(labelled(events, "dev.nativescope.CancelRequested", "nsc_predict_spin"))
                    .allSatisfy(e -> assertThat(e.getString("cause")).startsWith("deadline"));
            assertThat(labelled(events, "dev.nativescope.CancelObserved", "nsc_predict_spin"))
                    .allSatisfy(e -> assertThat(e.getLong("latency")).isGreaterThanOrEqualTo(0));
            // A checking predictor is never reported stuck, nor late.
            assertThat(labelled(events, "dev.nativescope.CancelStuck", "nsc_predict_spin")).isEmpty();
            assertThat(labelled(events, "dev.nativescope.LateReturn", "nsc_predict_spin")).isEmpty();
        } finally {
            Files.deleteIfExists(file);
        }
    }
}
