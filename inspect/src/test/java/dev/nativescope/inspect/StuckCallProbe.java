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
import java.util.concurrent.CountDownLatch;

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

    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("idle")) {
            System.out.println("READY");
            Thread.sleep(Duration.ofSeconds(60));
            return;
        }
        ContextKey<String> tenant = ContextKey.of("tenant", String.class);
        CancellableContext request = Context.background().withTimeout(Duration.ofMinutes(10));
        Context context = request.withValue(tenant, "acme");
        CountDownLatch entered = new CountDownLatch(1);
        Thread caller = Thread.ofPlatform().daemon().name("request-worker").start(() ->
                NativeCall.invoke(context, "legacy_resize", ignored -> {
                    entered.countDown();
                    return (int) USLEEP.invokeExact(60_000_000 - 1);
                }));
        // Inside the Downcall, not merely in the registry: a call is listed before the bridge has
        // opened its signal, and a cancel before that stops it before native entry (a fresh JVM's
        // first call spends milliseconds there).
        entered.await();
        while (Diagnostics.inFlight().isEmpty()) {
            Thread.sleep(5);
        }
        request.cancel(new IllegalStateException("client went away"));
        while (!Diagnostics.inFlight().get(0).stuck()) {
            Thread.sleep(5);
        }
        System.out.println("READY");
        caller.join(Duration.ofSeconds(70));
    }
}
