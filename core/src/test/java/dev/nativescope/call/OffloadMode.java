package dev.nativescope.call;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

import org.junit.jupiter.api.Tag;

/**
 * Marks a test class that the surefire execution {@code offload-mode} (in {@code core/pom.xml}, and
 * in {@code examples/pom.xml}, which takes this class from core's test jar) runs a second time with
 * every bridged call offloaded ({@code -Dnativescope.callMode=OFFLOAD}, see {@link CallMode#PROPERTY}).
 * The execution selects its suites by this annotation's JUnit tag ({@code <groups>}), not by file
 * names: a command-line {@code -Dtest} replaces surefire's includes but not its groups, so
 * {@code -Dtest=X} runs X offloaded only when X carries this annotation (the filter intersected with
 * the tagged suites) instead of running whatever {@code -Dtest} names offloaded.
 *
 * <p>Put it on a class whose tests hold in both modes. A test that asserts what only an inline call
 * shows (the calling thread's own native state, the thread a downcall runs on, pinning) states that
 * with {@link Run#assumeInline(String)}, which names the mode in the skip reason. Threading: an
 * annotation and static helpers without state.
 */
@Documented
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.TYPE)
@Tag(OffloadMode.TAG)
public @interface OffloadMode {
    /** The JUnit tag of the suites the {@code offload-mode} execution runs (its {@code <groups>} in core/pom.xml). */
    String TAG = "offload-mode";

    /** Static helpers of the mode. Threading: stateless. */
    final class Run {
        private Run() {
        }

        /** {@return whether this test JVM forces bridged calls that leave the choice to nativescope offloaded} */
        public static boolean forcedOffload() {
            return CallMode.FORCED == CallMode.OFFLOAD;
        }

        /**
         * Skips the calling test when {@code -Dnativescope.callMode=OFFLOAD} is set: it asserts
         * {@code what}, which only a call on the calling thread shows.
         */
        public static void assumeInline(String what) {
            org.junit.jupiter.api.Assumptions.assumeFalse(forcedOffload(),
                    () -> "inline-only under -D" + CallMode.PROPERTY + "=OFFLOAD (offload mode): " + what);
        }
    }
}
