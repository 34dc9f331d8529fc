package dev.nativescope.exchange;

import dev.nativescope.library.NativeLibrary;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Hand-written downcalls into the shim's exchange functions ({@code nsc_exchange.h}); the bindings
 * module is generated from the contract header only. Looked up after {@link NativeLibrary#load()},
 * which registers the shim with the class loader. Stateless and thread-safe.
 */
final class ExchangeNative {
    /** Outcomes of nsc_exchange.h (kept out of enum nsc_status's range). */
    static final int PRODUCER_DEAD = ExchangeDescriptor.STATUS_PRODUCER_DEAD;
    static final int PRODUCER_CLOSED = ExchangeDescriptor.STATUS_PRODUCER_CLOSED;

    private static final MethodHandle WAIT;
    private static final MethodHandle WAIT_STOPPABLE;
    private static final MethodHandle STOP_WAIT;
    private static final MethodHandle NOTIFY;

    static {
        NativeLibrary.load();
        Linker linker = Linker.nativeLinker();
        SymbolLookup lookup = SymbolLookup.loaderLookup();
        WAIT = linker.downcallHandle(find(lookup, "nsc_exchange_wait"), FunctionDescriptor.of(ValueLayout.JAVA_INT,
                ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
        WAIT_STOPPABLE = linker.downcallHandle(find(lookup, "nsc_exchange_wait_stoppable"), FunctionDescriptor.of(
                ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT,
                ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
        STOP_WAIT = linker.downcallHandle(find(lookup, "nsc_exchange_stop_wait"), FunctionDescriptor.ofVoid(ValueLayout.ADDRESS));
        NOTIFY = linker.downcallHandle(find(lookup, "nsc_exchange_notify"), FunctionDescriptor.ofVoid(ValueLayout.ADDRESS));
    }

    private ExchangeNative() {
    }

    private static MemorySegment find(SymbolLookup lookup, String name) {
        return lookup.find(name).orElseThrow(() -> new IllegalStateException(
                "the loaded nativescope shim (" + NativeLibrary.path() + ") has no " + name
                + ": it predates the exchange; use the native-shim jar of the same version"));
    }

    /** nsc_exchange_wait; call it through NativeCall.invoke. */
    static int await(MemorySegment context, MemorySegment header, int expected, long timeoutNanos, long livenessNanos)
            throws Throwable {
        return (int) WAIT.invokeExact(context, header, expected, timeoutNanos, livenessNanos);
    }

    /** nsc_exchange_wait_stoppable: the wait without a context, ended by {@link #stopWait} on {@code stopWord}. */
    static int awaitStoppable(MemorySegment header, int expected, MemorySegment stopWord, int stopSeen, long timeoutNanos,
                              long livenessNanos) {
        try {
            return (int) WAIT_STOPPABLE.invokeExact(header, expected, stopWord, stopSeen, timeoutNanos, livenessNanos);
        } catch (Throwable e) {
            throw new IllegalStateException("nsc_exchange_wait_stoppable failed: " + e, e);
        }
    }

    /** nsc_exchange_stop_wait: stopWord += 1 (seq_cst) and FUTEX_WAKE_PRIVATE, from any thread. */
    static void stopWait(MemorySegment stopWord) {
        try {
            STOP_WAIT.invokeExact(stopWord);
        } catch (Throwable e) {
            throw new IllegalStateException("nsc_exchange_stop_wait failed: " + e, e);
        }
    }

    /** nsc_exchange_notify: notify += 1 (seq_cst) and FUTEX_WAKE on the shared mapping. */
    static void notify(MemorySegment header) {
        try {
            NOTIFY.invokeExact(header);
        } catch (Throwable e) {
            throw new IllegalStateException("nsc_exchange_notify failed: " + e, e);
        }
    }
}
