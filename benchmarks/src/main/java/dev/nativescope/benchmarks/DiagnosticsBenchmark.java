package dev.nativescope.benchmarks;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.bindings.nsc_context;
import dev.nativescope.call.NativeCall;
import dev.nativescope.library.NativeLibrary;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.concurrent.TimeUnit;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What diagnostics cost the call bridge: the no-op call ({@code nsc_noop_ctx}) through
 * {@code NativeCall.invoke} under a live cancellable context, with the in-flight registry on (the
 * default, {@link On}), off ({@code -Dnativescope.diagnostics=false}, {@link Off}), and on with a JFR
 * recording running with the default settings ({@link Jfr}: the dev.nativescope events are enabled,
 * {@code NativeCall} with its 20 ms threshold, so each call begins and ends an event it does not
 * commit). Each fork also measures the bare FFM call, the floor: the bridge's own overhead is
 * {@code bridge - bareFfm}. Goal: the registry costs <= 10% of that overhead.
 *
 * <p>Run: {@code ./run bench 'DiagnosticsBenchmark' -f 3 -wi 3 -w 1s -i 5 -r 1s}
 * (short check: {@code -f 1 -wi 2 -i 3}).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public abstract class DiagnosticsBenchmark {
    private static final MethodHandle BARE_NOOP_CTX;

    static {
        NativeLibrary.load();
        BARE_NOOP_CTX = Linker.nativeLinker().downcallHandle(SymbolLookup.loaderLookup().find("nsc_noop_ctx").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
    }

    private MemorySegment bareStruct;
    private CancellableContext context;

    @Setup
    public void setUp() {
        bareStruct = Arena.global().allocate(nsc_context.sizeof(), 64);
        if (nativescope_h.nsc_context_init(bareStruct, nativescope_h.NSC_NO_DEADLINE(), MemorySegment.NULL, 0) != 0) {
            throw new IllegalStateException("nsc_context_init failed");
        }
        context = Context.background().withCancel();
    }

    @TearDown
    public void tearDown() {
        context.close();
    }

    /** The floor: a bare FFM downcall on a pre-initialised struct. */
    @Benchmark
    public int bareFfm() throws Throwable {
        return (int) BARE_NOOP_CTX.invokeExact(bareStruct);
    }

    /** The bridge with a label, as the reference predictors call it. */
    @Benchmark
    public int bridge() {
        return NativeCall.invoke(context, "nsc_noop_ctx", nativescope_h::nsc_noop_ctx);
    }

    /** The in-flight registry on (the default). */
    @Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
    public static class On extends DiagnosticsBenchmark {
    }

    /** The in-flight registry off. */
    @Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Dnativescope.diagnostics=false"})
    public static class Off extends DiagnosticsBenchmark {
    }

    /** The registry on and a JFR recording running (default settings: the dev.nativescope events enabled). */
    @Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED",
            "-XX:StartFlightRecording=settings=default,filename=/tmp/nativescope-diagnostics-benchmark.jfr"})
    public static class Jfr extends DiagnosticsBenchmark {
    }
}
