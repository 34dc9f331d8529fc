package dev.nativescope.examples;

import dev.nativescope.Context;
import dev.nativescope.reference.EventFd;
import dev.nativescope.reference.PredictionStats;
import dev.nativescope.reference.ReferencePredictors;
import dev.nativescope.examples.NativeWork.Outcome;
import dev.nativescope.examples.NativeWork.Threads;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.time.Duration;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.StructuredTaskScope;
import java.util.concurrent.StructuredTaskScope.Joiner;
import java.util.concurrent.StructuredTaskScope.Subtask;
import java.util.concurrent.atomic.AtomicReference;

import static dev.nativescope.examples.NativeWork.NSC_OK;
import static dev.nativescope.examples.NativeWork.TRACE_ID;
import static dev.nativescope.examples.NativeWork.runRecorded;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * A value bound around a scope ({@code ctx.call(() -> scope...)}) is {@link Context#current()}
 * in every fork, and native code called there reads it from its {@code nsc_context}: the
 * reference predictors echo the {@code trace-id} value they looked up natively into their stats.
 */
class ContextValuesInForksTest extends NativeScopeTest {
    @ParameterizedTest
    @EnumSource(Threads.class)
    void everyForkPassesTheBoundTraceIdToNativeCode(Threads threads) throws Exception {
        Queue<Outcome> outcomes = new ConcurrentLinkedQueue<>();
        Context request = Context.background().withValue(TRACE_ID, "req-values-" + threads);

        // Short predictors that complete: every kind the shim has (compute, fd wait, spin), so the
        // values reach each of them; they end by themselves, so no carrier limit applies.
        List<Subtask<Outcome>> subtasks = request.call(() -> {
            try (EventFd signalled = EventFd.create();
                 var scope = StructuredTaskScope.open(Joiner.<Outcome>allSuccessfulOrThrow(), threads::configure)) {
                signalled.signal(5);
                scope.fork(() -> runRecorded("dense", NativeWork.dense(2), outcomes, null));
                scope.fork(() -> runRecorded("wait-fd", NativeWork.awaitFd(signalled), outcomes, null));
                scope.fork(() -> runRecorded("spin", (context, onReturn) ->
                        ReferencePredictors.spin(context, Duration.ofMillis(5), onReturn), outcomes, null));
                return scope.join().toList();
            }
        });

        assertThat(subtasks).hasSize(3).allSatisfy(subtask -> assertThat(subtask.state()).isEqualTo(Subtask.State.SUCCESS));
        assertThat(outcomes).hasSize(3).allSatisfy(outcome -> {
            assertThat(outcome.virtualThread()).isEqualTo(threads == Threads.VIRTUAL);
            assertThat(outcome.failure()).as("%s failure", outcome.name()).isNull();
            assertThat(outcome.stats().status()).as("%s native status", outcome.name()).isEqualTo(NSC_OK);
            assertThat(outcome.context()).as("%s Context.current()", outcome.name()).isSameAs(request);
            assertThat(outcome.stats().traceId()).as("%s trace id read natively", outcome.name())
                    .hasValue("req-values-" + threads);
        });
        assertThat(outcomes).filteredOn(outcome -> outcome.name().equals("wait-fd"))
                .extracting(outcome -> outcome.stats().workUnits()).as("bytes read from the signalled fd").containsExactly(8L);
        assertThat(Context.current()).as("the binding ends with call()").isSameAs(Context.background());
    }

    /**
     * A fork can rebind the key for its own subtree: its nested forks' native code reads the new
     * value, while its siblings keep reading the request's.
     */
    @ParameterizedTest
    @EnumSource(Threads.class)
    void aForkThatRebindsTheKeyShadowsItForItsNestedForksOnly(Threads threads) throws Exception {
        Context request = Context.background().withValue(TRACE_ID, "req-outer");
        Queue<String> readNatively = new ConcurrentLinkedQueue<>();

        request.call(() -> {
            try (var scope = StructuredTaskScope.open(Joiner.<Object>allSuccessfulOrThrow(), threads::configure)) {
                scope.fork(() -> denseOnce("sibling", readNatively));
                scope.fork(() -> Context.current().withValue(TRACE_ID, "req-inner").call(() -> {
                    try (var inner = StructuredTaskScope.open(Joiner.<Object>allSuccessfulOrThrow(),
                            threads::configure)) {
                        inner.fork(() -> denseOnce("nested-0", readNatively));
                        inner.fork(() -> denseOnce("nested-1", readNatively));
                        return inner.join();
                    }
                }));
                return scope.join();
            }
        });

        assertThat(readNatively).containsExactlyInAnyOrder("sibling=req-outer", "nested-0=req-inner",
                "nested-1=req-inner");
    }

    private static Object denseOnce(String name, Queue<String> readNatively) {
        AtomicReference<PredictionStats> stats = new AtomicReference<>();
        NativeWork.dense(1).run(Context.current(), stats::set);
        readNatively.add(name + "=" + stats.get().traceId().orElse("(none)"));
        return null;
    }
}
