/**
 * nativescope exchange: zero-copy tensors shared between processes through a memory-mapped file
 * (normally under {@code /dev/shm}), one producer and any number of consumers, in Java, C
 * ({@code nsc_exchange.h} of the shim) and Python ({@code META-INF/python/nativescope_exchange.py}).
 * See {@link dev.nativescope.exchange.TensorExchange}.
 *
 * <p>The module makes restricted FFM calls (downcalls into the shim): run with
 * {@code --enable-native-access=dev.nativescope.exchange,dev.nativescope.core,dev.nativescope.bindings}
 * (or {@code ALL-UNNAMED} on the class path).
 */
module dev.nativescope.exchange {
    requires transitive dev.nativescope.core;

    exports dev.nativescope.exchange;
}
