package dev.nativescope.library;


import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.net.URL;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.EnumSet;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;

/**
 * Finds, extracts, opens and checks {@code libnativescope.so}. Stateless: {@link
 * dev.nativescope.library.NativeLibrary} keeps the one process-wide instance of what it returns; tests use
 * it directly to load libraries that must fail.
 *
 * <p>Checks, each failing with a {@link NativeLibraryException} that names the fix: the platform
 * is supported, the library exists, the process may make restricted FFM calls, the library's ABI
 * version is the one the bindings were generated for, and {@code System.nanoTime()} can be
 * converted to the library's {@code CLOCK_MONOTONIC}.
 */
final class LibraryLoader {
    /** System property: load this file instead of the library bundled in the native-shim jar. */
    public static final String LIBRARY_PATH_PROPERTY = "nativescope.library.path";
    /** System property: extract the bundled library into this directory and keep it there. */
    public static final String EXTRACT_DIR_PROPERTY = "nativescope.extract.dir";

    static final String LIBRARY_FILE = "libnativescope.so";
    /** Clock readings closer than this are taken as the same clock (two reads straddle a call). */
    private static final long SAME_CLOCK_TOLERANCE_NANOS = 1_000_000;

    private LibraryLoader() {
    }

    /** What a successful load produced. */
    public record Loaded(Path path, int abiVersion, long nanoTimeToMonotonicOffset, boolean extractedToTemp) {
    }

    /** @return {@code linux-x86_64} style platform id of this JVM, or empty when unsupported */
    static Optional<String> platform() {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        if (os.startsWith("linux") && (arch.equals("amd64") || arch.equals("x86_64"))) {
            return Optional.of("linux-x86_64");
        }
        return Optional.empty();
    }

    /**
     * Loads the library named by {@value #LIBRARY_PATH_PROPERTY}, or else the one bundled on the
     * class path, and registers it with {@code System.load} so that the jextract bindings (which
     * look symbols up through the class loader) find it.
     */
    public static Loaded loadConfigured(int expectedAbiVersion) {
        String explicit = System.getProperty(LIBRARY_PATH_PROPERTY);
        if (explicit != null && !explicit.isBlank()) {
            Path path = Path.of(explicit).toAbsolutePath();
            if (!Files.isRegularFile(path)) {
                throw new NativeLibraryException("-D" + LIBRARY_PATH_PROPERTY + "=" + explicit
                        + " does not name a readable file; point it at a libnativescope.so built from native-shim,"
                        + " or remove the property to use the library bundled in the native-shim jar");
            }
            return open(path, expectedAbiVersion, false);
        }
        Optional<String> supported = platform();
        if (supported.isEmpty()) {
            throw new NativeLibraryException("nativescope ships its native library for linux-x86_64 only, and this JVM runs on "
                    + System.getProperty("os.name") + "/" + System.getProperty("os.arch")
                    + "; build native-shim on this platform and pass its path with -D" + LIBRARY_PATH_PROPERTY + "=...");
        }
        String platform = supported.get();
        // String.concat, not +: each + site is an invokedynamic whose first run spins its own class
        // (StringConcatFactory), milliseconds of a fresh JVM's first load (BENCHMARKS.md "Cold start").
        String resource = "META-INF/native/".concat(platform).concat("/" + LIBRARY_FILE);
        URL url = LibraryLoader.class.getClassLoader().getResource(resource);
        if (url == null) {
            throw new NativeLibraryException(resource + " is not on the class path or module path:"
                    + " add the dev.nativescope:nativescope-native-shim jar next to nativescope core"
                    + " (or pass a library with -D" + LIBRARY_PATH_PROPERTY + "=...)");
        }
        String keepDir = System.getProperty(EXTRACT_DIR_PROPERTY);
        if (keepDir != null && !keepDir.isBlank()) {
            Path path = extractInto(url, Path.of(keepDir));
            return open(path, expectedAbiVersion, false);
        }
        Path dir = null;
        Path path = null;
        try {
            dir = createPrivateTempDirectory();
            path = dir.resolve(LIBRARY_FILE);
            // No other user can enter the directory, and this JVM alone names it: no partial file
            // and rename needed (extractInto's), the copy fails rather than follow anything there.
            try (InputStream in = url.openStream()) {
                Files.copy(in, path);
            }
            return open(path, expectedAbiVersion, true);
        } catch (IOException e) {
            throw new NativeLibraryException("cannot extract " + resource + " into " + System.getProperty("java.io.tmpdir")
                    + ": " + e + "; make the temp directory writable or pass -D" + EXTRACT_DIR_PROPERTY + "=<writable dir>", e);
        } finally {
            // Once dlopen has mapped it, the file is no longer needed: remove it so that nothing is
            // left behind in /tmp whatever way the JVM ends. On failure, clean up just the same.
            deleteQuietly(path);
            deleteQuietly(dir);
        }
    }

