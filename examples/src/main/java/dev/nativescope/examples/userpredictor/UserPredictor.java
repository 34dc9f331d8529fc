package dev.nativescope.examples.userpredictor;

import dev.nativescope.Context;
import dev.nativescope.call.CallMode;
import dev.nativescope.call.NativeCall;
import dev.nativescope.call.NativeThreads;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.library.UserLibrary;
import dev.nativescope.examples.userpredictor.bindings.user_predictor_h;
import dev.nativescope.tensor.DLPack;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.ref.Reference;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Objects;
import java.util.function.LongConsumer;

/**
 * The Java side of {@code examples/user-predictor}: a predictor library written outside
 * nativescope (its own C sources, header, build and jextract bindings) and called through
 * {@link NativeCall}, so that a context's cancel, deadline or the calling thread's interrupt
 * stops it in native code. Both functions run long, so they are called with
 * {@link NativeCall#invokeLong}: from a virtual thread the native work runs on a native thread and the
 * carrier stays free (see {@code docs/predictor-sdk.md}).
 *
 * <p>Loading order is what makes the library link: {@code libuser_predictor.so} needs
 * {@code libnativescope.so} (DT_NEEDED, no rpath), which {@link UserLibrary} puts into the process first
 * ({@link NativeLibrary#load()}); the dynamic loader matches the dependency to that copy by its soname. See
 * {@code docs/predictor-sdk.md}.
 *
 * <p>Thread-safe: the library is loaded once; each call uses only its own arguments.
 */
public final class UserPredictor {
    /** System property: load {@code libuser_predictor.so} from this file instead of the class path. */
    public static final String LIBRARY_PATH_PROPERTY = "userpredictor.library.path";
    static final String RESOURCE = "META-INF/native/linux-x86_64/libuser_predictor.so";

    private UserPredictor() {
    }

    private static final class Holder {
        static final Path LOADED_FROM = loadLibrary();
    }

    /** Loads libnativescope.so, then libuser_predictor.so, once. */
    public static void load() {
        Objects.requireNonNull(Holder.LOADED_FROM);
    }

    /** @return the file libuser_predictor.so was loaded from (deleted when it was extracted) */
    public static Path loadedFrom() {
        return Holder.LOADED_FROM;
    }

    private static Path loadLibrary() {
        // UserLibrary loads libnativescope.so first: libuser_predictor.so's DT_NEEDED libnativescope.so resolves to it.
        String configured = System.getProperty(LIBRARY_PATH_PROPERTY);
        if (configured != null) {
            return UserLibrary.load(Path.of(configured));
        }
        return UserLibrary.load(UserPredictor.class, RESOURCE);
    }

    /**
     * Runs {@code user_conv2d}: {@code output = input (*) kernel}, "valid" 2D cross-correlation,
     * computed {@code repeat} times, under {@code context}.
     *
     * @param input {@code [H, W]} float32, any strides
     * @param kernel {@code [KH, KW]} float32, any strides
     * @param output {@code [H - KH + 1, W - KW + 1]} float32, written; must not overlap the inputs
     * @param repeat how many times to compute it, at least 1
     * @param onReturn receives the output rows completed (all repetitions), also when the call was
     *                 cancelled; may be null
     * @return the output rows completed
     * @throws java.util.concurrent.CancellationException when the context was cancelled or the
     *         thread interrupted
     * @throws dev.nativescope.DeadlineExceededException when the context's deadline passed
     * @throws dev.nativescope.library.NativeStatusException ({@code NSC_ERR_INVALID}) for tensors native code rejects
     */
    public static long conv2d(Context context, Tensor input, Tensor kernel, Tensor output, long repeat,
                              LongConsumer onReturn) {
        requireFloat32Matrix("input", input);
        requireFloat32Matrix("kernel", kernel);
        requireFloat32Matrix("output", output);
        load();
        // Long calls: invokeLong keeps a virtual caller's carrier free (the call runs on a native thread),
        // and such a thread cannot pass a confined arena's segments, hence arenaForCall.
        try (Arena arena = NativeThreads.arenaForCall(CallMode.AUTO)) {
            MemorySegment in = DLPack.export(input, arena);
            MemorySegment k = DLPack.export(kernel, arena);
            MemorySegment out = DLPack.export(output, arena);
            MemorySegment rowsDone = arena.allocate(ValueLayout.JAVA_LONG);
            try {
                NativeCall.invokeLong(context, ctx -> user_predictor_h.user_conv2d(ctx, in, k, out, repeat, rowsDone));
            } finally {
                if (onReturn != null) {
                    onReturn.accept(rowsDone.get(ValueLayout.JAVA_LONG, 0));
                }
            }
            return rowsDone.get(ValueLayout.JAVA_LONG, 0);
        } finally {
            // Only raw addresses reach native code: keep the tensors' memory alive until it returns.
            Reference.reachabilityFence(input);
            Reference.reachabilityFence(kernel);
            Reference.reachabilityFence(output);
        }
    }

    /**
     * Runs {@code user_read_frame}: fills the compact float32 tensor {@code frame} with bytes read
     * from {@code fd}, waiting for them under {@code context}.
     *
     * @param timeout the read's own limit, or null for none (the context's deadline still applies)
     * @param onReturn receives the bytes read, also when the call was cancelled; may be null
     * @return {@code NSC_OK} with the frame complete, {@code NSC_TIMEOUT}, or {@code NSC_NOT_FOUND}
     *         when the fd reached end of file first
     */
    public static int readFrame(Context context, int fd, Tensor frame, Duration timeout, LongConsumer onReturn) {
        Objects.requireNonNull(frame, "frame");
        if (frame.dtype() != DType.FLOAT32 || !frame.isContiguous()) {
            throw new IllegalArgumentException("readFrame needs a contiguous float32 tensor, got " + frame);
        }
        long timeoutNanos = timeout == null ? -1 : timeout.toNanos();
        load();
        try (Arena arena = NativeThreads.arenaForCall(CallMode.AUTO)) { // a wait: long, as conv2d
            MemorySegment out = DLPack.export(frame, arena);
            MemorySegment bytesRead = arena.allocate(ValueLayout.JAVA_LONG);
            try {
                return NativeCall.invokeLong(context,
                        ctx -> user_predictor_h.user_read_frame(ctx, fd, out, timeoutNanos, bytesRead));
            } finally {
                if (onReturn != null) {
                    onReturn.accept(bytesRead.get(ValueLayout.JAVA_LONG, 0));
                }
            }
        } finally {
            Reference.reachabilityFence(frame);
        }
    }

    private static void requireFloat32Matrix(String name, Tensor tensor) {
        Objects.requireNonNull(tensor, name);
        if (tensor.dtype() != DType.FLOAT32 || tensor.rank() != 2) {
            throw new IllegalArgumentException(name + " must be a 2-d float32 tensor, got " + tensor.dtype()
                    + " of shape " + Arrays.toString(tensor.shape()));
        }
    }
}
