/**
 * Carries {@code libnativescope.so} under {@code META-INF/native/<os>-<arch>/} and its public header
 * under {@code META-INF/native/include/}. It has no classes: {@code dev.nativescope.core} requires it
 * so that the library travels with the API on the module path as well as on the class path.
 */
module dev.nativescope.nativeshim {
}
