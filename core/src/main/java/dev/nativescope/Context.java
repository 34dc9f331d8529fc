package dev.nativescope;

import dev.nativescope.internal.access.FieldHandles;
import dev.nativescope.internal.access.SharedAccess;
import dev.nativescope.internal.time.SaturatingTime;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.atomic.AtomicLong;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.SequencedMap;
import java.util.Set;
import java.util.concurrent.CancellationException;

/**
 * A context carries a cancellation signal, a deadline and request values across API boundaries,
 * into other threads and into native code; the Java counterpart of Go's {@code context.Context}.
 *
 * <p>A {@code Context} is an immutable view: it can be observed ({@link #isDone()},
 * {@link #cause()}, {@link #deadline()}, {@link #value(ContextKey)}) and derived from, but not
 * cancelled. Cancelling is reserved to whoever derived a {@link CancellableContext} with
 * {@link #withCancel()}, {@link #withTimeout(Duration)} or {@link #withDeadline(Instant)}, so a
 * context can be handed to code that must follow it but not end it.
 * {@snippet :
 * try (CancellableContext request = Context.current().withTimeout(Duration.ofMillis(200))) {
 *     Context withId = request.withValue(REQUEST_ID, id);
 *     return withId.call(() -> predictor.predict(input));   // predict() reads Context.current()
 * }
 * }
 *
 * <h2>The tree</h2>
 * Contexts form a tree rooted at {@link #background()}, which is never done. A context is done
 * when it was cancelled, when its deadline passed, or when its parent became done; then it stays
 * done, and its {@linkplain #cause() cause} never changes:
 * <ul>
 * <li>cancelling a context cancels all its descendants, each with the same cause object;</li>
 * <li>a child never cancels its parent;</li>
 * <li>a child's effective deadline is the earlier of its own and its parent's;</li>
 * <li>a child derived from a context that is already done is done at once, with that cause;</li>
 * <li>a {@link CancellableContext} stays linked to its nearest cancellable ancestor only while
 *     both are live: once done it is unlinked, so short-lived children of a long-lived context
 *     leave nothing behind. A live child that is never cancelled, however, stays linked until its
 *     ancestor is done: close every {@code CancellableContext} you create.</li>
 * </ul>
 * A context derived with {@link #withValue(ContextKey, Object)} adds a value and nothing else: it
 * is done exactly when its parent is, with the same cause and deadline.
 *
 * <h2>The current context</h2>
 * {@link #call(CallableOp)} and {@link #run(Runnable)} bind a context as {@link #current()} for
 * the extent of an operation; code further down the stack, including the bridge to native code,
 * reads it from there instead of taking it as a parameter. Bindings nest: the innermost one is
 * current, and the outer one is current again when it ends. A binding never outlives its
 * operation in any thread. Which other threads see it depends on the JDK:
 * <ul>
 * <li>on JDK 25 and newer it is carried by a {@code ScopedValue}: the threads a
 *     {@code StructuredTaskScope} opened inside the binding forks for its subtasks see it (and the
 *     scope ends before the binding does); no other thread does, not one created inside the
 *     binding ({@code new Thread}, a thread pool's worker) either;</li>
 * <li>on JDK 22 to 24, where {@code ScopedValue} is a preview API, it is carried by a plain,
 *     non-inheritable thread-local: only the binding thread sees it, so forks of a
 *     {@code StructuredTaskScope} (itself a preview API there) do not; pass the context to them,
 *     or bind it again in each fork with {@code context.call(...)}.</li>
 * </ul>
 * So, on every JDK, work handed to a thread pool runs under {@link #background()} unless the task
 * binds a context itself: a pooled thread never sees another request's context.
 *
 * <h2>Deadlines</h2>
 * Deadlines are kept in the time base of {@link System#nanoTime()}, which is monotonic, and fired
 * by one shared timer thread, never by a thread per context. As with {@code System.nanoTime()},
 * only differences between values are meaningful; deadlines further than about 146 years away
 * are treated as that far away.
 *
 * <h2>Thread safety</h2>
 * Contexts are safe to share between threads without synchronisation, and every method may be
 * called from any thread. A context usually becomes done in another thread than the ones that
 * follow it: the state read by {@link #isDone()} and {@link #cause()} is published safely, so a
 * thread that sees a context done also sees everything the cancelling thread did before
 * cancelling. A cancellation reaches the descendants of the cancelled context one after the
 * other, in the cancelling thread: for a moment the cancelled context is done while some of its
 * descendants are not yet, but all of them are done before any {@link #onDone(Runnable)} action
 * of that cancellation runs, and before the cancelling call returns. Values are shared as they are: they should be immutable.
 *
 * <p>{@code Context} is sealed: the only subclass is {@link CancellableContext}. Contexts have
 * identity; {@code equals} is identity.
 */
