package dev.nativescope.diagnostics;

import static org.assertj.core.api.Assertions.assertThat;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.ContextKey;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.call.CallMode;
import dev.nativescope.call.NativeCall;
import dev.nativescope.call.NativeThreads;
import dev.nativescope.reference.ReferencePredictors;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
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
            CountDownLatch entered = new CountDownLatch(1);
            Thread caller = Thread.ofPlatform().name("diag-usleep").start(() ->
                    NativeCall.invoke(context, "usleep", ignored -> {
                        entered.countDown();
                        return (int) USLEEP.invokeExact(2_000_000); // far beyond the 100 ms stuck threshold, also at load
                    }));
            // Cancelled below only once the Downcall runs: a cancel before would end the call before entry.
            assertThat(entered.await(30, TimeUnit.SECONDS)).isTrue();
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

    /**
     * The cancelling thread is recorded, not formatted, by the cancel: a call spinning on the
     * canceller's CPU waits for everything the cancel does after the state word (BENCHMARKS.md section
     * 18). The dump formats it.
     */
    @Test
    void theCancellingThreadIsFormattedByTheDumpNotByTheCancel() throws Exception {
        AtomicInteger formatted = new AtomicInteger();
        try (CancellableContext request = Context.background().withTimeout(Duration.ofMinutes(5))) {
            CountDownLatch entered = new CountDownLatch(1);
            Thread caller = Thread.ofPlatform().name("diag-usleep-by").start(() ->
                    NativeCall.invoke(request, "usleep-by", ignored -> {
                        entered.countDown();
                        return (int) USLEEP.invokeExact(2_000_000);
                    }));
            assertThat(entered.await(30, TimeUnit.SECONDS)).isTrue();
            awaitOne("usleep-by", c -> true);
            Thread canceller = new Thread(() -> request.cancel(new IllegalStateException("counted")), "counted-canceller") {
                @Override
                public String toString() {
                    formatted.incrementAndGet();
                    return "counted-canceller-thread";
                }
            };
            canceller.start();
            canceller.join();
            assertThat(formatted).as("toString() calls of the cancelling thread during its cancel").hasValue(0);
            InFlightCall stuck = awaitOne("usleep-by", InFlightCall::stuck);
            assertThat(stuck.cancelledBy()).isEqualTo("counted-canceller-thread");
            caller.join(Duration.ofSeconds(30));
        }
        assertThat(labelled("usleep-by")).isEmpty();
    }

    @Test
    void computingUncheckedCodeIsNotCheckingAndACheckingPredictorIsNotStuck() throws Exception {
        AtomicBoolean stop = new AtomicBoolean();
        try (CancellableContext context = Context.background().withCancel()) {
            CountDownLatch entered = new CountDownLatch(1);
            Thread spinner = Thread.ofPlatform().name("diag-spin").start(() ->
                    NativeCall.invoke(context, "java-spin", ignored -> {
                        entered.countDown();
                        while (!stop.get()) {
                            Thread.onSpinWait();
                        }
                        return 0;
                    }));
            try {
                assertThat(entered.await(30, TimeUnit.SECONDS)).isTrue();
                awaitOne("java-spin", c -> true);
                context.cancel();
                InFlightCall stuck = awaitOne("java-spin", InFlightCall::stuck);
                assertThat(stuck.state()).isEqualTo(InFlightCall.State.NOT_CHECKING);
            } finally {
                stop.set(true);
                spinner.join(Duration.ofSeconds(30));
            }
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
    void tenThousandConcurrentVirtualCallsAreListedAndForgottenOffloadedOnesIncluded() throws Exception {
        int calls = 10_000;
        // As many offloaded calls as there are native threads: each holds one (more would only queue).
        int offloaded = NativeThreads.poolSize();
        CountDownLatch entered = new CountDownLatch(calls);
        CountDownLatch release = new CountDownLatch(1);
        try (ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<Integer>> results = new ArrayList<>();
            for (int i = 0; i < calls; i++) {
                boolean offload = i < offloaded;
                results.add(threads.submit(() -> NativeCall.invoke(Context.background(), offload ? "held-offloaded" : "held",
                        offload ? CallMode.OFFLOAD : CallMode.INLINE, ignored -> {
                            entered.countDown();
                            release.await();
                            return 0;
                        })));
            }
            assertThat(entered.await(60, TimeUnit.SECONDS)).isTrue();
            List<InFlightCall> held = Diagnostics.inFlight().stream().filter(c -> c.label().startsWith("held")).toList();
            assertThat(held).hasSize(calls);
            assertThat(held).allMatch(InFlightCall::virtualThread);
            assertThat(held.stream().map(InFlightCall::thread).distinct().count()).isEqualTo(calls);
            assertThat(labelled("held")).allMatch(c -> c.nativeThread() == null);
            List<InFlightCall> heldOffloaded = labelled("held-offloaded");
            assertThat(heldOffloaded).hasSize(offloaded)
                    .allSatisfy(c -> assertThat(c.nativeThread()).contains(NativeThreads.THREAD_NAME_PREFIX));
            assertThat(heldOffloaded.stream().map(InFlightCall::nativeThread).distinct().count()).isEqualTo(offloaded);
            release.countDown();
            for (Future<Integer> result : results) {
                assertThat(result.get(60, TimeUnit.SECONDS)).isZero();
            }
        }
        assertThat(labelled("held")).isEmpty();
        assertThat(labelled("held-offloaded")).isEmpty();

        // Real native calls, inline (a no-op) and offloaded (a 50 us sleep), starting and ending while a dumper walks the
        // registry: no stale entries, and an offloaded call never shows a native thread that is not one.
        AtomicBoolean done = new AtomicBoolean();
        AtomicInteger seen = new AtomicInteger();
        AtomicInteger seenOnNativeThread = new AtomicInteger();
        List<String> wrong = new java.util.concurrent.CopyOnWriteArrayList<>();
        Thread dumper = Thread.ofPlatform().start(() -> {
            while (!done.get()) {
                for (InFlightCall call : Diagnostics.inFlight()) {
                    if (call.label().equals("noop-inline")) {
                        seen.incrementAndGet();
                        if (call.nativeThread() != null) {
                            wrong.add("inline call with a native thread: " + call);
                        }
                    } else if (call.label().equals("noop-offloaded") && call.nativeThread() != null) {
                        seenOnNativeThread.incrementAndGet();
                        if (!call.nativeThread().contains(NativeThreads.THREAD_NAME_PREFIX) || !call.virtualThread()) {
                            wrong.add("offloaded call: " + call);
                        }
                    }
                }
            }
        });
        // Bounds the offloaded calls in flight below the native threads' queue (4096 by default).
        Semaphore offloadSlots = new Semaphore(1024);
        try (ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < calls; i++) {
                boolean offload = i % 2 == 0;
                threads.submit(() -> {
                    for (int j = 0; j < 20; j++) {
                        if (offload) {
                            offloadSlots.acquire();
                            try {
                                // 50 us of native work: a no-op is over in 0.1 us, too short for the dumper to catch
                                // on its native thread (the handoff around it takes microseconds).
                                NativeCall.invoke(Context.background(), "noop-offloaded", CallMode.OFFLOAD,
                                        ignored -> (int) USLEEP.invokeExact(50));
                            } finally {
                                offloadSlots.release();
                            }
                        } else {
                            // INLINE said outright: inline also in the suite's forced-offload run.
                            NativeCall.invoke(Context.background(), "noop-inline", CallMode.INLINE, nativescope_h::nsc_noop_ctx);
                        }
                    }
                    return null;
                });
            }
        }
        done.set(true);
        dumper.join();
        assertThat(wrong).isEmpty();
        assertThat(seenOnNativeThread.get()).as("offloaded calls seen running on a native thread").isPositive();
        assertThat(labelled("noop-inline")).isEmpty();
        assertThat(labelled("noop-offloaded")).isEmpty();
        assertThat(Diagnostics.inFlight()).isEmpty();
    }

    @Test
    void aCallOffloadedFromAVirtualThreadShowsBothThreadsInTheDumpAndTheMBean() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        AtomicInteger laterNativeThreads = new AtomicInteger(-1);
        Thread caller = Thread.ofVirtual().name("diag-offloading").start(() -> {
            NativeCall.invoke(Context.background(), "offloaded-held", CallMode.OFFLOAD, ignored -> {
                release.await();
                return 0;
            });
            // The same virtual thread's next call, inline: its frame must not keep the native thread.
            NativeCall.invoke(Context.background(), "inline-after", CallMode.INLINE, ignored -> {
                laterNativeThreads.set((int) labelled("inline-after").stream().filter(c -> c.nativeThread() != null).count());
                return 0;
            });
        });
        InFlightCall call = awaitOne("offloaded-held", c -> c.nativeThread() != null);
        assertThat(call.virtualThread()).isTrue();
        assertThat(call.thread()).startsWith("VirtualThread[#").contains("diag-offloading");
        assertThat(call.nativeThread()).startsWith("Thread[#").contains(NativeThreads.THREAD_NAME_PREFIX);
        assertThat(call.state()).isEqualTo(InFlightCall.State.RUNNING);
        String shown = " (virtual), offloaded to " + call.nativeThread();
        assertThat(Diagnostics.dump()).contains("diag-offloading", shown);
        ObjectName name = new ObjectName(Diagnostics.OBJECT_NAME);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!ManagementFactory.getPlatformMBeanServer().isRegistered(name) && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertThat((String) ManagementFactory.getPlatformMBeanServer().invoke(name, "dumpInFlight", null, null)).contains(shown);
        release.countDown();
        caller.join(Duration.ofSeconds(30));
        assertThat(laterNativeThreads.get()).isZero();
        assertThat(labelled("offloaded-held")).isEmpty();
    }

    /**
     * What a call does after its cancel: blocks in native code outside a context wait, computes, or
     * parks in Java code inside its Downcall (then an inline virtual thread is not even mounted).
     */
    private enum Work { BLOCKS, COMPUTES, PARKS_IN_JAVA }

    @Test
    void blockedAndComputingAreToldApartForVirtualThreadsAndOffloadedCalls() throws Exception {
        for (CallMode mode : List.of(CallMode.INLINE, CallMode.OFFLOAD)) {
            for (Work work : Work.values()) {
                String label = "diag-" + mode + "-" + work;
                AtomicBoolean stop = new AtomicBoolean();
                CountDownLatch started = new CountDownLatch(1);
                try (CancellableContext context = Context.background().withCancel()) {
                    Thread caller = Thread.ofVirtual().start(() -> NativeCall.invoke(context, label, mode, ignored -> {
                        started.countDown();
                        while (!stop.get()) {
                            switch (work) {
                                case BLOCKS -> {
                                    int ignoredStatus = (int) USLEEP.invokeExact(5_000); // native, pins a virtual thread
                                }
                                case COMPUTES -> Thread.onSpinWait();
                                case PARKS_IN_JAVA -> LockSupport.parkNanos(5_000_000);
                            }
                        }
                        return 0;
                    }));
                    // Cancelled only once the Downcall runs: a cancel before would end the call before entry.
                    assertThat(started.await(30, TimeUnit.SECONDS)).isTrue();
                    context.cancel();
                    InFlightCall.State expected = work == Work.COMPUTES
                            ? InFlightCall.State.NOT_CHECKING : InFlightCall.State.BLOCKED_OUTSIDE_CONTEXT_WAIT;
                    // Sampling is a 20 ms window on a loaded machine: a wrong answer once is noise, the
                    // expected one must show up (and never would without a watched thread).
                    InFlightCall stuck = awaitOne(label, c -> c.state() == expected);
                    assertThat(stuck.virtualThread()).isTrue();
                    assertThat(stuck.nativeThread() != null).isEqualTo(mode == CallMode.OFFLOAD);
                    stop.set(true);
                    caller.join(Duration.ofSeconds(30));
                }
                assertThat(labelled(label)).isEmpty();
            }
        }
    }

    @Test
    void aVirtualThreadsCarrierIsFoundByName() throws Exception {
        AtomicBoolean stop = new AtomicBoolean();
        AtomicInteger found = new AtomicInteger();
        Thread virtual = Thread.ofVirtual().start(() -> {
            Map<String, Thread> platform = Diagnostics.platformThreadsByName();
            Thread carrier = Diagnostics.carrierOf(Thread.currentThread(), platform);
            found.set(carrier != null && !carrier.isVirtual() && carrier.getName().contains("ForkJoinPool") ? 1 : 0);
            while (!stop.get()) {
                Thread.onSpinWait();
            }
        });
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (found.get() == 0 && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertThat(found.get()).isEqualTo(1);
            // Mounted and spinning: seen from outside too. Unmounted (done): none.
            assertThat(Diagnostics.carrierOf(virtual, Diagnostics.platformThreadsByName())).isNotNull();
        } finally {
            stop.set(true);
            virtual.join(Duration.ofSeconds(30));
        }
        assertThat(Diagnostics.carrierOf(virtual, Diagnostics.platformThreadsByName())).isNull();
        assertThat(Diagnostics.platformThreadsByName()).containsEntry(Thread.currentThread().getName(), Thread.currentThread());
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
