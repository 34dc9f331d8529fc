package dev.nativescope.examples;

import dev.nativescope.Context;
import dev.nativescope.ContextKey;

import java.util.concurrent.StructuredTaskScope;

/**
 * Checks, in the JVM it runs in, that a {@link StructuredTaskScope} fork sees the binding of
 * {@link Context#call}: true on JDK 25 only when nativescope-core's multi-release layer is in use,
 * which a repackaged (shaded) jar loses unless its manifest keeps {@code Multi-Release: true}.
 * {@code ./run test} runs it on the shaded demo jar; exit status 0 when forks see the binding.
 *
 * <p>Threading: the main thread binds, one fork reads.
 */
public final class ForkBindingCheck {
    private static final ContextKey<String> PROBE = ContextKey.ofString("fork-binding-check");

    private ForkBindingCheck() {
    }

    public static void main(String[] args) throws Exception {
        String seen = Context.background().withValue(PROBE, "bound").call(() -> {
            try (var scope = StructuredTaskScope.open()) {
                StructuredTaskScope.Subtask<String> fork =
                        scope.fork(() -> Context.current().value(PROBE).orElse("not bound"));
                scope.join();
                return fork.get();
            }
        });
        if (!"bound".equals(seen)) {
            System.err.println("a StructuredTaskScope fork did not see Context.current() (it saw: " + seen + "): the jar"
                    + " holding dev.nativescope.Context was used without its JDK 25 layer; check that its manifest"
                    + " has Multi-Release: true");
            System.exit(1);
        }
        System.out.println("forks see the current context (" + Runtime.version() + ")");
    }
}
