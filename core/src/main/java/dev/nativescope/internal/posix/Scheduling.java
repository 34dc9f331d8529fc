package dev.nativescope.internal.posix;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

/**
 * The calling thread's scheduler slice (Linux {@code sched_setattr}), which decides whether the
 * thread preempts the running one when it is woken.
 *
 * <p>Why: on Linux 6.12 and newer (EEVDF with custom slices), a woken thread preempts the thread
 * running on its CPU only if its slice is shorter (the {@code PREEMPT_SHORT} feature); with equal
 * (default) slices it waits, runnable, until the running thread sleeps or uses up its own slice. The
 * kernel wakes a thread on its waker's CPU, so a native thread woken by a cancel (the context's done
 * fd, its state word's futex) otherwise waits for the canceller to go to sleep. A slice shorter than
 * the default (0.7 ms x (1 + log2 CPUs), at most 2.8 ms) makes it run at once; the thread's share of
 * the CPU is unchanged (that is its weight, its nice value), only the length of its turns under
 * contention. Older kernels accept the call and ignore the slice of a fair-class thread.
 *
 * <p>Only {@code SCHED_OTHER} and {@code SCHED_BATCH} threads are changed; their nice value is kept
 * (read with {@code sched_getattr} first). Any failure (no such system call, a seccomp filter, an
 * unknown policy) leaves the thread as it was and is reported by the return value only.
 *
 * <p>Threading: a thread changes only itself; stateless and thread-safe.
 */
public final class Scheduling {
    /** {@code sched_setattr} and {@code sched_getattr} on x86-64, the only platform the shim is built for. */
    private static final long SYS_SCHED_SETATTR = 314;
    private static final long SYS_SCHED_GETATTR = 315;
    /** {@code SCHED_ATTR_SIZE_VER0}: the fields up to {@code sched_period}, without the utilisation clamps. */
    private static final int ATTR_SIZE = 48;
    private static final long OFFSET_POLICY = 4;
    private static final long OFFSET_FLAGS = 8;
    private static final long OFFSET_RUNTIME = 24;
    private static final int SCHED_OTHER = 0;
    private static final int SCHED_BATCH = 3;
    /** The kernel clamps a custom slice to 0.1-100 ms. */
    public static final long MIN_SLICE_NANOS = 100_000;
    public static final long MAX_SLICE_NANOS = 100_000_000;

    /** In a holder: linked by the first thread that asks, never by a process that does not. */
    private static final class Syscall {
        /** {@code long syscall(long number, ...)}, called with (int pid, struct sched_attr *, unsigned size or flags[, unsigned flags]). */
        static final MethodHandle GETATTR;
        static final MethodHandle SETATTR;

        static {
            Linker linker = Linker.nativeLinker();
            Optional<MemorySegment> symbol = linker.defaultLookup().find("syscall");
            MethodHandle get = null;
            MethodHandle set = null;
            if (symbol.isPresent()) {
                get = linker.downcallHandle(symbol.get(), FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
                        ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT),
                        Linker.Option.firstVariadicArg(1));
                set = linker.downcallHandle(symbol.get(), FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
                        ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT),
                        Linker.Option.firstVariadicArg(1));
            }
            GETATTR = get;
            SETATTR = set;
        }
    }

    private Scheduling() {
    }

    /**
     * Asks the kernel to give the calling thread turns of {@code sliceNanos} (clamped to
     * {@value #MIN_SLICE_NANOS}-{@value #MAX_SLICE_NANOS} ns), keeping its policy and nice value.
     *
     * @return true if the kernel accepted it (a kernel older than 6.12 accepts and ignores it);
     *     false if the thread was left unchanged (no system call, refused, or not a fair-class thread)
     */
    public static boolean setSliceOfCurrentThread(long sliceNanos) {
        if (Syscall.SETATTR == null) {
            return false;
        }
        long slice = Math.clamp(sliceNanos, MIN_SLICE_NANOS, MAX_SLICE_NANOS);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment attr = arena.allocate(ATTR_SIZE, 8);
            if ((long) Syscall.GETATTR.invokeExact(SYS_SCHED_GETATTR, 0, attr, ATTR_SIZE, 0) != 0) {
                return false;
            }
            int policy = attr.get(ValueLayout.JAVA_INT, OFFSET_POLICY);
            if (policy != SCHED_OTHER && policy != SCHED_BATCH) {
                return false; // SCHED_IDLE or a real-time class: slices do not apply, and the user chose it
            }
            attr.set(ValueLayout.JAVA_INT, 0, ATTR_SIZE);
            attr.set(ValueLayout.JAVA_LONG, OFFSET_FLAGS, 0L); // the nice value read above is kept
            attr.set(ValueLayout.JAVA_LONG, OFFSET_RUNTIME, slice);
            return (long) Syscall.SETATTR.invokeExact(SYS_SCHED_SETATTR, 0, attr, 0) == 0;
        } catch (Error e) {
            throw e;
        } catch (Throwable e) {
            return false; // a downcall of these shapes does not throw; never fail the caller's thread for a hint
        }
    }
}
