package dev.nativescope.diagnostics;

import static org.assertj.core.api.Assertions.assertThat;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.ContextKey;
import dev.nativescope.call.NativeCall;
import dev.nativescope.reference.ReferencePredictors;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import javax.management.ObjectName;
import org.junit.jupiter.api.Test;

/** The in-flight registry and its dump, in process. */
class DiagnosticsTest {
    static final MethodHandle USLEEP = Linker.nativeLinker().downcallHandle(
            Linker.nativeLinker().defaultLookup().find("usleep").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final ContextKey<String> TENANT = ContextKey.of("tenant", String.class);

    static List<InFlightCall> labelled(String label) {
        return Diagnostics.inFlight().stream().filter(c -> c.label().equals(label)).toList();
    }

    static InFlightCall awaitOne(String label, java.util.function.Predicate<InFlightCall> condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < deadline) {
            List<InFlightCall> calls = labelled(label);
            if (calls.size() == 1 && condition.test(calls.get(0))) {
                return calls.get(0);
            }
            Thread.sleep(5);
        }
        throw new AssertionError("no call " + label + " as expected within 30 s: " + Diagnostics.dump());
    }

    @Test
    void blockedUncheckedCallIsListedFlaggedAfterItsCancelAndForgottenAfter() throws Exception {
        try (CancellableContext request = Context.background().withTimeout(Duration.ofMinutes(5))) {
            Context context = request.withValue(TENANT, "acme");
            Thread caller = Thread.ofPlatform().name("diag-usleep").start(() ->
                    NativeCall.invoke(context, "usleep", ignored -> (int) USLEEP.invokeExact(800_000)));
            InFlightCall running = awaitOne("usleep", c -> true);
            assertThat(running.state()).isEqualTo(InFlightCall.State.RUNNING);
            assertThat(running.thread()).contains("diag-usleep");
            assertThat(running.virtualThread()).isFalse();
            assertThat(running.cancelRequested()).isFalse();
            assertThat(running.values()).containsKey("tenant");
            assertThat(running.timeLeft()).isPositive();
            assertThat(running.runningFor()).isNotNull();
            assertThat(running.contexts()).extracting(InFlightCall.ContextInfo::kind)
                    .containsExactly("value", "cancellable", "background");
            assertThat(running.contexts().get(0).key()).isEqualTo("tenant");
            assertThat(running.checks()).isZero();

            request.cancel(new IllegalStateException("client went away"));
            InFlightCall stuck = awaitOne("usleep", InFlightCall::stuck);
            assertThat(stuck.state()).isEqualTo(InFlightCall.State.BLOCKED_OUTSIDE_CONTEXT_WAIT);
            assertThat(stuck.cancelCause()).contains("client went away");
            assertThat(stuck.cancelledBy()).contains(Thread.currentThread().getName());
            assertThat(stuck.sinceCancel()).isGreaterThanOrEqualTo(Duration.ofMillis(Diagnostics.DEFAULT_STUCK_MILLIS));
            assertThat(stuck.checksSinceCancel()).isZero();
            String dump = Diagnostics.dump();
            assertThat(dump).contains("usleep", "STUCK", "client went away", "tenant (values hidden");
            assertThat(dump).doesNotContain("acme");
            caller.join(Duration.ofSeconds(30));
        }
        assertThat(labelled("usleep")).isEmpty();
    }

