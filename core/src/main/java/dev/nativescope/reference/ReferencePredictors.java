package dev.nativescope.reference;

import dev.nativescope.Context;
import dev.nativescope.call.CallMode;
import dev.nativescope.call.NativeCall;
import dev.nativescope.call.NativeThreads;
import dev.nativescope.library.NativeStatusException;
import dev.nativescope.library.NativeStatus;
import dev.nativescope.interop.SegmentHold;
import dev.nativescope.interop.WritableMemory;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.bindings.nsc_predict_stats;
import dev.nativescope.internal.posix.Libc;
import dev.nativescope.internal.shape.Shapes;
import dev.nativescope.internal.time.SaturatingTime;
import dev.nativescope.tensor.DLPack;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.OptionalLong;
import java.util.function.Consumer;

/**
 * Java facade over the shim's reference predictors, each called through {@link NativeCall} under a
 * {@link Context}: a compute-bound dense layer (one context check per 32x32 tile), a predictor that
 * blocks on a file descriptor, a spinning one, and no-ops for overhead measurements. The dense layer
 * also takes {@link Tensor}s of any strides, handed to native code as DLPack descriptors
 * ({@link #denseDLPack}).
 *
 * <p>Each predictor reports {@link PredictionStats} to an optional {@code onReturn} consumer as soon
 * as native code has returned, whether it completed or was cancelled, before the status is
 * translated into an exception (not at all when the context was done before the call, since native
 * code then never runs). Thread-safe: every call is independent.
 *
 * <p>The long predictors ({@code spin}, {@code awaitFd}, {@code dense} over more than about 2^16
 * multiply-adds) run in {@link CallMode#AUTO}: from a virtual thread they are offloaded to a native
 * thread, so they never pin a carrier; short ones and platform-thread callers run inline. A dense
 * call whose segments are confined to the caller ({@code Arena.ofConfined()}) runs inline (a native
 * thread could not pass them): use shared or automatic arenas on virtual threads.
 */
public final class ReferencePredictors {
    private static final long FLOAT_BYTES = Float.BYTES;

    private ReferencePredictors() {
    }

    /**
     * Computes {@code y = relu(x * w + bias)} {@code repeat} times (row-major float32: x is
     * rows x inner, w is inner x cols, bias is cols, y is rows x cols).
     *
     * @param context cancels the run and bounds it with its deadline
     * @param bias may be {@link MemorySegment#NULL} for no bias
     * @param repeat how many times to recompute y (to make the run long), at least 1
     * @param onReturn receives the run's stats (may be null)
     * @return the run's stats
     * @throws IllegalArgumentException when a dimension is not positive, a segment is too small, or
     *         {@code y} is read-only
     * @throws WrongThreadException when a segment belongs to a confined arena of another thread
     */
    public static PredictionStats dense(Context context, MemorySegment x, MemorySegment w, MemorySegment bias,
                                        MemorySegment y, long rows, long inner, long cols, long repeat,
                                        Consumer<PredictionStats> onReturn) {
        if (rows <= 0 || inner <= 0 || cols <= 0 || repeat <= 0) {
            throw new IllegalArgumentException("dense: rows, inner, cols and repeat must be positive, got rows=" + rows
                    + " inner=" + inner + " cols=" + cols + " repeat=" + repeat);
        }
        requireFloats("x", x, "rows", rows, "inner", inner);
        requireFloats("w", w, "inner", inner, "cols", cols);
        if (!MemorySegment.NULL.equals(Objects.requireNonNull(bias, "bias"))) {
            requireFloats("bias", bias, "cols", cols, "one", 1);
        }
        requireFloats("y", y, "rows", rows, "cols", cols);
        // FFM passes a read-only segment to a downcall like any other: native code would write it.
        WritableMemory.require("dense: y", y);
        // No SegmentHold: the segments are the downcall's own arguments, so FFM holds their arenas for the
        // call and refuses another thread's confined arena (WrongThreadException) before native code runs;
        // a hold's upcall would also keep a virtual thread's native frames on its carrier.
        CallMode mode = NativeThreads.modeFor(denseMode(rows, inner, cols, repeat), x, w, bias, y);
        try (Arena arena = NativeThreads.arenaForCall(mode)) {
            MemorySegment stats = nsc_predict_stats.allocate(arena);
            try {
                NativeCall.invoke(context, "nsc_predict_dense", mode, ctx -> nativescope_h.nsc_predict_dense(ctx, x, w, bias, y,
                        rows, inner, cols, repeat, stats));
            } finally {
                report(stats, onReturn);
            }
            return PredictionStats.read(stats);
        }
    }

