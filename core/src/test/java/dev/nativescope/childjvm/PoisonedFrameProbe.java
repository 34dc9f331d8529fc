package dev.nativescope.childjvm;

import dev.nativescope.Context;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.bindings.nsc_cancel_fn;
import dev.nativescope.call.NativeCall;
import dev.nativescope.call.NativeResources;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.library.NativeStatus;
import dev.nativescope.reference.ReferencePredictors;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CancellationException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Main class run in a child JVM by {@code PoisonedFramePoolTest} (hooks it leaks stay registered for
 * the life of the process, which the parent's leak check would rightly count): several threads make
 * bridged calls, some of whose native code registers a cancel hook and never deregisters it (half of
 * them also cancelling their own context), the rest ordinary calls. Prints one line:
 * {@code poisoned=P retired=R failures=F firstFailure=...}.
 */
public final class PoisonedFrameProbe {
    private PoisonedFrameProbe() {
    }

    public static void main(String[] args) throws Exception {
        NativeLibrary.load();
        int threads = Integer.parseInt(args[0]);
        int callsPerThread = Integer.parseInt(args[1]);
        // Never freed: the leaked registrations point at it.
        MemorySegment hookFn = nsc_cancel_fn.allocate((arg, status) -> { }, Arena.global());
        AtomicInteger poisoned = new AtomicInteger();
        AtomicInteger failures = new AtomicInteger();
        AtomicReference<Throwable> firstFailure = new AtomicReference<>();
        long retiredBefore = NativeResources.snapshot().retiredCallFrames();
        List<Thread> workers = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            long seed = t;
            workers.add(Thread.ofPlatform().start(() -> {
                SplittableRandom random = new SplittableRandom(seed);
                for (int i = 0; i < callsPerThread; i++) {
                    int draw = random.nextInt(10);
                    try {
                        if (draw == 0 || draw == 1) {
                            poisoned.incrementAndGet();
                            boolean cancelToo = draw == 1;
                            try {
                                NativeCall.invoke(Context.background(), ctx -> {
                                    try (Arena arena = Arena.ofConfined()) {
                                        MemorySegment hook = arena.allocate(ValueLayout.ADDRESS);
                                        int status = nativescope_h.nsc_hook_register(ctx, hookFn, MemorySegment.NULL, hook);
                                        if (status != NativeStatus.OK.code()) {
                                            throw new AssertionError("nsc_hook_register: " + NativeStatus.nameOf(status));
                                        }
                                    }
                                    if (cancelToo) {
                                        nativescope_h.nsc_context_cancel(ctx, NativeStatus.CANCELED.code());
                                        return NativeStatus.CANCELED.code();
                                    }
                                    return NativeStatus.OK.code();
                                });
                                if (cancelToo) {
                                    throw new AssertionError("a call whose struct was cancelled returned normally");
                                }
                            } catch (CancellationException expected) {
                                if (!cancelToo) {
                                    throw expected;
                                }
                            }
                        } else {
                            ReferencePredictors.noop(Context.background());
                        }
                    } catch (Throwable e) {
                        failures.incrementAndGet();
                        firstFailure.compareAndSet(null, e);
                    }
                }
            }));
        }
        for (Thread worker : workers) {
            worker.join();
        }
        // Calls after the storm, on this thread: every frame they get must be healthy.
        for (int i = 0; i < 100; i++) {
            try {
                ReferencePredictors.noop(Context.background());
            } catch (Throwable e) {
                failures.incrementAndGet();
                firstFailure.compareAndSet(null, e);
            }
        }
        NativeResources.trimIdle();
        NativeResources after = NativeResources.snapshot();
        System.out.println("poisoned=" + poisoned.get() + " retired=" + (after.retiredCallFrames() - retiredBefore)
                + " liveCallFrames=" + after.liveCallFrames() + " failures=" + failures.get()
                + " firstFailure=" + firstFailure.get());
    }
}