    /**
     * A new directory in {@code java.io.tmpdir} that only this user can enter, named
     * {@code nativescope-<hex>}, like {@code Files.createTempDirectory} but without its
     * {@code SecureRandom}: seeding that loads the security providers, about 10 ms of a fresh JVM's
     * first load (ColdStart benchmark). The name needs no secrecy: {@code mkdir} is atomic and fails
     * on anything already there (a file, a directory, a symbolic link), and then the next name is tried.
     */
    static Path createPrivateTempDirectory() throws IOException {
        Path base = Path.of(System.getProperty("java.io.tmpdir"));
        FileAttribute<Set<PosixFilePermission>> owner = PosixFilePermissions.asFileAttribute(
                EnumSet.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE, PosixFilePermission.OWNER_EXECUTE));
        long seed = System.nanoTime() ^ Thread.currentThread().threadId() * 0x9E3779B97F4A7C15L;
        for (int attempt = 0; ; attempt++) {
            Path dir = base.resolve("nativescope-".concat(Long.toHexString(seed + attempt * 0x9E3779B97F4A7C15L))); // concat: see loadConfigured
            try {
                return Files.createDirectory(dir, owner);
            } catch (FileAlreadyExistsException taken) {
                if (attempt >= 100) {
                    throw taken;
                }
            }
        }
    }

    private static Path extractInto(URL url, Path dir) {
        return extractInto(url, dir, LIBRARY_FILE);
    }

    /**
     * Copies {@code url} to {@code dir/fileName} through a temporary file and an atomic rename, so that a
     * concurrent JVM extracting into the same directory never maps a half-written file.
     */
    static Path extractInto(URL url, Path dir, String fileName) {
        Path target = dir.resolve(fileName);
        try {
            Files.createDirectories(dir);
            Path partial = Files.createTempFile(dir, fileName, ".part");
            boolean moved = false;
            try (InputStream in = url.openStream()) {
                Files.copy(in, partial, StandardCopyOption.REPLACE_EXISTING);
                // Atomic rename: a concurrent JVM loading from the same directory never maps a half-written file.
                Files.move(partial, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
                moved = true;
            } finally {
                if (!moved) {
                    Files.deleteIfExists(partial);
                }
            }
            return target;
        } catch (IOException e) {
            throw new NativeLibraryException("cannot extract " + url + " into " + dir + ": " + e
                    + "; make that directory writable or choose another one with -D" + EXTRACT_DIR_PROPERTY + "=...", e);
        }
    }

    /**
     * Opens the library at {@code path}, checks its ABI version and clock, and registers it for the
     * bindings. Public for tests that load deliberately broken libraries.
     */
    public static Loaded open(Path path, int expectedAbiVersion, boolean extractedToTemp) {
        SymbolLookup lookup;
        try {
            lookup = SymbolLookup.libraryLookup(path, Arena.global());
        } catch (IllegalCallerException e) {
            throw nativeAccessDenied(e);
        } catch (IllegalArgumentException e) {
            throw new NativeLibraryException("cannot open " + path + " as a shared library (" + e.getMessage()
                    + "); it must be a libnativescope.so built for " + platform().orElse("this platform")
                    + " with its dependencies (libc, libpthread) present", e);
        }
        MethodHandle abiVersionOf = handleOf(lookup, path, "nsc_abi_version", ValueLayout.JAVA_INT);
        int abiVersion;
        try {
            abiVersion = (int) abiVersionOf.invokeExact();
        } catch (Throwable e) {
            throw callFailed("nsc_abi_version", path, e);
        }
        if (abiVersion != expectedAbiVersion) {
            throw new NativeLibraryException(path + " has native ABI version " + abiVersion
                    + " but this nativescope needs ABI version " + expectedAbiVersion
                    + ": use the native-shim jar of the same nativescope release as core, or rebuild the library from"
                    + " the same sources (./run builds both)");
        }
        long offset = nanoTimeToMonotonicOffset(lookup, path);
        try {
            System.load(path.toString());
        } catch (IllegalCallerException e) {
            throw nativeAccessDenied(e);
        } catch (UnsatisfiedLinkError e) {
            throw new NativeLibraryException("cannot register " + path + " with System.load: " + e.getMessage(), e);
        }
        return new Loaded(path, abiVersion, offset, extractedToTemp);
    }

    private static long nanoTimeToMonotonicOffset(SymbolLookup lookup, Path path) {
        // On Linux System.nanoTime() reads CLOCK_MONOTONIC, so the offset is 0. If a JVM ever uses
        // another clock, deadlines are converted with the measured offset instead of being wrong.
        // The clock is read in two int halves (nsc_internal.h): they share the int() shape of
        // nsc_abi_version, already linked, where nsc_monotonic_ns would link an int64_t() shape of
        // its own, ~4 ms of a fresh JVM's first load (BENCHMARKS.md "Cold start").
        MethodHandle high = handleOf(lookup, path, "nsc_monotonic_ns_high", ValueLayout.JAVA_INT);
        MethodHandle low = handleOf(lookup, path, "nsc_monotonic_ns_low", ValueLayout.JAVA_INT);
        long best = Long.MAX_VALUE;
        long bestOffset = 0;
        for (int reads = 0, tries = 0; reads < 5 && tries < 100; tries++) {
            long before = System.nanoTime();
            int highBefore;
            int lowHalf;
            int highAfter;
            try {
                highBefore = (int) high.invokeExact();
                lowHalf = (int) low.invokeExact();
                highAfter = (int) high.invokeExact();
            } catch (Throwable e) {
                throw callFailed("nsc_monotonic_ns_high/_low", path, e);
            }
            long after = System.nanoTime();
            if (highBefore != highAfter) {
                continue; // the low half wrapped between the reads (once every 4.3 s): read again
            }
            reads++;
            long monotonic = (long) highBefore << 32 | (lowHalf & 0xFFFF_FFFFL);
            long window = after - before;
            if (window < best) {
                best = window;
                bestOffset = monotonic - (before + window / 2);
            }
        }
        if (best == Long.MAX_VALUE) {
            throw new NativeLibraryException("cannot read CLOCK_MONOTONIC through " + path + ": its high half changed"
                    + " at every one of 100 reads; the library's clock functions are broken (rebuild native-shim)");
        }
        return Math.abs(bestOffset) <= SAME_CLOCK_TOLERANCE_NANOS ? 0 : bestOffset;
    }

    /** Links {@code name}, a function without parameters, once: each link of a handle costs a fresh JVM time. */
    private static MethodHandle handleOf(SymbolLookup lookup, Path path, String name, ValueLayout result) {
        Optional<MemorySegment> symbol = lookup.find(name);
        if (symbol.isEmpty()) {
            throw new NativeLibraryException(path + " does not export " + name + ": it is not a libnativescope.so (or one"
                    + " far too old); use the native-shim jar of the same nativescope release");
        }
        try {
            return Linker.nativeLinker().downcallHandle(symbol.get(), FunctionDescriptor.of(result));
        } catch (IllegalCallerException e) {
            throw nativeAccessDenied(e);
        }
    }

    private static NativeLibraryException callFailed(String name, Path path, Throwable e) {
        return new NativeLibraryException("calling " + name + " in " + path + " failed: " + e, e);
    }

    /**
     * Makes one harmless restricted call, so that a JVM that denies this module native access
     * fails here, with our message, rather than somewhere inside the first real call. The call is
     * {@code reinterpret}, which links nothing: a downcall handle of a shape of its own would cost a
     * fresh JVM milliseconds for no use.
     */
    public static void checkNativeAccess() {
        try {
            MemorySegment.NULL.reinterpret(0);
        } catch (IllegalCallerException e) {
            throw nativeAccessDenied(e);
        }
    }

    /**
     * The translation of the JDK's refusal into a message that names the flag to add: {@code ALL-UNNAMED} on the
     * class path; on the module path nativescope's modules, and the caller's own module, which needs native access
     * too when it calls its own jextract bindings or {@code System.load}.
     */
    public static NativeLibraryException nativeAccessDenied(Throwable cause) {
        Module core = LibraryLoader.class.getModule();
        String modules = core.isNamed()
                ? core.getName() + ",dev.nativescope.bindings"
                : "ALL-UNNAMED";
        return new NativeLibraryException("nativescope needs native access (restricted FFM methods) and this JVM"
                + " denies it: run java with --enable-native-access=" + modules
                + (core.isNamed()
                ? " (add your own module too when it calls its jextract bindings or loads a library, e.g."
                        + " --enable-native-access=" + modules + ",com.example.app; dev.nativescope.onnxruntime needs none)"
                : " (or add 'Enable-Native-Access: ALL-UNNAMED' to the main jar's manifest)")
                + ". The JVM said: " + cause.getMessage(), cause);
    }

    static void deleteQuietly(Path path) {
        if (path == null) {
            return;
        }
        try {
            Files.deleteIfExists(path);
        } catch (IOException ignored) {
            // A leftover file in a private temp directory is harmless; failing the load for it is not.
        }
    }
}
