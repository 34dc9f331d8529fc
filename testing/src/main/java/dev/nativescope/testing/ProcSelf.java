package dev.nativescope.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/** What this process has open and mapped, from Linux's {@code /proc/self}, to check for leaks. */
public final class ProcSelf {
    private static final Path FD = Path.of("/proc/self/fd");
    private static final Path MAPS = Path.of("/proc/self/maps");

    private ProcSelf() {
    }

    /** @return the number of open file descriptors */
    public static long openDescriptorCount() {
        try (Stream<Path> fds = Files.list(FD)) {
            return fds.count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** @return the descriptors that refer to {@code file} */
    public static List<Path> descriptorsOf(Path file) {
        Path target = file.toAbsolutePath();
        List<Path> found = new ArrayList<>();
        try (Stream<Path> fds = Files.list(FD)) {
            for (Path fd : (Iterable<Path>) fds::iterator) {
                try {
                    if (Files.readSymbolicLink(fd).equals(target)) {
                        found.add(fd);
                    }
                } catch (IOException closedMeanwhile) {
                    // the descriptor used to list the directory itself, or one closed since
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return found;
    }

    /** @return the lines of {@code /proc/self/maps} that map {@code file} */
    public static List<String> mappingsOf(Path file) {
        String target = file.toAbsolutePath().toString();
        try {
            return Files.readAllLines(MAPS).stream()
                    .filter(line -> line.endsWith(" " + target) || line.endsWith(" " + target + " (deleted)"))
                    .toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
