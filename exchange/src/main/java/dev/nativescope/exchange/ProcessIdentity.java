package dev.nativescope.exchange;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A process named by its pid and its start time (field 22 of {@code /proc/<pid>/stat}, clock ticks
 * after boot), so that a reused pid is not mistaken for the process that had it. Stateless.
 */
final class ProcessIdentity {
    private static final int SELF_PID = (int) ProcessHandle.current().pid();
    private static final long SELF_START = startTime(Path.of("/proc/self/stat"));

    private ProcessIdentity() {
    }

    static int selfPid() {
        return SELF_PID;
    }

    static long selfStart() {
        return SELF_START;
    }

    /**
     * @return true while the process with {@code pid} exists, has start time {@code start} (any start
     *         time when {@code start} is 0: a lease being taken) and has not exited (a zombie has)
     */
    static boolean isAlive(int pid, long start) {
        if (pid <= 0) {
            return false;
        }
        String stat = read(Path.of("/proc/" + pid + "/stat"));
        if (stat == null) {
            return false;
        }
        char state = field(stat, 3).charAt(0);
        if (state == 'Z' || state == 'X') {
            return false;
        }
        return start == 0 || Long.parseLong(field(stat, 22)) == start;
    }

    private static long startTime(Path stat) {
        String text = read(stat);
        return text == null ? 0 : Long.parseLong(field(text, 22));
    }

    private static String read(Path stat) {
        try {
            return Files.readString(stat, StandardCharsets.ISO_8859_1);
        } catch (IOException e) {
            return null;
        }
    }

    /** Field n (1-based) of a stat line; the command (field 2) may hold spaces and parentheses. */
    private static String field(String stat, int n) {
        int close = stat.lastIndexOf(')');
        String[] rest = stat.substring(close + 2).trim().split(" ");
        return rest[n - 3];
    }
}
