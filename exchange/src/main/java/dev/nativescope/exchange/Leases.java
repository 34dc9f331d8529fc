package dev.nativescope.exchange;

import static dev.nativescope.exchange.ExchangeDescriptor.*;

/**
 * The lease table in the header: {@value ExchangeDescriptor#LEASE_COUNT} entries of {pid, slot,
 * start}. A consumer takes an entry by a CAS of its pid from 0, stores its start time and then the
 * slot (seq_cst), and only then re-checks the slot's seq; the producer makes a slot's seq odd
 * (seq_cst) before it looks at the leases, so one of the two sees the other. An entry whose
 * holder died is freed by the producer (CAS back to 0), so a killed consumer leaves nothing
 * behind. An entry with start 0 is being taken: its holder counts as alive while its pid exists.
 */
final class Leases {
    private Leases() {
    }

    static long entry(int i) {
        return LEASES_OFFSET + (long) i * LEASE_LENGTH;
    }

    /** @return true when a live consumer holds slot {@code slot}; frees entries of dead holders */
    static boolean held(ExchangeFile file, int slot) {
        for (int i = 0; i < LEASE_COUNT; i++) {
            long e = entry(i);
            int pid = file.intVolatile(e + LEASE_PID_OFFSET);
            if (pid == 0 || file.intVolatile(e + LEASE_SLOT_OFFSET) != slot) {
                continue;
            }
            if (ProcessIdentity.isAlive(pid, file.longVolatile(e + LEASE_START_OFFSET))) {
                return true;
            }
            file.intCas(e + LEASE_PID_OFFSET, pid, 0);
        }
        return false;
    }

    /** @return the entry taken, or -1 when the table is full */
    static int take(ExchangeFile file, int slot) {
        int pid = ProcessIdentity.selfPid();
        for (int i = 0; i < LEASE_COUNT; i++) {
            long e = entry(i);
            if (file.intVolatile(e + LEASE_PID_OFFSET) == 0 && file.intCas(e + LEASE_PID_OFFSET, 0, pid)) {
                file.longVolatile(e + LEASE_START_OFFSET, ProcessIdentity.selfStart());
                file.intVolatile(e + LEASE_SLOT_OFFSET, slot);
                return i;
            }
        }
        return -1;
    }

    static void release(ExchangeFile file, int entry) {
        long e = entry(entry);
        file.intVolatile(e + LEASE_SLOT_OFFSET, -1);
        file.longVolatile(e + LEASE_START_OFFSET, 0L);
        file.intVolatile(e + LEASE_PID_OFFSET, 0);
    }
}
