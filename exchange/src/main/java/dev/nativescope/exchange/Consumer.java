package dev.nativescope.exchange;

import static dev.nativescope.exchange.ExchangeDescriptor.*;

import dev.nativescope.Context;
import dev.nativescope.call.CallMode;
import dev.nativescope.call.NativeCall;
import dev.nativescope.call.NativeThreads;
import dev.nativescope.library.NativeStatus;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Objects;
import java.util.Optional;

/**
 * A consumer of an exchange: reads the {@link #latest() newest} or the {@link #next() next}
 * version as a read-only zero-copy {@link Tensor} over the shared mapping, and {@link #awaitNext
 * waits} for the next one without spinning.
 *
 * <p><b>Torn tensors.</b> Slot metadata is read under the slot's seqlock (seq before and after,
 * equal and even) into a private copy and validated against the file's geometry before a view is
 * formed, so a view never points outside its slot, whatever the file says. A slot's view, once
 * validated, is reused while a later seqlock read finds the same metadata words, compared one by one
 * ({@code SlotView}); any other word is validated afresh. The data is not
 * copied: see {@link Received} for how long it stays unchanged, and {@link #lease(Received)} to
 * hold it.
 *
 * <p><b>Waiting.</b> {@link #awaitNext(Context, Duration)} optionally spins (reading the notify
 * word) for {@link #spinBeforeBlocking(Duration)}, then blocks. A platform thread under a context
 * without a deadline calls {@code nsc_exchange_wait_stoppable} directly ({@link PlatformWait}: the
 * bridge's exit path cost the wake microseconds); otherwise the wait is the shim's {@code
 * nsc_exchange_wait} through {@link NativeCall#invoke(Context, CallMode, NativeCall.Downcall)}. Either
 * way it is one {@code futex_waitv} on the header's notify word (a shared futex), a stop word (the
 * call's context state, or {@link PlatformWait}'s word that a cancel or an interrupt moves)
 * and a word the shim's watcher thread bumps when the producer process exits (it polls the pidfds of
 * the producers being waited for), so a cancel, a deadline, an interrupt or the producer's death ends
 * it at once, and a wait without a timeout or deadline arms no timer (a 2 ms liveness timer used to
 * make a blocked wake several times slower than a plain futex wake, BENCHMARKS.md section 11). The
 * {@link #livenessInterval(Duration) liveness interval} is used only where the watcher cannot watch
 * (no {@code pidfd_open}, out of descriptors): the wait then wakes that often to check the producer.
 *
 * <p><b>Virtual threads.</b> The wait is offloaded ({@link CallMode#AUTO}): on a virtual thread it
 * runs on one of the {@link NativeThreads native threads} while the virtual thread parks, so its
 * carrier is free; a platform thread waits inline (no handoff). Each virtual thread blocked in a wait
 * holds one native thread of the bounded pool ({@value NativeThreads#POOL_SIZE_PROPERTY}, default
 * {@code max(8, 4 * cores)}); waits beyond it queue, and the queue time counts against the wait's
 * timeout and its context's deadline. Raise the pool size when more virtual threads wait at once.
 *
 * <p>Threading: one thread at a time (the position is not synchronised); views may be read from
 * any thread. Closing unmaps: views then throw {@link IllegalStateException} on access.
 */
public final class Consumer implements AutoCloseable {
    private final ExchangeFile file;
    /** Per slot: its data as one read-only segment, sliced once (the mapping and its geometry never change). */
    private final MemorySegment[] slotData;
    /** Per slot: the last view formed over it and the layout words it was validated for (see {@link SlotView}). */
    private final SlotView[] views;
    private long position;
    private long spinNanos;
    private long livenessNanos = 2_000_000;
    private PlatformWait platformWait;

    Consumer(ExchangeFile file) {
        this.file = file;
        this.slotData = new MemorySegment[file.slotCount];
        for (int i = 0; i < file.slotCount; i++) {
            slotData[i] = file.segment.asSlice(file.slotDataStart(i), file.slotCapacity).asReadOnly();
        }
        this.views = new SlotView[file.slotCount];
    }

    /**
     * A validated view of a slot and the slot's layout words it was formed from. {@link
     * ExchangeDescriptor#validateSlot} and the tensor are functions of these words and of the file's
     * geometry (fixed at open) only, so a later seqlock-consistent read of the slot that finds the same
     * words, compared one by one, would pass validation again and form an equal tensor: the cached one
     * is used instead (the wake path's cost, BENCHMARKS.md section 26). A producer that changes any
     * word, hostile or not, misses the cache and is validated afresh. Immutable: every field is final
     * and the arrays are private copies never written after construction, so even a racy read of
     * {@link #views} (a consumer misused from two threads) sees a consistent entry.
     */
    private record SlotView(int dtypeWord, int ndim, long dataOffset, long byteLength, long[] shape, long[] strides,
                            Tensor tensor) {
        boolean sameLayout(ExchangeDescriptor.SlotMeta meta) {
            return meta.dtypeWord() == dtypeWord && meta.ndim() == ndim && meta.dataOffset() == dataOffset
                    && meta.byteLength() == byteLength && Arrays.equals(meta.shape(), shape)
                    && Arrays.equals(meta.strides(), strides);
        }
    }

