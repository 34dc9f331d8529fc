package dev.nativescope.call;

import dev.nativescope.Context;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.internal.posix.Scheduling;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.testing.ProcSelf;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Native threads ask the kernel for a short scheduler slice (NativeThreads' "Wake-ups"), so that a
 * cancel's wake-up preempts the canceller; {@link Scheduling} changes only the calling thread's
 * slice and keeps its policy and nice value. Read back from {@code /proc/thread-self/sched}, so these
 * tests need a kernel that prints {@code se.slice} and honours custom slices (Linux 6.12+).
 */
@Timeout(60)
class NativeThreadSliceTest {
    @BeforeAll
    static void load() {
        NativeLibrary.load();
    }

    @Test
    void offloadedCallsRunOnThreadsWithTheShortSlice() throws Exception {
        assumeCustomSlices();
        AtomicReference<Map<String, String>> sched = new AtomicReference<>();
        AtomicReference<String> name = new AtomicReference<>();
        Thread caller = Thread.ofVirtual().start(() -> NativeCall.invoke(Context.background(), CallMode.OFFLOAD, ctx -> {
            name.set(Thread.currentThread().getName());
            sched.set(ProcSelf.schedOfCurrentThread());
            return nativescope_h.nsc_noop_ctx(ctx);
        }));
        assertThat(caller.join(Duration.ofSeconds(20))).isTrue();
        assertThat(name.get()).startsWith(NativeThreads.THREAD_NAME_PREFIX);
        assertThat(sched.get().get("se.slice")).isEqualTo(String.valueOf(NativeThreads.SLICE_NANOS));
    }

    @Test
    void aSessionsNativeThreadHasItToo() throws Exception {
        assumeCustomSlices();
        try (Affinity session = Affinity.create()) {
            Map<String, String> sched = NativeThreads.call(Context.background(), CallMode.OFFLOAD, session,
                    () -> false, Map::of, ProcSelf::schedOfCurrentThread);
            assertThat(sched.get("se.slice")).isEqualTo(String.valueOf(NativeThreads.SLICE_NANOS));
        }
    }

    @Test
    void theSliceIsTheCallingThreadsAloneAndKeepsItsPolicyAndNice() throws Exception {
        assumeCustomSlices();
        Map<String, String> before = ProcSelf.schedOfCurrentThread();
        AtomicReference<Map<String, String>> niced = new AtomicReference<>();
        AtomicReference<Map<String, String>> after = new AtomicReference<>();
        AtomicReference<Map<String, String>> clamped = new AtomicReference<>();
        AtomicReference<Boolean> accepted = new AtomicReference<>();
        AtomicReference<Throwable> failed = new AtomicReference<>();
        Thread thread = Thread.ofPlatform().start(() -> {
            try {
                setOwnNice(5); // a user's choice the slice must keep (sched_setattr would reset it to 0)
                niced.set(ProcSelf.schedOfCurrentThread());
                accepted.set(Scheduling.setSliceOfCurrentThread(TimeUnit.MICROSECONDS.toNanos(300)));
                after.set(ProcSelf.schedOfCurrentThread());
                Scheduling.setSliceOfCurrentThread(1);
                clamped.set(ProcSelf.schedOfCurrentThread());
            } catch (Throwable e) {
                failed.set(e);
            }
        });
        thread.join();
        assertThat(failed.get()).isNull();
        assertThat(niced.get().get("prio")).isEqualTo("125");
        assertThat(accepted.get()).isTrue();
        assertThat(after.get().get("se.slice")).isEqualTo("300000");
        assertThat(after.get().get("policy")).isEqualTo(before.get("policy"));
        assertThat(after.get().get("prio")).as("120 + nice").isEqualTo("125");
        assertThat(clamped.get().get("se.slice")).isEqualTo(String.valueOf(Scheduling.MIN_SLICE_NANOS));
        assertThat(ProcSelf.schedOfCurrentThread().get("se.slice")).as("this thread's slice").isEqualTo(before.get("se.slice"));
    }

    /** {@code setpriority(PRIO_PROCESS, gettid(), nice)}: on Linux, the calling thread's nice value alone. */
    private static void setOwnNice(int nice) throws Throwable {
        Linker linker = Linker.nativeLinker();
        MethodHandle gettid = linker.downcallHandle(linker.defaultLookup().find("gettid").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT));
        MethodHandle setpriority = linker.downcallHandle(linker.defaultLookup().find("setpriority").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
        int tid = (int) gettid.invokeExact();
        assertThat((int) setpriority.invokeExact(0, tid, nice)).isZero();
    }

    /** Custom slices came with Linux 6.12; {@code se.slice} is printed only with CONFIG_SCHED_DEBUG. */
    private static void assumeCustomSlices() {
        String[] version = System.getProperty("os.version").split("[.-]");
        int major = Integer.parseInt(version[0]);
        int minor = version.length > 1 ? Integer.parseInt(version[1]) : 0;
        assumeTrue(major > 6 || major == 6 && minor >= 12, "Linux 6.12+ (custom slices); this is " + System.getProperty("os.version"));
        assumeTrue(ProcSelf.schedOfCurrentThread().containsKey("se.slice"), "no se.slice in /proc/thread-self/sched");
        assumeTrue(NativeThreads.SLICE_NANOS > 0, "-D" + NativeThreads.SLICE_MICROS_PROPERTY + "=0 leaves the native threads alone");
    }
}