public sealed class Context permits CancellableContext {
    private static final Context BACKGROUND = new Context(null, null, null, 0L, null);

    private static final VarHandle NATIVE_VALUES = FieldHandles.of(MethodHandles.lookup(), "nativeValues", Object.class);
    private static final VarHandle ID = FieldHandles.of(MethodHandles.lookup(), "id", long.class);
    /** The source of {@link #id()}s: drawn on first use, so creating a context costs nothing for it. */
    private static final AtomicLong IDS = new AtomicLong();

    static {
        SharedAccess.CONTEXTS.register(new ContextInternals());
    }

    /** The context this one was derived from; null for background only. */
    final Context parent;
    /** The key this context binds, or null when it binds none (background, cancellable contexts). */
    private final ContextKey<?> key;
    /** The value bound to {@link #key}; null exactly when {@code key} is. */
    private final Object value;
    /**
     * The context whose state this one shows: itself for a {@link CancellableContext}, otherwise its
     * nearest cancellable ancestor; null when there is none, i.e. when this context can never be
     * done. Sharing the ancestor's state is what makes value contexts free: they need no cancel
     * state, no link in the tree and no work when the ancestor is cancelled.
     */
    final CancellableContext stateOwner;
    /** The effective deadline, {@link System#nanoTime()} base; meaningless when {@link #deadline} is null. */
    final long deadlineNanoTime;
    /** The effective deadline on the wall clock, converted once when it was set; null when there is none. */
    final Instant deadline;

    /**
     * The call bridge's native copy of the visible values ({@code dev.nativescope.call.NativeValues},
     * typed {@code Object} so that this package does not depend on the bridge); built on first native use.
     */
    private volatile Object nativeValues;
    /** A number naming this context in diagnostics (dumps, JFR events); 0 until first asked for. */
    @SuppressWarnings("unused") // through ID
    private volatile long id;

    Context(Context parent, ContextKey<?> key, Object value, long deadlineNanoTime, Instant deadline) {
        this.parent = parent;
        this.key = key;
        this.value = value;
        this.deadlineNanoTime = deadlineNanoTime;
        this.deadline = deadline;
        this.stateOwner = this instanceof CancellableContext self ? self : parent == null ? null : parent.stateOwner;
    }

    /**
     * Returns the root context: never done, without deadline, without values. Everything else
     * derives from it.
     *
     * @return the background context
     */
    public static Context background() {
        return BACKGROUND;
    }

    /**
     * Returns the context bound by the innermost enclosing {@link #call(CallableOp)} or
     * {@link #run(Runnable)} in this thread, or, on JDK 25 and newer, in the thread that opened the
     * {@code StructuredTaskScope} this thread was forked by; {@link #background()} when there is
     * none. See "The current context" above.
     *
     * @return the current context, never null
     */
    public static Context current() {
        return CurrentBinding.get();
    }

    /**
     * Derives a child that can be cancelled on its own, with this context's deadline.
     *
     * @return a new cancellable child; close it when done with it
     */
    public CancellableContext withCancel() {
        return CancellableContext.create(this, false, 0L, null);
    }

    /**
     * Derives a child that is cancelled when {@code deadline} passes on the wall clock. The deadline
     * is converted to the monotonic clock now, so later adjustments of the wall clock do not move
     * it. If this context's deadline is earlier, the child keeps that one.
     *
     * @param deadline the wall-clock time at which the child expires; a time in the past makes the
     *                 child expired at once
     * @return a new cancellable child; close it when done with it
     * @throws NullPointerException if {@code deadline} is null
     */
    public CancellableContext withDeadline(Instant deadline) {
        Objects.requireNonNull(deadline, "deadline");
        long now = System.nanoTime();
        // Duration.between cannot overflow for any two Instants (Instant.MIN/MAX included); the
        // conversion to nanoseconds saturates at the horizon.
        long remaining = SaturatingTime.nanosOf(Duration.between(Instant.now(), deadline));
        return CancellableContext.create(this, true, now + remaining, deadline);
    }