    /** @return the exchange file */
    public Path file() {
        return file.path;
    }

    /** @return the whole mapping (views lie inside it) */
    public MemorySegment mapping() {
        return file.segment;
    }

    /** @return the last version this consumer read or skipped to (0 before the first) */
    public long position() {
        return position;
    }

    /** Moves the position: the next {@link #next()} looks for {@code version + 1}. */
    public void seek(long version) {
        this.position = version;
    }

    /** Spins this long (reading the notify word) before blocking in a wait; 0 (the default) blocks at once. */
    public Consumer spinBeforeBlocking(Duration spin) {
        this.spinNanos = spin.toNanos();
        return this;
    }

    /**
     * How often a blocked wait wakes to check the producer's liveness where the shim's watcher thread
     * cannot watch it (default 2 ms); with the watcher (Linux 5.3+), a death wakes the wait at once.
     */
    public Consumer livenessInterval(Duration interval) {
        this.livenessNanos = Math.max(100_000, interval.toNanos());
        return this;
    }

    /** @return the producer's state as the header names it */
    public ProducerState producerState() {
        return file.producerState();
    }

    /** @return the number of slots */
    public int slotCount() {
        return file.slotCount;
    }

    /** @return the newest published version, 0 before the first */
    public long latestVersion() {
        return file.latestVersion();
    }

    /**
     * The newest tensor; moves the position to it.
     *
     * @return {@link ReadStatus#OK} or {@link ReadStatus#EMPTY} (nothing published yet)
     * @throws CorruptExchangeException when the slot's metadata is invalid
     */
    public Received latest() {
        for (int attempt = 0; attempt < 64; attempt++) {
            long version = file.latestVersion();
            int slot = file.intAcquire(LATEST_SLOT_OFFSET);
            if (version == 0) {
                return Received.of(ReadStatus.EMPTY);
            }
            if (slot < 0 || slot >= file.slotCount) {
                throw new CorruptExchangeException(file.path, "latest slot " + slot + " is outside 0.." + (file.slotCount - 1));
            }
            ExchangeDescriptor.SlotMeta meta = file.readSlot(slot);
            if (meta != null && meta.version() == version) {
                position = version;
                return view(meta);
            }
            Thread.onSpinWait();
        }
        // latest_slot and latest_version are two stores: a producer killed between them leaves them
        // disagreeing. The newest complete slot is then found by a scan.
        ExchangeDescriptor.SlotMeta best = null;
        for (int i = 0; i < file.slotCount; i++) {
            ExchangeDescriptor.SlotMeta meta = file.readSlot(i);
            if (meta != null && (best == null || meta.version() > best.version())) {
                best = meta;
            }
        }
        if (best == null) {
            return Received.of(ReadStatus.EMPTY);
        }
        position = best.version();
        return view(best);
    }

    /**
     * The version after {@link #position()}: {@link ReadStatus#OK} with it, {@link
     * ReadStatus#EMPTY} when it is not published yet, or {@link ReadStatus#OVERRUN} when it was
     * already overwritten (the position then moves so that the next call returns the oldest
     * version still there).
     *
     * @throws CorruptExchangeException when a slot's metadata is invalid
     */
    public Received next() {
        long latest = file.latestVersion();
        if (latest <= position) {
            return Received.of(ReadStatus.EMPTY);
        }
        if (latest == position + 1) {
            // A consumer that keeps up wants the newest: one slot's metadata instead of a scan (the wake path).
            int slot = file.intAcquire(LATEST_SLOT_OFFSET);
            boolean inRange = slot >= 0 && slot < file.slotCount;
            Received cached = inRange ? readCached(slot, latest) : null;
            if (cached != null) {
                position = latest;
                return cached;
            }
            // Not cached, its layout changed, or torn: the full read (which retries) and validation.
            ExchangeDescriptor.SlotMeta meta = inRange ? file.readSlot(slot) : null;
            if (meta != null && meta.version() == latest) {
                Received received = view(meta);
                position = latest;
                return received;
            }
            // latest_slot not yet (or never, after a producer died between the two stores) naming it: scan.
        }
        ExchangeDescriptor.SlotMeta best = null;
        for (int i = 0; i < file.slotCount; i++) {
            ExchangeDescriptor.SlotMeta meta = file.readSlot(i);
            if (meta != null && meta.version() > position && (best == null || meta.version() < best.version())) {
                best = meta;
                if (meta.version() == position + 1) {
                    break;
                }
            }
        }
        if (best == null) {
            return Received.of(ReadStatus.EMPTY);
        }
        if (best.version() != position + 1) {
            long missed = best.version() - position - 1;
            position = best.version() - 1;
            return Received.overrun(missed);
        }
        Received received = view(best);
        position = best.version();
        return received;
    }

