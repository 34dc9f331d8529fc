package dev.nativescope.library;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.net.URL;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Loads <em>your own</em> native library (a predictor linked with {@code -lnativescope}) after
 * nativescope's shim, from your jar or from a file, with the same care as the shim's loader.
 *
 * {@snippet :
 * // src/main/resources/META-INF/native/linux-x86_64/libmy_predictor.so in your jar
 * Path loaded = UserLibrary.load(MyPredictor.class, "META-INF/native/linux-x86_64/libmy_predictor.so");
 * }
 *
 * <p>What it does, in order:
 * <ol>
 * <li>loads {@code libnativescope.so} ({@link NativeLibrary#load()}): your library's {@code DT_NEEDED
 *     libnativescope.so} then resolves to that copy, by its soname;</li>
 * <li>finds the resource in the anchor's module (on the module path) or through its class loader (on
 *     the class path), and copies it into a private temporary directory ({@code rwx------}) through a
 *     temporary file and an atomic rename ({@code -Dnativescope.extract.dir=DIR} extracts into DIR and
 *     keeps the file);</li>
 * <li>checks that the file is a 64-bit little-endian ELF shared object for this machine (x86-64);</li>
 * <li>opens it with {@code dlopen(RTLD_NOW)}, so that a symbol nothing defines is an error now, with
 *     the dynamic loader's message, not a crash at the first call ({@code symbol lookup error});</li>
 * <li>registers it with {@code System.load}, so that jextract bindings that look symbols up with
 *     {@code SymbolLookup.loaderLookup()} find it, and deletes the extracted file and directory.</li>
 * </ol>
 * Every failure is a {@link NativeLibraryException} that says what is wrong and what to do.
 *
 * <p>The library is registered with the class loader of nativescope's core, which is the one of
 * your classes on the class path and on the module path of the boot layer (the application class
 * loader): your bindings see it there. Native access: your own module needs
 * {@code --enable-native-access} too, for your jextract bindings' restricted calls (on the module path
 * {@code --enable-native-access=dev.nativescope.core,dev.nativescope.bindings,your.module}; on the class
 * path {@code ALL-UNNAMED}).
 *
 * <p>Thread-safe and idempotent: each resource (and each file) is loaded once per JVM; later calls
 * return the path of the first load.
 */
public final class UserLibrary {
    /** ELF {@code e_machine} of x86-64. */
    private static final int EM_X86_64 = 62;
    private static final int ET_DYN = 3;
    private static final int RTLD_NOW = 2;
    private static final Pattern UNDEFINED_SYMBOL = Pattern.compile("undefined symbol: (\\S+)");

    /** What was loaded, by resource URL or absolute file name: one load per JVM. */
    private static final Map<String, Path> LOADED = new ConcurrentHashMap<>();

    private UserLibrary() {
    }

    /**
     * Extracts {@code resourcePath} from the anchor's jar (its module, or its class loader) and loads it
     * after {@code libnativescope.so}.
     *
     * @param anchor a class of the jar or module that holds the library
     * @param resourcePath the resource, without a leading slash, e.g. {@code META-INF/native/linux-x86_64/libmy.so}
     * @return the file it was loaded from (already deleted when it was extracted to a temporary directory)
     * @throws NativeLibraryException when it is missing, not a library for this machine, has unresolved
     *         symbols, or cannot be extracted or loaded; the message says which and what to do
     */
    public static Path load(Class<?> anchor, String resourcePath) {
        Objects.requireNonNull(anchor, "anchor");
        Objects.requireNonNull(resourcePath, "resourcePath");
        NativeLibrary.load();
        String resource = resourcePath.startsWith("/") ? resourcePath.substring(1) : resourcePath;
        URL url = find(anchor, resource);
        synchronized (LOADED) {
            Path already = LOADED.get(url.toString());
            if (already != null) {
                return already;
            }
            Path loaded = extractAndOpen(url, resource);
            LOADED.put(url.toString(), loaded);
            return loaded;
        }
    }

    /**
     * Loads the library at {@code file} after {@code libnativescope.so}, with the same checks as
     * {@link #load(Class, String)}; the file is left in place.
     *
     * @param file the shared library
     * @return {@code file} as an absolute path
     * @throws NativeLibraryException when it is missing, not a library for this machine, has unresolved
     *         symbols or cannot be loaded
     */
    public static Path load(Path file) {
        Objects.requireNonNull(file, "file");
        NativeLibrary.load();
        return loadWithoutShim(file);
    }

