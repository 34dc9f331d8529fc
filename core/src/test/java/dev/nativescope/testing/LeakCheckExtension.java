package dev.nativescope.testing;

import dev.nativescope.LeakSitesProbe;
import dev.nativescope.NativeResources;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Fails a test class that leaves something behind: it compares, after each top-level test class,
 * what the process holds with the baseline taken before it:
 * <ul>
 * <li>the {@link NativeResources} counters (after {@link NativeResources#trimIdle()}) and those of
 *     every {@link LeakCounters} service (the onnxruntime module's ORT objects);</li>
 * <li>open file descriptors ({@code /proc/self/fd}; the report names the new ones' targets);</li>
 * <li>live non-daemon threads started during the class, and nativescope threads ({@code
 *     nativescope-*}) beyond the lazily started singletons, which may appear once.</li>
 * </ul>
 * Some of this goes away asynchronously (value blocks are freed by a {@link java.lang.ref.Cleaner}
 * once their context is unreachable, a stopped thread needs a moment to die), so a class that
 * looks leaky is re-checked after {@code System.gc()} and short sleeps until the settle time
 * ({@value #SETTLE_PARAMETER}, default {@value #DEFAULT_SETTLE_MILLIS} ms) is up; a clean class pays
 * one check. With {@code -Dnativescope.leakDetection=paranoid} the report adds where the leaked call
 * frames and value blocks were created.
 *
 * <p>Registered for every test class by JUnit's extension autodetection ({@code
 * META-INF/services/org.junit.jupiter.api.extension.Extension}, enabled in each module's {@code
 * junit-platform.properties}); the other modules get it from core's test jar. Nested classes are
 * checked as part of their top-level class. Assumes test classes run one at a time (surefire's
 * default here): a class running concurrently would be blamed for another's resources.
 */
public final class LeakCheckExtension implements BeforeAllCallback, AfterAllCallback {
    static final String SETTLE_PARAMETER = "nativescope.leakCheck.settleMillis";
    static final long DEFAULT_SETTLE_MILLIS = 5_000;
    private static final long SLOW_SETTLE_MILLIS = 100;
    static final String THREAD_PREFIX = "nativescope-";
    /** Started once, on first use, and kept for the life of the process. */
    static final Set<String> SINGLETON_THREADS = Set.copyOf(LeakSitesProbe.SINGLETON_THREADS);
    /**
     * JUnit's own non-daemon thread, started lazily by the first {@code @Timeout} and stopped when
     * the engine finishes, not per class: allowed once, like the nativescope singletons.
     */
    static final Set<String> FRAMEWORK_SINGLETON_THREADS = Set.of("junit-jupiter-timeout-watcher");
    private static final Path PROC_FD = Path.of("/proc/self/fd");
    private static final String OWN_FD_DIRECTORY = "/proc/" + ProcessHandle.current().pid() + "/fd";
    private static final ExtensionContext.Namespace NAMESPACE = ExtensionContext.Namespace.create(LeakCheckExtension.class);
    private static final int STACK_TOP = 6;

    @Override
    public void beforeAll(ExtensionContext context) {
        if (isTopLevelClass(context)) {
            NativeResources.trimIdle();
            context.getStore(NAMESPACE).put(Snapshot.class, Snapshot.take());
        }
    }

    @Override
    public void afterAll(ExtensionContext context) throws InterruptedException {
        Snapshot before = context.getStore(NAMESPACE).remove(Snapshot.class, Snapshot.class);
        if (before == null) {
            return;
        }
        long settleNanos = TimeUnit.MILLISECONDS.toNanos(context.getConfigurationParameter(SETTLE_PARAMETER)
                .map(Long::parseLong).orElse(DEFAULT_SETTLE_MILLIS));
        long start = System.nanoTime();
        List<String> firstLook = new ArrayList<>();
        List<String> leaks = settle(before, settleNanos, firstLook);
        long waitedMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        if (leaks.isEmpty() && waitedMillis >= SLOW_SETTLE_MILLIS) {
            // Not a failure, but what makes the check cost time: worth knowing when a class is slow.
            System.err.println("[leak-check] " + context.getRequiredTestClass().getName() + ": settled after "
                    + waitedMillis + " ms; at first:\n" + String.join("\n", firstLook));
        }
        if (!leaks.isEmpty()) {
            throw new AssertionError(context.getRequiredTestClass().getName() + " leaked (after GC and "
                    + TimeUnit.NANOSECONDS.toMillis(settleNanos) + " ms to settle):\n" + String.join("\n", leaks)
                    + creationSites(before));
        }
    }

    private static boolean isTopLevelClass(ExtensionContext context) {
        return context.getParent().flatMap(ExtensionContext::getTestClass).isEmpty();
    }

    /**
     * Re-checks until nothing leaks or the settle time is up; returns what still leaks, and adds
     * what the first check found to {@code firstLook}.
     */
    static List<String> settle(Snapshot before, long settleNanos, List<String> firstLook) throws InterruptedException {
        long start = System.nanoTime();
        for (int round = 0; ; round++) {
            NativeResources.trimIdle();
            List<String> leaks = before.leaksIn(Snapshot.take());
            if (round == 0) {
                firstLook.addAll(leaks);
            }
            if (leaks.isEmpty() || System.nanoTime() - start >= settleNanos) {
                return leaks;
            }
            System.gc();
            Thread.sleep(Math.min(10L << Math.min(round, 6), 250));
        }
    }

    private static String creationSites(Snapshot before) {
        if (!LeakSitesProbe.paranoid()) {
            return "\n(run with -D" + LeakSitesProbe.PROPERTY + "=paranoid to see where leaked call frames and value blocks were created)";
        }
        return LeakSitesProbe.createdSince(before.siteMark()).stream().map(site -> "\n" + site).collect(Collectors.joining());
    }

    /** What the process holds at one moment. */
    record Snapshot(Map<String, Long> counters, Map<Integer, String> fds, Set<Thread> threads, long siteMark) {

        static Snapshot take() {
            long mark = LeakSitesProbe.mark();
            return new Snapshot(readCounters(), readOpenFds(), Thread.getAllStackTraces().keySet(), mark);
        }

        List<String> leaksIn(Snapshot after) {
            List<String> leaks = new ArrayList<>();
            after.counters.forEach((name, now) -> {
                long was = counters.getOrDefault(name, 0L);
                if (now > was) {
                    leaks.add("  " + name + ": before " + was + ", after " + now);
                }
            });
            if (after.fds.size() > fds.size()) {
                String opened = after.fds.entrySet().stream()
                        .filter(fd -> !fd.getValue().equals(fds.get(fd.getKey())))
                        .map(fd -> "\n    fd " + fd.getKey() + " -> " + fd.getValue())
                        .collect(Collectors.joining());
                leaks.add("  open file descriptors: before " + fds.size() + ", after " + after.fds.size()
                        + "; new or reused:" + opened);
            }
            threadLeaks(after, leaks);
            return leaks;
        }

        private void threadLeaks(Snapshot after, List<String> leaks) {
            List<Thread> started = after.threads.stream()
                    .filter(thread -> thread.isAlive() && !threads.contains(thread))
                    .toList();
            for (Thread thread : started) {
                if (!thread.isDaemon() && !FRAMEWORK_SINGLETON_THREADS.contains(thread.getName())) {
                    leaks.add("  non-daemon thread started and still alive: " + describe(thread));
                }
            }
            long nativescopeBefore = countOtherNativescopeThreads(threads);
            long nativescopeAfter = countOtherNativescopeThreads(after.threads);
            if (nativescopeAfter > nativescopeBefore) {
                leaks.add("  nativescope threads (other than " + SINGLETON_THREADS + "): before " + nativescopeBefore
                        + ", after " + nativescopeAfter + "; started:" + started.stream()
                        .filter(LeakCheckExtension::isOtherNativescopeThread)
                        .map(thread -> "\n    " + describe(thread)).collect(Collectors.joining()));
            }
            for (String singleton : union(SINGLETON_THREADS, FRAMEWORK_SINGLETON_THREADS)) {
                long count = after.threads.stream()
                        .filter(thread -> thread.isAlive() && thread.getName().equals(singleton)).count();
                if (count > 1) {
                    leaks.add("  " + count + " threads named " + singleton + ", which must be a singleton");
                }
            }
        }

        private static Set<String> union(Set<String> a, Set<String> b) {
            Set<String> both = new TreeSet<>(a);
            both.addAll(b);
            return both;
        }

        private static long countOtherNativescopeThreads(Set<Thread> threads) {
            return threads.stream().filter(thread -> thread.isAlive() && isOtherNativescopeThread(thread)).count();
        }

        private static Map<String, Long> readCounters() {
            Map<String, Long> counters = new LinkedHashMap<>();
            NativeResources resources = NativeResources.snapshot();
            counters.put("javaNativeBytes", resources.javaNativeBytes());
            counters.put("liveCallFrames", resources.liveCallFrames());
            counters.put("liveValueBlocks", resources.liveValueBlocks());
            counters.put("shimLiveContexts", resources.shimLiveContexts());
            counters.put("shimLiveFds", resources.shimLiveFds());
            counters.put("shimLiveHooks", resources.shimLiveHooks());
            counters.put("shimNativeBytes", resources.shimNativeBytes());
            for (LeakCounters more : ServiceLoader.load(LeakCounters.class, LeakCheckExtension.class.getClassLoader())) {
                counters.putAll(more.read());
            }
            return counters;
        }

        /** The open descriptors and their link targets, without the one this listing uses. */
        private static Map<Integer, String> readOpenFds() {
            Map<Integer, String> fds = new TreeMap<>();
            try (DirectoryStream<Path> entries = Files.newDirectoryStream(PROC_FD)) {
                for (Path entry : entries) {
                    fds.put(Integer.parseInt(entry.getFileName().toString()), target(entry));
                }
            } catch (IOException e) {
                throw new IllegalStateException("cannot list " + PROC_FD + " (the leak check needs Linux's /proc)", e);
            }
            // Not counted: the directory stream's own descriptor (it resolves to /proc/<pid>/fd while
            // the listing runs) and descriptors closed while we listed them.
            fds.values().removeIf(target -> target.isEmpty() || target.equals(OWN_FD_DIRECTORY));
            return fds;
        }

        private static String target(Path fd) {
            try {
                return Files.readSymbolicLink(fd).toString();
            } catch (IOException closed) {
                return "";
            }
        }
    }

    private static boolean isOtherNativescopeThread(Thread thread) {
        return thread.getName().startsWith(THREAD_PREFIX) && !SINGLETON_THREADS.contains(thread.getName());
    }

    private static String describe(Thread thread) {
        return "'" + thread.getName() + "' (" + thread.getState() + ")" + Arrays.stream(thread.getStackTrace())
                .limit(STACK_TOP).map(frame -> "\n        at " + frame).collect(Collectors.joining());
    }
}
