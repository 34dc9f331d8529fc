package dev.nativescope.inspect;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.ContextKey;
import dev.nativescope.call.NativeCall;
import dev.nativescope.diagnostics.Diagnostics;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.time.Duration;

/**
 * Main class of {@code InspectTest}'s child JVM: one native call that never checks its context
 * (libc's {@code usleep}, 60 s) under a context with a value, cancelled with a cause; prints
 * {@code READY} once the cancel is older than the stuck threshold, then waits to be inspected.
 * With the argument {@code idle} it makes no nativescope call at all.
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
     * stuck whatever happens (one run at load 12-15 saw the call gone right after its cancel).
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
        Thread caller = Thread.ofPlatform().daemon().name("request-worker").start(() ->
                NativeCall.invoke(context, "legacy_resize", ignored -> sleepUnchecked(Duration.ofSeconds(60))));
        while (Diagnostics.inFlight().isEmpty()) {
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
