package dev.nativescope.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The interrupt HotSpot sends to a thread whose access to a shared arena's memory races with the
 * arena's {@code close()}, accounted for by tests that race such closes on purpose.
 *
 * <p><b>Why it happens.</b> Since JDK 22 (JDK-8310644, "Make panama memory segment close use async
 * handshakes") closing a shared arena finds, with a handshake, the threads inside an access to its
 * memory and installs an asynchronous exception on each. HotSpot's
 * {@code JavaThread::install_async_exception} also interrupts the target (so that a waiting thread
 * wakes), and that interrupt status stays set, even when the thread had left the access by the time
 * the exception could be delivered (then no exception is thrown at all). So a thread that reads a
 * segment while another thread closes its arena can later find itself interrupted with no
 * {@code Thread.interrupt()} anywhere, and a nativescope call it then makes is cancelled as
 * interrupted. The JDK alone shows it (JDK 25.0.3 here): a thread summing a shared segment in a loop
 * while another closes the arena 20 us in was left interrupted in 2 to 25 of 2000 rounds.
 *
 * <p><b>Use.</b> In a test that races a close of a shared arena with the test thread's own accesses:
 * classify a failure with {@link #isCloseInterrupt}, and end every round with {@link #endRound},
 * which, in the rounds that race such a close, waits without failing on this interrupt and then
 * clears it ({@link #settle()}); every other round must end with the thread not interrupted, so an
 * interrupt from anywhere else still fails the test. A child JVM prints {@link #report()} at its
 * end, and the parent test checks that the JVM's own log ({@link #jvmLogOption}) shows at least as
 * many exceptions installed by arena closes ({@link #installsLogged}) as the child cleared
 * interrupts ({@link #reported}): every interrupt cleared here is accounted for by the JVM.
 *
 * <p>Thread-safe: one atomic counter.
 */
public final class ArenaCloseInterrupts {
    private static final AtomicInteger SEEN = new AtomicInteger();

    private ArenaCloseInterrupts() {
    }

    /** The line {@link #report()} starts with. */
    private static final String REPORT = "interrupts left by closing a shared arena during an access: ";
    /** What HotSpot logs (-Xlog:exceptions=info) when a close installs its exception on an accessing thread. */
    private static final String INSTALL = "Pending Async. exception installed of type: "
            + "jdk.internal.misc.ScopedMemoryAccess$ScopedAccessError";

    /** {@return how many such interrupts this class has cleared in this JVM} */
    public static int seen() {
        return SEEN.get();
    }

    /** {@return the line a child JVM prints at its end: the count of {@link #seen()}} */
    public static String report() {
        return REPORT + SEEN.get();
    }

    /** {@return the count in the {@link #report()} line of a child's output}, or -1 if it printed none */
    public static int reported(String childOutput) {
        return childOutput.lines().filter(line -> line.startsWith(REPORT))
                .mapToInt(line -> Integer.parseInt(line.substring(REPORT.length()).trim())).findFirst().orElse(-1);
    }

    /** {@return the JVM option that logs the installs {@link #installsLogged} counts to {@code log}} */
    public static String jvmLogOption(Path log) {
        return "-Xlog:exceptions=info:file=" + log;
    }

    /** {@return how many times the JVM logged installing an arena close's exception on a thread} */
    public static long installsLogged(Path log) {
        try (var lines = Files.lines(log)) {
            return lines.filter(line -> line.contains(INSTALL)).count();
        } catch (IOException e) {
            throw new UncheckedIOException("reading the child JVM's exception log " + log, e);
        }
    }

    /**
     * Clears the calling thread's interrupt status, counting it if it was set: call it once the
     * racing round's close has returned (the handshake has interrupted the thread by then, if at all).
     */
    public static void settle() {
        if (Thread.interrupted()) {
            SEEN.incrementAndGet();
        }
    }

    /**
     * {@return true, counting it, when {@code failure} is a cancellation caused by an interrupt of the
     * calling thread}, and clears the interrupt status the cancellation left pending
     */
    public static boolean isCloseInterrupt(Throwable failure) {
        if (failure instanceof CancellationException && failure.getCause() instanceof InterruptedException) {
            Thread.interrupted();
            SEEN.incrementAndGet();
            return true;
        }
        return false;
    }

    /**
     * Ends one round of a test that races closes: waits for the round's close {@code trigger} and the
     * arena's {@code owner} thread (null if none) and then, in a round that races a shared arena's
     * close with this thread's accesses, clears the interrupt the close may have left ({@link #settle()});
     * in any other round a pending interrupt is a defect.
     *
     * @return {@code outcome}, or a {@code "wrong: ..."} outcome when a round that raced no close ended interrupted
     */
    public static String endRound(boolean racesClose, Future<?> trigger, Thread owner, String outcome)
            throws ExecutionException, TimeoutException, InterruptedException {
        if (racesClose) {
            get(trigger, 30, TimeUnit.SECONDS);
            if (owner != null) {
                join(owner, TimeUnit.SECONDS.toMillis(30));
            }
            settle();
            return outcome;
        }
        trigger.get(30, TimeUnit.SECONDS);
        if (owner != null) {
            owner.join(TimeUnit.SECONDS.toMillis(30));
        }
        return Thread.interrupted() ? "wrong: interrupted in a round that closes no shared arena (" + outcome + ")"
                : outcome;
    }

    /** {@link Thread#join(long)} that clears and counts interrupts instead of throwing. */
    public static void join(Thread thread, long millis) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
        while (true) {
            try {
                thread.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
                return;
            } catch (InterruptedException e) {
                SEEN.incrementAndGet();
                if (System.nanoTime() - deadline >= 0) {
                    return;
                }
            }
        }
    }

    /** {@link Future#get(long, TimeUnit)} that clears and counts interrupts instead of throwing. */
    public static <T> T get(Future<T> future, long timeout, TimeUnit unit) throws ExecutionException, TimeoutException {
        long deadline = System.nanoTime() + unit.toNanos(timeout);
        while (true) {
            try {
                return future.get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            } catch (InterruptedException e) {
                SEEN.incrementAndGet();
            }
        }
    }
}
