package dev.nativescope;

/**
 * The binding behind {@link Context#current()} on JDK 22 to 24: a plain {@link ThreadLocal}, set
 * and restored around each {@link Context#call(Context.CallableOp)} and {@link Context#run(Runnable)}.
 * The multi-release jar replaces this class on JDK 25 and newer with one backed by a
 * {@code ScopedValue} ({@code META-INF/versions/25}, source in {@code src/main/java25}); both have
 * the same members.
 *
 * <p>Not inheritable, on purpose: an {@link InheritableThreadLocal} copies the binding into every
 * thread created while it is in place, pooled threads included, which keep it for life and later
 * report one request's context to another request's tasks. {@code ScopedValue} (a preview API
 * before 25) is the only mechanism that inherits into forks and nowhere else; without it, no
 * thread but the binding one ever sees a binding.
 *
 * <p>Threading: each thread sees only its own bindings; nothing here is shared between threads.
 */
final class CurrentBinding {

    /** The innermost binding of this thread; null when there is none. */
    private static final ThreadLocal<Context> BOUND = new ThreadLocal<>();

    static {
        // This class on a JDK 25 or newer means the jar's JDK 25 layer was not used: typically a
        // fat jar whose manifest lost "Multi-Release: true". Forks then silently run under the
        // background context (no deadline, no values), so say so once, with the fix.
        if (Runtime.version().feature() >= 25) {
            System.getLogger(Context.class.getName()).log(System.Logger.Level.WARNING,
                    "nativescope runs on JDK " + Runtime.version().feature() + " without its JDK 25 layer, so"
                    + " Context.current() is not seen by StructuredTaskScope forks: the jar on the class path that"
                    + " holds dev.nativescope.Context lacks \"Multi-Release: true\" in its manifest (a shaded or"
                    + " repackaged jar?). Keep that manifest attribute (maven-shade-plugin: a"
                    + " ManifestResourceTransformer with <Multi-Release>true</Multi-Release>)");
        }
    }

    private CurrentBinding() {
    }

    /**
     * {@return how the binding is carried, {@code "ThreadLocal"} here} For tests and diagnostics; a
     * method, not a constant, so that callers compiled against either layer never inline it.
     */
    static String mechanism() {
        return "ThreadLocal";
    }

    /** @return the context bound in this thread, or {@link Context#background()} when none is */
    static Context get() {
        Context bound = BOUND.get();
        return bound != null ? bound : Context.background();
    }

    /** Runs {@code op} with {@code context} bound in this thread, then restores the previous binding. */
    static <T, X extends Throwable> T call(Context context, Context.CallableOp<? extends T, X> op) throws X {
        Context previous = BOUND.get();
        BOUND.set(context);
        try {
            return op.call();
        } finally {
            restore(previous);
        }
    }

    /** Like {@link #call}, for a {@link Runnable}. */
    static void run(Context context, Runnable op) {
        Context previous = BOUND.get();
        BOUND.set(context);
        try {
            op.run();
        } finally {
            restore(previous);
        }
    }

    private static void restore(Context previous) {
        // remove() rather than set(null): a pooled thread that binds once keeps no map entry after.
        if (previous == null) {
            BOUND.remove();
        } else {
            BOUND.set(previous);
        }
    }
}