    /** {@link #load(Path)} without loading the shim first: for the test of the wrong load order. */
    static Path loadWithoutShim(Path file) {
        Path path = file.toAbsolutePath();
        if (!Files.isRegularFile(path)) {
            throw new NativeLibraryException(path + " does not exist or is not a regular file: build your library"
                    + " first, or pass the path of the built .so");
        }
        synchronized (LOADED) {
            Path already = LOADED.get(path.toString());
            if (already != null) {
                return already;
            }
            open(path, path.toString());
            LOADED.put(path.toString(), path);
            return path;
        }
    }

    /** The resource in the anchor's own jar or directory if it is there, else the first the class loader has. */
    private static URL find(Class<?> anchor, String resource) {
        ClassLoader loader = anchor.getClassLoader() != null ? anchor.getClassLoader() : ClassLoader.getSystemClassLoader();
        String own = jarOrDirOf(anchor);
        URL first = null;
        try {
            for (URL url : java.util.Collections.list(loader.getResources(resource))) {
                if (!own.isEmpty() && url.getPath().contains(own)) {
                    return url;
                }
                if (first == null) {
                    first = url;
                }
            }
        } catch (IOException e) {
            throw new NativeLibraryException("cannot look up " + resource + " in " + describe(anchor) + ": " + e, e);
        }
        if (first == null) {
            throw new NativeLibraryException(resource + " is not in " + describe(anchor) + ": put the built library"
                    + " into your jar at that path (with Maven, under src/main/resources/, or built into"
                    + " target/classes/ before packaging), or load a file with UserLibrary.load(Path)");
        }
        return first;
    }

    private static String jarOrDirOf(Class<?> anchor) {
        var source = anchor.getProtectionDomain().getCodeSource();
        return source == null || source.getLocation() == null ? "" : source.getLocation().getPath();
    }

    private static String describe(Class<?> anchor) {
        Module module = anchor.getModule();
        String where = jarOrDirOf(anchor);
        return (module.isNamed() ? "module " + module.getName() : "the class path of " + anchor.getName())
                + (where.isEmpty() ? "" : " (" + where + ")");
    }

    private static Path extractAndOpen(URL url, String resource) {
        String fileName = resource.substring(resource.lastIndexOf('/') + 1);
        String keepDir = System.getProperty(LibraryLoader.EXTRACT_DIR_PROPERTY);
        if (keepDir != null && !keepDir.isBlank()) {
            Path path = LibraryLoader.extractInto(url, Path.of(keepDir), fileName);
            open(path, url.toString());
            return path;
        }
        Path dir = null;
        Path path = null;
        try {
            dir = Files.createTempDirectory("nativescope-user-",
                    PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            path = LibraryLoader.extractInto(url, dir, fileName);
            open(path, url.toString());
            return path;
        } catch (IOException e) {
            throw new NativeLibraryException("cannot extract " + resource + " into " + System.getProperty("java.io.tmpdir")
                    + ": " + e + "; make the temp directory writable or pass -D" + LibraryLoader.EXTRACT_DIR_PROPERTY
                    + "=<writable dir>", e);
        } finally {
            // Mapped once opened (or failed): nothing is left behind in the temp directory.
            LibraryLoader.deleteQuietly(path);
            LibraryLoader.deleteQuietly(dir);
        }
    }

    /** Checks the ELF header, opens with RTLD_NOW (all symbols resolved), then registers with System.load. */
    private static void open(Path path, String origin) {
        checkElfHeader(path, origin);
        MemorySegment handle = dlopenNow(path, origin);
        try {
            System.load(path.toString());
        } catch (IllegalCallerException e) {
            throw LibraryLoader.nativeAccessDenied(e);
        } catch (UnsatisfiedLinkError e) {
            throw new NativeLibraryException("cannot load " + origin + " with System.load: " + e.getMessage(), e);
        } finally {
            // System.load holds its own reference to the same object; ours is no longer needed.
            dlclose(handle);
        }
    }

    static void checkElfHeader(Path path, String origin) {
        ByteBuffer header = ByteBuffer.allocate(20).order(ByteOrder.LITTLE_ENDIAN);
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            while (header.hasRemaining() && channel.read(header) >= 0) {
                // read the 20 bytes of e_ident, e_type and e_machine
            }
        } catch (IOException e) {
            throw new NativeLibraryException("cannot read " + origin + ": " + e, e);
        }
        header.flip();
        if (header.remaining() < 20 || header.getInt(0) != 0x464c457f) {
            throw new NativeLibraryException(origin + " is not an ELF shared library (no ELF header): build it with"
                    + " gcc -shared -fPIC, and check that the file in your jar is the .so itself (not a text or"
                    + " Git LFS pointer file)");
        }
        int elfClass = header.get(4);
        int data = header.get(5);
        int type = header.getShort(16) & 0xffff;
        int machine = header.getShort(18) & 0xffff;
        if (elfClass != 2 || data != 1 || machine != EM_X86_64) {
            throw new NativeLibraryException(origin + " is built for " + machineName(elfClass, data, machine)
                    + ", but this JVM runs on " + System.getProperty("os.name") + "/" + System.getProperty("os.arch")
                    + " (x86-64, 64-bit little-endian): build it for x86-64 (or ship one library per platform under"
                    + " META-INF/native/<os>-<arch>/ and load the one for this machine)");
        }
        if (type != ET_DYN) {
            throw new NativeLibraryException(origin + " is an ELF file but not a shared library (e_type " + type
                    + "): link it with gcc -shared");
        }
    }

