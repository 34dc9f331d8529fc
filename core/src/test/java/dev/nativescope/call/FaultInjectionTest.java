package dev.nativescope.call;

import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.DeadlineExceededException;
import dev.nativescope.reference.EventFd;
import dev.nativescope.reference.ReferencePredictors;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.io.IfExists;
import dev.nativescope.tensor.io.MappedFile;
import dev.nativescope.tensor.npy.Npy;
import dev.nativescope.tensor.safetensors.SafeTensors;
import dev.nativescope.tensor.Tensor;
import dev.nativescope.childjvm.ChildJvm;
import dev.nativescope.diagnostics.Diagnostics;
import dev.nativescope.testing.ProcSelf;

import java.lang.foreign.Arena;
import java.lang.management.ManagementFactory;
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
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import javax.management.ObjectName;

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

    @Test
    void fullFileSystem() throws Exception {
        // A private 4 MiB tmpfs: a mount namespace (and a user namespace, so no root is needed)
        // that only the child sees, mounted over an empty directory. $0 of the script is the directory.
        Path mountPoint = Files.createDirectory(dir.resolve("small-fs"));
        ChildJvm.Result result = ChildJvm.runUnder(List.of("unshare", "--map-root-user", "--mount", "sh", "-c",
                        "mount -t tmpfs -o size=" + FullFileSystem.CAPACITY + " nativescope-test \"$0\" && exec \"$@\"",
                        mountPoint.toString()),
                List.of("--enable-native-access=ALL-UNNAMED"), List.of(), FullFileSystem.class.getName(),
                mountPoint.toString());
        Map<String, String> outcome = outcomes(result);

        assertThat(outcome.get("filesystem")).as("the child runs on the small tmpfs").isEqualTo(OK);
        for (String create : List.of("tooBig.create", "tooBig.npy", "tooBig.safetensors", "full.create",
                "full.grow", "tooBig.replace")) {
            assertThat(outcome.get(create)).as(create).startsWith("FileSystemException")
                    .contains("cannot reserve").contains("No space left on device").contains("free space");
        }
        assertThat(outcome.get("fits.create")).isEqualTo(OK);
        assertThat(outcome.get("fill.create")).isEqualTo(OK);
        assertThat(outcome.get("kept.data")).as("the file written before the failures").isEqualTo(OK);
        assertThat(outcome.get("kept.size")).as("a failed grow leaves the size").isEqualTo(String.valueOf(FullFileSystem.KEPT_BYTES));
        assertThat(outcome.get("replaced.original")).as("a failed REPLACE keeps the old file").isEqualTo(OK);
        // Documented: a sparse file's holes fault when written on a full file system; the JVM lives on.
        assertThat(outcome.get("sparse.create")).isEqualTo(OK);
        assertThat(outcome.get("sparse.write")).startsWith("InternalError");
        assertThat(outcome.get("sparse.jvmGoesOn")).isEqualTo(OK);
        assertThat(outcome.get("leftover.files")).isEqualTo("[fill.bin, kept.bin, sparse.bin]");
        assertThat(outcome.get("leftover.fds")).isEqualTo("0");
        assertThat(result.exitCode()).as(result.output()).isZero();
    }

    @Test
    void addressSpaceTooSmallForAMapping() throws Exception {
        // 8 GiB of holes: no disk used, but more address space than the child may have.
        Path huge = dir.resolve("huge.npy");
        try (Arena arena = Arena.ofConfined()) {
            Npy.create(huge, DType.FLOAT32, new long[] {2L << 30}, false, IfExists.FAIL, arena,
                    MappedFile.Option.SPARSE);
        }
        ChildJvm.Result result = ChildJvm.runUnder(List.of("prlimit", "--as=" + AddressSpaceLimit.LIMIT_BYTES, "--"),
                List.of("--enable-native-access=ALL-UNNAMED", "-Xmx64m", "-XX:+UseSerialGC",
                        "-XX:ReservedCodeCacheSize=32m", "-XX:CompressedClassSpaceSize=64m",
                        "-XX:MaxMetaspaceSize=128m"),
                List.of(), AddressSpaceLimit.class.getName(), huge.toString());
        Map<String, String> outcome = outcomes(result);

        for (String map : List.of("huge.map", "huge.npy")) {
            assertThat(outcome.get(map)).as(map).startsWith("FileSystemException").contains(huge.toString())
                    .contains("cannot map").contains("Map failed").contains("ulimit -v");
        }
        assertThat(outcome.get("small.map")).isEqualTo(OK);
        assertThat(outcome.get("leftover.fds")).isEqualTo("0");
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
                awaitDiagnosticsMBean();
                // Counted with the frame pool trimmed, at both ends: whether an idle frame keeps its done fd
                // depends on a race that is not a leak (native code seeing the 20 ms deadline on its clock
                // keeps the frame's fd; the timer's cancel first makes the frame re-initialise without one).
                NativeResources before = settledResources();
                long fdsBefore = ProcSelf.openDescriptorCount();

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
                            IfExists.FAIL, Arena.global()));
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
                // Settled first: an idle frame keeps the done fd of a wait that ended by its own timeout.
                NativeResources after = settledResources();
                System.out.println("outcome leftover.fds " + (ProcSelf.openDescriptorCount() - fdsBefore));
                System.out.println("outcome leftover.native " + (after.equals(before) ? "same" : before + " -> " + after));
            }
        }

        /**
         * Waits for the diagnostics MBean, which the library registers in the background a second
         * after its first call: the platform MBean server it starts keeps descriptors open for the
         * life of the process, so it must be up before the baseline is counted.
         */
        private static void awaitDiagnosticsMBean() throws Exception {
            ObjectName name = new ObjectName(Diagnostics.OBJECT_NAME);
            long giveUp = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (!ManagementFactory.getPlatformMBeanServer().isRegistered(name)) {
                if (System.nanoTime() > giveUp) {
                    throw new AssertionError("the diagnostics MBean was not registered within 30 s of the first call");
                }
                Thread.sleep(10);
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
                        IfExists.REPLACE, arena));
            }
            report(phase + ".eventfd", () -> EventFd.create().close());
        }
    }

    /** Child: creates, grows and replaces mapped files on a file system that is (then) full. */
    static final class FullFileSystem {
        static final String CAPACITY = "4m";
        static final long KEPT_BYTES = 1 << 20;

        public static void main(String[] args) throws Exception {
            Path fs = Path.of(args[0]);
            report("filesystem", () -> {
                long total = Files.getFileStore(fs).getTotalSpace();
                if (total != 4L << 20) {
                    throw new AssertionError(fs + " has " + total + " bytes, not the 4 MiB tmpfs");
                }
            });
            // Temporary names come from the JDK's SecureRandom, which keeps /dev/random and /dev/urandom
            // open for the life of the process once used: open them before the baseline.
            new java.security.SecureRandom().nextLong();
            // Core's classes come from its (multi-release) jar, which stays open once the first class
            // is loaded from it: load one before the baseline.
            MappedFile.class.getName();
            long fdsBefore = ProcSelf.openDescriptorCount();
            try (Arena arena = Arena.ofShared()) {
                report("fits.create", () -> {
                    MemorySegment kept = MappedFile.create(fs.resolve("kept.bin"), KEPT_BYTES, IfExists.FAIL,
                            arena).segment();
                    for (long i = 0; i < KEPT_BYTES; i += Long.BYTES) {
                        kept.set(ValueLayout.JAVA_LONG_UNALIGNED, i, ~i);
                    }
                });
                long tooBig = 8L << 20;
                report("tooBig.create", () -> MappedFile.create(fs.resolve("big.bin"), tooBig,
                        IfExists.FAIL, arena));
                report("tooBig.npy", () -> Npy.create(fs.resolve("big.npy"), DType.FLOAT32,
                        new long[] {tooBig / Float.BYTES}, false, arena));
                report("tooBig.safetensors", () -> {
                    Tensor source = Tensor.of(arena.allocate(tooBig), DType.FLOAT32, tooBig / Float.BYTES);
                    SafeTensors.write(fs.resolve("big.safetensors"), new java.util.LinkedHashMap<>(Map.of("w", source)),
                            Map.of());
                });
                report("tooBig.replace", () -> MappedFile.create(fs.resolve("kept.bin"), tooBig,
                        IfExists.REPLACE, arena));
                report("fill.create", () -> MappedFile.create(fs.resolve("fill.bin"),
                        Files.getFileStore(fs).getUsableSpace() - (64 << 10), IfExists.FAIL, arena));
                report("full.create", () -> MappedFile.create(fs.resolve("more.bin"), 1 << 20,
                        IfExists.FAIL, arena));
                report("full.grow", () -> MappedFile.grow(fs.resolve("kept.bin"), 2 * KEPT_BYTES, arena));
                report("sparse.create", () -> MappedFile.create(fs.resolve("sparse.bin"), 1 << 20,
                        IfExists.FAIL, arena, MappedFile.Option.SPARSE));
                report("sparse.write", () -> {
                    MemorySegment sparse = MappedFile.map(fs.resolve("sparse.bin"), MappedFile.Mode.READ_WRITE, arena)
                            .segment();
                    for (long i = 0; i < sparse.byteSize(); i += 4096) {
                        sparse.set(ValueLayout.JAVA_BYTE, i, (byte) 1);
                    }
                });
                report("sparse.jvmGoesOn", () -> Context.background().withCancel().close());
            }
            try (Arena arena = Arena.ofConfined()) {
                report("kept.data", () -> {
                    MemorySegment kept = MappedFile.map(fs.resolve("kept.bin"), MappedFile.Mode.READ_ONLY, arena).segment();
                    for (long i = 0; i < KEPT_BYTES; i += Long.BYTES) {
                        if (kept.get(ValueLayout.JAVA_LONG_UNALIGNED, i) != ~i) {
                            throw new AssertionError("kept.bin changed at byte " + i);
                        }
                    }
                });
                report("replaced.original", () -> {
                    if (Files.size(fs.resolve("kept.bin")) != KEPT_BYTES) {
                        throw new AssertionError("kept.bin is now " + Files.size(fs.resolve("kept.bin")) + " bytes");
                    }
                });
            }
            System.out.println("outcome kept.size " + Files.size(fs.resolve("kept.bin")));
            try (Stream<Path> files = Files.list(fs)) {
                System.out.println("outcome leftover.files " + files.map(Path::getFileName).map(Path::toString)
                        .sorted().toList());
            }
            System.out.println("outcome leftover.fds " + (ProcSelf.openDescriptorCount() - fdsBefore));
        }
    }

    /** Child: maps more than its address space limit allows. */
    static final class AddressSpaceLimit {
        /** Enough for this JVM's reservations (heap, code cache, class space), far below the file. */
        static final long LIMIT_BYTES = 3L << 30;

        public static void main(String[] args) throws Exception {
            Path huge = Path.of(args[0]);
            // The first pass loads the classes, so that the second counts only what the failure holds.
            for (String phase : List.of("warmup", "huge")) {
                long fdsBefore = ProcSelf.openDescriptorCount();
                try (Arena arena = Arena.ofConfined()) {
                    report(phase + ".map", () -> MappedFile.map(huge, MappedFile.Mode.READ_ONLY, arena));
                    report(phase + ".npy", () -> Npy.map(huge, MappedFile.Mode.READ_ONLY, arena));
                    report("small.map", () -> MappedFile.map(huge, MappedFile.Mode.READ_ONLY, 0, 1 << 20, arena));
                }
                System.out.println("outcome leftover.fds " + (ProcSelf.openDescriptorCount() - fdsBefore));
            }
        }
    }
}