    /**
     * Derives a child that is cancelled when {@link System#nanoTime()} reaches {@code nanoTime}. If
     * this context's deadline is earlier, the child keeps that one.
     *
     * @param nanoTime the deadline in the time base of {@code System.nanoTime()}; a value not after
     *                 the current time makes the child expired at once
     * @return a new cancellable child; close it when done with it
     */
    public CancellableContext withDeadlineNanoTime(long nanoTime) {
        // Normalised to within the horizon of now, so that System.nanoTime() + Long.MAX_VALUE (the
        // "no deadline" idiom) stays in the future for the timer, the tree and the native clock alike.
        return CancellableContext.create(this, true, SaturatingTime.normalisedDeadline(nanoTime, System.nanoTime()), null);
    }

    /**
     * Derives a child that is cancelled once {@code timeout} has elapsed from now. If this context's
     * deadline is earlier, the child keeps that one.
     *
     * @param timeout the time the child may live; zero makes the child expired at once
     * @return a new cancellable child; close it when done with it
     * @throws NullPointerException if {@code timeout} is null
     * @throws IllegalArgumentException if {@code timeout} is negative
     */
    public CancellableContext withTimeout(Duration timeout) {
        Objects.requireNonNull(timeout, "timeout");
        if (timeout.isNegative()) {
            throw new IllegalArgumentException("timeout must not be negative: " + timeout);
        }
        long now = System.nanoTime();
        return CancellableContext.create(this, true, now + SaturatingTime.nanosOf(timeout), null);
    }

    /**
     * Derives a child that binds {@code value} to {@code key} and otherwise is this context: done
     * when this context is, with the same cause and deadline. In the child and its descendants,
     * {@code value} shadows whatever an ancestor bound to the same key.
     *
     * @param key the key
     * @param value the value; it should be immutable, since the context is shared between threads
     * @param <T> the type of the value
     * @return a new child; it needs no closing
     * @throws NullPointerException if {@code key} or {@code value} is null
     * @throws ClassCastException if {@code value} is not an instance of {@code key.type()} (possible
     *         only through unchecked casts)
     */
    public <T> Context withValue(ContextKey<T> key, T value) {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(value, "value");
        return new Context(this, key, key.checkedValue(value), deadlineNanoTime, deadline);
    }

    /**
     * Tells whether this context is done: cancelled, expired or closed, directly or through an
     * ancestor. Once it returns {@code true} it always will. Cheap enough to poll in a loop: one
     * volatile read, no allocation.
     *
     * @return whether this context is done
     */
    public boolean isDone() {
        CancellableContext owner = stateOwner;
        return owner != null && owner.cause != null;
    }

    /**
     * Returns why this context is done: the first cause given to the cancellation that reached it, a
     * {@link DeadlineExceededException} when a deadline passed, or a {@link CancellationException}
     * for {@link CancellableContext#cancel()} and {@link CancellableContext#close()}. Descendants
     * cancelled through an ancestor report the ancestor's cause object itself.
     *
     * @return the cause, or null while this context is not done
     */
    public Throwable cause() {
        CancellableContext owner = stateOwner;
        return owner == null ? null : owner.cause;
    }

    /**
     * Tells whether this context is done because a deadline passed, its own or an ancestor's: that
     * is, whether its {@linkplain #cause() cause} is a {@link DeadlineExceededException}.
     *
     * @return whether this context expired
     */
    public boolean isDeadlineExceeded() {
        return cause() instanceof DeadlineExceededException;
    }

    /**
     * Returns the effective deadline (the earliest of this context's and its ancestors') in the time
     * base of {@link System#nanoTime()}.
     *
     * @return the deadline, or empty when there is none
     */
    public OptionalLong deadlineNanoTime() {
        return deadline == null ? OptionalLong.empty() : OptionalLong.of(deadlineNanoTime);
    }

