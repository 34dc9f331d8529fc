package dev.nativescope.testing;

import dev.nativescope.NativeLibrary;

/** Main class run in a child JVM by {@code LibraryLoaderTest}: loads the library and prints the outcome. */
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
