package dev.nativescope.reference;

import dev.nativescope.Context;
import dev.nativescope.call.NativeCall;
import dev.nativescope.library.NativeStatusException;
import dev.nativescope.library.NativeStatus;
import dev.nativescope.interop.SegmentHold;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.bindings.nsc_predict_stats;
import dev.nativescope.internal.time.SaturatingTime;
import dev.nativescope.tensor.DLPack;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.ref.Reference;
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
     * @throws IllegalArgumentException when a dimension is not positive or a segment is too small
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
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment stats = nsc_predict_stats.allocate(arena);
            try {
                NativeCall.invoke(context, "nsc_predict_dense", ctx -> nativescope_h.nsc_predict_dense(ctx, x, w, bias, y,
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
     * directly. The tensors are also kept reachable, which covers automatic arenas.
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
     *         4-byte aligned (native code reads floats with aligned loads)
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
        List<MemorySegment> operands = new ArrayList<>(List.of(x.segment(), w.segment(), y.segment()));
        if (bias != null) {
            operands.add(bias.segment());
        }
        // Only raw addresses inside the descriptors reach native code, so no FFM check stops the
        // tensors' arenas from closing under it: the hold does (closing them throws meanwhile).
        try (SegmentHold held = SegmentHold.hold(operands); Arena arena = Arena.ofConfined()) {
            MemorySegment dx = DLPack.export(x, arena);
            MemorySegment dw = DLPack.export(w, arena);
            MemorySegment db = bias == null ? MemorySegment.NULL : DLPack.export(bias, arena);
            MemorySegment dy = DLPack.export(y, arena);
            MemorySegment stats = nsc_predict_stats.allocate(arena);
            try {
                NativeCall.invoke(context, "nsc_predict_dense_dl", ctx -> nativescope_h.nsc_predict_dense_dl(ctx, dx, dw, db, dy, repeat, stats));
            } finally {
                report(stats, onReturn);
            }
            return PredictionStats.read(stats);
        } finally {
            // An automatic arena's memory must not be collected under native code either.
            Reference.reachabilityFence(x);
            Reference.reachabilityFence(w);
            Reference.reachabilityFence(bias);
            Reference.reachabilityFence(y);
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
        long timeoutNanos = timeout == null ? -1 : nonNegativeNanos(timeout);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment stats = nsc_predict_stats.allocate(arena);
            MemorySegment value = arena.allocate(ValueLayout.JAVA_LONG);
            int status;
            try {
                status = NativeCall.invoke(context, "nsc_predict_wait", ctx -> nativescope_h.nsc_predict_wait(ctx, fd, timeoutNanos, value, stats));
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
        long nanos = duration == null ? -1 : nonNegativeNanos(duration);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment stats = nsc_predict_stats.allocate(arena);
            try {
                NativeCall.invoke(context, "nsc_predict_spin", ctx -> nativescope_h.nsc_predict_spin(ctx, nanos, stats));
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
