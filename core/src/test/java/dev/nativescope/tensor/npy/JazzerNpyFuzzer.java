package dev.nativescope.tensor.npy;

import com.code_intelligence.jazzer.junit.FuzzTest;

/**
 * Coverage-guided fuzzing of the .npy reader with Jazzer (libFuzzer for the JVM). Not part of the
 * normal test run (its name matches neither the default test patterns nor {@code Npy*}): {@code ./run fuzz} runs it with
 * {@code JAZZER_FUZZ=1}, the kept corpus {@code src/test/resources/fuzz/npy/} as seeds, and
 * {@code -Djazzer.max_duration} as the time limit. A finding is a crashing input Jazzer writes
 * next to this class's resources; move it into {@code fuzz/npy/} so every run replays it.
 */
class JazzerNpyFuzzer {
    @FuzzTest(maxDuration = "5m")
    void view(byte[] input) {
        NpyFuzzTarget.checkView(input);
    }
}
