package dev.nativescope.benchmarks;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * The JNI baseline of {@link CancellableCallBenchmark}: {@code libnsc_bench_jni.so}
 * ({@code benchmarks/src/main/c/nsc_bench_jni.c}, built by Maven and shipped in the benchmarks jar
 * under {@code META-INF/native/linux-x86_64/}), extracted to a temporary file, loaded with
 * {@link System#load}, and the file deleted once mapped.
 *
 * <p>Thread-safe: the library is loaded once, by class initialisation.
 */
final class JniNoop {
    private static final String RESOURCE = "/META-INF/native/linux-x86_64/libnsc_bench_jni.so";

    static {
        load();
    }

    private JniNoop() {
    }

    /** Returns at once. */
    static native void noop();

    /**
     * Busy-loops for {@code durationNanos} with the loop of {@code nsc_predict_spin}, without a context.
     *
     * @return how long the loop ran in native code, in nanoseconds ({@code CLOCK_MONOTONIC})
     */
    static native long spin(long durationNanos);

    /**
     * The plain C eventfd wake floor: a C waiter thread blocked in {@code poll} on an eventfd; this
     * thread sleeps {@code settleNanos}, writes the eventfd and blocks until the waiter reports.
     *
     * @return ns from just before the write to the waiter's clock read after {@code poll} returned, -1 on error
     */
    static native long eventfdWake(long settleNanos);

    /**
     * The plain C {@code ppoll} floor: one {@code ppoll} on a never-signalled eventfd with a
     * {@code timeoutNanos} timespec, with the thread's timer slack ({@code slackNanos <= 0}) or
     * {@code slackNanos} (set and restored around the call).
     *
     * @return ns by which it returned after the timeout, -1 on error
     */
    static native long ppollLate(long timeoutNanos, long slackNanos);

    /**
     * The plain C floor of a cancel of spinning native code: a C spinner thread, woken per sample,
     * spins on a plain flag; this thread waits until it spins, sleeps {@code settleNanos}, stores the
     * flag and blocks until the spinner reports.
     *
     * @return ns from just before the store to the spinner's clock read after it saw it, -1 on error
     */
    static native long spinStop(long settleNanos);

    /**
     * {@link #eventfdWake} with the worker's choreography: the C waiter is woken per sample, announces
     * itself and blocks in {@code poll}; this thread waits for that, sleeps {@code settleNanos},
     * writes the eventfd and blocks until the waiter reports.
     *
     * @return ns from just before the write to the waiter's clock read after {@code poll} returned, -1 on error
     */
    static native long wokenEventfdWake(long settleNanos);

    /** {@return whether the last {@link #spinStop} sample's spinner saw the store on this thread's CPU} */
    static native boolean spinStopSameCpu();

    /** Makes sure the library is loaded (class initialisation does it). */
    static void ensureLoaded() {
    }

    private static void load() {
        try (InputStream in = JniNoop.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException(RESOURCE + " is not on the class path: build the benchmarks with Maven"
                        + " (mvn -pl native-shim,bindings,core,benchmarks package), which compiles it with gcc");
            }
            Path file = Files.createTempFile("libnsc_bench_jni", ".so");
            try {
                Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
                System.load(file.toAbsolutePath().toString());
            } finally {
                Files.deleteIfExists(file);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot extract " + RESOURCE, e);
        }
    }
}
