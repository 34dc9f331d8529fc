package dev.nativescope.benchmarks;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The fast path's layers ({@link CancellableCallBenchmark}'s no-op methods) timed in CPU time of the
 * calling thread, not wall time: on the shared 2-vCPU machine, whose load average reaches 8-10 when
 * other builds run, a wall-clock benchmark measures the scheduler (the bare call itself reads 20 ns
 * instead of 9), while the thread's own CPU time leaves out the time it waits for a CPU. Each round
 * times every layer once, in a rotating order, for {@code calls} calls each; the report gives per
 * layer the median ns/call over rounds, the min-max range and the median of its ratio to the bare
 * call of the same round. The loop reaches each layer through one megamorphic call (a few ns, the
 * same for all, so ratios to bare read a little low; differences between layers are unaffected).
 *
 * <p>Run: {@code java --enable-native-access=ALL-UNNAMED -cp benchmarks/target/nativescope-benchmarks.jar
 * dev.nativescope.benchmarks.CallPathCpuTime [rounds=15] [calls=2000000] [virtual]} ({@code virtual}:
 * the layers on a virtual thread, timed in the process's CPU time, see {@link #cpuTime()}). Still not
 * immune to load: other work on the same core evicts caches and, on a shared VM, steals cycles.
 *
 * <p>Not thread-safe: one thread runs the whole measurement.
 */
public final class CallPathCpuTime {
    private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();
    private static final com.sun.management.OperatingSystemMXBean OS =
            (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();

    private CallPathCpuTime() {
    }

    /** One layer: one call, returning its status (summed, so the JIT cannot drop it). */
    @FunctionalInterface
    private interface Layer {
        int call(CancellableCallBenchmark state) throws Throwable;
    }

    public static void main(String[] args) throws Throwable {
        int rounds = 15;
        int calls = 2_000_000;
        boolean virtual = false;
        for (String arg : args) {
            if (arg.startsWith("rounds=")) {
                rounds = Integer.parseInt(arg.substring(7));
            } else if (arg.startsWith("calls=")) {
                calls = Integer.parseInt(arg.substring(6));
            } else if (arg.equals("virtual")) {
                virtual = true;
            } else {
                throw new IllegalArgumentException("unknown argument " + arg + "; expected rounds=N calls=N virtual");
            }
        }
        int r = rounds;
        int c = calls;
        Throwable[] failure = new Throwable[1];
        Thread thread = (virtual ? Thread.ofVirtual() : Thread.ofPlatform()).start(() -> {
            try {
                measure(r, c);
            } catch (Throwable t) {
                failure[0] = t;
            }
        });
        thread.join();
        if (failure[0] != null) {
            throw failure[0];
        }
    }

    private static void measure(int rounds, int calls) throws Throwable {
        Map<String, Layer> layers = new LinkedHashMap<>();
        layers.put("bareFfm", CancellableCallBenchmark::noopBareFfm);
        layers.put("jdkHook", CancellableCallBenchmark::noopJdkHook);
        layers.put("interruptHook", CancellableCallBenchmark::noopInterruptHook);
        layers.put("signalBackground", CancellableCallBenchmark::noopSignalBackground);
        layers.put("signalLive", CancellableCallBenchmark::noopSignalLive);
        layers.put("bridgeBackground", CancellableCallBenchmark::noopBackground);
        layers.put("bridgeLive", CancellableCallBenchmark::noopCancellable);
        CancellableCallBenchmark state = new CancellableCallBenchmark();
        state.open();
        List<String> names = new ArrayList<>(layers.keySet());
        for (String name : names) { // warm-up: every loop compiled before the first timed round
            for (int i = 0; i < 5; i++) {
                loop(layers.get(name), state, calls / 2);
            }
        }
        Map<String, double[]> nanos = new LinkedHashMap<>();
        Map<String, double[]> ratios = new LinkedHashMap<>();
        names.forEach(name -> {
            nanos.put(name, new double[rounds]);
            ratios.put(name, new double[rounds]);
        });
        long sink = 0;
        for (int round = 0; round < rounds; round++) {
            for (int k = 0; k < names.size(); k++) {
                String name = names.get((k + round) % names.size()); // rotate: no layer always runs first
                long start = cpuTime();
                sink += loop(layers.get(name), state, calls);
                nanos.get(name)[round] = (double) (cpuTime() - start) / calls;
            }
            for (String name : names) {
                ratios.get(name)[round] = nanos.get(name)[round] / nanos.get("bareFfm")[round];
            }
        }
        state.tearDown();
        System.out.printf(Locale.ROOT, "# %s thread, %d rounds x %d calls, CPU time of %s, load %s (checksum %d)%n",
                Thread.currentThread().isVirtual() ? "virtual" : "platform", rounds, calls,
                Thread.currentThread().isVirtual() ? "the process" : "the calling thread",
                new String(java.nio.file.Files.readAllBytes(java.nio.file.Path.of("/proc/loadavg"))).trim(), sink);
        System.out.printf(Locale.ROOT, "%-18s %10s %18s %12s%n", "layer", "median ns", "range ns", "x bare");
        for (String name : names) {
            double[] n = nanos.get(name).clone();
            Arrays.sort(n);
            System.out.printf(Locale.ROOT, "%-18s %10.2f %8.2f-%-9.2f %12.2f%n", name, median(n), n[0], n[n.length - 1],
                    median(ratios.get(name).clone()));
        }
    }

    /**
     * The calling thread's CPU time; for a virtual thread, which has none of its own, the process's
     * (its carrier's plus the JVM's own threads, idle once the loops are compiled: a little high).
     */
    private static long cpuTime() {
        return Thread.currentThread().isVirtual() ? OS.getProcessCpuTime() : THREADS.getCurrentThreadCpuTime();
    }

    private static double median(double[] values) {
        Arrays.sort(values);
        int mid = values.length / 2;
        return values.length % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
    }

    /** The one timed loop: its call of {@code layer} is megamorphic, a few ns per call, the same for every layer. */
    private static long loop(Layer layer, CancellableCallBenchmark state, int calls) throws Throwable {
        long sum = 0;
        for (int i = 0; i < calls; i++) {
            sum += layer.call(state);
        }
        return sum;
    }
}