    /** {@link #awaitNext(Context, Duration)} under {@link Context#current()} with no own timeout. */
    public Received awaitNext() {
        return awaitNext(Context.current(), null);
    }

    /** {@link #awaitNext(Context, Duration)} under {@link Context#current()}. */
    public Received awaitNext(Duration timeout) {
        return awaitNext(Context.current(), timeout);
    }

    /**
     * Waits for the version after {@link #position()}.
     *
     * @param context cancels the wait and bounds it by its deadline; an interrupt of the waiting
     *        thread cancels it too
     * @param timeout the wait's own bound (null: none): {@link ReadStatus#TIMEOUT} when it passes
     * @return {@link ReadStatus#OK}, {@link ReadStatus#OVERRUN}, {@link ReadStatus#TIMEOUT},
     *         {@link ReadStatus#PRODUCER_DEAD} or {@link ReadStatus#PRODUCER_CLOSED} (after every
     *         tensor published before the producer went was read)
     * @throws java.util.concurrent.CancellationException when the context was cancelled or the
     *         thread interrupted (its interrupt status stays set)
     * @throws dev.nativescope.DeadlineExceededException when the context's deadline passed
     */
    public Received awaitNext(Context context, Duration timeout) {
        Objects.requireNonNull(context, "context");
        long until = timeout == null ? Long.MAX_VALUE : System.nanoTime() + Math.max(0, timeout.toNanos());
        for (;;) {
            int seen = file.notifyWord();
            Received received = next();
            if (received.status() != ReadStatus.EMPTY) {
                return received;
            }
            if (spinNanos > 0 && spin(seen, Math.min(until, System.nanoTime() + spinNanos))) {
                continue;
            }
            if (until != Long.MAX_VALUE && until - System.nanoTime() <= 0) {
                return Received.of(ReadStatus.TIMEOUT);
            }
            int status = block(context, seen, until);
            if (status == NativeStatus.OK.code()) {
                continue;
            }
            if (status == NativeStatus.TIMEOUT.code()) {
                return Received.of(ReadStatus.TIMEOUT);
            }
            if (status == ExchangeNative.PRODUCER_DEAD || status == ExchangeNative.PRODUCER_CLOSED) {
                Received last = next();
                if (last.status() != ReadStatus.EMPTY) {
                    return last;
                }
                return Received.of(status == ExchangeNative.PRODUCER_DEAD ? ReadStatus.PRODUCER_DEAD : ReadStatus.PRODUCER_CLOSED);
            }
            throw new CorruptExchangeException(file.path, "nsc_exchange_wait returned " + status
                    + " (the header's magic or version changed under the mapping)");
        }
    }

    /** One blocked wait while the notify word is {@code seen}: @return the shim's status */
    private int block(Context context, int seen, long until) {
        long liveness = livenessNanos;
        if (PlatformWait.applies(context)) {
            // A platform thread under a context without deadline: straight into futex_waitv (PlatformWait).
            PlatformWait direct = platformWait == null ? platformWait = new PlatformWait() : platformWait;
            return direct.await(context, file.header, seen,
                    until == Long.MAX_VALUE ? -1 : Math.max(0, until - System.nanoTime()), liveness);
        }
        // AUTO: a virtual thread parks (its carrier free) while a native thread blocks in the futex.
        // The remaining time is taken where the wait runs, so a wait queued for a thread loses it.
        return NativeCall.invoke(context, CallMode.AUTO, ctx -> ExchangeNative.await(ctx, file.header, seen,
                until == Long.MAX_VALUE ? -1 : Math.max(0, until - System.nanoTime()), liveness));
    }

    /** @return true when the notify word moved before {@code untilNanos} */
    private boolean spin(int seen, long untilNanos) {
        int spins = 0;
        while (file.notifyWord() == seen) {
            Thread.onSpinWait();
            if ((++spins & 63) == 0 && System.nanoTime() >= untilNanos) {
                return false;
            }
        }
        return true;
    }