    /**
     * Returns the effective deadline on the wall clock. It was converted once, when the deadline was
     * set (or is the very instant given to {@link #withDeadline(Instant)}); the context expires by
     * the monotonic clock, see {@link #deadlineNanoTime()}.
     *
     * @return the deadline, or empty when there is none
     */
    public Optional<Instant> deadline() {
        return Optional.ofNullable(deadline);
    }

    /**
     * Looks up the value bound to {@code key} by this context or the nearest ancestor that binds it.
     *
     * @param key the key, compared by identity
     * @param <T> the type of the value
     * @return the value, or empty when no context in the chain binds {@code key}
     * @throws NullPointerException if {@code key} is null
     */
    public <T> Optional<T> value(ContextKey<T> key) {
        Objects.requireNonNull(key, "key");
        for (Context context = this; context != null; context = context.parent) {
            if (context.key == key) {
                return Optional.of(key.type().cast(context.value));
            }
        }
        return Optional.empty();
    }

    /**
     * Returns the values visible from this context: every key bound in the chain, with the value of
     * the nearest binding, in the order of that binding from this context upwards (nearest first).
     *
     * @return an unmodifiable snapshot of the visible values
     */
    public SequencedMap<ContextKey<?>, Object> values() {
        LinkedHashMap<ContextKey<?>, Object> visible = new LinkedHashMap<>();
        for (Context context = this; context != null; context = context.parent) {
            if (context.key != null) {
                visible.putIfAbsent(context.key, context.value);
            }
        }
        return Collections.unmodifiableSequencedMap(visible);
    }

    /**
     * Returns the values native code sees: like {@link #values()}, but with each key
     * {@linkplain ContextKey#name() name} at most once, nearest binding first, since native code
     * finds values by name.
     *
     * @return an unmodifiable list of (key, value) pairs with distinct key names, nearest first
     */
    List<Map.Entry<ContextKey<?>, Object>> visibleValues() {
        List<Map.Entry<ContextKey<?>, Object>> visible = null;
        Set<String> names = null;
        for (Context context = this; context != null; context = context.parent) {
            if (context.key == null) {
                continue;
            }
            if (visible == null) {
                visible = new ArrayList<>();
                names = new HashSet<>();
            }
            if (names.add(context.key.name())) {
                visible.add(Map.entry(context.key, context.value));
            }
        }
        return visible == null ? List.of() : Collections.unmodifiableList(visible);
    }

    /**
     * Registers an action to run once this context is done, like Go's {@code context.AfterFunc}.
     *
     * <p>The action runs exactly once, unless {@linkplain Registration#remove() removed} before it
     * starts:
     * <ul>
     * <li>if this context is live, in the thread that makes it done, after the state is set, so
     *     the action sees {@link #isDone()} and {@link #cause()} (and every descendant done as
     *     well); that thread is the shared deadline timer's when a deadline expires;</li>
     * <li>if this context is already done, at once, in the calling thread, before this method
     *     returns (and the returned registration's {@code remove()} then returns {@code false}).</li>
     * </ul>
     * A cancellation runs the actions of the cancelled context first, in the order they were
     * registered, then those of its descendants, level by level from the top (children in the order
     * they were created). Actions delay everything that comes after them in that order (and, on the
     * timer thread, every later deadline): they should be short and must not block.
     *
     * <p>An exception thrown by an action does not stop the other actions nor the cancellation: once
     * all actions of the cancellation have run, each exception is passed to the
     * {@linkplain Thread#getUncaughtExceptionHandler() uncaught exception handler} of the thread that
     * ran it. The same holds when the action runs at once in the calling thread: the exception goes to
     * the handler, it is not thrown from this method.
     *
     * <p>On a context that can never be done (one with no cancellable ancestor), the action is
     * not retained and never runs.
     *
     * @param action the action
     * @return the registration, with which the action can be removed
     * @throws NullPointerException if {@code action} is null
     */
    public Registration onDone(Runnable action) {
        Objects.requireNonNull(action, "action");
        CancellableContext owner = stateOwner;
        return owner == null ? DoneActions.neverRuns() : owner.addDoneAction(action);
    }

