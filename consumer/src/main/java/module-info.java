/** A consumer of nativescope, as a user writes one: its own module, its own native library. */
module com.example.consumer {
    requires dev.nativescope.core;
    // Main's first native call is one of nativescope's bindings (its load hook loads the shim).
    requires dev.nativescope.bindings;
}
