package dev.nativescope.call;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.AfterTestExecutionCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.ExtensionContext;

import java.util.concurrent.atomic.AtomicInteger;

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
 * with {@link Run#assumeInline(String)}, which names the mode in the skip reason.
 *
 * <p>The offloaded run checks itself ({@link Check}): a class whose tests ran under
 * {@code -Dnativescope.callMode=OFFLOAD} without a single call handed to a native thread fails, so a
 * suite cannot drift back to inline-only paths (confined arenas, inline-only entries) while still
 * counting as covered. Threading: an annotation, static helpers without state, and an extension
 * whose per-class state lives in JUnit's store.
 */
@Documented
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.TYPE)
@Tag(OffloadMode.TAG)
@ExtendWith(OffloadMode.Check.class)
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

    /**
     * Fails a class that ran tests offloaded without handing a single call to a native thread.
     * Threading: JUnit calls it on the thread that runs the class; its state is per class, in the store.
     */
    final class Check implements BeforeAllCallback, AfterTestExecutionCallback, AfterAllCallback {
        private static final ExtensionContext.Namespace NAMESPACE = ExtensionContext.Namespace.create(Check.class);

        @Override
        public void beforeAll(ExtensionContext context) {
            context.getStore(NAMESPACE).put("handoffs", NativeThreadPool.handoffsAccepted());
            context.getStore(NAMESPACE).put("ran", new AtomicInteger());
        }

        @Override
        public void afterTestExecution(ExtensionContext context) {
            if (context.getExecutionException().isEmpty()) { // passed: not skipped by an assumption, not failed
                context.getStore(NAMESPACE).get("ran", AtomicInteger.class).incrementAndGet();
            }
        }

        @Override
        public void afterAll(ExtensionContext context) {
            if (!Run.forcedOffload()) {
                return;
            }
            int ran = context.getStore(NAMESPACE).get("ran", AtomicInteger.class).get();
            long handoffs = NativeThreadPool.handoffsAccepted() - context.getStore(NAMESPACE).get("handoffs", Long.class);
            if (ran > 0 && handoffs == 0) {
                throw new AssertionError(context.getDisplayName() + " passed " + ran + " tests under -D" + CallMode.PROPERTY
                        + "=OFFLOAD without handing one call to a native thread: it no longer tests offloaded calls."
                        + " Pass segments a native thread can use (shared or automatic arenas, NativeThreads.arenaForCall)"
                        + " and the entries that offload, or remove @OffloadMode");
            }
        }
    }
}
