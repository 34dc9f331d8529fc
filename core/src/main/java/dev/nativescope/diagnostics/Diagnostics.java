package dev.nativescope.diagnostics;

import dev.nativescope.Context;
import dev.nativescope.ContextKey;
import dev.nativescope.internal.access.CallSnapshot;
import dev.nativescope.internal.access.ContextAccess;
import dev.nativescope.internal.access.SharedAccess;
import dev.nativescope.internal.text.SafeText;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * What the cancellable calls in flight are doing: the answer to "why didn't my cancel land?".
 * Every call through {@code NativeCall.invoke} is visible here while it runs (its call frame is its
 * registry entry, so tracking costs a few plain stores per call), with its thread, label, context
 * chain, deadline, values, whether and when it was cancelled, by whom and why, and the heartbeat its
 * native code leaves in the context struct ({@code nsc_check}, {@code nsc_checker_poll}).
 *
 * <p>Three ways to read it: {@link #inFlight()} (records), {@link #dump()} (a table), and the
 * platform MBean {@value #OBJECT_NAME} (operation {@code dumpInFlight}), registered in the background
 * {@value #MBEAN_DELAY_PROPERTY} milliseconds (default {@value #DEFAULT_MBEAN_DELAY_MILLIS}) after the
 * call bridge's first use, which {@code nativescope inspect <pid>} calls from outside the JVM. The
 * delay keeps the start of the platform MBean server (tens of milliseconds of CPU) out of the
 * application's start; a JVM that ends sooner never starts it. The JFR events are loaded once JFR
 * is initialised in the JVM (a recording started, at JVM start or later), not before.
 *
 * <p>System properties: {@value #ENABLED_PROPERTY}{@code =false} turns the registry off (calls are
 * not tracked; JFR events stay under JFR's control), {@value #SHOW_VALUES_PROPERTY}{@code =true}
 * shows context values in dumps (by default only their key names: values may be sensitive),
 * {@value #STUCK_MILLIS_PROPERTY} (default {@value #DEFAULT_STUCK_MILLIS}) is how long a cancelled
 * call may go without checking its context before a dump flags it and the JFR event
 * {@code dev.nativescope.CancelStuck} reports it. A call's start time (hence how long it has been
 * running) is known for calls under a deadline, whose entry reads the clock anyway; for every call
 * with {@value #START_TIMES_PROPERTY}{@code =true}, which adds a clock read (about 20 ns) per call.
 *
 * <p>Thread-safe: any thread may dump while calls start and end; a dump is a snapshot, calls that
 * end meanwhile may be left out.
 */
public final class Diagnostics {
    /** System property: {@code false} turns the in-flight registry off. */
    public static final String ENABLED_PROPERTY = "nativescope.diagnostics";
    /** System property: {@code true} shows context values, not only their names, in dumps. */
    public static final String SHOW_VALUES_PROPERTY = "nativescope.diagnostics.values";
    /** System property: milliseconds after a cancel from which a call that has not checked its context is stuck. */
    public static final String STUCK_MILLIS_PROPERTY = "nativescope.diagnostics.stuckMillis";
    static final long DEFAULT_STUCK_MILLIS = 100;
    /** System property: {@code true} records the start time of every call, not only of those with a deadline. */
    public static final String START_TIMES_PROPERTY = "nativescope.diagnostics.startTimes";
    /** System property: milliseconds from the call bridge's first use to the MBean's registration. */
    public static final String MBEAN_DELAY_PROPERTY = "nativescope.diagnostics.mbeanDelayMillis";
    static final long DEFAULT_MBEAN_DELAY_MILLIS = 1000;
    /** The object name of the platform MBean. */
    public static final String OBJECT_NAME = "dev.nativescope:type=Diagnostics";

    static final boolean ENABLED = !"false".equalsIgnoreCase(System.getProperty(ENABLED_PROPERTY));
    static final boolean SHOW_VALUES = Boolean.getBoolean(SHOW_VALUES_PROPERTY);
    static final boolean START_TIMES = Boolean.getBoolean(START_TIMES_PROPERTY);
    static final long MBEAN_DELAY_MILLIS = Math.max(0, Long.getLong(MBEAN_DELAY_PROPERTY, DEFAULT_MBEAN_DELAY_MILLIS));
    static final long STUCK_NANOS = TimeUnit.MILLISECONDS.toNanos(Long.getLong(STUCK_MILLIS_PROPERTY, DEFAULT_STUCK_MILLIS));
    /** How long a dump watches the CPU time of a stuck call's thread to tell blocked from computing. */
    private static final long CPU_SAMPLE_NANOS = TimeUnit.MILLISECONDS.toNanos(20);
    /** The second, longer look at calls the first window found blocked. */
    private static final long CPU_RESAMPLE_NANOS = TimeUnit.MILLISECONDS.toNanos(120);
    private static final ContextAccess CONTEXTS = SharedAccess.CONTEXTS.get();

    static {
        SharedAccess.DIAGNOSTICS.register(new CallHooks());
    }

    private Diagnostics() {
    }

    /** {@return whether calls are tracked (see {@value #ENABLED_PROPERTY})} */
    public static boolean isEnabled() {
        return ENABLED;
    }

    /**
     * {@return the cancellable calls in flight now}: stuck ones first (cancelled, and native code has
     * not checked since), then other cancelled ones, then the rest, each group longest-running first.
     * Empty when the registry is off or no call has been made. When a call looks stuck, this samples
     * for about 20 ms the CPU time of the thread that runs its native code (the calling thread, a
     * virtual thread's carrier, or the native thread of an offloaded call) to tell blocked from computing.
     */
    public static List<InFlightCall> inFlight() {
        if (!ENABLED) {
            return List.of();
        }
        List<CallSnapshot> snapshots = SharedAccess.CALLS.get().inFlight();
        long now = System.nanoTime();
        Map<CallSnapshot, Boolean> blocked = sampleCpu(snapshots, now);
        List<InFlightCall> calls = new ArrayList<>(snapshots.size());
        for (CallSnapshot snapshot : snapshots) {
            calls.add(toCall(snapshot, now, blocked.get(snapshot)));
        }
        calls.sort(Comparator.comparingInt(Diagnostics::rank)
                .thenComparing(InFlightCall::runningFor, Comparator.nullsLast(Comparator.reverseOrder())));
        return Collections.unmodifiableList(calls);
    }

    /** {@return {@link #inFlight()} as a table, with a header line and a legend of what is flagged} */
    public static String dump() {
        return InFlightTable.format(inFlight());
    }

    private static int rank(InFlightCall call) {
        return call.stuck() ? 0 : call.cancelRequested() ? 1 : 2;
    }

    private static boolean looksStuck(CallSnapshot s, long now) {
        return s.cancelNanoTime() != -1 && now - s.cancelNanoTime() >= STUCK_NANOS && s.checks() == s.checksAtCancel();
    }

    /**
     * For each call that looks stuck: true when it is blocked, false when it computes; absent when a
     * dump cannot tell. What is watched is the thread that runs the call's native code: the native
     * thread of an offloaded call; the calling thread of an inline call on a platform thread; the
     * carrier of an inline call on a virtual thread (native code pins a virtual thread to its carrier,
     * so the carrier's CPU time is the call's). Blocked: that thread used less than a tenth of a 20 ms
     * window on the CPU, and again of a 120 ms one (a computing thread of a loaded machine can wait
     * through the short one for a CPU). A virtual thread that is not mounted in an inline call is parked in Java code
     * inside the call's Downcall, blocked too when it stays parked through the window.
     */
    private static Map<CallSnapshot, Boolean> sampleCpu(List<CallSnapshot> snapshots, long now) {
        Map<CallSnapshot, Thread> runners = new HashMap<>();
        List<CallSnapshot> parked = new ArrayList<>();
        Map<String, Thread> platformByName = null;
        for (CallSnapshot s : snapshots) {
            if (!looksStuck(s, now)) {
                continue;
            }
            Thread runner = s.nativeThread() != null ? s.nativeThread() : s.thread();
            if (runner.isVirtual()) {
                if (platformByName == null) {
                    platformByName = platformThreadsByName();
                }
                runner = carrierOf(s.thread(), platformByName);
                if (runner == null && isParked(s.thread())) {
                    parked.add(s);
                }
            }
            if (runner != null) {
                runners.put(s, runner);
            }
        }
        if (runners.isEmpty() && parked.isEmpty()) {
            return Map.of();
        }
        ThreadMXBean threads = ManagementFactory.getThreadMXBean();
        boolean cpuTimes = threads.isThreadCpuTimeSupported() && threads.isThreadCpuTimeEnabled();
        Map<CallSnapshot, Long> before = new HashMap<>();
        if (cpuTimes) {
            for (Map.Entry<CallSnapshot, Thread> entry : runners.entrySet()) {
                long cpu = threads.getThreadCpuTime(entry.getValue().threadId());
                if (cpu >= 0) {
                    before.put(entry.getKey(), cpu);
                }
            }
        }
        LockSupport.parkNanos(CPU_SAMPLE_NANOS);
        Map<CallSnapshot, Boolean> blocked = cpuVerdicts(threads, before, runners, platformByName, CPU_SAMPLE_NANOS);
        if (blocked.containsValue(true)) {
            // On a loaded machine a computing thread can wait a whole window for a CPU: look again, over
            // a window six times as long, at those that seemed blocked (a blocked one stays at ~0).
            LockSupport.parkNanos(CPU_RESAMPLE_NANOS - CPU_SAMPLE_NANOS);
            List<CallSnapshot> again = blocked.entrySet().stream().filter(Map.Entry::getValue).map(Map.Entry::getKey).toList();
            before.keySet().retainAll(again);
            blocked.keySet().removeAll(again);
            blocked.putAll(cpuVerdicts(threads, before, runners, platformByName, CPU_RESAMPLE_NANOS));
        }
        for (CallSnapshot s : parked) {
            if (isParked(s.thread())) {
                blocked.put(s, true);
            }
        }
        return blocked;
    }

    /**
     * Blocked (true) or computing (false), per call whose runner's CPU time was read into {@code before}
     * a {@code window} ago: blocked when it used less than a tenth of the window. A virtual thread that
     * moved to another carrier meanwhile was not in native code: left out (unknown).
     */
    private static Map<CallSnapshot, Boolean> cpuVerdicts(ThreadMXBean threads, Map<CallSnapshot, Long> before,
            Map<CallSnapshot, Thread> runners, Map<String, Thread> platformByName, long window) {
        Map<CallSnapshot, Boolean> verdicts = new HashMap<>();
        for (Map.Entry<CallSnapshot, Long> entry : before.entrySet()) {
            CallSnapshot s = entry.getKey();
            Thread runner = runners.get(s);
            if (s.nativeThread() == null && s.thread().isVirtual() && carrierOf(s.thread(), platformByName) != runner) {
                continue;
            }
            long cpu = threads.getThreadCpuTime(runner.threadId());
            if (cpu >= 0) {
                verdicts.put(s, cpu - entry.getValue() < window / 10);
            }
        }
        return verdicts;
    }

    private static boolean isParked(Thread thread) {
        Thread.State state = thread.getState();
        return state == Thread.State.WAITING || state == Thread.State.TIMED_WAITING || state == Thread.State.BLOCKED;
    }

    /**
     * The carrier a virtual thread is mounted on, or null (not mounted, or not found). The JDK has no
     * API for it; a virtual thread's {@code toString()} names it ({@code VirtualThread[#21,name]/runnable@ForkJoinPool-1-worker-1}
     * since JDK 21), and carriers are platform threads with unique names. Any other text gives null:
     * then a dump cannot tell blocked from computing, as before.
     */
    static Thread carrierOf(Thread virtual, Map<String, Thread> platformByName) {
        String text = virtual.toString();
        int state = text.lastIndexOf("]/");
        int at = state < 0 ? -1 : text.indexOf('@', state);
        return at < 0 ? null : platformByName.get(text.substring(at + 1));
    }

    /** Every live platform thread by name; names held by more than one thread map to null (ambiguous). */
    static Map<String, Thread> platformThreadsByName() {
        ThreadGroup root = Thread.currentThread().getThreadGroup();
        for (ThreadGroup parent; (parent = root.getParent()) != null; ) {
            root = parent;
        }
        Thread[] all = new Thread[root.activeCount() + 64];
        int count = root.enumerate(all, true);
        Map<String, Thread> byName = new HashMap<>();
        Set<String> ambiguous = new HashSet<>();
        for (int i = 0; i < count; i++) {
            if (byName.putIfAbsent(all[i].getName(), all[i]) != null) {
                ambiguous.add(all[i].getName());
            }
        }
        byName.keySet().removeAll(ambiguous);
        return byName;
    }

    private static InFlightCall toCall(CallSnapshot s, long now, Boolean blocked) {
        Context context = s.context();
        boolean cancelled = s.cancelNanoTime() != -1;
        InFlightCall.State state;
        if (!cancelled) {
            state = InFlightCall.State.RUNNING;
        } else if (!looksStuck(s, now)) {
            state = InFlightCall.State.CANCEL_PENDING;
        } else {
            state = Boolean.TRUE.equals(blocked) ? InFlightCall.State.BLOCKED_OUTSIDE_CONTEXT_WAIT
                    : InFlightCall.State.NOT_CHECKING;
        }
        String cause = null;
        if (cancelled) {
            cause = s.interrupted() ? "interrupt of the calling thread" : SafeText.of(context.cause());
        }
        long heartbeat = s.heartbeatNanoTime();
        return new InFlightCall(labelOf(s.label(), s.downcallClass()), SafeText.of(s.thread()), s.thread().isVirtual(),
                s.nativeThread() == null ? null : SafeText.of(s.nativeThread()), chainOf(context, now), valuesOf(context),
                s.startNanoTime() == 0 ? null : Duration.ofNanos(Math.max(0, now - s.startNanoTime())),
                timeLeft(context, now), cancelled, cancelled ? Duration.ofNanos(Math.max(0, now - s.cancelNanoTime())) : null,
                cause, s.cancelledBy(), s.checks(), cancelled ? Math.max(0, s.checks() - s.checksAtCancel()) : 0,
                heartbeat == 0 ? null : Duration.ofNanos(Math.max(0, now - heartbeat)), state);
    }

    /** The label, or the Downcall's class without the lambda suffix the JDK gives hidden classes. */
    static String labelOf(String label, Class<?> downcallClass) {
        if (label != null) {
            return label;
        }
        if (downcallClass == null) {
            return "?";
        }
        String name = downcallClass.getName();
        int lambda = name.indexOf("$$Lambda");
        return lambda > 0 ? name.substring(0, lambda) + " (lambda)" : name;
    }

    private static Duration timeLeft(Context context, long now) {
        return CONTEXTS.hasDeadline(context) ? Duration.ofNanos(CONTEXTS.deadlineNanoTimeOr(context, 0) - now) : null;
    }

    private static List<InFlightCall.ContextInfo> chainOf(Context context, long now) {
        List<InFlightCall.ContextInfo> chain = new ArrayList<>();
        for (Context c = context; c != null; c = CONTEXTS.parent(c)) {
            ContextKey<?> key = CONTEXTS.boundKey(c);
            String kind = CONTEXTS.parent(c) == null ? "background" : key != null ? "value" : "cancellable";
            Throwable cause = c.cause();
            chain.add(new InFlightCall.ContextInfo(CONTEXTS.id(c), kind, key == null ? null : key.name(), c.isDone(),
                    cause == null ? null : SafeText.of(cause), timeLeft(c, now)));
        }
        return List.copyOf(chain);
    }

    private static Map<String, String> valuesOf(Context context) {
        Map<String, String> values = new LinkedHashMap<>();
        for (Map.Entry<ContextKey<?>, Object> entry : CONTEXTS.visibleValues(context)) {
            values.put(entry.getKey().name(), SHOW_VALUES ? SafeText.of(entry.getValue()) : null);
        }
        return Collections.unmodifiableMap(values);
    }

    /** For JFR events: the context's id, or 0 for none. */
    static long idOf(Context context) {
        return context == null ? 0 : CONTEXTS.id(context);
    }

    /** For JFR events: the trace id the context carries ({@code trace-id}), or null. */
    static String traceIdOf(Context context) {
        if (context == null) {
            return null;
        }
        for (Map.Entry<ContextKey<?>, Object> entry : CONTEXTS.visibleValues(context)) {
            if ("trace-id".equals(entry.getKey().name())) {
                return SafeText.of(entry.getValue());
            }
        }
        return null;
    }
}