    private static String machineName(int elfClass, int data, int machine) {
        String name = switch (machine) {
            case 3 -> "x86 (i386)";
            case 40 -> "ARM (32-bit)";
            case 62 -> "x86-64";
            case 183 -> "AArch64";
            case 243 -> "RISC-V";
            case 21 -> "PowerPC 64";
            case 22 -> "s390";
            default -> "ELF machine " + machine;
        };
        return name + (elfClass == 2 ? ", 64-bit" : ", 32-bit") + (data == 1 ? " little-endian" : " big-endian");
    }

    private static MemorySegment dlopenNow(Path path, String origin) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment handle = (MemorySegment) Dl.DLOPEN.invokeExact(arena.allocateFrom(path.toString()), RTLD_NOW);
            if (handle.equals(MemorySegment.NULL)) {
                MemorySegment error = (MemorySegment) Dl.DLERROR.invokeExact();
                String message = error.equals(MemorySegment.NULL) ? "(no message)"
                        : error.reinterpret(Long.MAX_VALUE).getString(0);
                throw new NativeLibraryException(explainDlopenFailure(origin, message));
            }
            return handle;
        } catch (NativeLibraryException e) {
            throw e;
        } catch (Throwable e) {
            throw new NativeLibraryException("dlopen of " + origin + " failed: " + e, e);
        }
    }

    /** The dynamic loader's message, with what it means for a library linked against the shim. */
    static String explainDlopenFailure(String origin, String message) {
        String base = "cannot load " + origin + ": " + message;
        if (message.contains(LibraryLoader.LIBRARY_FILE + ": cannot open shared object file")) {
            return base + ". It needs libnativescope.so, which is not loaded yet: the load order is wrong. Load it"
                    + " with UserLibrary.load (which loads the shim first), or call NativeLibrary.load() before"
                    + " System.load; an rpath or LD_LIBRARY_PATH is not the fix (it would map a second copy of the shim)";
        }
        Matcher undefined = UNDEFINED_SYMBOL.matcher(message);
        if (undefined.find()) {
            String symbol = undefined.group(1);
            return base + ". Symbol " + symbol + " is used by the library but defined by nothing loaded"
                    + (symbol.startsWith("nsc_")
                    ? ": link the library with -lnativescope (and -Wl,--no-undefined, so that this fails at link time)"
                    : ": link the library with what defines it (and -Wl,--no-undefined, so that this fails at link time)");
        }
        return base;
    }

    private static void dlclose(MemorySegment handle) {
        try {
            int ignored = (int) Dl.DLCLOSE.invokeExact(handle);
        } catch (Throwable e) {
            throw new NativeLibraryException("dlclose failed: " + e, e);
        }
    }

    /** libc's dlopen, dlerror and dlclose (in libc.so.6 since glibc 2.34; libdl.so.2 before). */
    private static final class Dl {
        static final MethodHandle DLOPEN;
        static final MethodHandle DLERROR;
        static final MethodHandle DLCLOSE;

        static {
            Linker linker = Linker.nativeLinker();
            SymbolLookup libc = linker.defaultLookup();
            SymbolLookup lookup = libc.find("dlopen").isPresent() ? libc
                    : SymbolLookup.libraryLookup("libdl.so.2", Arena.global());
            DLOPEN = linker.downcallHandle(lookup.find("dlopen").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
            DLERROR = linker.downcallHandle(lookup.find("dlerror").orElseThrow(), FunctionDescriptor.of(ValueLayout.ADDRESS));
            DLCLOSE = linker.downcallHandle(lookup.find("dlclose").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
        }
    }
}
