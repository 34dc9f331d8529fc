package dev.nativescope.onnxruntime;

import dev.nativescope.testing.ArenaCloseInterrupts;
import dev.nativescope.testing.ArenaOwner;
import dev.nativescope.testing.ArenaOwner.Kind;
import dev.nativescope.Context;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * Child JVM of {@link OrtHoldFamilyTest}: the ONNX Runtime leg of issue 13's randomized family
 * (core's HoldFamilyChild covers dense and denseDLPack). Every arena kind x access x consumer,
 * where the consumer is {@code run} with the access on the output, {@code run} with the access on
 * the input, or {@code runAllocating} (the access on the input), with a close of the arena
 * attempted concurrently (by another thread for shared arenas, by the owner for confined ones of
 * another thread) at a random moment. Each run must compute y = x (a chain of identity MatMuls) or
 * throw before ORT runs (IllegalArgumentException for a read-only output, WrongThreadException for
 * another thread's confined arena, IllegalStateException for an arena closed first); anything else
 * prints a {@code FAILURE} line, and a crash ends the child without {@code done}.
 */
public final class OrtHoldFamilyChild {
    static final int N = 32;
    enum Access { READ_ONLY_MAPPING, AS_READ_ONLY, WRITABLE }
    enum Consumer { RUN_OUTPUT, RUN_INPUT, RUN_ALLOCATING }

    /** Closes refused because a run held the arena, and runs refused because the arena closed first. */
    private static int closesRefused;
    private static int closedFirst;

    private OrtHoldFamilyChild() {
    }

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        Path model = Path.of(args[1]);
        int rounds = Integer.parseInt(args[2]);
        Random random = new Random(Long.parseLong(args[3]));
        Path file = dir.resolve("x.bin");
        ByteBuffer content = ByteBuffer.allocate(N * N * Float.BYTES).order(ByteOrder.nativeOrder());
        content.putFloat(0, 2f);
        Files.write(file, content.array());
        int ran = 0;
        int refused = 0;
        try (OrtPredictor predictor = OrtModels.open(model)) {
            for (int round = 0; round < rounds; round++) {
                for (Kind kind : Kind.values()) {
                    for (Access access : Access.values()) {
                        for (Consumer consumer : Consumer.values()) {
                            String outcome;
                            try {
                                outcome = runOne(predictor, kind, access, consumer, file, random);
                            } catch (Throwable e) {
                                java.io.StringWriter trace = new java.io.StringWriter();
                                e.printStackTrace(new java.io.PrintWriter(trace));
                                outcome = "harness failed (interrupted " + Thread.interrupted() + "): " + trace;
                            }
                            if (outcome.equals("close interrupt")) {
                                continue; // counted and printed at the end; see ArenaCloseInterrupts
                            }
                            if (outcome.equals("ran")) {
                                ran++;
                            } else if (outcome.startsWith("refused")) {
                                refused++;
                            } else {
                                System.out.println("FAILURE " + kind + " " + access + " " + consumer + ": " + outcome);
                            }
                        }
                    }
                }
            }
        }
        long open = OrtObjects.open();
        if (open != 0) {
            System.out.println("FAILURE " + open + " ORT objects left open");
        }
        System.out.println(ArenaCloseInterrupts.report());
        System.out.println("direct run: " + OrtDirectRun.available());
        System.out.println("done: " + ran + " ran, " + refused + " refused (" + closedFirst + " closed first); "
                + closesRefused + " closes refused during a run");
        System.out.flush();
        System.exit(0);
    }

    private static String runOne(OrtPredictor predictor, Kind kind, Access access, Consumer consumer, Path file,
                                 Random random) throws Exception {
        ArenaOwner owner = new ArenaOwner(kind, arena -> allocate(arena, access, consumer, file));
        MemorySegment x = owner.segments()[0];
        MemorySegment y = owner.segments()[1];
        int delayMicros = random.nextInt(300);
        CompletableFuture<Void> trigger = CompletableFuture.runAsync(() -> {
            LockSupport.parkNanos(delayMicros * 1000L);
            owner.closeNow();
        });
        boolean readOnlyOutput = consumer == Consumer.RUN_OUTPUT && access != Access.WRITABLE;
        // Only another thread's close of a shared arena may interrupt this thread (see
        // ArenaCloseInterrupts): a confined arena is closed by its owner, without a handshake.
        boolean racesClose = kind == Kind.SHARED;
        String outcome;
        try {
            Map<String, Tensor> inputs = Map.of("x", Tensor.of(x, DType.FLOAT32, N, N));
            if (consumer == Consumer.RUN_ALLOCATING) {
                try (OrtResult result = predictor.runAllocating(Context.background(), inputs, Set.of("y"))) {
                    outcome = readOnlyOutput || kind == Kind.CONFINED_OTHER ? "wrong: accepted"
                            : check(result.get("y").data());
                }
            } else {
                predictor.run(Context.background(), inputs, Map.of("y", Tensor.of(y, DType.FLOAT32, N, N)));
                outcome = readOnlyOutput ? "wrong: a read-only output was accepted"
                        : kind == Kind.CONFINED_OTHER ? "wrong: another thread's confined arena was accepted"
                        : checkIfAlive(y);
            }
        } catch (IllegalArgumentException e) {
            outcome = readOnlyOutput && e.getMessage().contains("read-only") ? "refused" : "wrong: " + e;
        } catch (WrongThreadException e) {
            outcome = kind == Kind.CONFINED_OTHER ? "refused" : "wrong: " + e;
        } catch (IllegalStateException e) {
            outcome = (kind == Kind.SHARED || kind == Kind.CONFINED_OTHER) && !x.scope().isAlive()
                    ? "refused (closed first)" : "wrong: " + e;
        } catch (Throwable e) {
            outcome = racesClose && ArenaCloseInterrupts.isCloseInterrupt(e) ? "close interrupt" : "wrong: " + e;
        }
        outcome = ArenaCloseInterrupts.endRound(racesClose, trigger, owner.thread(), outcome);
        Throwable closeOutcome = owner.closeOutcome();
        if (closeOutcome != null && !(closeOutcome instanceof IllegalStateException)) {
            outcome = "close threw " + closeOutcome;
        }
        if (outcome.equals("refused (closed first)")) {
            closedFirst++;
        }
        if (kind == Kind.SHARED && closeOutcome != null) {
            closesRefused++;
            owner.arena().close(); // refused while held: close it now
        }
        if (kind == Kind.CONFINED_OWNER) {
            owner.arena().close();
        }
        return outcome;
    }

    /**
     * x (x[0][0] = 2, zeros elsewhere) and y (NaN) in {@code arena}, the one the consumer varies of
     * the given access.
     */
    private static MemorySegment[] allocate(Arena arena, Access access, Consumer consumer, Path file) throws Exception {
        long bytes = (long) N * N * Float.BYTES;
        MemorySegment x = arena.allocate(bytes, 64);
        x.fill((byte) 0);
        x.setAtIndex(ValueLayout.JAVA_FLOAT, 0, 2f);
        MemorySegment y = arena.allocate(bytes, 64);
        for (int i = 0; i < N * N; i++) {
            y.setAtIndex(ValueLayout.JAVA_FLOAT, i, Float.NaN);
        }
        MemorySegment varied = switch (access) {
            case WRITABLE -> consumer == Consumer.RUN_OUTPUT ? y : x;
            case AS_READ_ONLY -> (consumer == Consumer.RUN_OUTPUT ? y : x).asReadOnly();
            case READ_ONLY_MAPPING -> {
                try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
                    yield channel.map(FileChannel.MapMode.READ_ONLY, 0, bytes, arena);
                }
            }
        };
        return consumer == Consumer.RUN_OUTPUT ? new MemorySegment[] {x, varied} : new MemorySegment[] {varied, y};
    }

    /** y = x: y[0][0] = 2, y[0][1] = 0 (if the memory is still there to look at). */
    private static String checkIfAlive(MemorySegment y) {
        try {
            return check(y);
        } catch (IllegalStateException closedSinceTheRun) {
            return "ran";
        }
    }

    private static String check(MemorySegment y) {
        float y00 = y.getAtIndex(ValueLayout.JAVA_FLOAT, 0);
        float y01 = y.getAtIndex(ValueLayout.JAVA_FLOAT, 1);
        float last = y.getAtIndex(ValueLayout.JAVA_FLOAT, (long) N * N - 1);
        return y00 == 2f && y01 == 0f && last == 0f ? "ran" : "wrong: y[0][0] = " + y00 + ", y[0][1] = " + y01
                + ", y[-1] = " + last;
    }
}
