/** A consumer of nativescope, as a user writes one: its own module, its own native library. */
module com.example.consumer {
    requires dev.nativescope.core;
}
