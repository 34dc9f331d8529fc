package dev.nativescope.examples.soak;

import dev.nativescope.Context;
import dev.nativescope.reference.PredictionStats;
import dev.nativescope.reference.ReferencePredictors;

import java.time.Duration;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.StructuredTaskScope;
import java.util.concurrent.StructuredTaskScope.Joiner;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Function;

import static dev.nativescope.examples.soak.CancelChecks.RETURN_BOUND_NANOS;
import static dev.nativescope.examples.soak.Operations.LONGEST_TRIGGER_MILLIS;

/** The soak's structured task scopes (operations SCOPE_* and ORT_SCOPE_*). */
final class ScopeOperation {
    private final Tally tally;
    private final DenseCalls dense;
    private final SoakOrt ort;
    private final Function<Context, Object> ortLongChain;

    ScopeOperation(Tally tally, DenseCalls dense, SoakOrt ort, Function<Context, Object> ortLongChain) {
        this.tally = tally;
        this.dense = dense;
        this.ort = ort;
        this.ortLongChain = ortLongChain;
    }

    /**
     * A scope of two spinning predictors, or with {@code withOrt} two runs of the shared ORT long chain
     * (platform threads: a pinned virtual thread would starve its siblings), plus one checked call
     * that completes (dense, or an ORT MLP run), stopped by the scope's timeout or by a failing
     * sibling. The scope interrupts its forks, so the long ones must end cancelled by an interrupt.
     * The forks inherit the caller's context, so the native code must see its trace id.
     */
    void run(boolean siblingFails, boolean withOrt, Context base, String trace, ThreadLocalRandom random)
            throws Exception {
        long timeoutMillis = random.nextInt(20, (int) LONGEST_TRIGGER_MILLIS);
        ConcurrentLinkedQueue<String> problems = new ConcurrentLinkedQueue<>();
        AtomicLong trigger = new AtomicLong(Long.MAX_VALUE);
        AtomicReference<Long> closedAt = new AtomicReference<>();
        base.call(() -> {
            long opened = System.nanoTime();
            try (var scope = StructuredTaskScope.open(Joiner.<Object>awaitAllSuccessfulOrThrow(),
                    cf -> cf.withThreadFactory(Thread.ofPlatform().name("soak-fork-", 0).factory())
                            .withTimeout(Duration.ofMillis(siblingFails ? 60_000 : timeoutMillis)))) {
                for (int i = 0; i < 2; i++) {
                    scope.fork(() -> {
                        PredictionStats[] stats = new PredictionStats[1];
                        try {
                            if (withOrt) {
                                ortLongChain.apply(Context.current());
                                problems.add("an ORT run in a scope completed");
                            } else {
                                ReferencePredictors.spin(Context.current(), null, s -> stats[0] = s);
                                problems.add("a spin in a scope completed");
                            }
                        } catch (CancellationException expected) {
                            tally.cancelsDone.increment();
                            if (withOrt && !(expected.getCause() instanceof InterruptedException)) {
                                problems.add("an ORT run in a scope ended with cause " + expected.getCause()
                                        + ", not the scope's interrupt");
                            }
                            // Absent when the cancel came before native entry; if present, it must match.
                            if (stats[0] != null && stats[0].traceId().isPresent()
                                    && !trace.equals(stats[0].traceId().get())) {
                                problems.add("a fork's native code saw " + stats[0].traceId() + ", bound " + trace);
                            }
                        } catch (Violation v) {
                            problems.add(v.getMessage());
                        } finally {
                            tally.callsDone.increment();
                        }
                        return null;
                    });
                }
                scope.fork(() -> {
                    if (withOrt) {
                        ort.mlpChecked(ort.mlp, Context.current());
                        tally.callsDone.increment();
                    } else {
                        dense.denseChecked(Context.current(), dense.x, trace);
                    }
                    return null;
                });
                if (siblingFails) {
                    scope.fork(() -> {
                        Thread.sleep(timeoutMillis);
                        trigger.set(System.nanoTime());
                        throw new IllegalStateException("sibling failed on purpose");
                    });
                }
                try {
                    scope.join();
                    problems.add("scope joined successfully although its spins never end");
                } catch (StructuredTaskScope.TimeoutException e) {
                    if (siblingFails) {
                        problems.add("scope timed out although a sibling failed first");
                    }
                    trigger.compareAndSet(Long.MAX_VALUE, opened + TimeUnit.MILLISECONDS.toNanos(timeoutMillis));
                } catch (StructuredTaskScope.FailedException e) {
                    if (!siblingFails || !(e.getCause() instanceof IllegalStateException)) {
                        problems.add("scope failed with " + e.getCause());
                    }
                }
            }
            closedAt.set(System.nanoTime());
            return null;
        });
        if (!problems.isEmpty()) {
            throw new Violation(String.join("; ", problems));
        }
        long fired = trigger.get();
        if (fired != Long.MAX_VALUE && closedAt.get() - fired > RETURN_BOUND_NANOS) {
            throw new Violation("scope closed " + (closedAt.get() - fired) / 1_000_000 + " ms after its trigger");
        }
    }
}
