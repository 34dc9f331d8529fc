package dev.nativescope.call;

import dev.nativescope.internal.access.ContextAccess;
import dev.nativescope.internal.access.SharedAccess;
import dev.nativescope.CancellableContext;
import dev.nativescope.Context;
import dev.nativescope.ContextKey;
import dev.nativescope.Registration;
import dev.nativescope.internal.posix.NativeHeap;
import dev.nativescope.bindings.nsc_kv;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.ref.Cleaner;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The native copy of a context's visible values: an {@code nsc_kv} array and its UTF-8 strings
 * (each also NUL-terminated) in one malloc'd block that this object alone owns.
 *
 * <p>Lifetime: every native call that points at the block holds it ({@link #tryHold()} /
 * {@link #release()}); the block is retired when its context becomes done, or when the context
 * becomes unreachable (a {@link Cleaner}), and the block is freed by whichever of retire and the
 * last release comes second. The pointer lives inside the call's {@code nsc_context}, where no
 * arena could guard it anyway: this count is what keeps it alive. So the memory is never freed
 * under a native call, and is freed promptly once no call can use it.
 *
 * <p>Thread-safe: the state is one atomic word, {@code holds << 1 | RETIRED}.
 */
final class NativeValues {
    private static final ContextAccess CONTEXTS = SharedAccess.CONTEXTS.get();
    private static final int RETIRED = 1;
    private static final int ONE_HOLD = 2;

    private final MemorySegment block;
    final MemorySegment array;
    final long count;
    private final AtomicInteger state = new AtomicInteger();
    private volatile boolean freed;

    /** The block of a context without values: a NULL array, nothing to hold or free. */
    static final NativeValues NONE = new NativeValues();

    private NativeValues() {
        this.block = null;
        this.array = MemorySegment.NULL;
        this.count = 0;
    }

    private NativeValues(List<Map.Entry<ContextKey<?>, Object>> values) {
        int n = values.size();
        byte[][] keys = new byte[n][];
        byte[][] texts = new byte[n][];
        long stringBytes = 0;
        for (int i = 0; i < n; i++) {
            Map.Entry<ContextKey<?>, Object> entry = values.get(i);
            keys[i] = entry.getKey().name().getBytes(StandardCharsets.UTF_8);
            texts[i] = nativeValue(entry.getKey(), entry.getValue()).getBytes(StandardCharsets.UTF_8);
            stringBytes += keys[i].length + 1L + texts[i].length + 1L;
        }
        long arrayBytes = nsc_kv.sizeof() * n;
        // One block: the nsc_kv array first (malloc's alignment suits it), then the strings, each
        // followed by the NUL that C callers may rely on.
        this.block = NativeHeap.allocate(arrayBytes + stringBytes);
        this.array = block.asSlice(0, arrayBytes);
        this.count = n;
        long at = arrayBytes;
        for (int i = 0; i < n; i++) {
            MemorySegment kv = nsc_kv.asSlice(array, i);
            nsc_kv.key(kv, copyWithNul(keys[i], at));
            nsc_kv.key_len(kv, keys[i].length);
            at += keys[i].length + 1L;
            nsc_kv.value(kv, copyWithNul(texts[i], at));
            nsc_kv.value_len(kv, texts[i].length);
            at += texts[i].length + 1L;
        }
        state.set(ONE_HOLD);
        NativeResources.JAVA_NATIVE_BYTES.addAndGet(block.byteSize());
        NativeResources.LIVE_VALUE_BLOCKS.incrementAndGet();
        LeakSites.created(this, "native values block (" + n + " values)");
    }

    private MemorySegment copyWithNul(byte[] bytes, long at) {
        MemorySegment target = block.asSlice(at, bytes.length + 1L);
        MemorySegment.copy(bytes, 0, target, ValueLayout.JAVA_BYTE, 0, bytes.length);
        target.set(ValueLayout.JAVA_BYTE, bytes.length, (byte) 0);
        return target;
    }

    @SuppressWarnings("unchecked")
    private static String nativeValue(ContextKey<?> key, Object value) {
        return ((ContextKey<Object>) key).nativeValue(value);
    }

    /**
     * Holds the context's block for one native call, building it on first use.
     *
     * @return the held block ({@link #NONE} when the context has no values), or null when the
     *         context is done and its block already retired: the caller must not enter native code
     */
    static NativeValues holdFor(Context context) {
        while (true) {
            NativeValues existing = (NativeValues) CONTEXTS.nativeValues(context);
            if (existing != null) {
                return existing.tryHold() ? existing : null;
            }
            List<Map.Entry<ContextKey<?>, Object>> values = CONTEXTS.visibleValues(context);
            if (values.isEmpty()) {
                CONTEXTS.casNativeValues(context, null, NONE);
                continue;
            }
            NativeValues fresh = new NativeValues(values);
            if (CONTEXTS.casNativeValues(context, null, fresh)) {
                // Registered after the CAS: if the context is already done, retire runs at once here,
                // and our hold keeps the block until the caller's release.
                Registration retireOnDone = context.onDone(fresh::retire);
                // The cleaner action must not capture the context, or it would never become
                // unreachable. A value context's done action lives on its nearest cancellable
                // ancestor, which may live much longer (a server's root context): the cleaner
                // removes it, or the ancestor would keep one action, and the block's Java objects,
                // per value context that ever made a native call (ContextBenchmark
                // droppedValueContextsAfterNativeCall: 217 B of heap each). A cancellable context's
                // action lives on the context itself (so the registration references it) and goes
                // away with it.
                CallCleaner.CLEANER.register(context, context instanceof CancellableContext
                        ? fresh::retire
                        : () -> {
                            fresh.retire();
                            retireOnDone.remove();
                        });
                return fresh;
            }
            // Lost the race to another caller: drop ours (retire, then our hold's release frees it).
            fresh.retire();
            fresh.release();
        }
    }

    /** @return true when the caller now holds the block; false when it is retired (its context is done) */
    boolean tryHold() {
        if (this == NONE) {
            return true;
        }
        while (true) {
            int current = state.get();
            if ((current & RETIRED) != 0) {
                return false;
            }
            if (state.compareAndSet(current, current + ONE_HOLD)) {
                return true;
            }
        }
    }

    void release() {
        if (this == NONE) {
            return;
        }
        int after = state.addAndGet(-ONE_HOLD);
        if (after == RETIRED) {
            free();
        }
    }

    void retire() {
        while (true) {
            int current = state.get();
            if ((current & RETIRED) != 0) {
                return;
            }
            if (state.compareAndSet(current, current | RETIRED)) {
                // Exactly one thread sees the word go to RETIRED with no holds: whoever made the last
                // transition. Here it is retire; in release it is the last holder.
                if (current == 0) {
                    free();
                }
                return;
            }
        }
    }

    boolean isFreed() {
        return freed;
    }

    private void free() {
        freed = true;
        NativeHeap.free(block);
        NativeResources.JAVA_NATIVE_BYTES.addAndGet(-block.byteSize());
        NativeResources.LIVE_VALUE_BLOCKS.decrementAndGet();
        LeakSites.freed(this);
    }
}
