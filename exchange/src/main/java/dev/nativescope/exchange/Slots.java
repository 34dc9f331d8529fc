package dev.nativescope.exchange;

import static dev.nativescope.exchange.ExchangeDescriptor.*;

import java.lang.foreign.ValueLayout;

/** Slot repairs shared by the producer paths. Stateless. */
final class Slots {
    private Slots() {
    }

    /** Makes slot {@code i} read as empty with the even {@code seq}. */
    static void markEmpty(ExchangeFile file, int i, int evenSeq) {
        long base = slotMetaOffset(i);
        file.segment.set(ValueLayout.JAVA_LONG, base + SLOT_VERSION_OFFSET, 0L);
        file.segment.set(ValueLayout.JAVA_INT, base + SLOT_NDIM_OFFSET, 0);
        file.segment.set(ValueLayout.JAVA_LONG, base + SLOT_BYTE_LENGTH_OFFSET, 0L);
        file.intRelease(base + SLOT_SEQ_OFFSET, evenSeq);
    }

    /** Take-over: a slot a dead producer left odd (half-written) becomes empty. @return how many were repaired */
    static int repair(ExchangeFile file) {
        int repaired = 0;
        for (int i = 0; i < file.slotCount; i++) {
            int seq = file.slotSeq(i);
            if ((seq & 1) != 0) {
                markEmpty(file, i, seq + 1);
                repaired++;
            }
        }
        return repaired;
    }
}