    /**
     * Computes {@code y = relu(x * w + bias)} {@code repeat} times over float32 tensors of any
     * strides (transposed, sliced, flipped views included), without copying them: each tensor is
     * exported as a DLPack {@code DLTensor} into a confined arena that lives for the call, and
     * {@code nsc_predict_dense_dl} reads and writes the viewed elements in place.
     *
     * <p>The descriptors carry raw addresses, which FFM does not track, so the tensors' segments are
     * held with a {@link SegmentHold} for the call: closing one of their shared arenas meanwhile
     * throws {@code IllegalStateException}, as it does for the segments {@link #dense} passes
     * directly; a tensor of another thread's confined arena is refused with
     * {@code WrongThreadException}; automatic arenas stay reachable. A read-only {@code y} is
     * refused before native code runs.
     *
     * @param context cancels the run and bounds it with its deadline
     * @param x {@code [rows, inner]}
     * @param w {@code [inner, cols]}
     * @param bias {@code [cols]}, or null for no bias
     * @param y {@code [rows, cols]}, written; its elements must not share bytes with each other or
     *        with the inputs
     * @param repeat how many times to recompute y, at least 1
     * @param onReturn receives the run's stats (may be null)
     * @return the run's stats
     * @throws IllegalArgumentException when a tensor is not float32, has the wrong rank, a shape that
     *         does not chain, a zero dimension, heap memory, or an element base address that is not
     *         4-byte aligned (native code reads floats with aligned loads), or when {@code y} is read-only (a {@code READ_ONLY} mapping or {@code asReadOnly()})
     * @throws WrongThreadException when a tensor belongs to a confined arena of another thread
     * @throws IllegalStateException when a tensor's arena is already closed
     * @throws NativeStatusException ({@code NSC_ERR_INVALID}) when y overlaps itself or an input
     */
    public static PredictionStats denseDLPack(Context context, Tensor x, Tensor w, Tensor bias, Tensor y, long repeat,
                                              Consumer<PredictionStats> onReturn) {
        Objects.requireNonNull(x, "x");
        Objects.requireNonNull(w, "w");
        Objects.requireNonNull(y, "y");
        if (repeat <= 0) {
            throw new IllegalArgumentException("denseDLPack: repeat must be positive, got " + repeat);
        }
        requireFloat32Operand("x", x, 2);
        requireFloat32Operand("w", w, 2);
        requireFloat32Operand("y", y, 2);
        if (bias != null) {
            requireFloat32Operand("bias", bias, 1);
        }
        long rows = x.dim(0);
        long inner = x.dim(1);
        long cols = w.dim(1);
        if (w.dim(0) != inner || y.dim(0) != rows || y.dim(1) != cols || (bias != null && bias.dim(0) != cols)
                || rows == 0 || inner == 0 || cols == 0) {
            throw new IllegalArgumentException("denseDLPack: shapes do not chain or have a zero dimension: x "
                    + Arrays.toString(x.shape()) + ", w " + Arrays.toString(w.shape()) + ", bias "
                    + (bias == null ? "none" : Arrays.toString(bias.shape())) + ", y " + Arrays.toString(y.shape())
                    + "; expected x [rows, inner], w [inner, cols], bias [cols], y [rows, cols], all positive");
        }
        // Refused before native code runs: it writes y through a raw address, past FFM's checks.
        WritableMemory.require("denseDLPack: y", y.segment());
        requireSeparateOutput(x, w, bias, y);
        List<MemorySegment> operands = new ArrayList<>(List.of(x.segment(), w.segment(), y.segment()));
        if (bias != null) {
            operands.add(bias.segment());
        }
        // Only raw addresses inside the descriptors reach native code, so no FFM check stops the
        // tensors' arenas from closing under it: the hold does (closing a shared one throws meanwhile, a
        // confined one of another thread is refused, an automatic one stays reachable). It is taken inside
        // the bridged call, on the thread that makes the downcall: an offloaded call holds them from its
        // native thread while the virtual-thread caller parks unpinned (its carrier is free); a confined
        // operand keeps the call inline (modeFor), on its owner.
        CallMode mode = NativeThreads.modeFor(denseMode(rows, inner, cols, repeat), operands.toArray(MemorySegment[]::new));
        try (Arena arena = NativeThreads.arenaForCall(mode)) {
            MemorySegment dx = DLPack.export(x, arena);
            MemorySegment dw = DLPack.export(w, arena);
            MemorySegment db = bias == null ? MemorySegment.NULL : DLPack.export(bias, arena);
            MemorySegment dy = DLPack.exportForWriting(y, arena);
            MemorySegment stats = nsc_predict_stats.allocate(arena);
            try {
                NativeCall.invoke(context, "nsc_predict_dense_dl", mode, ctx -> SegmentHold.call(operands,
                        () -> nativescope_h.nsc_predict_dense_dl(ctx, dx, dw, db, dy, repeat, stats)));
            } finally {
                report(stats, onReturn);
            }
            return PredictionStats.read(stats);
        }
    }

