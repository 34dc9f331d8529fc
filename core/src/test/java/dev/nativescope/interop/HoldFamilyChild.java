package dev.nativescope.interop;

import dev.nativescope.testing.ArenaCloseInterrupts;
import dev.nativescope.testing.ArenaOwner;
import dev.nativescope.testing.ArenaOwner.Kind;
import dev.nativescope.Context;
import dev.nativescope.reference.ReferencePredictors;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Child JVM of {@link HoldFamilyTest}: every arena kind x output access x consumer, with a close of
 * the arena attempted concurrently (by another thread for shared arenas, by the owner for
 * confined ones of another thread), in random order and timing. Each call must either compute the
 * right result or throw before native code runs (IllegalArgumentException for a read-only output,
 * WrongThreadException for another thread's confined arena, IllegalStateException for a closed
 * one); anything else prints a {@code FAILURE} line, and a crash ends the child without {@code done}.
 */
public final class HoldFamilyChild {
    private static final int N = 32;
    enum Access { READ_ONLY_MAPPING, AS_READ_ONLY, WRITABLE }
    enum Consumer { BRIDGE, DLPACK }

    private HoldFamilyChild() {
    }

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        int rounds = Integer.parseInt(args[1]);
        Path file = dir.resolve("out.bin");
        Files.write(file, new byte[N * N * Float.BYTES]);
        Random random = new Random(Long.parseLong(args[2]));
        int ran = 0;
        int refused = 0;
        for (int round = 0; round < rounds; round++) {
            for (Kind kind : Kind.values()) {
                for (Access access : Access.values()) {
                    for (Consumer consumer : Consumer.values()) {
                        String outcome;
                        try {
                            outcome = runOne(kind, access, consumer, file, random);
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
        System.out.println(ArenaCloseInterrupts.report());
        System.out.println("done: " + ran + " ran, " + refused + " refused");
        System.out.flush();
        System.exit(0);
    }

    private static String runOne(Kind kind, Access access, Consumer consumer, Path file, Random random)
            throws Exception {
        ArenaOwner owner = new ArenaOwner(kind, arena -> allocate(arena, access, file));
        MemorySegment x = owner.segments()[0];
        MemorySegment w = owner.segments()[1];
        MemorySegment y = owner.segments()[2];
        // Close concurrently, at a random moment: before, during or after the call.
        int delayMicros = random.nextInt(200);
        CompletableFuture<Void> trigger = CompletableFuture.runAsync(() -> {
            java.util.concurrent.locks.LockSupport.parkNanos(delayMicros * 1000L);
            owner.closeNow();
        });
        // Only another thread's close of a shared arena may interrupt this thread (see
        // ArenaCloseInterrupts): a confined arena is closed by its owner, without a handshake.
        boolean racesClose = kind == Kind.SHARED;
        String outcome;
        try {
            Tensor tx = Tensor.of(x, DType.FLOAT32, N, N);
            Tensor tw = Tensor.of(w, DType.FLOAT32, N, N);
            Tensor ty = Tensor.of(y, DType.FLOAT32, N, N);
            int repeat = 1 + random.nextInt(50);
            if (consumer == Consumer.BRIDGE) {
                ReferencePredictors.dense(Context.background(), x, w, MemorySegment.NULL, y, N, N, N, repeat, null);
            } else {
                ReferencePredictors.denseDLPack(Context.background(), tx, tw, null, ty, repeat, null);
            }
            outcome = check(kind, access, y);
        } catch (IllegalArgumentException e) {
            outcome = access != Access.WRITABLE && e.getMessage().contains("read-only") ? "refused" : "wrong: " + e;
        } catch (WrongThreadException e) {
            outcome = kind == Kind.CONFINED_OTHER ? "refused" : "wrong: " + e;
        } catch (IllegalStateException e) {
            outcome = (kind == Kind.SHARED || kind == Kind.CONFINED_OTHER) && !y.scope().isAlive()
                    ? "refused (closed first)" : "wrong: " + e;
        } catch (Throwable e) {
            outcome = racesClose && ArenaCloseInterrupts.isCloseInterrupt(e) ? "close interrupt" : "wrong: " + e;
        }
        outcome = ArenaCloseInterrupts.endRound(racesClose, trigger, owner.thread(), outcome);
        Throwable closeOutcome = owner.closeOutcome();
        if (closeOutcome != null && !(closeOutcome instanceof IllegalStateException)) {
            outcome = "close threw " + closeOutcome;
        }
        if (kind == Kind.SHARED && closeOutcome != null) {
            owner.arena().close(); // refused while held: close it now
        }
        if (kind == Kind.CONFINED_OWNER) {
            owner.arena().close();
        }
        return outcome;
    }

    /** x and w (x[0][0] = 2, w[0][0] = 3, zeros elsewhere) and y of the given access, in {@code arena}. */
    private static MemorySegment[] allocate(Arena arena, Access access, Path file) throws Exception {
        long bytes = (long) N * N * Float.BYTES;
        MemorySegment x = arena.allocate(bytes, 64);
        MemorySegment w = arena.allocate(bytes, 64);
        x.fill((byte) 0);
        w.fill((byte) 0);
        x.setAtIndex(ValueLayout.JAVA_FLOAT, 0, 2f);
        w.setAtIndex(ValueLayout.JAVA_FLOAT, 0, 3f);
        MemorySegment y = switch (access) {
            case WRITABLE -> arena.allocate(bytes, 64);
            case AS_READ_ONLY -> arena.allocate(bytes, 64).asReadOnly();
            case READ_ONLY_MAPPING -> {
                try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
                    yield channel.map(FileChannel.MapMode.READ_ONLY, 0, bytes, arena);
                }
            }
        };
        return new MemorySegment[] {x, w, y};
    }

    /** y[0][0] = x[0][0] * w[0][0] = 6 when the run happened (and the memory is still there to look at). */
    private static String check(Kind kind, Access access, MemorySegment y) {
        if (access != Access.WRITABLE) {
            return "wrong: a read-only output was accepted";
        }
        if (kind == Kind.CONFINED_OTHER) {
            return "wrong: another thread's confined arena was accepted";
        }
        try {
            float y00 = y.getAtIndex(ValueLayout.JAVA_FLOAT, 0);
            return y00 == 6f ? "ran" : "wrong: y[0][0] = " + y00;
        } catch (IllegalStateException closedSinceTheRun) {
            return "ran";
        }
    }
}
