package dev.nativescope.examples;

import dev.nativescope.Context;
import dev.nativescope.call.NativeCall;
import dev.nativescope.diagnostics.Diagnostics;
import dev.nativescope.reference.ReferencePredictors;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.time.Duration;
import java.util.concurrent.CancellationException;
import java.util.concurrent.StructuredTaskScope;
import java.util.concurrent.StructuredTaskScope.Joiner;

/**
 * {@code ./run demo --stuck [seconds]}: "why didn't my cancel land?". A scope with a 300 ms timeout
 * forks two predictors: the reference dense predictor (it checks its context per tile and stops at
 * once) and {@code legacy_preprocess}, a native section without any check (libc's {@code usleep}
 * for {@code seconds}, default 8). The timeout cancels both; the scope's {@code close()} then waits
 * for the unchecked one. Meanwhile the demo prints the in-process dump ({@link Diagnostics#dump()}),
 * which names the stuck call, its cause, its values and that its native code has not checked its
 * context since the cancel; {@code ./run inspect <pid>} prints the same from another terminal.
 */
final class StuckDemo {
    private static final MethodHandle USLEEP = Linker.nativeLinker().downcallHandle(
            Linker.nativeLinker().defaultLookup().find("usleep").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final int SIZE = 256;

    private StuckDemo() {
    }

    static void run(String[] args) throws Exception {
        long seconds = args.length > 1 ? Long.parseLong(args[1]) : 8;
        System.out.println("nativescope demo --stuck: pid " + ProcessHandle.current().pid()
                + " (run ./run inspect " + ProcessHandle.current().pid() + " in another terminal while it waits)");
        try (Arena arena = Arena.ofShared()) {
            Demo.Inputs inputs = Demo.Inputs.random(arena, SIZE, 42);
            MemorySegment y = arena.allocate(ValueLayout.JAVA_FLOAT, (long) SIZE * SIZE);
            Demo.warmUp(arena, inputs);
            Thread reporter = Thread.ofPlatform().daemon().name("stuck-demo-reporter").start(() -> {
                try {
                    Thread.sleep(Duration.ofMillis(900)); // the 300 ms timeout, then the stuck threshold
                    System.out.println();
                    System.out.println("--- Diagnostics.dump() while the scope's close() waits ---");
                    System.out.println(Diagnostics.dump());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            long start = System.nanoTime();
            Context request = Context.background().withValue(Demo.TRACE_ID, "req-7f3a");
            request.call(() -> {
                try (var scope = StructuredTaskScope.open(Joiner.<Object>awaitAll(),
                        cf -> cf.withTimeout(Duration.ofMillis(300)))) {
                    scope.fork(() -> {
                        try {
                            ReferencePredictors.dense(Context.current(), inputs.x(), inputs.w(), inputs.bias(), y,
                                    SIZE, SIZE, SIZE, 3000, null);
                            return "dense finished";
                        } catch (CancellationException e) {
                            return "dense stopped at the cancel";
                        }
                    });
                    scope.fork(() -> NativeCall.invoke(Context.current(), "legacy_preprocess",
                            ignored -> (int) USLEEP.invokeExact((int) Math.min(Integer.MAX_VALUE, seconds * 1_000_000))));
                    try {
                        scope.join();
                    } catch (StructuredTaskScope.TimeoutException expected) {
                        System.out.println("scope timed out after 300 ms; close() waits for its subtasks");
                    }
                }
                return null;
            });
            reporter.join();
            System.out.printf("the scope closed %.1f s after it started: legacy_preprocess ignored the cancel"
                    + " (see the WARNING above and the dev.nativescope.LateReturn / CancelStuck JFR events)%n",
                    (System.nanoTime() - start) / 1e9);
        }
    }
}
