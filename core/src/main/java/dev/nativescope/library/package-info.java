/**
 * The native library: {@link dev.nativescope.library.NativeLibrary} loads {@code libnativescope.so}
 * from the native-shim jar (or a configured path) and checks its ABI and native access,
 * failing with a {@link dev.nativescope.library.NativeLibraryException} that says what to do;
 * {@link dev.nativescope.library.NativeStatus} names the statuses every {@code nsc_} function
 * returns, and {@link dev.nativescope.library.NativeStatusException} is thrown for the errors.
 *
 * <p>Uses the bindings and the JDK; every other package of the core that touches native code uses it.
 */
package dev.nativescope.library;