    /**
     * An operation run by {@link #call(CallableOp)}: returns a result and may throw a checked
     * exception of type {@code X}, which {@code call} passes on.
     *
     * @param <T> the result type
     * @param <X> the type of checked exception thrown, {@link RuntimeException} if none
     */
    @FunctionalInterface
    public interface CallableOp<T, X extends Throwable> {
        /**
         * Runs the operation.
         *
         * @return the result
         * @throws X if the operation fails
         */
        T call() throws X;
    }

    /**
     * Runs {@code op} with this context bound as {@link #current()} in the calling thread (and, on
     * JDK 25 and newer, in the forks of {@code StructuredTaskScope}s opened inside it), then
     * restores the previous binding, also when {@code op} throws. Calls nest: the innermost binding
     * is current. No other thread sees the binding, not even one created inside it.
     *
     * @param op the operation
     * @param <T> the result type
     * @param <X> the type of checked exception {@code op} may throw
     * @return what {@code op} returned
     * @throws X what {@code op} threw
     * @throws NullPointerException if {@code op} is null
     */
    public <T, X extends Throwable> T call(CallableOp<? extends T, X> op) throws X {
        Objects.requireNonNull(op, "op");
        return CurrentBinding.call(this, op);
    }

    /**
     * Runs {@code op} with this context bound as {@link #current()}, like {@link #call(CallableOp)}.
     *
     * @param op the operation
     * @throws NullPointerException if {@code op} is null
     */
    public void run(Runnable op) {
        Objects.requireNonNull(op, "op");
        CurrentBinding.run(this, op);
    }

    /** The native copy of this context's values, or null before it is first handed to native code. */
    Object nativeValues() {
        return nativeValues;
    }

    /** Installs the native copy of this context's values; see {@code NativeValues.holdFor(Context)}. */
    boolean casNativeValues(Object expected, Object replacement) {
        return NATIVE_VALUES.compareAndSet(this, expected, replacement);
    }

    /**
     * Returns a description for diagnostics: the kind of context, whether it is done and why, its
     * deadline, and the names of its visible values (not the values, which may be sensitive).
     *
     * @return a description of this context
     */
    @Override
    public String toString() {
        if (this == BACKGROUND) {
            return "Context.background()";
        }
        StringBuilder description = new StringBuilder(getClass().getSimpleName()).append('[');
        Throwable cause = cause();
        if (cause != null) {
            description.append("done: ").append(cause);
        } else {
            description.append(stateOwner == null ? "never done" : "live");
        }
        if (deadline != null) {
            description.append(", deadline ").append(deadline);
        }
        Set<ContextKey<?>> keys = values().keySet();
        if (!keys.isEmpty()) {
            description.append(", values ").append(keys.stream().map(ContextKey::name).toList());
        }
        return description.append(']').toString();
    }

    /**
     * {@return a number, unique in this JVM, that names this context in diagnostics}: drawn from a
     * counter on first use, then stable. Thread-safe (a racing first use agrees by compare-and-set).
     */
    long id() {
        long current = (long) ID.getAcquire(this);
        if (current != 0) {
            return current;
        }
        long fresh = IDS.incrementAndGet();
        return ID.compareAndSet(this, 0L, fresh) ? fresh : (long) ID.getAcquire(this);
    }

    /** {@return the key this context binds, or null when it binds none} */
    ContextKey<?> boundKey() {
        return key;
    }

    /** Converts a deadline in the {@link System#nanoTime()} base to the wall clock, as of now. */
    static Instant wallClockOf(long deadlineNanoTime) {
        return Instant.now().plusNanos(SaturatingTime.clampToHorizon(deadlineNanoTime - System.nanoTime()));
    }

    /**
     * Checks the effective deadline against the clock and, when it has passed but the timer has not
     * fired yet, fires the expiry now, in this thread, so that {@link #isDone()} and {@link #cause()}
     * agree with what native code, which reads the clock itself, reports. Every entry into native
     * code calls this; the timer remains what fires deadlines nobody checks.
     *
     * @return true when this context is done (for whatever reason) after the check
     */
    boolean expireIfDue() {
        CancellableContext owner = stateOwner;
        return owner != null && owner.expireIfDue();
    }
}
