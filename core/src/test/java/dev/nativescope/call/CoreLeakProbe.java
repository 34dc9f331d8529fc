package dev.nativescope.call;

import dev.nativescope.ContextProbe;
import dev.nativescope.testing.LeakProbe;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Core's part of the leak check ({@code dev.nativescope.testing.LeakCheckExtension}): the
 * {@link NativeResources} counters after {@link NativeResources#trimIdle()}, core's singleton
 * threads, and where leaked call frames and value blocks were created (with {@code
 * -Dnativescope.leakDetection=paranoid}). Registered in core's test resources ({@code
 * META-INF/services/dev.nativescope.testing.LeakProbe}), which the onnxruntime and examples tests get
 * from core's test jar. Lives in this package for the package-private internals it reads, and in the
 * test sources, so the library exposes none of it.
 *
 * <p>Thread-safe: it reads atomics, the shim's counters and {@link LeakSites}' concurrent map.
 */
// The test classes are compiled into the named module of the code under test, and LeakProbe comes from the
// class path (the testing jar has no module descriptor): javac warns that an exported type implements it.
@SuppressWarnings("exports")
public final class CoreLeakProbe implements LeakProbe {
    /** Started once, on first use, and kept for the life of the process. */
    private static final Set<String> SINGLETON_THREADS = Set.of(ContextProbe.TIMER_THREAD_NAME, "nativescope-call-cleaner");
    private static final int MAX_FRAMES = 24;

    /** Called by the {@link java.util.ServiceLoader}. */
    public CoreLeakProbe() {
    }

    @Override
    public Map<String, Long> counters() {
        Map<String, Long> counters = new LinkedHashMap<>();
        NativeResources resources = NativeResources.snapshot();
        counters.put("javaNativeBytes", resources.javaNativeBytes());
        counters.put("liveCallFrames", resources.liveCallFrames());
        counters.put("liveValueBlocks", resources.liveValueBlocks());
        counters.put("shimLiveContexts", resources.shimLiveContexts());
        counters.put("shimLiveFds", resources.shimLiveFds());
        counters.put("shimLiveHooks", resources.shimLiveHooks());
        counters.put("shimNativeBytes", resources.shimNativeBytes());
        // Contexts with a deadline that were neither closed nor done: each keeps a timer task queued
        // (and, through it, itself and its parents reachable) until the deadline passes.
        // Offloaded calls still running or waiting for a native thread after the class: a lost handoff.
        counters.put("busyNativeThreads", (long) NativeThreads.busyThreads());
        counters.put("queuedOffloadedCalls", (long) NativeThreads.queuedCalls());
        counters.put("pendingDeadlines", (long) ContextProbe.queuedDeadlineCount());
        return counters;
    }

    @Override
    public void trimIdle() {
        NativeResources.trimIdle();
    }

    @Override
    public Set<String> singletonThreads() {
        return SINGLETON_THREADS;
    }

    @Override
    public long creationMark() {
        return LeakSites.mark();
    }

    @Override
    public List<String> creationSites(long mark) {
        if (!LeakSites.paranoid()) {
            return List.of("(run with -D" + LeakSites.PROPERTY
                    + "=paranoid to see where leaked call frames and value blocks were created)");
        }
        return createdSince(mark);
    }

    /** Turns recording of creation sites on or off, for the test that proves the report shows them. */
    public static void paranoid(boolean on) {
        LeakSites.paranoid(on);
    }

    /** {@return where the live call frames and value blocks created after {@code mark} were created, as text} */
    public static List<String> createdSince(long mark) {
        return LeakSites.createdSince(mark).stream().map(site -> {
            StringBuilder text = new StringBuilder(site.what()).append(" still live, created at:");
            // From the caller of LeakSites to the test method: JUnit's frames below it say nothing.
            int shown = 0;
            for (StackTraceElement frame : site.stack().getStackTrace()) {
                if (frame.getClassName().equals(LeakSites.class.getName())) {
                    continue;
                }
                if (frame.getClassName().startsWith("org.junit.") || shown++ == MAX_FRAMES) {
                    text.append("\n\t...");
                    break;
                }
                text.append("\n\tat ").append(frame);
            }
            return text.toString();
        }).toList();
    }
}
