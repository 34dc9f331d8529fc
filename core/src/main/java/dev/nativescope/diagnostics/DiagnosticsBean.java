package dev.nativescope.diagnostics;

import dev.nativescope.internal.text.SafeText;

import java.lang.management.ManagementFactory;
import java.util.concurrent.TimeUnit;
import javax.management.InstanceAlreadyExistsException;
import javax.management.ObjectName;

/** The MBean behind {@value Diagnostics#OBJECT_NAME}; stateless, thread-safe. */
final class DiagnosticsBean implements DiagnosticsMXBean {
    /**
     * Registers the MBean after {@value Diagnostics#MBEAN_DELAY_PROPERTY} milliseconds, so that
     * starting the platform MBean server does not compete with the application's own start for the
     * CPUs; failures leave the rest working. Runs in the set-up thread ({@link CallHooks}).
     */
    static void registerLater() {
        try {
            TimeUnit.MILLISECONDS.sleep(Diagnostics.MBEAN_DELAY_MILLIS);
        } catch (InterruptedException e) {
            // Nobody interrupts this thread of ours; register now rather than never.
        }
        try {
            ManagementFactory.getPlatformMBeanServer().registerMBean(new DiagnosticsBean(), new ObjectName(Diagnostics.OBJECT_NAME));
        } catch (InstanceAlreadyExistsException alreadyRegistered) {
            // Another copy of the library (another class loader) registered first: it answers.
        } catch (Exception | LinkageError e) {
            System.getLogger(Diagnostics.class.getName()).log(System.Logger.Level.WARNING,
                    "could not register the MBean " + Diagnostics.OBJECT_NAME + " (nativescope inspect will not see"
                    + " this JVM): " + SafeText.of(e));
        }
    }

    @Override
    public int getInFlightCount() {
        return Diagnostics.inFlight().size();
    }

    @Override
    public String dumpInFlight() {
        return Diagnostics.dump();
    }
}
