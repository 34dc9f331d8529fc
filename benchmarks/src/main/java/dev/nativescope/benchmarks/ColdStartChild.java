package dev.nativescope.benchmarks;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.call.NativeCall;
import dev.nativescope.library.NativeLibrary;

import java.io.FileInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/**
 * One fresh JVM of {@link ColdStart}: does the first steps a user's program does and prints how long
 * each took ({@link System#nanoTime()} around each phase, nothing else in between). Modes:
 * <ul>
 * <li>{@code nothing}: prints and ends (the JVM's own start, a floor for the process time);</li>
 * <li>{@code bare}: one plain FFM downcall of libc's {@code getpid} (linker, lookup, handle, call):
 *     the floor any FFM library pays on its first call;</li>
 * <li>{@code library}: {@link NativeLibrary#load()}, then the first context with a deadline
 *     ({@code Context.background().withTimeout(...)}), then the first bridged call
 *     ({@code NativeCall.invoke(ctx, nativescope_h::nsc_noop_ctx)}), as a user writes them.</li>
 * </ul>
 * It prints {@code @phase} marker lines before each phase, outside the timed windows, so that a run
 * under {@code -Xlog:class+load:stdout} can attribute each loaded class to its phase; the first print
 * happens before the clock starts, so printing's own classes are not counted in any phase. Besides the
 * wall clock it reports the main thread's CPU time per phase ({@code cpu.*}, from
 * {@code /proc/thread-self/schedstat}), read outside the wall-clock windows. Uses the public API
 * only, so the same class runs against an older build of the library. At the end it reports the
 * whole process's CPU time ({@code cpu.process}: every thread, in 10 ms ticks), which shows work
 * moved to other threads.
 *
 * <p>Single-threaded: it runs alone in its JVM.
 */
public final class ColdStartChild {
    private ColdStartChild() {
    }

    public static void main(String[] args) throws Throwable {
        String mode = args.length > 0 ? args[0] : "library";
        System.out.println("@start " + mode);
        cpuNanos(); // the reader's first use, outside the phases
        long c0 = cpuNanos();
        long t0 = System.nanoTime();
        switch (mode) {
            case "nothing" -> System.out.println("RESULT total=" + (System.nanoTime() - t0) + " cpu.total=" + (cpuNanos() - c0)
                    + " cpu.process=" + processCpuNanos());
            case "bare" -> {
                Linker linker = Linker.nativeLinker();
                MethodHandle getpid = linker.downcallHandle(linker.defaultLookup().find("getpid").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT));
                int pid = (int) getpid.invokeExact();
                long t1 = System.nanoTime();
                long c1 = cpuNanos();
                System.out.println("@end");
                check(pid > 0, "getpid returned " + pid);
                System.out.println("RESULT call=" + (t1 - t0) + " total=" + (t1 - t0)
                        + " cpu.call=" + (c1 - c0) + " cpu.total=" + (c1 - c0) + " cpu.process=" + processCpuNanos());
            }
            case "library" -> Library.run(t0, c0);
            default -> throw new IllegalArgumentException("mode " + mode + ": nothing, bare or library");
        }
    }

    /**
     * The library's phases, in a class of their own: verifying {@code main} then loads none of
     * nativescope's classes, so the floors run without the library on their class path.
     */
    private static final class Library {
        static void run(long t0, long c0) {
            NativeLibrary.load();
            long t1 = System.nanoTime();
            long c1 = cpuNanos();
            System.out.println("@context");
            long c2 = cpuNanos();
            long t2 = System.nanoTime();
            CancellableContext context = Context.background().withTimeout(Duration.ofSeconds(60));
            long t3 = System.nanoTime();
            long c3 = cpuNanos();
            System.out.println("@call");
            long c4 = cpuNanos();
            long t4 = System.nanoTime();
            int status = NativeCall.invoke(context, nativescope_h::nsc_noop_ctx);
            long t5 = System.nanoTime();
            long c5 = cpuNanos();
            System.out.println("@end");
            context.close();
            check(status == 0, "nsc_noop_ctx returned " + status);
            long load = t1 - t0;
            long ctx = t3 - t2;
            long call = t5 - t4;
            System.out.println("RESULT load=" + load + " context=" + ctx + " call=" + call + " total=" + (load + ctx + call)
                    + " cpu.load=" + (c1 - c0) + " cpu.context=" + (c3 - c2) + " cpu.call=" + (c5 - c4)
                    + " cpu.total=" + ((c1 - c0) + (c3 - c2) + (c5 - c4)) + " cpu.process=" + processCpuNanos());
        }
    }

    /**
     * {@return the CPU time this thread has run, in ns}: the first field of
     * {@code /proc/thread-self/schedstat}. Unlike the wall clock it does not count time spent waiting
     * for a CPU, which on a shared machine is most of the noise.
     */
    static long cpuNanos() {
        byte[] buffer = new byte[64];
        int n;
        try (FileInputStream in = new FileInputStream("/proc/thread-self/schedstat")) {
            n = in.read(buffer);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        long value = 0;
        for (int i = 0; i < n && buffer[i] >= '0' && buffer[i] <= '9'; i++) {
            value = value * 10 + (buffer[i] - '0');
        }
        return value;
    }

    /**
     * {@return the CPU time of the whole process so far, every thread (the JIT's, the GC's, any
     * background set-up), in ns}: utime + stime of {@code /proc/self/stat}, in clock ticks (10 ms).
     */
    static long processCpuNanos() {
        String stat;
        try {
            stat = new String(Files.readAllBytes(Path.of("/proc/self/stat")), StandardCharsets.US_ASCII);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        // Fields after the command name in parentheses: state is field 3, utime 14, stime 15.
        String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return (Long.parseLong(fields[11]) + Long.parseLong(fields[12])) * 10_000_000L;
    }

    static void check(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError(what);
        }
    }
}