    /**
     * Holds {@code received}'s slot against reuse until the lease is closed.
     *
     * @return the lease, or empty when the slot was overwritten before the lease took hold
     * @throws IllegalStateException when every lease entry ({@value ExchangeDescriptor#LEASE_COUNT})
     *         is taken, or {@code received} holds no tensor
     */
    public Optional<Lease> lease(Received received) {
        if (!received.isOk()) {
            throw new IllegalStateException("nothing to lease: " + received.status());
        }
        int entry = Leases.take(file, received.slot());
        if (entry < 0) {
            throw new IllegalStateException("all " + LEASE_COUNT + " lease entries of " + file.path + " are taken");
        }
        // seq_cst after our lease store (Leases.take): Dekker with the producer's odd seq store.
        if (file.intVolatile(slotMetaOffset(received.slot()) + SLOT_SEQ_OFFSET) != received.seq()) {
            Leases.release(file, entry);
            return Optional.empty();
        }
        return Optional.of(new Lease(file, entry, received));
    }

    /**
     * One seqlock read of slot {@code slot} that allocates nothing: @return the slot's version {@code
     * version} over the cached view, or null when the slot has no cached view, its layout words differ
     * from the cached ones, it holds another version, or it is being written (the caller then takes the
     * full {@link ExchangeFile#readSlot} path, which retries and validates).
     */
    private Received readCached(int slot, long version) {
        SlotView cached = views[slot];
        if (cached == null) {
            return null;
        }
        MemorySegment s = file.segment;
        long base = slotMetaOffset(slot);
        int s1 = file.intAcquire(base + SLOT_SEQ_OFFSET);
        if ((s1 & 1) != 0) {
            return null;
        }
        // Seqlock, as in readSlot: the plain loads below cannot move above the acquire load of seq
        // (s1), nor below the second load of seq (the loadLoad fence); equal even seqs around them
        // mean no write overlapped them, so they are one consistent copy of the slot's words.
        boolean same = s.get(ValueLayout.JAVA_LONG, base + SLOT_VERSION_OFFSET) == version
                & s.get(ValueLayout.JAVA_INT, base + SLOT_DTYPE_OFFSET) == cached.dtypeWord
                & s.get(ValueLayout.JAVA_INT, base + SLOT_NDIM_OFFSET) == cached.ndim
                & s.get(ValueLayout.JAVA_LONG, base + SLOT_DATA_OFFSET_OFFSET) == cached.dataOffset
                & s.get(ValueLayout.JAVA_LONG, base + SLOT_BYTE_LENGTH_OFFSET) == cached.byteLength;
        long publishNs = s.get(ValueLayout.JAVA_LONG, base + SLOT_PUBLISH_NS_OFFSET);
        long[] shape = cached.shape;
        long[] strides = cached.strides;
        // cached.ndim passed validateSlot (0..MAX_NDIM), and the ndim word equals it when same holds.
        for (int d = 0; d < shape.length; d++) {
            same &= s.get(ValueLayout.JAVA_LONG, base + SLOT_SHAPE_OFFSET + 8L * d) == shape[d]
                    & s.get(ValueLayout.JAVA_LONG, base + SLOT_STRIDES_OFFSET + 8L * d) == strides[d];
        }
        VarHandle.loadLoadFence();
        if (!same || file.intAcquire(base + SLOT_SEQ_OFFSET) != s1) {
            return null;
        }
        return new Received(ReadStatus.OK, cached.tensor, version, slot, s1, 0, publishNs, file);
    }

    private Received view(ExchangeDescriptor.SlotMeta meta) {
        int slot = meta.slot();
        SlotView cached = slot >= 0 && slot < views.length ? views[slot] : null;
        Tensor tensor;
        if (cached != null && cached.sameLayout(meta)) {
            tensor = cached.tensor; // validated for exactly these words (SlotView)
        } else {
            String problem = ExchangeDescriptor.validateSlot(meta, file.slotCount, file.slotCapacity, file.dataOffset);
            if (problem != null) {
                throw new CorruptExchangeException(file.path, problem);
            }
            DType dtype = DTypes.ofWord(meta.dtypeWord());
            tensor = Tensor.of(slotData[slot], meta.dataOffset() - file.slotDataStart(slot), dtype, meta.shape(), meta.strides());
            // meta's arrays are readSlot's private copies (Tensor.of cloned its own): the entry may keep them.
            views[slot] = new SlotView(meta.dtypeWord(), meta.ndim(), meta.dataOffset(), meta.byteLength(), meta.shape(),
                    meta.strides(), tensor);
        }
        return new Received(ReadStatus.OK, tensor, meta.version(), slot, meta.seq(), 0, meta.publishNanos(), file);
    }

    /** Unmaps the exchange in this process; views become inaccessible. */
    @Override
    public void close() {
        file.close();
    }
}
