package dev.nativescope.examples.vendor;

import dev.nativescope.Context;
import dev.nativescope.call.CallMode;
import dev.nativescope.call.NativeCall;
import dev.nativescope.examples.vendor.bindings.vendor_glue_h;
import dev.nativescope.library.UserLibrary;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Objects;

/**
 * The Java side of {@code examples/vendor-library}: a "vendor" C library with a fixed API
 * ({@code vendor_predict(model, in, out)}, a step callback, its own {@code vendor_terminate}) that
 * knows nothing of nativescope, called through {@link NativeCall#call(Context, CallMode,
 * NativeCall.CurrentCall)} so that a scope's timeout, a failing sibling, a deadline or an interrupt
 * stops it: the bridge makes the call's context current for {@code nsc_current()}, the user's C glue
 * ({@code vendor_glue.c}) polls it from the vendor's step callback and registers a cancel hook on it
 * that calls {@code vendor_terminate}.
 *
 * <p>Loading order: {@code libvendor_compute.so} first (it needs only libc), then
 * {@code libvendor_glue.so}, whose DT_NEEDED {@code libvendor_compute.so} and {@code libnativescope.so}
 * resolve by soname to the copies already loaded ({@link UserLibrary} loads the shim first).
 *
 * <p>Threading: one predict at a time per model (the vendor's rule), from any thread; {@link #close()}
 * once no predict runs. Different models are independent.
 */
public final class VendorModel implements AutoCloseable {
    static final String VENDOR_RESOURCE = "META-INF/native/linux-x86_64/libvendor_compute.so";
    static final String GLUE_RESOURCE = "META-INF/native/linux-x86_64/libvendor_glue.so";

    /** How a cancel reaches the vendor's long call. */
    public enum Stop {
        /** The step callback polls {@code nsc_current()}; {@code vendor_predict} is called as it is. */
        CALLBACK,
        /** No callback: only the cancel hook's {@code vendor_terminate} stops it ({@code glue_predict}). */
        HOOK,
        /** Both: the callback for the deadline on the clock, the hook for stretches without callbacks. */
        CALLBACK_AND_HOOK,
        /**
         * The vendor computes on a thread of its own ({@code VENDOR_OWN_THREAD}), where
         * {@code nsc_current()} is NULL: the glue hands the callback the context captured at
         * registration ({@code glue_predict_own_thread}), and the hook still terminates.
         */
        OWN_THREAD
    }

    private static final class Holder {
        static {
            UserLibrary.load(VendorModel.class, VENDOR_RESOURCE);
            UserLibrary.load(VendorModel.class, GLUE_RESOURCE);
        }

        static void load() {
            // the static initialiser did it
        }
    }

    private final MemorySegment model;
    private final Stop stop;
    private final int size;

    private VendorModel(MemorySegment model, Stop stop, int size) {
        this.model = model;
        this.stop = stop;
        this.size = size;
    }

    /** Loads the shim, the vendor library and the glue, once. */
    public static void load() {
        Holder.load();
    }

    /**
     * Creates a vendor model.
     *
     * @param size floats per input and output
     * @param steps diffusion steps per predict (each a pass over the data, then the step callback)
     * @param prepareRounds preparation rounds before the steps (no callback: only a terminate stops them)
     * @param stop how a cancel reaches the call
     */
    public static VendorModel create(int size, long steps, long prepareRounds, Stop stop) {
        Objects.requireNonNull(stop, "stop");
        load();
        int flags = stop == Stop.OWN_THREAD ? vendor_glue_h.VENDOR_OWN_THREAD() : 0;
        MemorySegment model = vendor_glue_h.vendor_create(size, steps, prepareRounds, flags);
        if (model.equals(MemorySegment.NULL)) {
            throw new IllegalArgumentException("vendor_create refused size " + size + ", steps " + steps
                    + ", prepare rounds " + prepareRounds + " (size must be 1 to 2^28, counts not negative)");
        }
        if (stop == Stop.CALLBACK || stop == Stop.CALLBACK_AND_HOOK) {
            vendor_glue_h.vendor_set_step_callback(model, vendor_glue_h.glue_check_current$address(), MemorySegment.NULL);
        }
        return new VendorModel(model, stop, size);
    }

    /**
     * Runs {@code vendor_predict} under {@code context}: on a native thread when called from a
     * virtual thread ({@link CallMode#AUTO}), inline otherwise.
     *
     * @param input {@code size} floats
     * @return the output, {@code size} floats
     * @throws java.util.concurrent.CancellationException when the context was cancelled or the thread interrupted
     * @throws dev.nativescope.DeadlineExceededException when the context's deadline passed
     * @throws IllegalStateException when the vendor library failed
     */
    public float[] predict(Context context, float[] input) {
        if (input.length != size) {
            throw new IllegalArgumentException("the model takes " + size + " floats, got " + input.length);
        }
        // Shared: the call may run on a native thread, which cannot pass a confined arena's segments.
        try (Arena arena = Arena.ofShared()) {
            MemorySegment in = arena.allocateFrom(ValueLayout.JAVA_FLOAT, input);
            MemorySegment out = arena.allocate(ValueLayout.JAVA_FLOAT, size);
            int status = NativeCall.call(context, "vendor_predict", CallMode.AUTO, () -> switch (stop) {
                case CALLBACK -> vendor_glue_h.vendor_predict(model, in, out);
                case HOOK, CALLBACK_AND_HOOK -> vendor_glue_h.glue_predict(model, in, out);
                case OWN_THREAD -> vendor_glue_h.glue_predict_own_thread(model, in, out);
            });
            // A call the context stopped has thrown by now: any other status is the vendor's own.
            if (status != vendor_glue_h.VENDOR_OK()) {
                throw new IllegalStateException("vendor_predict returned " + status + " although its context is live"
                        + " (" + vendor_glue_h.VENDOR_ABORTED() + ": aborted, " + vendor_glue_h.VENDOR_TERMINATED()
                        + ": terminated, negative: an error)");
            }
            return out.toArray(ValueLayout.JAVA_FLOAT);
        }
    }

    /** The vendor's diffusion computed in Java, operation for operation: what an uncancelled predict returns. */
    public static float[] reference(float[] input, long steps) {
        int n = input.length;
        float[] y = input.clone();
        float[] z = new float[n];
        for (long step = 0; step < steps; step++) {
            for (int i = 0; i < n; i++) {
                float left = y[i > 0 ? i - 1 : 0];
                float right = y[i + 1 < n ? i + 1 : n - 1];
                z[i] = 0.5f * y[i] + 0.25f * (left + right);
            }
            System.arraycopy(z, 0, y, 0, n);
        }
        return y;
    }

    @Override
    public void close() {
        vendor_glue_h.vendor_destroy(model);
    }
}
