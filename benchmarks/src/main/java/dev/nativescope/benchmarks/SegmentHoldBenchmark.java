package dev.nativescope.benchmarks;

import dev.nativescope.interop.SegmentHold;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The cost of {@link SegmentHold#call} alone (issue 13: <= 1 us p50; the thread-handoff hold it
 * replaced took 229-346 us): trivial work under a hold of one segment of each arena kind, and of
 * four and twelve shared arenas (twelve takes two chained downcalls), against the same work
 * without a hold (the floor). Single-threaded: every call runs on the benchmark thread, confined
 * arenas included.
 */
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@State(Scope.Thread)
public class SegmentHoldBenchmark {
    @Param({"global", "auto", "confined", "shared", "shared4", "shared12"})
    public String arenas;

    private final List<Arena> closeable = new ArrayList<>();
    private List<MemorySegment> segments;

    @Setup(Level.Trial)
    public void setUp() {
        segments = new ArrayList<>();
        switch (arenas) {
            case "global" -> segments.add(Arena.global().allocate(64));
            case "auto" -> segments.add(Arena.ofAuto().allocate(64));
            case "confined" -> segments.add(open(Arena.ofConfined()).allocate(64));
            case "shared" -> segments.add(open(Arena.ofShared()).allocate(64));
            case "shared4", "shared12" -> {
                int n = arenas.equals("shared4") ? 4 : 12;
                for (int i = 0; i < n; i++) {
                    segments.add(open(Arena.ofShared()).allocate(64));
                }
            }
            default -> throw new IllegalArgumentException(arenas);
        }
    }

    private Arena open(Arena arena) {
        closeable.add(arena);
        return arena;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        closeable.forEach(Arena::close);
    }

    @Benchmark
    public long floor() {
        return work(segments);
    }

    @Benchmark
    public long hold() {
        List<MemorySegment> held = segments;
        return SegmentHold.call(held, () -> work(held));
    }

    private static long work(List<MemorySegment> segments) {
        return segments.getFirst().address();
    }
}
