package dev.nativescope.benchmarks;

import dev.nativescope.library.NativeLibrary;
import dev.nativescope.bindings.nativescope_h;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
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
import org.openjdk.jmh.annotations.Warmup;

/**
 * The cost of reaching native code at all: a no-op C function called through a method handle made
 * here with the bare FFM API, and through the jextract bindings (static wrapper around a lazily
 * initialised handle). The difference is what the generated wrapper costs (expected: nothing).
 */
@State(Scope.Benchmark)
@BenchmarkMode({Mode.AverageTime, Mode.SampleTime})
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class DowncallBenchmark {
    private static final MethodHandle BARE_NOOP;

    static {
        NativeLibrary.load();
        MemorySegment symbol = SymbolLookup.loaderLookup().find("nsc_noop").orElseThrow();
        BARE_NOOP = Linker.nativeLinker().downcallHandle(symbol, FunctionDescriptor.ofVoid());
    }

    @Setup
    public void load() {
        NativeLibrary.load();
    }

    /** A method handle made with the bare FFM API, held in a static final field. */
    @Benchmark
    public void bareFfmNoop() throws Throwable {
        BARE_NOOP.invokeExact();
    }

    /** The same function through the generated bindings. */
    @Benchmark
    public void bindingsNoop() {
        nativescope_h.nsc_noop();
    }
}
