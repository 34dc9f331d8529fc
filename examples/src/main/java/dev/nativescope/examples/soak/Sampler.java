package dev.nativescope.examples.soak;

import dev.nativescope.call.NativeResources;
import dev.nativescope.onnxruntime.OrtResources;
import dev.nativescope.testing.ProcSelf;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.lang.management.MemoryUsage;
import java.lang.management.ThreadMXBean;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * Samples the process's resources once a second into {@code soak.csv} (columns {@link #COLUMNS}),
 * with a progress line every 10 s, until the end of the run.
 */
final class Sampler {
    static final String[] COLUMNS = {"time_s", "rss_kib", "heap_used_kib", "heap_committed_kib", "fds", "threads",
        "java_native_bytes",
        "live_call_frames", "live_value_blocks", "shim_live_fds", "shim_live_hooks", "ort_open_run_objects",
        "ort_open_predictors", "calls_done", "cancels_done", "violations", "malloc_in_use_kib", "malloc_free_kib"};
    static final int RSS_KIB = 1;
    static final int HEAP_USED_KIB = 2;
    /** Part of RSS once touched: heap growth shows in RSS without being a native leak. */
    static final int HEAP_COMMITTED_KIB = 3;
    static final int FDS = 4;
    static final int THREADS = 5;
    static final int JAVA_NATIVE_BYTES = 6;
    static final int LIVE_CALL_FRAMES = 7;
    static final int LIVE_VALUE_BLOCKS = 8;
    static final int SHIM_LIVE_FDS = 9;
    static final int SHIM_LIVE_HOOKS = 10;
    static final int ORT_OPEN_RUN_OBJECTS = 11;
    static final int ORT_OPEN_PREDICTORS = 12;
    static final int CALLS_DONE = 13;
    static final int CANCELS_DONE = 14;
    static final int VIOLATIONS = 15;
    /** glibc malloc: bytes handed out and not freed, what a native leak (ours or ONNX Runtime's) grows. */
    static final int MALLOC_IN_USE_KIB = 16;
    /** glibc malloc: freed bytes its arenas keep; between trims this shows in RSS without being a leak. */
    static final int MALLOC_FREE_KIB = 17;

    private Sampler() {
    }

    /**
     * Samples from {@code start} until {@code endNanos}, one row a second, into {@code csv}.
     *
     * @return the rows, in order
     */
    static List<long[]> run(long start, long endNanos, Path csv, Tally tally) throws IOException, InterruptedException {
        List<long[]> samples = new ArrayList<>();
        ThreadMXBean threads = ManagementFactory.getThreadMXBean();
        MemoryMXBean memory = ManagementFactory.getMemoryMXBean();
        try (PrintWriter out = new PrintWriter(Files.newBufferedWriter(csv, StandardCharsets.UTF_8))) {
            out.println(String.join(",", COLUMNS));
            long next = start;
            int second = 0;
            while (true) {
                next += 1_000_000_000L;
                long sleep = next - System.nanoTime();
                if (sleep > 0) {
                    TimeUnit.NANOSECONDS.sleep(sleep);
                }
                second++;
                // An occasional full GC so that value blocks retired by cleaners and the heap are
                // measured settled at least every 30 s, not only when the young generation fills.
                // The same for native memory: glibc keeps what threads free in their arenas, and the
                // scopes' short-lived threads running ONNX Runtime spread that over many arenas, so
                // RSS crept up by 0.3 MB/s with malloc's in-use bytes flat. malloc_trim hands the
                // free part back; the malloc columns show both parts either way.
                if (second % 30 == 0) {
                    System.gc();
                    GlibcMalloc.trim();
                }
                NativeResources res = NativeResources.snapshot();
                OrtResources ortRes = OrtResources.snapshot();
                MemoryUsage heap = memory.getHeapMemoryUsage();
                GlibcMalloc.Usage malloc = GlibcMalloc.usage();
                long[] row = {second, rssKib(), heap.getUsed() / 1024, heap.getCommitted() / 1024, countFds(),
                    threads.getThreadCount(), res.javaNativeBytes(), res.liveCallFrames(), res.liveValueBlocks(),
                    res.shimLiveFds(), res.shimLiveHooks(), ortRes.openRunObjects(), ortRes.openPredictors(),
                    tally.callsDone.sum(), tally.cancelsDone.sum(), tally.violations.get(), malloc.inUseBytes() / 1024,
                    malloc.freeBytes() / 1024};
                samples.add(row);
                out.println(Arrays.stream(row).mapToObj(Long::toString).reduce((a, b) -> a + "," + b).orElseThrow());
                out.flush();
                if (second % 10 == 0) {
                    System.out.printf(Locale.ROOT, "[soak] %4d s: calls %d, cancels %d, violations %d | rss %d MiB,"
                                    + " malloc %d MiB in use + %d MiB free, heap %d of %d MiB, fds %d, threads %d, native %d B, frames %d, value blocks %d,"
                                    + " shim fds %d, hooks %d, ort run objects %d, ort predictors %d%n", row[0],
                            row[CALLS_DONE], row[CANCELS_DONE], row[VIOLATIONS], row[RSS_KIB] / 1024,
                            row[MALLOC_IN_USE_KIB] / 1024, row[MALLOC_FREE_KIB] / 1024, row[HEAP_USED_KIB] / 1024, row[HEAP_COMMITTED_KIB] / 1024, row[FDS], row[THREADS], row[JAVA_NATIVE_BYTES],
                            row[LIVE_CALL_FRAMES], row[LIVE_VALUE_BLOCKS], row[SHIM_LIVE_FDS], row[SHIM_LIVE_HOOKS],
                            row[ORT_OPEN_RUN_OBJECTS], row[ORT_OPEN_PREDICTORS]);
                }
                if (System.nanoTime() >= endNanos) {
                    break;
                }
            }
        }
        return samples;
    }

    private static long rssKib() {
        try {
            return ProcSelf.rssKib().orElse(-1);
        } catch (UncheckedIOException | NumberFormatException e) {
            return -1; // -1 marks a missing reading in the CSV
        }
    }

    /** Open fds, less the one this listing itself holds open. */
    private static long countFds() {
        try {
            return ProcSelf.openDescriptorCount() - 1;
        } catch (UncheckedIOException e) {
            return -1;
        }
    }
}
