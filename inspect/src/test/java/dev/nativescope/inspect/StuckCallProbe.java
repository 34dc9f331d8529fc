package dev.nativescope.inspect;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.ContextKey;
import dev.nativescope.call.CallMode;
import dev.nativescope.call.NativeCall;
import dev.nativescope.diagnostics.Diagnostics;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;

/**
 * Main class of {@code InspectTest}'s child JVM: one native call that never checks its context
 * (libc's {@code usleep}, 60 s) under a context with a value, cancelled with a cause; prints
 * {@code READY} once the cancel is older than the stuck threshold, then waits to be inspected.
 * With the argument {@code idle} it makes no nativescope call at all; with {@code offloaded} the call
 * is made from a virtual thread named {@code request-worker} and offloaded to a native thread.
 */
public final class StuckCallProbe {
    private static final MethodHandle USLEEP = Linker.nativeLinker().downcallHandle(
            Linker.nativeLinker().defaultLookup().find("usleep").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));

    private StuckCallProbe() {
    }

    /**
     * Sleeps {@code duration} in usleep without ever looking at the context. usleep returns early
     * (EINTR) if a signal reaches the thread, so it is called again for what is left: the call stays
     * stuck whatever happens.
     */
    private static int sleepUnchecked(Duration duration) throws Throwable {
        long end = System.nanoTime() + duration.toNanos();
        for (long left; (left = end - System.nanoTime()) > 0; ) {
            int ignored = (int) USLEEP.invokeExact((int) Math.min(left / 1000 + 1, 999_999));
        }
        return 0;
    }

    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("idle")) {
            System.out.println("READY");
            Thread.sleep(Duration.ofSeconds(60));
            return;
        }
        ContextKey<String> tenant = ContextKey.of("tenant", String.class);
        CancellableContext request = Context.background().withTimeout(Duration.ofMinutes(10));
        Context context = request.withValue(tenant, "acme");
        boolean offloaded = args.length > 0 && args[0].equals("offloaded");
        Thread.Builder builder = offloaded ? Thread.ofVirtual() : Thread.ofPlatform().daemon();
        CountDownLatch entered = new CountDownLatch(1);
        Thread caller = builder.name("request-worker").start(() -> NativeCall.invoke(context, "legacy_resize",
                offloaded ? CallMode.OFFLOAD : CallMode.INLINE, ignored -> {
                    entered.countDown();
                    return sleepUnchecked(Duration.ofSeconds(60));
                }));
        // Cancelled only once the call runs (a cancel before native entry, or in the queue of an offloaded
        // call, would end the call instead of leaving it stuck), and once the registry lists it.
        entered.await();
        while (Diagnostics.inFlight().isEmpty() || offloaded && Diagnostics.inFlight().get(0).nativeThread() == null) {
            Thread.sleep(5);
        }
        request.cancel(new IllegalStateException("client went away"));
        while (true) {
            var calls = Diagnostics.inFlight();
            if (calls.isEmpty()) {
                throw new AssertionError("the stuck call returned after its cancel; caller " + caller.getState());
            }
            if (calls.get(0).stuck()) {
                break;
            }
            Thread.sleep(5);
        }
        System.out.println("READY");
        caller.join(Duration.ofSeconds(70));
    }
}
