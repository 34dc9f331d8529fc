package dev.nativescope.childjvm;

import dev.nativescope.Context;
import dev.nativescope.bindings.nativescope_h;
import dev.nativescope.call.NativeCall;
import dev.nativescope.interop.CancellationSignal;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.reference.EventFd;
import dev.nativescope.reference.ReferencePredictors;
import dev.nativescope.tensor.DLPack;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;
import dev.nativescope.tensor.io.IfExists;
import dev.nativescope.tensor.io.MappedFile;
import dev.nativescope.tensor.npy.Npy;
import dev.nativescope.tensor.safetensors.SafeTensors;

import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Main class of the child JVMs of {@code NativeAccessEverywhereTest}: makes one first use of a class that needs
 * native access (named by the first argument) in a fresh JVM and prints what it threw (and its cause chain); with a
 * second argument "then-bind", it then calls the bindings directly (no explicit load), to show that the first use
 * loaded the library before any binding class initialised; with "twice", it makes the same use again and prints
 * what that threw (after a failed first use of a binding, its holder class cannot initialise any more). In a package of no nativescope module, so that it runs from the class path while core is on the
 * module path.
 */
public final class FirstNativeUseProbe {
    private FirstNativeUseProbe() {
    }

    public static void main(String[] args) throws Exception {
        Path dir = Files.createTempDirectory("first-native-use");
        try (Arena arena = Arena.ofConfined()) {
            try {
                firstUse(args[0], dir, arena);
                System.out.println("PROBE-OK");
            } catch (Throwable e) {
                System.out.println("PROBE-FAILED " + e.getClass().getName() + ": " + e.getMessage());
                System.out.println("PROBE-FAILED-CHAIN " + chain(e));
            }
            if (args.length > 1 && args[1].equals("then-bind")) {
                System.out.println("PROBE-THEN abi=" + nativescope_h.nsc_abi_version());
            }
            if (args.length > 1 && args[1].equals("twice")) {
                try {
                    firstUse(args[0], dir, arena);
                    System.out.println("PROBE-SECOND-OK");
                } catch (Throwable e) {
                    System.out.println("PROBE-SECOND-FAILED-CHAIN " + chain(e));
                }
            }
        } finally {
            try (var files = Files.list(dir)) {
                for (Path f : files.toList()) {
                    Files.delete(f);
                }
            }
            Files.delete(dir);
        }
    }

    private static void awaitQuietly(java.util.concurrent.CountDownLatch latch) {
        try {
            latch.await();
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
    }

    /** Each throwable of the cause chain, class and message: the second use's message is in its cause. */
    private static String chain(Throwable e) {
        StringBuilder text = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause()) {
            text.append(text.isEmpty() ? "" : " <- ").append(t.getClass().getName()).append(": ").append(t.getMessage());
        }
        return text.toString();
    }

    private static void firstUse(String what, Path dir, Arena arena) throws Exception {
        switch (what) {
            case "Npy" -> Npy.create(dir.resolve("a.npy"), DType.FLOAT32, new long[] {4}, false, arena);
            case "MappedFile" -> MappedFile.create(dir.resolve("a.bin"), 64, IfExists.FAIL, arena);
            case "SafeTensors" -> {
                // an 8-byte little-endian header length, the JSON header (padded to 8 bytes), one float32
                byte[] header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}    "
                        .getBytes(java.nio.charset.StandardCharsets.US_ASCII);
                java.nio.ByteBuffer file = java.nio.ByteBuffer.allocate(8 + header.length + 4)
                        .order(java.nio.ByteOrder.LITTLE_ENDIAN).putLong(header.length).put(header).putFloat(1f);
                SafeTensors.map(Files.write(dir.resolve("a.safetensors"), file.array()), arena).tensor("a");
            }
            case "DLPack" -> DLPack.export(Tensor.of(arena.allocate(16), DType.FLOAT32, 4), arena);
            case "NativeCall" -> NativeCall.invoke(Context.background(), ctx -> 0);
            case "ReferencePredictors" -> ReferencePredictors.noop(Context.background());
            case "EventFd" -> EventFd.create().close();
            case "CancellationSignal" -> CancellationSignal.open(Context.background(), reason -> { }).close();
            case "nativescope_h" -> nativescope_h.nsc_abi_version();
            // A binding that no part of the core links when it loads: its holder resolves the symbol itself.
            case "nativescope_h.nsc_monotonic_ns" -> nativescope_h.nsc_monotonic_ns();
            // One of the bridge's functions, which the core links when it loads, then a bridged call.
            // The same binding first on one thread while another loads: the binding's holder waits for the load, which
            // links that holder only after its own lock is released (a deadlock otherwise; ChildJvm's timeout).
            case "nativescope_h.nsc_context_init-racing-NativeLibrary.load" -> {
                java.util.concurrent.CountDownLatch start = new java.util.concurrent.CountDownLatch(1);
                Thread loader = Thread.ofPlatform().start(() -> {
                    awaitQuietly(start);
                    NativeLibrary.load();
                });
                Thread binder = Thread.ofPlatform().start(() -> {
                    awaitQuietly(start);
                    nativescope_h.nsc_context_init$handle();
                });
                start.countDown();
                loader.join();
                binder.join();
                NativeCall.invoke(Context.background(), ctx -> 0);
            }
            case "nativescope_h.nsc_context_init-then-NativeCall" -> {
                nativescope_h.nsc_context_init$handle();
                NativeCall.invoke(Context.background(), ctx -> 0);
            }
            case "NativeLibrary" -> NativeLibrary.load();
            case "nativescope_h-then-NativeLibrary" -> {
                try {
                    nativescope_h.nsc_abi_version();
                } catch (Throwable expected) {
                    // the generated initialiser fails under a denial; the loader must still name the flag
                }
                NativeLibrary.load();
            }
            default -> throw new IllegalArgumentException(what);
        }
    }
}
