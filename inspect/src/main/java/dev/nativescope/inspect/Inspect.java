package dev.nativescope.inspect;

import com.sun.tools.attach.AttachNotSupportedException;
import com.sun.tools.attach.VirtualMachine;
import com.sun.tools.attach.VirtualMachineDescriptor;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;

/**
 * {@code nativescope inspect <pid>}: attaches to a running JVM with the Attach API, starts its local
 * JMX agent ({@code VirtualMachine.startLocalManagementAgent()}, nothing pre-installed in the target),
 * calls the operation {@code dumpInFlight} of the MBean {@code dev.nativescope:type=Diagnostics}
 * and prints the table: the in-flight cancellable native calls, "cancel requested but not returned"
 * first, stuck ones flagged. Exit status: 0 printed, 1 no such process / not a JVM / attach refused,
 * 2 usage, 3 no nativescope in that JVM.
 *
 * <p>Run: {@code java -jar nativescope-inspect.jar <pid>} (or {@code ./run inspect <pid>} in the repository),
 * as the user that runs the target JVM.
 */
public final class Inspect {
    static final String OBJECT_NAME = "dev.nativescope:type=Diagnostics";
    static final int OK = 0;
    static final int FAILED = 1;
    static final int USAGE = 2;
    static final int NO_NATIVESCOPE = 3;
    /** How long to wait for the MBean: longer than the target's default registration delay (1 s). */
    static final long MBEAN_WAIT_NANOS = java.util.concurrent.TimeUnit.SECONDS.toNanos(3);

    private Inspect() {
    }

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    /** Runs the command; prints the table to {@code out}, messages to {@code err}; returns the exit status. */
    static int run(String[] args, PrintStream out, PrintStream err) {
        if (args.length != 1 || args[0].startsWith("-")) {
            err.println("usage: nativescope inspect <pid>   (java -jar nativescope-inspect.jar <pid>)");
            err.println("prints the in-flight cancellable native calls of a running JVM that uses nativescope");
            return USAGE;
        }
        long pid;
        try {
            pid = Long.parseLong(args[0]);
        } catch (NumberFormatException e) {
            err.println("nativescope inspect: '" + args[0] + "' is not a process id");
            return USAGE;
        }
        Optional<ProcessHandle> process = ProcessHandle.of(pid);
        if (process.isEmpty()) {
            err.println("nativescope inspect: no process with pid " + pid);
            return FAILED;
        }
        VirtualMachine vm;
        try {
            vm = VirtualMachine.attach(Long.toString(pid));
        } catch (AttachNotSupportedException | IOException e) {
            err.println("nativescope inspect: " + whyNotAttached(pid, process.get(), e));
            return FAILED;
        }
        try {
            String address = vm.startLocalManagementAgent();
            try (JMXConnector connector = JMXConnectorFactory.connect(new JMXServiceURL(address))) {
                MBeanServerConnection server = connector.getMBeanServerConnection();
                ObjectName name = new ObjectName(OBJECT_NAME);
                if (!awaitRegistered(server, name)) {
                    err.println("nativescope inspect: the JVM with pid " + pid + " has no MBean " + OBJECT_NAME
                            + ": nativescope is not loaded there, or it has made no nativescope native call yet"
                            + " (the MBean appears after the first call through NativeCall, about a second later:"
                            + " -Dnativescope.diagnostics.mbeanDelayMillis in that JVM sets the delay)");
                    return NO_NATIVESCOPE;
                }
                out.print(server.invoke(name, "dumpInFlight", null, null));
                out.flush();
                return OK;
            }
        } catch (Exception e) {
            err.println("nativescope inspect: attached to pid " + pid + " but could not read its diagnostics: " + e);
            return FAILED;
        } finally {
            try {
                vm.detach();
            } catch (IOException ignored) {
                // the dump is printed; nothing to do about a failed detach
            }
        }
    }

    /**
     * Whether the MBean is registered, waiting up to {@link #MBEAN_WAIT_NANOS} for it: the target
     * registers it in the background about a second after its first native call, so a JVM inspected
     * right after that call may not have it yet.
     */
    static boolean awaitRegistered(MBeanServerConnection server, ObjectName name) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + MBEAN_WAIT_NANOS;
        while (!server.isRegistered(name)) {
            if (System.nanoTime() - deadline >= 0) {
                return false;
            }
            Thread.sleep(50);
        }
        return true;
    }

    /** The message for a failed attach: another user's JVM, not a JVM at all, or the JDK's own reason. */
    static String whyNotAttached(long pid, ProcessHandle process, Exception failure) {
        String command = process.info().command().map(c -> Path.of(c).getFileName().toString()).orElse("?");
        Optional<String> owner = process.info().user();
        String self = System.getProperty("user.name");
        if (owner.isPresent() && !owner.get().equals(self) && !"root".equals(self)) {
            return "pid " + pid + " (" + command + ") belongs to user " + owner.get() + ", and a JVM accepts attach requests only"
                    + " from its own user: run as that user (sudo -u " + owner.get() + " java -jar nativescope-inspect.jar " + pid
                    + ")";
        }
        boolean listed = VirtualMachine.list().stream().map(VirtualMachineDescriptor::id).anyMatch(Long.toString(pid)::equals);
        if (!listed && !looksLikeJava(pid, command)) {
            return "pid " + pid + " (" + command + ") is not a Java virtual machine";
        }
        if (owner.isPresent() && !owner.get().equals(self)) {
            return "cannot attach to pid " + pid + " (" + command + ", user " + owner.get() + "): " + failure.getMessage()
                    + "; run as that user";
        }
        return "cannot attach to the JVM with pid " + pid + " (" + command + "): " + failure.getMessage()
                + " (was it started with -XX:+DisableAttachMechanism, or in another container or mount namespace?)";
    }

    private static boolean looksLikeJava(long pid, String command) {
        if (command.equals("java")) {
            return true;
        }
        try {
            // A JVM maps libjvm.so; readable for our own user's processes.
            return Files.readString(Path.of("/proc", Long.toString(pid), "maps")).contains("libjvm.so");
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }
}