    /**
     * Blocks until {@code fd} is readable, then reads up to 8 bytes from it (an eventfd's counter).
     *
     * @param timeout the wait's own limit, or null for none (the context's deadline still applies)
     * @return the value read, or empty when {@code timeout} elapsed first
     */
    public static OptionalLong awaitFd(Context context, int fd, Duration timeout, Consumer<PredictionStats> onReturn) {
        if (fd < 0) {
            throw new IllegalArgumentException("fd must be >= 0, got " + fd);
        }
        // Named here rather than left to native code's POLLNVAL, which only says NSC_ERR_INVALID.
        if (!Libc.isOpenFd(fd)) {
            throw new IllegalArgumentException("awaitFd: fd " + fd + " is not an open file descriptor"
                    + " (fcntl(F_GETFD) failed with EBADF): closed already, or never opened");
        }
        long timeoutNanos = timeout == null ? -1 : nonNegativeNanos(timeout);
        try (Arena arena = NativeThreads.arenaForCall(CallMode.AUTO)) {
            MemorySegment stats = nsc_predict_stats.allocate(arena);
            MemorySegment value = arena.allocate(ValueLayout.JAVA_LONG);
            int status;
            try {
                status = NativeCall.invoke(context, "nsc_predict_wait", CallMode.AUTO, ctx -> nativescope_h.nsc_predict_wait(ctx, fd, timeoutNanos, value, stats));
            } finally {
                report(stats, onReturn);
            }
            return status == NativeStatus.TIMEOUT.code() ? OptionalLong.empty() : OptionalLong.of(value.get(ValueLayout.JAVA_LONG, 0));
        }
    }

    /**
     * Busy-loops for {@code duration}, checking the context on every iteration.
     *
     * @param duration how long to spin, or null to spin until cancelled
     * @return the run's stats
     */
    public static PredictionStats spin(Context context, Duration duration, Consumer<PredictionStats> onReturn) {
        return spin(context, CallMode.AUTO, duration, onReturn);
    }

    /**
     * Busy-loops for {@code duration} in {@code mode}: {@link CallMode#INLINE} shows what a long call
     * on a virtual thread does without offloading (it pins its carrier).
     *
     * @return the run's stats
     */
    public static PredictionStats spin(Context context, CallMode mode, Duration duration, Consumer<PredictionStats> onReturn) {
        long nanos = duration == null ? -1 : nonNegativeNanos(duration);
        try (Arena arena = NativeThreads.arenaForCall(mode)) {
            MemorySegment stats = nsc_predict_stats.allocate(arena);
            try {
                NativeCall.invoke(context, "nsc_predict_spin", mode, ctx -> nativescope_h.nsc_predict_spin(ctx, nanos, stats));
            } finally {
                report(stats, onReturn);
            }
            return PredictionStats.read(stats);
        }
    }

    /** Calls {@code nsc_noop_ctx} through the bridge: the cheapest cancellable call. */
    public static void noop(Context context) {
        NativeCall.invoke(context, "nsc_noop_ctx", nativescope_h::nsc_noop_ctx);
    }

    /**
     * Multiply-adds above which a dense call is long (offloaded from virtual threads): about 20 us of
     * native work, where the handoff (a few microseconds) is small beside what a pinned carrier costs.
     */
    private static final long LONG_DENSE_MACS = 1L << 16;

    private static CallMode denseMode(long rows, long inner, long cols, long repeat) {
        // In double: the sizes were checked, their product may still overflow a long.
        double macs = (double) rows * inner * cols * repeat;
        return macs > LONG_DENSE_MACS ? CallMode.AUTO : CallMode.INLINE;
    }

    private static void report(MemorySegment stats, Consumer<PredictionStats> onReturn) {
        // start_ns stays 0 when the bridge refused to enter native code (context already done).
        if (onReturn != null && nsc_predict_stats.start_ns(stats) != 0) {
            onReturn.accept(PredictionStats.read(stats));
        }
    }

    private static long nonNegativeNanos(Duration duration) {
        if (duration.isNegative()) {
            throw new IllegalArgumentException("duration must not be negative, got " + duration);
        }
        // Clamped to the horizon (about 146 years), not Long.MAX_VALUE: native code adds it to its clock.
        return SaturatingTime.nanosOf(duration);
    }

