package dev.nativescope;

import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.MappedFile;
import dev.nativescope.tensor.Npy;
import dev.nativescope.tensor.SafeTensors;
import dev.nativescope.tensor.Tensor;
import dev.nativescope.testing.ChildJvm;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Faults injected into child JVMs: the process out of file descriptors, a file system that is
 * full, an address space too small for a mapping. Each child performs the operations under the
 * fault, reports what each one did ({@code outcome <name> <ok | exception: message>}), lifts the
 * fault where it can, repeats them, and reports what it still holds; the test asserts a clear
 * exception for each operation the fault must stop, success for those it must not, and no file
 * descriptor, native byte or file left behind.
 */
class FaultInjectionTest {
    private static final String OK = "ok";

    @TempDir
    Path dir;

    @Test
    void outOfFileDescriptors() throws Exception {
        ChildJvm.Result result = ChildJvm.runUnder(List.of("prlimit", "--nofile=512:512", "--"),
                List.of("--enable-native-access=ALL-UNNAMED"), List.of(), FdExhaustion.class.getName(), dir.toString());
        Map<String, String> outcome = outcomes(result);

        assertThat(outcome.get("fill")).as("the filler hits the limit").contains("Too many open files");
        // Pure Java and predictors that poll never need a descriptor.
        assertThat(outcome.get("exhausted.context")).isEqualTo(OK);
        assertThat(outcome.get("exhausted.spin")).isEqualTo(OK);
        // Waiting on the done fd needs one: the call fails, saying so, instead of hanging or losing the cancel.
        assertThat(outcome.get("exhausted.awaitFd")).startsWith("NativeStatusException")
                .contains("NSC_ERR_SYSTEM").contains("file descriptors");
        for (String mapping : List.of("map", "npy", "create")) {
            assertThat(outcome.get("exhausted." + mapping)).as(mapping)
                    .startsWith("FileSystemException").contains("Too many open files");
        }
        assertThat(outcome.get("exhausted.eventfd")).startsWith("UncheckedIOException");
        // One descriptor free: opening works, the channel that needs a second one fails; nothing stays open.
        for (String mapping : List.of("map", "create")) {
            assertThat(outcome.get("oneFree." + mapping)).as(mapping)
                    .startsWith("FileSystemException").contains("Too many open files");
        }
        for (String op : List.of("context", "spin", "awaitFd", "map", "npy", "create", "eventfd")) {
            assertThat(outcome.get("recovered." + op)).as("after the fds are back: " + op).isEqualTo(OK);
        }
        assertThat(outcome.get("leftover.files")).as("files the failed creates left").isEqualTo("[]");
        assertThat(outcome.get("leftover.fds")).as("fds beyond the baseline").isEqualTo("0");
        assertThat(outcome.get("leftover.native")).as("native resources against the baseline").isEqualTo("same");
        assertThat(result.exitCode()).as(result.output()).isZero();
    }

    private static Map<String, String> outcomes(ChildJvm.Result result) {
        System.out.println(result.output()); // kept in the surefire report, for the failure's context
        Map<String, String> outcomes = new LinkedHashMap<>();
        result.output().lines().filter(line -> line.startsWith("outcome ")).forEach(line -> {
            String[] parts = line.split(" ", 3);
            outcomes.put(parts[1], parts.length > 2 ? parts[2] : "");
        });
        assertThat(outcomes).as("child output:%n%s", result.output()).isNotEmpty();
        return outcomes;
    }

    /** Prints the outcome of one operation: "ok", or the exception's simple class name and message. */
    static void report(String name, ThrowingRunnable operation) {
        String outcome;
        try {
            operation.run();
            outcome = OK;
        } catch (Throwable failure) {
            outcome = failure.getClass().getSimpleName() + ": " + String.valueOf(failure.getMessage()).replace('\n', ' ');
        }
        System.out.println("outcome " + name + " " + outcome);
    }

    @FunctionalInterface
    interface ThrowingRunnable {
        void run() throws Throwable;
    }

