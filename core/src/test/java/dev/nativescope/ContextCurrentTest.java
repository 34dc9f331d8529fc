package dev.nativescope;

import dev.nativescope.reference.ReferencePredictors;

import org.junit.jupiter.api.Test;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Binding a context as {@link Context#current()} for a dynamic scope, on the multi-release layer of
 * the running JDK (a {@code ScopedValue} on 25+, a plain thread-local on 22-24). That
 * {@code StructuredTaskScope} forks see the binding on 25+ is tested in the examples
 * ({@code ContextCurrentInForksTest}), since the scope is a preview API.
 */
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
    void theMultiReleaseLayerMatchingTheJdkIsActive() throws IOException {
        // Surefire runs core's tests on its jar, not on target/classes, where META-INF/versions is ignored.
        boolean scopedValue = Runtime.version().feature() >= 25;
        assertThat(CurrentBinding.mechanism()).isEqualTo(scopedValue ? "ScopedValue" : "ThreadLocal");
        try (InputStream classFile = CurrentBinding.class.getResourceAsStream("CurrentBinding.class")) {
            assertThat(classFile).isNotNull();
            DataInputStream header = new DataInputStream(classFile);
            assertThat(header.readInt()).isEqualTo(0xCAFEBABE);
            header.readUnsignedShort(); // minor
            assertThat(header.readUnsignedShort()).as("class file major version")
                    .isEqualTo(scopedValue ? 69 : 66); // --release 25 : --release 22
        }
    }

    @Test
    void threadsCreatedInsideTheBindingDoNotSeeIt() throws Exception {
        // Was: they saw it (InheritableThreadLocal). A ScopedValue reaches StructuredTaskScope forks
        // only (the examples' tests); a plain thread-local reaches no other thread.
        Context context = Context.background().withValue(NAME, "not inherited");
        AtomicReference<Context> inPlatformThread = new AtomicReference<>();
        AtomicReference<Context> inVirtualThread = new AtomicReference<>();

        context.call(() -> {
            Thread platform = Thread.ofPlatform().start(() -> inPlatformThread.set(Context.current()));
            Thread virtual = Thread.ofVirtual().start(() -> inVirtualThread.set(Context.current()));
            platform.join();
            virtual.join();
            return null;
        });

        assertThat(inPlatformThread).hasValue(Context.background());
        assertThat(inVirtualThread).hasValue(Context.background());
    }

    @Test
    void aThreadPerTaskExecutorCreatedInsideTheBindingDoesNotSeeIt() throws Exception {
        // Was: it saw it. Only a StructuredTaskScope's forks inherit, and they cannot outlive the binding.
        Context context = Context.background().withValue(NAME, "executor");
        Context seen = context.call(() -> {
            try (ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor()) {
                return executor.submit(Context::current).get();
            }
        });
        assertThat(seen).isSameAs(Context.background());
    }

    @Test
    void aThreadCreatedInsideTheBindingDoesNotSeeItDuringNorAfterIt() throws Exception {
        // Was: it kept the binding for life (the copy an InheritableThreadLocal makes at thread creation).
        Context context = Context.background().withValue(NAME, "copied");
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try {
            Context during = context.call(() -> pool.submit(Context::current).get()); // creates the worker
            assertThat(during).isSameAs(Context.background());
            assertThat(Context.current()).isSameAs(Context.background());
            assertThat(pool.submit(Context::current).get()).isSameAs(Context.background());
        } finally {
            pool.shutdown();
        }
    }

    @Test
    void aThreadStartedInsideTheBindingAndRunningPastItNeverSeesIt() throws Exception {
        Context context = Context.background().withValue(NAME, "outlived");
        CountDownLatch bindingEnded = new CountDownLatch(1);
        AtomicReference<Context> duringBinding = new AtomicReference<>();
        AtomicReference<Context> afterBinding = new AtomicReference<>();
        Thread thread = context.call(() -> Thread.ofVirtual().start(() -> {
            duringBinding.set(Context.current());
            try {
                bindingEnded.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            afterBinding.set(Context.current());
        }));
        bindingEnded.countDown();
        thread.join();
        assertThat(duringBinding).hasValue(Context.background());
        assertThat(afterBinding).hasValue(Context.background());
    }

    /** Each kind of thread binds nested contexts itself, and sees none of them once they end. */
    @Test
    void aBindingNeverSurvivesItsScopeInAnyThread() throws Exception {
        Context outer = Context.background().withValue(NAME, "outer");
        Context inner = outer.withValue(NAME, "inner");
        Callable<List<Context>> nested = () -> {
            List<Context> seen = new ArrayList<>();
            seen.add(Context.current());
            outer.run(() -> {
                seen.add(Context.current());
                inner.run(() -> seen.add(Context.current()));
                seen.add(Context.current());
            });
            seen.add(Context.current());
            return seen;
        };
        List<Context> expected = List.of(Context.background(), outer, inner, outer, Context.background());

        assertThat(nested.call()).as("this thread").isEqualTo(expected);
        assertThat(inThread(Thread.ofPlatform(), nested)).as("a platform thread").isEqualTo(expected);
        assertThat(inThread(Thread.ofVirtual(), nested)).as("a virtual thread").isEqualTo(expected);
        ExecutorService pool = Executors.newFixedThreadPool(1);
        try {
            for (int task = 0; task < 3; task++) { // the same worker each time: nothing carried over
                assertThat(pool.submit(nested).get()).as("pooled task %d", task).isEqualTo(expected);
            }
        } finally {
            pool.shutdown();
            assertThat(pool.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
        }
    }

    /**
     * Many threads (platform, virtual and pooled) bind and unbind nested contexts in random order,
     * with call and run, some operations throwing: each always sees its own innermost binding, and
     * background once all have ended.
     */
    @Test
    void randomNestedBindingsInManyThreadsEachSeeTheirInnermost() throws Exception {
        long seed = Long.getLong("nsc.stress.seed", System.nanoTime());
        int threads = 12;
        int operationsPerThread = 10_000;
        ExecutorService pool = Executors.newFixedThreadPool(2);
        List<Future<?>> workers = new ArrayList<>();
        try {
            for (int t = 0; t < threads; t++) {
                Random random = new Random(seed + t);
                Runnable worker = () -> {
                    assertThat(Context.current()).isSameAs(Context.background());
                    Deque<Context> stack = new ArrayDeque<>();
                    for (int op = 0; op < operationsPerThread; ) {
                        op += nestRandomly(random, stack, 0);
                        assertThat(stack).isEmpty();
                        assertThat(Context.current()).isSameAs(Context.background());
                    }
                };
                workers.add(switch (t % 3) {
                    case 0 -> CompletableFuture.runAsync(worker, Thread.ofPlatform()::start);
                    case 1 -> CompletableFuture.runAsync(worker, Thread.ofVirtual()::start);
                    default -> pool.submit(worker);
                });
            }
            for (Future<?> worker : workers) {
                try {
                    worker.get(60, TimeUnit.SECONDS);
                } catch (ExecutionException e) {
                    throw new AssertionError("seed " + seed + " (-Dnsc.stress.seed=" + seed + ")", e.getCause());
                }
            }
        } finally {
            pool.shutdown();
            assertThat(pool.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
        }
    }

    /**
     * Binds a fresh child of the innermost context, checks it is current, recurses a random number
     * of times, and checks the outer binding is back afterwards (also after a throw).
     *
     * @return how many bindings were made
     */
    private static int nestRandomly(Random random, Deque<Context> stack, int depth) {
        Context expectedOuter = stack.isEmpty() ? Context.background() : stack.peek();
        assertThat(Context.current()).isSameAs(expectedOuter);
        Context context = expectedOuter.withValue(NAME, "depth-" + depth);
        boolean throwAtEnd = random.nextInt(8) == 0;
        int[] made = {1};
        Runnable body = () -> {
            stack.push(context);
            try {
                assertThat(Context.current()).isSameAs(context);
                int children = depth >= 6 ? 0 : random.nextInt(3);
                for (int child = 0; child < children; child++) {
                    made[0] += nestRandomly(random, stack, depth + 1);
                    assertThat(Context.current()).isSameAs(context);
                }
            } finally {
                stack.pop();
            }
            if (throwAtEnd) {
                throw new IllegalStateException("planned");
            }
        };
        try {
            if (random.nextBoolean()) {
                context.run(body);
            } else {
                context.call(() -> {
                    body.run();
                    return null;
                });
            }
        } catch (IllegalStateException planned) {
            assertThat(throwAtEnd).isTrue();
        }
        assertThat(Context.current()).isSameAs(expectedOuter);
        return made[0];
    }

    private static <T> T inThread(Thread.Builder builder, Callable<T> task) throws Exception {
        AtomicReference<T> result = new AtomicReference<>();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread thread = builder.start(() -> {
            try {
                result.set(task.call());
            } catch (Throwable e) {
                failure.set(e);
            }
        });
        thread.join();
        if (failure.get() != null) {
            throw new AssertionError("in " + thread, failure.get());
        }
        return result.get();
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

    /**
     * Issue 14's leak: a cached pool thread created while request 1's context was bound later ran
     * an unrelated task whose {@code Context.current()} was request 1's closed context, so its
     * native call failed with "the context was closed by its owner".
     */
    @Test
    void aPooledThreadCreatedUnderARequestNeverSeesItLater() throws Exception {
        ExecutorService pool = Executors.newCachedThreadPool();
        try {
            CancellableContext request1 = Context.background().withCancel();
            // The pool has no thread yet: this submit creates its worker inside request 1's binding.
            Thread worker = request1.call(() -> pool.submit(Thread::currentThread).get());
            request1.close();
            // Idle means parked in the pool's queue with its keep-alive: then the next task is its.
            long idleBy = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (worker.getState() != Thread.State.TIMED_WAITING) {
                assertThat(System.nanoTime() - idleBy).as("the worker goes idle").isNegative();
                Thread.onSpinWait();
            }

            Future<Context> unrelated = pool.submit(() -> {
                assertThat(Thread.currentThread()).as("the same pooled thread").isSameAs(worker);
                Context current = Context.current();
                ReferencePredictors.noop(current); // throws if current is request 1's closed context
                return current;
            });

            assertThat(unrelated.get()).as("Context.current() in an unrelated pooled task")
                    .isSameAs(Context.background());
        } finally {
            pool.shutdown();
            assertThat(pool.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
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
