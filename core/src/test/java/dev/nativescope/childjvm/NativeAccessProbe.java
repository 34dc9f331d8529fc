package dev.nativescope.childjvm;

import dev.nativescope.library.NativeLibrary;

/**
 * Main class run in a child JVM by {@code LibraryLoaderTest}: loads the library and prints the outcome.
 * In a package of no nativescope module (nor of the testing module's jar), so that it loads from the class
 * path while core is on the module path.
 */
public final class NativeAccessProbe {
    private NativeAccessProbe() {
    }

    public static void main(String[] args) {
        try {
            NativeLibrary.load();
            System.out.println("PROBE-LOADED abi=" + NativeLibrary.abiVersion());
        } catch (RuntimeException e) {
            System.out.println("PROBE-FAILED " + e.getClass().getName() + ": " + e.getMessage());
            System.exit(3);
        }
    }
}
