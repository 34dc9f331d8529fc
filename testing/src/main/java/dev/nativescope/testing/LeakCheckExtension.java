package dev.nativescope.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Fails a test class that leaves something behind: it compares, after each top-level test class,
 * what the process holds with the baseline taken before it:
 * <ul>
 * <li>the counters of every {@link LeakProbe} service, each after its {@link LeakProbe#trimIdle()}
 *     (core's: {@code NativeResources}; onnxruntime's: the per-run ORT objects; bindings': the
 *     shim's own counters once a test loaded it);</li>
 * <li>open file descriptors ({@code /proc/self/fd}; the report names the new ones' targets), except
 *     those the JVM keeps for good once a tool attached an instrumentation agent at run time (Jazzer's
 *     fuzzing mode does): the agent jars and the attach listener's socket;</li>
 * <li>live non-daemon threads started during the class, and nativescope threads ({@code
 *     nativescope-*}) beyond the probes' lazily started singletons, which may appear once.</li>
 * </ul>
 * Some of this goes away asynchronously (value blocks are freed by a {@link java.lang.ref.Cleaner}
 * once their context is unreachable, a stopped thread needs a moment to die), so a class that
 * looks leaky is re-checked after {@code System.gc()} and short sleeps until the settle time
 * ({@value #SETTLE_PARAMETER}, default {@value #DEFAULT_SETTLE_MILLIS} ms) is up; a clean class pays
 * one check. The report ends with the probes' {@linkplain LeakProbe#creationSites(long) creation
 * sites} (core's with {@code -Dnativescope.leakDetection=paranoid}).
 *
 * <p>Registered for every test class of every module that has this module on its test class path,
 * by JUnit's extension autodetection: this module's {@code
 * META-INF/services/org.junit.jupiter.api.extension.Extension} names it, and each module's {@code
 * junit-platform.properties} enables autodetection. Nested classes are checked as part of their
 * top-level class.
 *
 * <p>Threading: JUnit calls the callbacks from the thread that runs the class; the baseline is kept
 * in the class's extension store, so one instance serves any number of classes. Assumes test
 * classes run one at a time (surefire's default here): a class running concurrently would be blamed
 * for another's resources.
 */
public final class LeakCheckExtension implements BeforeAllCallback, AfterAllCallback {
    static final String SETTLE_PARAMETER = "nativescope.leakCheck.settleMillis";
    static final long DEFAULT_SETTLE_MILLIS = 5_000;
    private static final long SLOW_SETTLE_MILLIS = 100;
    static final String THREAD_PREFIX = "nativescope-";
    /**
     * JUnit's own non-daemon thread, started lazily by the first {@code @Timeout} and stopped when
     * the engine finishes, not per class: allowed once, like the probes' singletons.
     */
    static final Set<String> FRAMEWORK_SINGLETON_THREADS = Set.of("junit-jupiter-timeout-watcher");
    private static final Path PROC_NET_UNIX = Path.of("/proc/net/unix");
    /** Agent jars that Jazzer (through ByteBuddy) writes to the temporary directory and attaches. */
    private static final Pattern RUNTIME_AGENT_JAR = Pattern.compile(".*/(jazzer-agent-|byteBuddyAgent)[^/]*\\.jar");
    private static final ExtensionContext.Namespace NAMESPACE = ExtensionContext.Namespace.create(LeakCheckExtension.class);
    private static final int STACK_TOP = 6;

    private final List<LeakProbe> probes;
    /** The probes' singleton threads: started once, on first use, and kept for the life of the process. */
    private final Set<String> singletonThreads;

    /** Called by JUnit's autodetection; loads the {@link LeakProbe} services of the test class path. */
    public LeakCheckExtension() {
        // The JDK's default SecureRandom (NativePRNG) opens /dev/random and /dev/urandom on first use
        // and keeps them for the life of the process; the first class to make a temporary file
        // (@TempDir) would be blamed for them. Opened here, they are in every baseline.
        new SecureRandom().nextInt();
        List<LeakProbe> found = new ArrayList<>();
        ServiceLoader.load(LeakProbe.class, LeakCheckExtension.class.getClassLoader()).forEach(found::add);
        probes = List.copyOf(found);
        singletonThreads = probes.stream().flatMap(probe -> probe.singletonThreads().stream())
                .collect(Collectors.toUnmodifiableSet());
    }

    @Override
    public void beforeAll(ExtensionContext context) {
        if (isTopLevelClass(context)) {
            context.getStore(NAMESPACE).put(Snapshot.class, snapshot());
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
    private List<String> settle(Snapshot before, long settleNanos, List<String> firstLook) throws InterruptedException {
        long start = System.nanoTime();
        for (int round = 0; ; round++) {
            List<String> leaks = before.leaksIn(snapshot(), singletonThreads);
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

    private String creationSites(Snapshot before) {
        return probes.stream()
                .flatMap(probe -> probe.creationSites(before.creationMarks().get(probe)).stream())
                .map(site -> "\n" + site).collect(Collectors.joining());
    }

    /** What the process holds now, after the probes freed their idle resources. */
    private Snapshot snapshot() {
        Map<LeakProbe, Long> marks = new IdentityHashMap<>();
        Map<String, Long> counters = new LinkedHashMap<>();
        for (LeakProbe probe : probes) {
            // Marked before reading: whatever is created while the counters are read is after the
            // baseline's mark, so a report can say where it came from.
            marks.put(probe, probe.creationMark());
            probe.trimIdle();
            counters.putAll(probe.counters());
        }
        return new Snapshot(counters, Snapshot.readOpenFds(), Thread.getAllStackTraces().keySet(), marks);
    }

    /**
     * What the process holds at one moment.
     *
     * @param creationMarks each probe's {@link LeakProbe#creationMark()} taken with the snapshot
     */
    record Snapshot(Map<String, Long> counters, Map<Integer, String> fds, Set<Thread> threads,
                    Map<LeakProbe, Long> creationMarks) {

        /** {@return what {@code after} holds beyond this snapshot, as report lines} */
        List<String> leaksIn(Snapshot after, Set<String> singletonThreads) {
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
            threadLeaks(after, singletonThreads, leaks);
            return leaks;
        }

        private void threadLeaks(Snapshot after, Set<String> singletonThreads, List<String> leaks) {
            List<Thread> started = after.threads.stream()
                    .filter(thread -> thread.isAlive() && !threads.contains(thread))
                    .toList();
            for (Thread thread : started) {
                if (!thread.isDaemon() && !FRAMEWORK_SINGLETON_THREADS.contains(thread.getName())) {
                    leaks.add("  non-daemon thread started and still alive: " + describe(thread));
                }
            }
            long nativescopeBefore = countOtherNativescopeThreads(threads, singletonThreads);
            long nativescopeAfter = countOtherNativescopeThreads(after.threads, singletonThreads);
            if (nativescopeAfter > nativescopeBefore) {
                leaks.add("  nativescope threads (other than " + new TreeSet<>(singletonThreads) + "): before "
                        + nativescopeBefore + ", after " + nativescopeAfter + "; started:" + started.stream()
                        .filter(thread -> isOtherNativescopeThread(thread, singletonThreads))
                        .map(thread -> "\n    " + describe(thread)).collect(Collectors.joining()));
            }
            for (String singleton : union(singletonThreads, FRAMEWORK_SINGLETON_THREADS)) {
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

        private static long countOtherNativescopeThreads(Set<Thread> threads, Set<String> singletonThreads) {
            return threads.stream()
                    .filter(thread -> thread.isAlive() && isOtherNativescopeThread(thread, singletonThreads)).count();
        }

        /** The open descriptors and their link targets, without the one this listing uses. */
        private static Map<Integer, String> readOpenFds() {
            // Not counted (ProcSelf leaves them out): the listing's own descriptor and descriptors closed
            // while it listed them.
            Map<Integer, String> fds;
            try {
                fds = ProcSelf.openDescriptors();
            } catch (UncheckedIOException e) {
                throw new IllegalStateException(e.getMessage() + " (the leak check needs Linux's /proc)", e.getCause());
            }
            String attachListener = attachListenerSocket();
            fds.values().removeIf(target -> target.equals(attachListener) || RUNTIME_AGENT_JAR.matcher(target).matches());
            return fds;
        }

        /**
         * @return the link target of the JVM's attach listener socket ({@code socket:[inode]}), or
         *         null before anything attached: the listener binds {@code /tmp/.java_pid<pid>.tmp},
         *         renames it to {@code /tmp/.java_pid<pid>}, and {@code /proc/net/unix} lists the
         *         socket's inode under the name it was bound to
         */
        private static String attachListenerSocket() {
            Pattern path = Pattern.compile(".*/\\.java_pid" + ProcessHandle.current().pid() + "(\\.tmp)?");
            try (Stream<String> sockets = Files.lines(PROC_NET_UNIX)) {
                // Columns: Num RefCount Protocol Flags Type St Inode Path
                return sockets.map(line -> line.trim().split("\\s+"))
                        .filter(columns -> columns.length >= 8 && path.matcher(columns[7]).matches())
                        .map(columns -> "socket:[" + columns[6] + "]")
                        .findFirst().orElse(null);
            } catch (IOException | UncheckedIOException unreadable) {
                return null;
            }
        }
    }

    private static boolean isOtherNativescopeThread(Thread thread, Set<String> singletonThreads) {
        return thread.getName().startsWith(THREAD_PREFIX) && !singletonThreads.contains(thread.getName());
    }

    private static String describe(Thread thread) {
        return "'" + thread.getName() + "' (" + thread.getState() + ")" + Arrays.stream(thread.getStackTrace())
                .limit(STACK_TOP).map(frame -> "\n        at " + frame).collect(Collectors.joining());
    }
}
