package dev.nativescope.tensor.io;

import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.TensorSpec;
import dev.nativescope.tensor.npy.Npy;
import dev.nativescope.tensor.safetensors.SafeTensors;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

/**
 * Files that are not files: every entry point that opens or replaces a file refuses a FIFO, a
 * directory, a device (directly and through a symbolic link), a socket and a dangling symbolic link
 * with an exception that names the file and what it is, promptly (a FIFO used to block in
 * {@code open(2)} until a writer appeared). The leak check extension checks the descriptors.
 */
class NotAFileTest {
    private static final Duration PROMPTLY = Duration.ofSeconds(10);

    @TempDir
    static Path dir;

    /** An entry point under test. */
    interface Opener {
        void open(Path file, Arena arena) throws Exception;
    }

    @BeforeAll
    static void makeSpecialFiles() throws Exception {
        Process mkfifo = new ProcessBuilder("mkfifo", dir.resolve("fifo").toString()).inheritIO().start();
        assertThat(mkfifo.waitFor()).as("mkfifo").isZero();
        Files.createDirectory(dir.resolve("directory"));
        Files.createSymbolicLink(dir.resolve("link-to-null"), Path.of("/dev/null"));
        Files.createSymbolicLink(dir.resolve("dangling"), dir.resolve("nowhere"));
        // A UNIX socket file, bound by another process (it stays after that process exits), so this
        // JVM keeps no socket descriptor of its own that the leak check would see.
        Process bind = new ProcessBuilder("python3", "-c", "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])",
                dir.resolve("socket").toString()).inheritIO().start();
        assertThat(bind.waitFor()).as("binding a UNIX socket").isZero();
    }

    static Map<String, Opener> openers() {
        Map<String, Opener> openers = new LinkedHashMap<>();
        for (MappedFile.Mode mode : MappedFile.Mode.values()) {
            openers.put("MappedFile.map " + mode, (file, arena) -> MappedFile.map(file, mode, arena));
        }
        openers.put("MappedFile.grow", (file, arena) -> MappedFile.grow(file, 4096, arena));
        openers.put("MappedFile.create REPLACE", (file, arena) -> MappedFile.create(file, 64, IfExists.REPLACE, arena));
        openers.put("Npy.map", (file, arena) -> Npy.map(file, MappedFile.Mode.READ_ONLY, arena));
        openers.put("Npy.readHeader", (file, arena) -> Npy.readHeader(file));
        openers.put("Npy.create REPLACE", (file, arena) -> Npy.create(file, DType.FLOAT32, new long[] {4}, false,
                IfExists.REPLACE, arena));
        openers.put("SafeTensors.map", SafeTensors::map);
        openers.put("SafeTensors.create", (file, arena) -> {
            LinkedHashMap<String, TensorSpec> specs = new LinkedHashMap<>();
            specs.put("t", TensorSpec.of(DType.FLOAT32, 4));
            SafeTensors.create(file, specs, Map.of(), arena);
        });
        return openers;
    }

    static Stream<Arguments> cases() {
        List<Arguments> cases = new ArrayList<>();
        Map<String, String> files = new LinkedHashMap<>();
        files.put("fifo", "is a FIFO (named pipe)");
        files.put("directory", "is a directory");
        files.put("/dev/null", "is a character device");
        files.put("/dev/zero", "is a character device");
        files.put("link-to-null", "is a symbolic link to a character device (/dev/null)");
        files.put("socket", "is a socket");
        files.put("dangling", "is a symbolic link to ");
        for (Map.Entry<String, Opener> opener : openers().entrySet()) {
            for (Map.Entry<String, String> file : files.entrySet()) {
                cases.add(Arguments.of(opener.getKey(), file.getKey(), file.getValue()));
            }
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0} on {1}")
    @MethodSource("cases")
    void refusedPromptlyNamingTheFileAndWhatItIs(String entryPoint, String name, String what) {
        Path file = name.startsWith("/") ? Path.of(name) : dir.resolve(name);
        Opener opener = openers().get(entryPoint);
        Throwable thrown = assertTimeoutPreemptively(PROMPTLY, () -> {
            try (Arena arena = Arena.ofShared()) {
                return catchThrowable(() -> opener.open(file, arena));
            }
        });
        assertThat(thrown).as(entryPoint + " on " + name).isInstanceOf(FileSystemException.class);
        FileSystemException failure = (FileSystemException) thrown;
        assertThat(failure.getFile()).isEqualTo(file.toString());
        if (entryPoint.contains("create") && !entryPoint.contains("REPLACE")) {
            // Exclusive creation: the name is taken, whatever it is.
            assertThat(failure.getMessage()).contains("exists");
            return;
        }
        if (name.equals("dangling") && !entryPoint.contains("create")) {
            assertThat(thrown).isInstanceOf(entryPoint.contains("create") ? FileSystemException.class
                    : NoSuchFileException.class);
        }
        assertThat(failure.getReason()).as(failure.getMessage()).contains(what);
    }
}
