package dev.nativescope.onnxruntime;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxTensorLike;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.nativescope.library.NativeLibrary;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.lang.ref.Reference;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

/**
 * A pinned-output run that calls ONNX Runtime's C {@code OrtApi::Run} by an FFM downcall (through the
 * shim's {@code nsc_hold_ort_run}) with the tensors' segments as extra arguments, instead of ORT's
 * JNI {@code run} inside a {@link dev.nativescope.interop.SegmentHold}: FFM holds the segments for the
 * downcall (a shared arena cannot close, another thread's confined one is refused), so the hold costs
 * no downcall and upcall of its own, and the run skips the JNI side's per-run arrays and name lookups.
 * It passes what ORT's JNI run passes (the session, the run's {@code RunOptions}, the names and the
 * {@code OrtValue}s of the views, outputs pre-allocated), so ORT runs the same code; a failure becomes
 * the {@link OrtException} the JNI run would throw (code and message).
 *
 * <p><b>When.</b> The handles are private fields of ORT's Java API 1.23 (its jar is an automatic
 * module or on the class path, so its packages are open) and the downcall is a restricted method:
 * this path is used when the handles are found, this module has native access
 * ({@code --enable-native-access=dev.nativescope.onnxruntime}, or {@code ALL-UNNAMED} on the class
 * path) and a binding's segments lie in at most {@value #SLOTS} arenas; otherwise runs take the JNI
 * path, which needs neither ({@link #available()}). {@code -D}{@value #PROPERTY}{@code =false} forces
 * the JNI path.
 *
 * <p><b>Threading.</b> A {@code Prepared} run is immutable and may be run by any thread, also by
 * several at once (ORT sessions are thread-safe for runs); its arrays live as long as it is reachable
 * (an automatic arena), and the predictor keeps it, with the views it addresses, in the binding.
 */
final class OrtDirectRun {
    /** {@code -Dnativescope.onnxruntime.directRun=false} makes every run take the JNI path. */
    static final String PROPERTY = "nativescope.onnxruntime.directRun";
    /** Segment parameters of nsc_hold_ort_run. */
    static final int SLOTS = 4;
    /** OrtApi members by index (the struct only ever grows, so the indices are fixed across versions). */
    private static final int GET_ERROR_CODE = 1;
    private static final int GET_ERROR_MESSAGE = 2;
    private static final int RUN = 9;
    private static final int RELEASE_STATUS = 93;

    private OrtDirectRun() {
    }

    /** {@return whether runs can take this path (see the class comment)} */
    static boolean available() {
        return Native.HOLD_ORT_RUN != null;
    }

    /**
     * {@return a prepared run for these views, or null when this path is unavailable or the segments
     * lie in more arenas than the downcall has slots}
     *
     * @param segments the segments of the views' tensors, in any order
     */
    static Prepared prepare(OrtSession session, Map<String, OnnxTensor> inputs, Map<String, OnnxTensor> outputs,
                            List<MemorySegment> segments) {
        if (!available()) {
            return null;
        }
        MemorySegment[] held = new MemorySegment[SLOTS];
        int arenas = 0;
        next:
        for (MemorySegment segment : segments) {
            for (int i = 0; i < arenas; i++) {
                if (held[i].scope().equals(segment.scope())) {
                    continue next;
                }
            }
            if (arenas == SLOTS) {
                return null;
            }
            held[arenas++] = segment;
        }
        for (int i = arenas; i < SLOTS; i++) {
            held[i] = MemorySegment.NULL;
        }
        return new Prepared(session, inputs, outputs, held);
    }

    /** One binding's run: the handles and name arrays ORT's Run takes, and the segments to hold. */
    static final class Prepared {
        /** Owns the arrays below; kept reachable by this object. */
        private final Arena arena = Arena.ofAuto();
        private final long session;
        private final long inputNames;
        private final long inputValues;
        private final long inputCount;
        private final long outputNames;
        private final long outputValues;
        private final long outputCount;
        private final MemorySegment s0;
        private final MemorySegment s1;
        private final MemorySegment s2;
        private final MemorySegment s3;

