package dev.nativescope.examples.soak;

/** Thrown by checks; counted as a violation by the worker loop. */
final class Violation extends RuntimeException {
    Violation(String message) {
        super(message);
    }
}
