package dev.nativescope.library;

import java.nio.file.Path;

/** Main class of a child JVM of {@code UserLibraryTest}: loads a library that needs the shim before the shim. */
public final class UserLibraryOrderProbe {
    private UserLibraryOrderProbe() {
    }

    public static void main(String[] args) {
        try {
            UserLibrary.loadWithoutShim(Path.of(args[0]));
            System.out.println("PROBE-LOADED");
        } catch (RuntimeException e) {
            System.out.println("PROBE-FAILED " + e.getClass().getName() + ": " + e.getMessage());
            System.exit(3);
        }
    }
}
