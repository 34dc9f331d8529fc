package dev.nativescope.call;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.bindings.nsc_cancel_fn;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.library.NativeStatus;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

import dev.nativescope.reference.EventFd;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * "Cancels land first, explain later", as ordering rather than timing: a cancel hook that native
 * code registers on its call context runs inside {@code nsc_context_cancel}, after the state word's
 * compare-and-set, in the cancelling thread; there it must find the context not yet done (no cause
 * built, no state published on the Java side). A spinning call on the canceller's CPU waits for all
 * of {@code cancel()}, so the order is what makes the state word come first (BENCHMARKS.md section 18).
 *
 * <p>The interrupter of an offloaded call gives its CPU up after the state word (the native thread
 * was mostly woken onto that CPU and waited there for the whole interrupt): that step comes after
 * the state word, in the interrupter, once; inline calls and {@code cancel()} do not take it.
 *
 * <p>Threading: the worker (platform: inline; virtual: offloaded to a native thread) registers the
 * hook and spins in native code; the test thread cancels; the hook runs in the test thread.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
@OffloadMode
class CancelOrderingTest {
    @BeforeAll
    static void load() {
        NativeLibrary.load();
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void theStateWordAndNativeHooksComeBeforeTheDefaultCause(boolean virtualWorker) throws Exception {
        CancellableContext context = Context.background().withCancel();
        AtomicReference<Thread> hookThread = new AtomicReference<>();
        AtomicInteger hookStatus = new AtomicInteger(-1);
        AtomicReference<String> seenByHook = new AtomicReference<>();
        CountDownLatch registered = new CountDownLatch(1);
        AtomicReference<Throwable> thrown = new AtomicReference<>();
        AtomicInteger deregistered = new AtomicInteger(-1);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment hookFn = nsc_cancel_fn.allocate((arg, status) -> {
                // An upcall must not throw (the JVM would exit): record, never fail here.
                try {
                    hookThread.set(Thread.currentThread());
                    hookStatus.set(status);
                    seenByHook.set("done=" + context.isDone() + " cause=" + context.cause());
                } catch (Throwable unexpected) {
                    seenByHook.set("hook failed: " + unexpected);
                }
            }, arena);
            MemorySegment hook = arena.allocate(ValueLayout.ADDRESS);
            Runnable call = () -> {
                try {
                    NativeCall.invoke(context, "ordering", ctx -> {
                        int status = nativescope_h.nsc_hook_register(ctx, hookFn, MemorySegment.NULL, hook);
                        if (status != NativeStatus.OK.code()) {
                            throw new IllegalStateException("nsc_hook_register: " + NativeStatus.nameOf(status));
                        }
                        registered.countDown();
                        int spun = nativescope_h.nsc_predict_spin(ctx, -1, MemorySegment.NULL);
                        deregistered.set(nativescope_h.nsc_hook_deregister(hook.get(ValueLayout.ADDRESS, 0)));
                        return spun;
                    });
                } catch (Throwable failure) {
                    thrown.set(failure);
                }
            };
            Thread worker = virtualWorker ? Thread.ofVirtual().start(call) : Thread.ofPlatform().start(call);
            assertThat(registered.await(60, TimeUnit.SECONDS)).as("hook registered in native code").isTrue();

            context.cancel();

            worker.join();
            assertThat(hookThread.get()).as("the hook ran in the cancelling thread").isSameAs(Thread.currentThread());
            assertThat(hookStatus.get()).isEqualTo(NativeStatus.CANCELED.code());
            assertThat(seenByHook.get()).as("what the hook saw, after the state word").isEqualTo("done=false cause=null");
            assertThat(deregistered.get()).as("the hook had run").isEqualTo(NativeStatus.ALREADY_DONE.code());
            assertThat(context.cause()).as("built after the state word, before cancel() returned")
                    .isInstanceOf(CancellationException.class).hasMessageStartingWith("context canceled");
            assertThat(thrown.get()).isInstanceOf(CancellationException.class).hasCause(context.cause());
        }
    }

    /** A cancel ({@code interrupt} false) or an interrupt of the caller, every kind of caller. */
    @ParameterizedTest
    @EnumSource(Caller.class)
    void anOffloadedCallsInterrupterGivesItsCpuUpAfterTheStateWord(Caller caller) throws Exception {
        for (boolean interrupt : new boolean[] {false, true}) {
            checkTheStepAfterTheStateWord(caller, interrupt);
        }
    }

    private static void checkTheStepAfterTheStateWord(Caller caller, boolean interrupt) throws Exception {
        CancellableContext context = Context.background().withCancel();
        AtomicInteger steps = new AtomicInteger();
        AtomicReference<String> seen = new AtomicReference<>();
        CountDownLatch entered = new CountDownLatch(1);
        AtomicReference<Throwable> thrown = new AtomicReference<>();
        Thread canceller = Thread.currentThread();
        Consumer<CallFrame> original = CallFrame.afterOffloadedStop;
        CallFrame.afterOffloadedStop = frame -> {
            steps.incrementAndGet();
            seen.set("cancelled=" + frame.isCancelled() + " in-canceller=" + (Thread.currentThread() == canceller));
            original.accept(frame);
        };
        try (EventFd never = EventFd.create(); Arena arena = Arena.ofShared()) {
            MemorySegment value = arena.allocate(8);
            Thread worker = caller.start(() -> {
                try {
                    NativeCall.invoke(context, caller.mode, ctx -> {
                        entered.countDown();
                        return nativescope_h.nsc_predict_wait(ctx, never.fd(), -1, value, MemorySegment.NULL);
                    });
                } catch (Throwable failure) {
                    thrown.set(failure);
                }
            });
            assertThat(entered.await(60, TimeUnit.SECONDS)).as("in the call").isTrue();
            if (interrupt) {
                worker.interrupt();
            } else {
                context.cancel();
            }
            worker.join();
        } finally {
            CallFrame.afterOffloadedStop = original;
            context.close();
        }
        String what = caller + (interrupt ? " interrupt" : " cancel");
        assertThat(thrown.get()).as(what).isInstanceOf(CancellationException.class);
        if (!caller.offloads() || !interrupt) {
            // Inline, the woken caller takes the CPU itself; a cancel() sleeps soon enough.
            assertThat(steps.get()).as(what + ": no step after the state word").isZero();
            return;
        }
        assertThat(steps.get()).as(what + ": once, by the winning stop").isEqualTo(1);
        // The caller's state at that moment is not asserted: the native thread, woken by the done
        // fd, may already have handed the call back (the caller then waits in the signal's close()).
        assertThat(seen.get()).as(what).isEqualTo("cancelled=true in-canceller=true");
    }
}