        private Prepared(OrtSession session, Map<String, OnnxTensor> inputs, Map<String, OnnxTensor> outputs,
                         MemorySegment[] held) {
            this.session = (long) Native.SESSION_HANDLE.get(session);
            this.inputNames = names(inputs).address();
            this.inputValues = values(inputs).address();
            this.inputCount = inputs.size();
            this.outputNames = names(outputs).address();
            this.outputValues = values(outputs).address();
            this.outputCount = outputs.size();
            this.s0 = held[0];
            this.s1 = held[1];
            this.s2 = held[2];
            this.s3 = held[3];
        }

        /** A {@code const char *const *}: the names in the maps' iteration order (the values' order too). */
        private MemorySegment names(Map<String, OnnxTensor> views) {
            MemorySegment array = arena.allocate(ValueLayout.ADDRESS, Math.max(1, views.size()));
            int i = 0;
            for (String name : views.keySet()) {
                array.setAtIndex(ValueLayout.ADDRESS, i++, arena.allocateFrom(name, StandardCharsets.UTF_8));
            }
            return array;
        }

        private MemorySegment values(Map<String, OnnxTensor> views) {
            MemorySegment array = arena.allocate(ValueLayout.JAVA_LONG, Math.max(1, views.size()));
            int i = 0;
            for (OnnxTensor view : views.values()) {
                array.setAtIndex(ValueLayout.JAVA_LONG, i++, (long) Native.VALUE_HANDLE.get((OnnxTensorLike) view));
            }
            return array;
        }

        /**
         * Runs the session with {@code options} (live until this returns), the segments held for the call.
         *
         * @throws OrtException what ORT's run reported, as its JNI run would throw it
         * @throws IllegalStateException when a segment's arena was closed meanwhile (FFM's check; nothing ran)
         * @throws WrongThreadException when a segment is confined to another thread (FFM's check; nothing ran)
         */
        void run(OrtSession.RunOptions options) throws OrtException {
            long status;
            try {
                status = (long) Native.HOLD_ORT_RUN.invokeExact(Native.RUN_FN, session,
                        (long) Native.OPTIONS_HANDLE.get(options), inputNames, inputValues, inputCount, outputNames,
                        outputCount, outputValues, s0, s1, s2, s3);
            } catch (RuntimeException | Error e) {
                throw e;
            } catch (Throwable e) {
                throw new IllegalStateException("nsc_hold_ort_run failed", e);
            } finally {
                // The arrays are passed as addresses: without the fence this object (and the automatic
                // arena that frees them) could be collected while ORT still reads them.
                Reference.reachabilityFence(this);
            }
            if (status != 0) {
                throw failure(status);
            }
        }
    }

    /** The OrtException for a failed run's status, which it releases (what ORT's JNI side does). */
    private static OrtException failure(long status) {
        MemorySegment handle = MemorySegment.ofAddress(status);
        try {
            int code = (int) Native.GET_ERROR_CODE_CALL.invokeExact(handle);
            MemorySegment message = (MemorySegment) Native.GET_ERROR_MESSAGE_CALL.invokeExact(handle);
            return new OrtException(code, message.reinterpret(Long.MAX_VALUE).getString(0, StandardCharsets.UTF_8));
        } catch (Throwable e) {
            throw new IllegalStateException("ONNX Runtime's run failed and its status could not be read", e);
        } finally {
            try {
                Native.RELEASE_STATUS_CALL.invokeExact(handle);
            } catch (Throwable e) {
                throw new IllegalStateException("ONNX Runtime's status could not be released", e);
            }
        }
    }

    /**
     * The handles and downcalls, looked up once; all null (and {@link #UNAVAILABLE} says why) when ORT's
     * Java API has other internals or this module lacks native access.
     */
    private static final class Native {
        static final MethodHandle HOLD_ORT_RUN;
        static final long RUN_FN;
        static final MethodHandle GET_ERROR_CODE_CALL;
        static final MethodHandle GET_ERROR_MESSAGE_CALL;
        static final MethodHandle RELEASE_STATUS_CALL;
        static final VarHandle SESSION_HANDLE;
        static final VarHandle OPTIONS_HANDLE;
        static final VarHandle VALUE_HANDLE;
        static final Throwable UNAVAILABLE;

