package dev.nativescope;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Binding a context as {@link Context#current()} for a dynamic scope. */
class ContextCurrentTest {
    private static final ContextKey<String> NAME = ContextKey.ofString("name");

    @Test
    void currentIsBackgroundWithoutBinding() throws InterruptedException {
        assertThat(Context.current()).isSameAs(Context.background());
        AtomicReference<Context> inFreshThread = new AtomicReference<>();
        Thread thread = Thread.ofPlatform().start(() -> inFreshThread.set(Context.current()));
        thread.join();
        assertThat(inFreshThread).hasValue(Context.background());
    }

    @Test
    void callBindsForItsExtentAndRestores() {
        Context context = Context.background().withValue(NAME, "a");

        String result = context.call(() -> {
            assertThat(Context.current()).isSameAs(context);
            return "result";
        });

        assertThat(result).isEqualTo("result");
        assertThat(Context.current()).isSameAs(Context.background());
    }

    @Test
    void runBindsForItsExtentAndRestores() {
        Context context = Context.background().withValue(NAME, "a");
        AtomicReference<Context> seen = new AtomicReference<>();

        context.run(() -> seen.set(Context.current()));

        assertThat(seen).hasValue(context);
        assertThat(Context.current()).isSameAs(Context.background());
    }

    @Test
    void bindingIsRestoredWhenTheOperationThrows() {
        Context outer = Context.background().withValue(NAME, "outer");
        Context inner = outer.withValue(NAME, "inner");
        IOException failure = new IOException("disk");

        outer.run(() -> {
            assertThatThrownBy(() -> inner.call(() -> {
                throw failure;
            })).isSameAs(failure);
            assertThat(Context.current()).isSameAs(outer);
            assertThatThrownBy(() -> inner.run(() -> {
                throw new IllegalStateException("unchecked");
            })).isInstanceOf(IllegalStateException.class);
            assertThat(Context.current()).isSameAs(outer);
        });
        assertThat(Context.current()).isSameAs(Context.background());
    }

    @Test
    void checkedExceptionTypeIsPassedThrough() {
        Context context = Context.background();
        // Compiles only because call() declares the op's exception type, not Throwable.
        IOException caught = null;
        try {
            context.<Void, IOException>call(() -> {
                throw new IOException("typed");
            });
        } catch (IOException expected) {
            caught = expected;
        }
        assertThat(caught).hasMessage("typed");
    }

    @Test
    void callsNest() {
        Context first = Context.background().withValue(NAME, "first");
        Context second = first.withValue(NAME, "second");

        first.run(() -> {
            second.run(() -> {
                assertThat(Context.current()).isSameAs(second);
                first.run(() -> assertThat(Context.current()).isSameAs(first));
                assertThat(Context.current()).isSameAs(second);
            });
            assertThat(Context.current()).isSameAs(first);
        });
        assertThat(Context.current()).isSameAs(Context.background());
    }

    @Test
    void bindingIsSeenInThreadsCreatedInsideTheScope() throws Exception {
        Context context = Context.background().withValue(NAME, "inherited");
        AtomicReference<Context> inPlatformThread = new AtomicReference<>();
        AtomicReference<Context> inVirtualThread = new AtomicReference<>();

        context.call(() -> {
            Thread platform = Thread.ofPlatform().start(() -> inPlatformThread.set(Context.current()));
            Thread virtual = Thread.ofVirtual().start(() -> inVirtualThread.set(Context.current()));
            platform.join();
            virtual.join();
            return null;
        });

        assertThat(inPlatformThread).hasValue(context);
        assertThat(inVirtualThread).hasValue(context);
    }

    @Test
    void bindingIsSeenInAThreadPerTaskExecutorCreatedInsideTheScope() throws Exception {
        // What a StructuredTaskScope does: a new (virtual) thread per subtask, created in the scope.
        Context context = Context.background().withValue(NAME, "forked");
        Context seen = context.call(() -> {
            try (ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor()) {
                return executor.submit(Context::current).get();
            }
        });
        assertThat(seen).isSameAs(context);
    }

    @Test
    void bindingIsNotSeenInThreadsCreatedAfterTheScope() throws InterruptedException {
        Context context = Context.background().withValue(NAME, "gone");
        context.run(() -> { });
        AtomicReference<Context> seen = new AtomicReference<>();

        Thread later = Thread.ofVirtual().start(() -> seen.set(Context.current()));
        later.join();

        assertThat(seen).hasValue(Context.background());
    }

    @Test
    void aThreadCreatedInsideTheScopeKeepsTheBindingAfterIt() throws Exception {
        // The documented difference to a ScopedValue: inheritance is a copy made at thread creation.
        Context context = Context.background().withValue(NAME, "copied");
        ExecutorService pool = context.call(() -> {
            ExecutorService created = Executors.newSingleThreadExecutor();
            created.submit(() -> { }).get(); // the worker thread is created here, inside the scope
            return created;
        });
        try {
            assertThat(Context.current()).isSameAs(Context.background());
            assertThat(pool.submit(Context::current).get()).isSameAs(context);
        } finally {
            pool.shutdown();
        }
    }

    @Test
    void bindingInAnotherThreadDoesNotLeakIntoThisOne() throws InterruptedException {
        Context context = Context.background().withValue(NAME, "elsewhere");
        AtomicReference<Context> seen = new AtomicReference<>();
        Thread thread = Thread.ofPlatform().start(() -> context.run(() -> seen.set(Context.current())));
        thread.join();
        assertThat(seen).hasValue(context);
        assertThat(Context.current()).isSameAs(Context.background());
    }

    @Test
    void doneContextsCanBeBound() {
        CancellableContext context = Context.background().withCancel();
        context.cancel();
        context.run(() -> assertThat(Context.current().isDone()).isTrue());
    }

    @Test
    void nullOperationsAreRejected() {
        assertThatThrownBy(() -> Context.background().run(null))
                .isInstanceOf(NullPointerException.class).hasMessage("op");
        assertThatThrownBy(() -> Context.background().call(null))
                .isInstanceOf(NullPointerException.class).hasMessage("op");
    }
}