    static long openFds() throws IOException {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.count();
        }
    }

    static NativeResources settledResources() {
        NativeResources.trimIdle();
        return NativeResources.snapshot();
    }

    /** Child: fills the process's descriptor table, then maps, creates, waits and cancels. */
    static final class FdExhaustion {
        public static void main(String[] args) throws Exception {
            Path dir = Path.of(args[0]);
            Path npy = dir.resolve("input.npy");
            try (Arena arena = Arena.ofConfined()) {
                Npy.create(npy, DType.FLOAT32, new long[] {1024}, false, arena).setDouble(1.5, 3);
            }
            try (EventFd neverSignalled = EventFd.create()) {
                warmUp(dir, npy, neverSignalled);
                Files.delete(dir.resolve("warmup.bin"));
                long fdsBefore = openFds();
                NativeResources before = settledResources();

                List<FileChannel> filler = new ArrayList<>();
                try {
                    report("fill", () -> {
                        while (true) {
                            filler.add(FileChannel.open(Path.of("/dev/null")));
                        }
                    });
                    exercise("exhausted", dir, npy, neverSignalled);
                    filler.removeLast().close();
                    report("oneFree.map", () -> MappedFile.map(npy, MappedFile.Mode.READ_ONLY, Arena.global()));
                    report("oneFree.create", () -> MappedFile.create(dir.resolve("oneFree.bin"), 4096,
                            MappedFile.IfExists.FAIL, Arena.global()));
                } finally {
                    for (FileChannel channel : filler) {
                        channel.close();
                    }
                }
                exercise("recovered", dir, npy, neverSignalled);
                Files.delete(dir.resolve("recovered.bin"));

                try (Stream<Path> files = Files.list(dir)) {
                    System.out.println("outcome leftover.files " + files.map(Path::getFileName).map(Path::toString)
                            .filter(name -> !name.equals("input.npy")).sorted().toList());
                }
                System.out.println("outcome leftover.fds " + (openFds() - fdsBefore));
                NativeResources after = settledResources();
                System.out.println("outcome leftover.native " + (after.equals(before) ? "same" : before + " -> " + after));
            }
        }

        /**
         * Runs every operation to completion once, so that the classes they need are loaded before
         * the descriptors run out: from a class-path directory (as in this build) each class load
         * opens a file, and the JVM remembers a failed resolution for good. From a jar it would not
         * need a descriptor.
         */
        private static void warmUp(Path dir, Path npy, EventFd neverSignalled) {
            report("warmup.spinToTheEnd", () -> ReferencePredictors.spin(Context.background(), Duration.ofMillis(5),
                    stats -> { }));
            report("warmup.waitToTheEnd", () -> ReferencePredictors.awaitFd(Context.background(), neverSignalled.fd(),
                    Duration.ofMillis(5), stats -> { }));
            exercise("warmup", dir, npy, neverSignalled);
        }

        private static void exercise(String phase, Path dir, Path npy, EventFd neverSignalled) {
            report(phase + ".context", () -> {
                try (CancellableContext parent = Context.background().withCancel();
                     CancellableContext child = parent.withTimeout(Duration.ofMinutes(1))) {
                    parent.cancel();
                    if (!child.isDone()) {
                        throw new AssertionError("the child did not see its parent's cancel");
                    }
                }
            });
            report(phase + ".spin", () -> {
                try (CancellableContext context = Context.background().withTimeout(Duration.ofMillis(50))) {
                    ReferencePredictors.spin(context, null, stats -> { });
                    throw new AssertionError("spin returned without its deadline");
                } catch (DeadlineExceededException expected) {
                    // the predictor polled and saw the deadline
                }
            });
            report(phase + ".awaitFd", () -> {
                try (CancellableContext context = Context.background().withTimeout(Duration.ofMillis(20))) {
                    ReferencePredictors.awaitFd(context, neverSignalled.fd(), null, stats -> { });
                    throw new AssertionError("awaitFd returned on an fd nobody signalled");
                } catch (CancellationException expected) {
                    // the deadline woke the wait
                }
            });
            try (Arena arena = Arena.ofConfined()) {
                report(phase + ".map", () -> MappedFile.map(npy, MappedFile.Mode.READ_ONLY, arena));
                report(phase + ".npy", () -> {
                    float value = Npy.map(npy, MappedFile.Mode.READ_ONLY, arena).tensor().getFloat(3);
                    if (value != 1.5f) {
                        throw new AssertionError("read " + value);
                    }
                });
                report(phase + ".create", () -> MappedFile.create(dir.resolve(phase + ".bin"), 1 << 16,
                        MappedFile.IfExists.REPLACE, arena));
            }
            report(phase + ".eventfd", () -> EventFd.create().close());
        }
    }
}