    @Test
    void computingUncheckedCodeIsNotCheckingAndACheckingPredictorIsNotStuck() throws Exception {
        AtomicBoolean stop = new AtomicBoolean();
        try (CancellableContext context = Context.background().withCancel()) {
            Thread spinner = Thread.ofPlatform().name("diag-spin").start(() ->
                    NativeCall.invoke(context, "java-spin", ignored -> {
                        while (!stop.get()) {
                            Thread.onSpinWait();
                        }
                        return 0;
                    }));
            awaitOne("java-spin", c -> true);
            context.cancel();
            InFlightCall stuck = awaitOne("java-spin", InFlightCall::stuck);
            assertThat(stuck.state()).isEqualTo(InFlightCall.State.NOT_CHECKING);
            stop.set(true);
            spinner.join(Duration.ofSeconds(30));
        }
        // A checking predictor: the heartbeat moves, with a clock check stamp.
        try (CancellableContext context = Context.background().withCancel()) {
            Thread worker = Thread.ofVirtual().start(() -> {
                try {
                    ReferencePredictors.spin(context, Duration.ofSeconds(20), stats -> { });
                } catch (CancellationException expected) {
                    // cancelled below
                }
            });
            InFlightCall checking = awaitOne("nsc_predict_spin", c -> c.checks() > 100 && c.heartbeatAge() != null);
            assertThat(checking.virtualThread()).isTrue();
            assertThat(checking.heartbeatAge()).isLessThan(Duration.ofSeconds(10));
            context.cancel();
            worker.join(Duration.ofSeconds(30));
        }
        assertThat(labelled("nsc_predict_spin")).isEmpty();
    }

    @Test
    void tenThousandConcurrentVirtualCallsAreListedAndForgotten() throws Exception {
        int calls = 10_000;
        CountDownLatch entered = new CountDownLatch(calls);
        CountDownLatch release = new CountDownLatch(1);
        try (ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<Integer>> results = new ArrayList<>();
            for (int i = 0; i < calls; i++) {
                results.add(threads.submit(() -> NativeCall.invoke(Context.background(), "held", ignored -> {
                    entered.countDown();
                    release.await();
                    return 0;
                })));
            }
            assertThat(entered.await(60, TimeUnit.SECONDS)).isTrue();
            List<InFlightCall> held = labelled("held");
            assertThat(held).hasSize(calls);
            assertThat(held).allMatch(InFlightCall::virtualThread);
            assertThat(held.stream().map(InFlightCall::thread).distinct().count()).isEqualTo(calls);
            release.countDown();
            for (Future<Integer> result : results) {
                assertThat(result.get(60, TimeUnit.SECONDS)).isZero();
            }
        }
        assertThat(labelled("held")).isEmpty();

        // Real native calls starting and ending while a dumper walks the registry: no stale entries.
        AtomicBoolean done = new AtomicBoolean();
        AtomicInteger seen = new AtomicInteger();
        Thread dumper = Thread.ofPlatform().start(() -> {
            while (!done.get()) {
                for (InFlightCall call : Diagnostics.inFlight()) {
                    if (call.label().equals("nsc_noop_ctx")) {
                        seen.incrementAndGet();
                    }
                }
            }
        });
        try (ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < calls; i++) {
                threads.submit(() -> {
                    for (int j = 0; j < 20; j++) {
                        ReferencePredictors.noop(Context.background());
                    }
                });
            }
        }
        done.set(true);
        dumper.join();
        assertThat(labelled("nsc_noop_ctx")).isEmpty();
        assertThat(Diagnostics.inFlight()).isEmpty();
    }

    @Test
    void theMBeanAnswersAfterTheFirstCall() throws Exception {
        ReferencePredictors.noop(Context.background());
        ObjectName name = new ObjectName(Diagnostics.OBJECT_NAME);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!ManagementFactory.getPlatformMBeanServer().isRegistered(name) && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        Object table = ManagementFactory.getPlatformMBeanServer().invoke(name, "dumpInFlight", null, null);
        assertThat((String) table).startsWith("nativescope: 0 cancellable call(s) in flight");
        assertThat(ManagementFactory.getPlatformMBeanServer().getAttribute(name, "InFlightCount")).isEqualTo(0);
    }

    @Test
    void labelsDefaultToTheDowncallsClass() {
        assertThat(Diagnostics.labelOf(null, DiagnosticsTest.class)).isEqualTo(DiagnosticsTest.class.getName());
        assertThat(Diagnostics.labelOf("dense", DiagnosticsTest.class)).isEqualTo("dense");
    }
}
