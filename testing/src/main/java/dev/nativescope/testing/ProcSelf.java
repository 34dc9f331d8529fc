package dev.nativescope.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * What this process has open, mapped and running, from Linux's {@code /proc/self}: for leak checks
 * in tests and for the soak's and benchmarks' resource readings. The one reader of {@code
 * /proc/self} outside core's main code; a plain class (no JUnit), so main code may use it. Each call
 * reads afresh; an unreadable file throws {@link UncheckedIOException}.
 */
public final class ProcSelf {
    private static final Path FD = Path.of("/proc/self/fd");
    private static final Path MAPS = Path.of("/proc/self/maps");
    private static final Path STATUS = Path.of("/proc/self/status");
    private static final Path TASK = Path.of("/proc/self/task");
    private static final String OWN_FD_DIRECTORY = "/proc/" + ProcessHandle.current().pid() + "/fd";

    private ProcSelf() {
    }

    /** @return the number of entries in {@code /proc/self/fd}, counting the one this listing holds open */
    public static long openDescriptorCount() {
        try (Stream<Path> fds = Files.list(FD)) {
            return fds.count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * @return the open descriptors and their link targets, in descriptor order, without the one
     *         this listing uses (it resolves to {@code /proc/<pid>/fd}) and those closed while it ran
     */
    public static Map<Integer, String> openDescriptors() {
        Map<Integer, String> fds = new TreeMap<>();
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(FD)) {
            for (Path entry : entries) {
                fds.put(Integer.parseInt(entry.getFileName().toString()), target(entry));
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + FD + " (this needs Linux's /proc)", e);
        }
        fds.values().removeIf(target -> target.isEmpty() || target.equals(OWN_FD_DIRECTORY));
        return fds;
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

    /** @return every line of {@code /proc/self/maps} */
    public static List<String> mappings() {
        try {
            return Files.readAllLines(MAPS);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** @return the lines of {@code /proc/self/maps} that map {@code file} */
    public static List<String> mappingsOf(Path file) {
        String target = file.toAbsolutePath().toString();
        return mappings().stream()
                .filter(line -> line.endsWith(" " + target) || line.endsWith(" " + target + " (deleted)"))
                .toList();
    }

    /** @return the lines of {@code /proc/self/maps} that map a file under {@code dir} (by its real path) */
    public static List<String> mappingsUnder(Path dir) {
        String prefix;
        try {
            prefix = dir.toRealPath().toString();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return mappings().stream().filter(line -> line.contains(prefix)).toList();
    }

    /** @return one reading of {@code /proc/self/status} */
    public static Status status() {
        try {
            return new Status(Files.readAllLines(STATUS));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** @return the resident set size ({@code VmRSS}) in KiB, or empty if the kernel does not report it */
    public static OptionalLong rssKib() {
        return status().kib("VmRSS");
    }

    /**
     * One reading of {@code /proc/self/status}.
     *
     * @param lines its lines, {@code Name:\tvalue}
     */
    public record Status(List<String> lines) {
        public Status {
            lines = List.copyOf(lines);
        }

        /**
         * @param field a field measured in kB, e.g. {@code VmRSS}, {@code RssAnon}, {@code RssFile}
         * @return its value in KiB (the digits of its line), or empty if there is no such line
         * @throws NumberFormatException if the line holds no number
         */
        public OptionalLong kib(String field) {
            String prefix = field + ":";
            return lines.stream().filter(line -> line.startsWith(prefix)).findFirst()
                    .map(line -> OptionalLong.of(Long.parseLong(line.replaceAll("[^0-9]", ""))))
                    .orElse(OptionalLong.empty());
        }
    }

    /**
     * The calling thread's scheduler fields, {@code /proc/thread-self/sched} (kernels built with
     * {@code CONFIG_SCHED_DEBUG}, as distribution kernels are), e.g. {@code se.slice} (ns, Linux 6.6
     * and newer), {@code policy}, {@code prio} (120 + nice).
     *
     * @return field name to its value as printed, or an empty map if the kernel has no such file
     */
    public static Map<String, String> schedOfCurrentThread() {
        Map<String, String> fields = new TreeMap<>();
        List<String> lines;
        try {
            lines = Files.readAllLines(Path.of("/proc/thread-self/sched"));
        } catch (java.nio.file.NoSuchFileException absent) {
            return fields;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        for (String line : lines) {
            int colon = line.indexOf(':');
            if (colon > 0) {
                fields.put(line.substring(0, colon).trim(), line.substring(colon + 1).trim());
            }
        }
        return fields;
    }

    /** @return the process's threads ({@code /proc/self/task}), as they are at this call */
    public static List<Task> tasks() {
        try (Stream<Path> tasks = Files.list(TASK)) {
            return tasks.map(Task::new).toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * A thread of the process, as Linux sees it. Its files are read on each call; a thread that has
     * ended reads as empty strings.
     *
     * @param dir its {@code /proc/self/task/<tid>} directory
     */
    public record Task(Path dir) {
        /** @return its name ({@code comm}: the first 15 bytes of the Java thread name, for platform threads) */
        public String name() {
            return read("comm");
        }

        /** @return its {@code syscall} line: the number of the system call it is blocked in, then its arguments */
        public String syscall() {
            return read("syscall");
        }

        private String read(String file) {
            try {
                return Files.readString(dir.resolve(file)).trim();
            } catch (IOException gone) {
                return ""; // the task ended meanwhile
            }
        }
    }

    private static String target(Path fd) {
        try {
            return Files.readSymbolicLink(fd).toString();
        } catch (IOException closed) {
            return "";
        }
    }
}
