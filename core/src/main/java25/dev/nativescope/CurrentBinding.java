package dev.nativescope;

/**
 * The binding behind {@link Context#current()} on JDK 25 and newer: a {@link ScopedValue} (final
 * in 25, JEP 506), compiled with {@code --release 25} into the jar's {@code META-INF/versions/25}.
 * It replaces the base class of the same name ({@code src/main/java}, a plain thread-local for 22
 * to 24) and has the same members.
 *
 * <p>A {@code ScopedValue} binding has the semantics {@link Context#call(Context.CallableOp)}
 * promises: it lasts exactly as long as the call, nested bindings shadow and then restore the
 * outer one, the threads a {@code StructuredTaskScope} forks inside it inherit it (and cannot
 * outlive it, since the scope joins them first), and no other thread ever sees it, whether it was
 * created inside the binding or not.
 *
 * <p>Threading: each thread sees only its own bindings and those its structured parent scope
 * gave it; a binding is immutable while in place.
 */
final class CurrentBinding {

    private static final ScopedValue<Context> BOUND = ScopedValue.newInstance();

    private CurrentBinding() {
    }

    /**
     * {@return how the binding is carried, {@code "ScopedValue"} here} For tests and diagnostics; a
     * method, not a constant, so that callers compiled against either layer never inline it.
     */
    static String mechanism() {
        return "ScopedValue";
    }

    /** @return the context bound in this thread, or {@link Context#background()} when none is */
    static Context get() {
        // One lookup (isBound() then get() would be two); orElse rejects null, hence background.
        return BOUND.orElse(Context.background());
    }

    /** Runs {@code op} with {@code context} bound in this thread, then restores the previous binding. */
    static <T, X extends Throwable> T call(Context context, Context.CallableOp<? extends T, X> op) throws X {
        return ScopedValue.where(BOUND, context).call(op::call);
    }

    /** Like {@link #call}, for a {@link Runnable}. */
    static void run(Context context, Runnable op) {
        ScopedValue.where(BOUND, context).run(op);
    }
}