        static {
            MethodHandle holdOrtRun = null;
            long runFn = 0;
            MethodHandle errorCode = null;
            MethodHandle errorMessage = null;
            MethodHandle releaseStatus = null;
            VarHandle sessionHandle = null;
            VarHandle optionsHandle = null;
            VarHandle valueHandle = null;
            Throwable unavailable = null;
            try {
                if (!Boolean.parseBoolean(System.getProperty(PROPERTY, "true"))) {
                    throw new IllegalStateException("disabled by -D" + PROPERTY + "=false");
                }
                if (!OrtDirectRun.class.getModule().isNativeAccessEnabled()) {
                    throw new IllegalCallerException("no native access for " + OrtDirectRun.class.getModule());
                }
                MethodHandles.Lookup self = MethodHandles.lookup();
                sessionHandle = MethodHandles.privateLookupIn(OrtSession.class, self)
                        .findVarHandle(OrtSession.class, "nativeHandle", long.class);
                optionsHandle = MethodHandles.privateLookupIn(OrtSession.RunOptions.class, self)
                        .findVarHandle(OrtSession.RunOptions.class, "nativeHandle", long.class);
                valueHandle = MethodHandles.privateLookupIn(OnnxTensorLike.class, self)
                        .findVarHandle(OnnxTensorLike.class, "nativeHandle", long.class);
                Class<?> runtime = Class.forName("ai.onnxruntime.OnnxRuntime", true, OrtSession.class.getClassLoader());
                long api = (long) MethodHandles.privateLookupIn(runtime, self)
                        .findStaticVarHandle(runtime, "ortApiHandle", long.class).get();
                if (api == 0) {
                    throw new IllegalStateException("ONNX Runtime's API is not initialised");
                }
                MemorySegment table = MemorySegment.ofAddress(api).reinterpret(ValueLayout.ADDRESS.byteSize() * (RELEASE_STATUS + 1));
                Linker linker = Linker.nativeLinker();
                NativeLibrary.load();
                // Core loaded the library with System.load (then deleted its extracted copy): its symbols are
                // this class loader's when core and this module share one (the class path, a module layer).
                MemorySegment symbol = SymbolLookup.loaderLookup().find("nsc_hold_ort_run")
                        .orElseThrow(() -> new IllegalStateException("nsc_hold_ort_run not found: libnativescope is"
                                + " older than this module, or core was loaded by another class loader"));
                ValueLayout word = ValueLayout.JAVA_LONG;
                holdOrtRun = linker.downcallHandle(symbol, FunctionDescriptor.of(word, word, word, word, word, word, word,
                        word, word, word, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS));
                runFn = table.getAtIndex(ValueLayout.ADDRESS, RUN).address();
                errorCode = linker.downcallHandle(table.getAtIndex(ValueLayout.ADDRESS, GET_ERROR_CODE),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
                errorMessage = linker.downcallHandle(table.getAtIndex(ValueLayout.ADDRESS, GET_ERROR_MESSAGE),
                        FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS));
                releaseStatus = linker.downcallHandle(table.getAtIndex(ValueLayout.ADDRESS, RELEASE_STATUS),
                        FunctionDescriptor.ofVoid(ValueLayout.ADDRESS));
            } catch (ReflectiveOperationException | RuntimeException | LinkageError e) {
                unavailable = e;
                holdOrtRun = null;
            }
            HOLD_ORT_RUN = holdOrtRun;
            RUN_FN = runFn;
            GET_ERROR_CODE_CALL = errorCode;
            GET_ERROR_MESSAGE_CALL = errorMessage;
            RELEASE_STATUS_CALL = releaseStatus;
            SESSION_HANDLE = sessionHandle;
            OPTIONS_HANDLE = optionsHandle;
            VALUE_HANDLE = valueHandle;
            UNAVAILABLE = unavailable;
        }
    }

    /** {@return why this path is unavailable, or null when it is available} */
    static Throwable unavailableBecause() {
        return Native.UNAVAILABLE;
    }
}