    /**
     * The checks {@code nsc_predict_dense_dl} makes on y (distinct elements, bytes shared with no
     * input), made first so that the message names the tensors rather than saying
     * {@code NSC_ERR_INVALID}. Same rules as the C side: byte extents [lowest, highest + 4) overlap.
     */
    private static void requireSeparateOutput(Tensor x, Tensor w, Tensor bias, Tensor y) {
        // Heap segments have no address to compare; DLPack.export refuses them with its own message.
        if (!x.segment().isNative() || !w.segment().isNative() || !y.segment().isNative()
                || (bias != null && !bias.segment().isNative())) {
            return;
        }
        long[] shape = y.shape();
        long[] strides = y.strides();
        if (!distinctElements(shape, strides)) {
            throw new IllegalArgumentException("denseDLPack: y " + Arrays.toString(shape) + " with strides "
                    + Arrays.toString(strides) + " (elements) has elements that share bytes (a zero or overlapping"
                    + " stride); y is written, so each of its elements must have bytes of its own");
        }
        Shapes.Extent yBytes = extent(y);
        requireApart("x", x, y, yBytes);
        requireApart("w", w, y, yBytes);
        if (bias != null) {
            requireApart("bias", bias, y, yBytes);
        }
    }

    private static void requireApart(String name, Tensor input, Tensor y, Shapes.Extent yBytes) {
        Shapes.Extent bytes = extent(input);
        if (yBytes.start() < bytes.end() && bytes.start() < yBytes.end()) {
            throw new IllegalArgumentException("denseDLPack: y " + Arrays.toString(y.shape()) + " (bytes 0x"
                    + Long.toHexString(yBytes.start()) + "-0x" + Long.toHexString(yBytes.end()) + ") overlaps " + name
                    + " " + Arrays.toString(input.shape()) + " (bytes 0x" + Long.toHexString(bytes.start()) + "-0x"
                    + Long.toHexString(bytes.end()) + "); y is written while " + name
                    + " is read, so they must not share bytes: give y memory of its own");
        }
    }

    /** The absolute byte range the tensor's indices reach (it has at least one element here). */
    private static Shapes.Extent extent(Tensor t) {
        return Shapes.extent(t.segment().address() + t.byteOffset(), t.shape(), t.strides(), Float.BYTES);
    }

    /** Whether no two indices of a rank-2 view reach the same element (nsc_predictors.c's dl_distinct_elements). */
    private static boolean distinctElements(long[] shape, long[] strides) {
        long na = shape[0];
        long nb = shape[1];
        long a = Math.abs(strides[0]);
        long b = Math.abs(strides[1]);
        if (na <= 1 || nb <= 1) {
            return (na <= 1 || a != 0) && (nb <= 1 || b != 0);
        }
        if (a == 0 || b == 0) {
            return false;
        }
        // (i, j) and (i + di, j - dj) meet when di * a == dj * b; the smallest step is di = b / g, dj = a / g.
        long g = gcd(a, b);
        return b / g >= na || a / g >= nb;
    }

    private static long gcd(long a, long b) {
        while (b != 0) {
            long t = a % b;
            a = b;
            b = t;
        }
        return a;
    }

    private static void requireFloat32Operand(String name, Tensor tensor, int rank) {
        if (tensor.dtype() != DType.FLOAT32 || tensor.rank() != rank) {
            throw new IllegalArgumentException("denseDLPack: " + name + " must be a rank-" + rank + " float32 tensor, got "
                    + tensor.dtype().displayName() + " of shape " + Arrays.toString(tensor.shape()));
        }
        if (!tensor.segment().isNative()) {
            throw new IllegalArgumentException("denseDLPack: " + name + " is over a heap segment; native code needs"
                    + " native memory (allocate it from an Arena)");
        }
        long address = tensor.segment().address() + tensor.byteOffset();
        if (address % Float.BYTES != 0) {
            throw new IllegalArgumentException("denseDLPack: " + name + "'s first element is at 0x" + Long.toHexString(address)
                    + ", not 4-byte aligned; copy it into an aligned segment first");
        }
    }

    /**
     * Checks Java-side what the shim would only answer with {@code NSC_ERR_INVALID} (or FFM with a
     * less specific exception): the segment is native memory of at least {@code a * b} floats, and
     * that size does not overflow.
     */
    private static void requireFloats(String name, MemorySegment segment, String aName, long a, String bName, long b) {
        Objects.requireNonNull(segment, name);
        long needed;
        try {
            needed = Math.multiplyExact(Math.multiplyExact(a, b), FLOAT_BYTES);
        } catch (ArithmeticException overflow) {
            throw new IllegalArgumentException("dense: " + name + " would need " + aName + " * " + bName + " = " + a + " * " + b
                    + " floats, whose size in bytes overflows a long: use smaller dimensions", overflow);
        }
        if (segment.byteSize() < needed) {
            throw new IllegalArgumentException("dense: " + name + " holds " + segment.byteSize() + " bytes but needs "
                    + needed + " (" + aName + " * " + bName + " = " + (needed / FLOAT_BYTES) + " floats)");
        }
        if (!segment.isNative()) {
            throw new IllegalArgumentException("dense: " + name + " is a heap segment; native code needs native memory"
                    + " (allocate it from an Arena)");
        }
    }
}
