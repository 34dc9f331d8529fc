package dev.nativescope.examples;

import dev.nativescope.Context;
import dev.nativescope.ContextKey;
import dev.nativescope.examples.NativeWork.Threads;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.StructuredTaskScope;
import java.util.concurrent.StructuredTaskScope.Joiner;
import java.util.concurrent.StructuredTaskScope.Subtask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@link Context#current()} in the forks of a {@link StructuredTaskScope} on JDK 25, where core's
 * multi-release jar carries the binding in a {@code ScopedValue}: forks see the binding they were
 * forked under, nested bindings shadow and restore, and no thread that is not a fork (one started
 * with {@code new Thread}, a pool's worker) sees it, during the binding or after it.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class ContextCurrentInForksTest {
    private static final ContextKey<String> NAME = ContextKey.ofString("name");

    /**
     * The examples get core's jar from the reactor (or the local repository), whose JDK 25 layer
     * is what the other tests here depend on; a class directory would give them the JDK 22 one.
     */
    @Test
    void coresJdk25LayerIsOnTheClassPath() throws IOException {
        assertThat(Context.class.getProtectionDomain().getCodeSource().getLocation().getPath())
                .as("where dev.nativescope.Context comes from").endsWith(".jar");
        try (InputStream classFile = Context.class.getResourceAsStream("CurrentBinding.class")) {
            assertThat(classFile).isNotNull();
            DataInputStream header = new DataInputStream(classFile);
            header.readInt(); // magic
            header.readUnsignedShort(); // minor
            assertThat(header.readUnsignedShort()).as("CurrentBinding's class file major version").isEqualTo(69);
        }
    }

    @ParameterizedTest
    @EnumSource(Threads.class)
    void forksAndTheirForksSeeTheBinding(Threads threads) throws Exception {
        Context request = Context.background().withValue(NAME, "request");

        List<Context> seen = request.call(() -> {
            try (var scope = StructuredTaskScope.open(Joiner.<Context>allSuccessfulOrThrow(), threads::configure)) {
                for (int i = 0; i < 4; i++) {
                    scope.fork(Context::current);
                }
                scope.fork(() -> { // a scope opened in a fork, without binding again
                    try (var inner = StructuredTaskScope.open(Joiner.<Context>allSuccessfulOrThrow(),
                            threads::configure)) {
                        inner.fork(Context::current);
                        return inner.join().findFirst().orElseThrow().get();
                    }
                });
                return scope.join().map(Subtask::get).toList();
            }
        });

        assertThat(seen).hasSize(5).allSatisfy(context -> assertThat(context).isSameAs(request));
        assertThat(Context.current()).isSameAs(Context.background());
    }

    @ParameterizedTest
    @EnumSource(Threads.class)
    void aForksNestedBindingShadowsForItsExtentAndItsForksOnly(Threads threads) throws Exception {
        Context outer = Context.background().withValue(NAME, "outer");
        Map<String, Context> seen = new ConcurrentHashMap<>();

        outer.call(() -> {
            try (var scope = StructuredTaskScope.open(Joiner.<Object>allSuccessfulOrThrow(), threads::configure)) {
                scope.fork(() -> seen.put("sibling", Context.current()));
                scope.fork(() -> {
                    Context inner = Context.current().withValue(NAME, "inner");
                    inner.call(() -> {
                        seen.put("rebinding fork, inside", Context.current());
                        try (var nested = StructuredTaskScope.open(Joiner.<Object>allSuccessfulOrThrow(),
                                threads::configure)) {
                            nested.fork(() -> seen.put("nested fork", Context.current()));
                            return nested.join();
                        }
                    });
                    return seen.put("rebinding fork, after", Context.current());
                });
                scope.join();
            }
            seen.put("owner, after the scope", Context.current());
            return null;
        });

        Context inner = seen.get("nested fork");
        assertThat(inner.value(NAME)).hasValue("inner");
        assertThat(seen).containsEntry("sibling", outer)
                .containsEntry("rebinding fork, inside", inner)
                .containsEntry("rebinding fork, after", outer)
                .containsEntry("owner, after the scope", outer);
        assertThat(Context.current()).isSameAs(Context.background());
    }

    /**
     * Threads a fork creates by other means than a scope do not see its binding, during it nor
     * after it; a pool worker created from a fork later runs unrelated tasks under background.
     */
    @ParameterizedTest
    @EnumSource(Threads.class)
    void threadsAForkCreatesOtherwiseNeverSeeTheBinding(Threads threads) throws Exception {
        Context request = Context.background().withValue(NAME, "request");
        ExecutorService pool = Executors.newFixedThreadPool(1); // its worker is created in the fork below
        try {
            AtomicReference<Thread> worker = new AtomicReference<>();
            Map<String, Context> seen = new ConcurrentHashMap<>();
            request.call(() -> {
                try (var scope = StructuredTaskScope.open(Joiner.<Object>allSuccessfulOrThrow(), threads::configure)) {
                    scope.fork(() -> {
                        seen.put("fork", Context.current());
                        Thread platform = Thread.ofPlatform().start(() -> seen.put("platform", Context.current()));
                        Thread virtual = Thread.ofVirtual().start(() -> seen.put("virtual", Context.current()));
                        platform.join();
                        virtual.join();
                        return pool.submit(() -> {
                            worker.set(Thread.currentThread());
                            return seen.put("pooled, during", Context.current());
                        }).get();
                    });
                    return scope.join();
                }
            });
            Thread later = pool.submit(() -> {
                seen.put("pooled, after", Context.current());
                return Thread.currentThread();
            }).get();

            assertThat(later).as("the same pool worker").isSameAs(worker.get());
            assertThat(seen).containsEntry("fork", request);
            assertThat(seen).containsOnlyKeys("fork", "platform", "virtual", "pooled, during", "pooled, after")
                    .allSatisfy((where, context) -> {
                        if (!where.equals("fork")) {
                            assertThat(context).as(where).isSameAs(Context.background());
                        }
                    });
        } finally {
            pool.shutdown();
            assertThat(pool.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
        }
    }

    @ParameterizedTest
    @EnumSource(Threads.class)
    void forksOfAScopeOpenedAfterTheBindingSeeBackground(Threads threads) throws Exception {
        Context request = Context.background().withValue(NAME, "request");
        request.run(() -> assertThat(Context.current()).isSameAs(request));

        try (var scope = StructuredTaskScope.open(Joiner.<Context>allSuccessfulOrThrow(), threads::configure)) {
            scope.fork(Context::current);
            assertThat(scope.join().map(Subtask::get)).containsExactly(Context.background());
        }
    }
}
