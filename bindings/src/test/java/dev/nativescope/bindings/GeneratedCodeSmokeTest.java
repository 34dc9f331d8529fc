package dev.nativescope.bindings;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Exercises the generated code that needs no native library: struct accessors, the
 * function-pointer class and the constants. The shim itself is tested in core.
 */
class GeneratedCodeSmokeTest {

    @Test
    void structAccessorsReadAndWriteTheirFields() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ctx = nsc_context.allocate(arena);
            assertThat(ctx.byteSize()).isEqualTo(nsc_context.sizeof());
            nsc_context.state(ctx, nativescope_h.NSC_CANCELED());
            nsc_context.deadline_ns(ctx, nativescope_h.NSC_NO_DEADLINE());
            assertThat(nsc_context.state(ctx)).isEqualTo(1);
            assertThat(ctx.get(nativescope_h.C_LONG, nsc_context.deadline_ns$offset())).isEqualTo(Long.MAX_VALUE);
            assertThat(nsc_context.reserved1$dimensions()).containsExactly(4L);
            assertThat(nsc_context.reserved1(ctx).byteSize()).isEqualTo(32);

            MemorySegment stats = nsc_predict_stats.allocateArray(2, arena);
            MemorySegment second = nsc_predict_stats.asSlice(stats, 1);
            nsc_predict_stats.trace_id(second).setString(0, "abc", UTF_8);
            nsc_predict_stats.trace_id_len(second, 3);
            assertThat(nsc_predict_stats.trace_id(second).getString(0, UTF_8)).isEqualTo("abc");
            assertThat(second.address() - stats.address()).isEqualTo(nsc_predict_stats.sizeof());
        }
    }

    /**
     * The indexed accessors of array fields must address the field, not the start of the
     * struct. jextract 0b89a46 as released passed 0L instead of the field offset (fixed
     * upstream in 91fc954): reserved1(ctx, i, v) then overwrote abi_version, state and
     * deadline_ns. The bindings are generated with that fix; this test keeps it so.
     */
    @Test
    void indexedArrayAccessorsAddressTheirField() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ctx = nsc_context.allocate(arena);
            nsc_context.abi_version(ctx, 1);
            nsc_context.state(ctx, 0);
            nsc_context.deadline_ns(ctx, 77);
            for (int i = 0; i < 4; i++) {
                nsc_context.reserved1(ctx, i, 100 + i);
            }
            nsc_context.reserved0(ctx, 1, 55);
            assertThat(nsc_context.abi_version(ctx)).isEqualTo(1);
            assertThat(nsc_context.state(ctx)).isZero();
            assertThat(nsc_context.deadline_ns(ctx)).isEqualTo(77);
            for (int i = 0; i < 4; i++) {
                assertThat(nsc_context.reserved1(ctx, i)).isEqualTo(100 + i);
                assertThat(ctx.get(nativescope_h.C_LONG, nsc_context.reserved1$offset() + 8L * i)).isEqualTo(100 + i);
            }
            assertThat(ctx.get(nativescope_h.C_LONG, nsc_context.reserved0$offset() + 8)).isEqualTo(55);

            MemorySegment stats = nsc_predict_stats.allocate(arena);
            nsc_predict_stats.trace_id(stats).setString(0, "abc", UTF_8);
            nsc_predict_stats.trace_id(stats, 3, (byte) 'd');
            assertThat(nsc_predict_stats.trace_id(stats, 1)).isEqualTo((byte) 'b');
            assertThat(nsc_predict_stats.trace_id(stats).getString(0, UTF_8)).isEqualTo("abcd");
            assertThat(nsc_predict_stats.work_units(stats)).isZero();
        }
    }

    @Test
    void cancelFunctionPointerRoundTrips() {
        List<Integer> statuses = new ArrayList<>();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment arg = arena.allocate(8);
            MemorySegment fn = nsc_cancel_fn.allocate((a, status) -> {
                assertThat(a.address()).isEqualTo(arg.address());
                statuses.add(status);
            }, arena);
            nsc_cancel_fn.invoke(fn, arg, nativescope_h.NSC_DEADLINE_EXCEEDED());
        }
        assertThat(statuses).containsExactly(2);
    }

    @Test
    void stringMacroIsANulTerminatedSegment() {
        MemorySegment key = nativescope_h.NSC_TRACE_ID_KEY();
        assertThat(key.getString(0, UTF_8)).isEqualTo("trace-id");
        assertThat(key.byteSize()).isEqualTo("trace-id".length() + 1);
    }

    /**
     * Documents a property of the generated code the loader must respect: a function's
     * descriptor, address and handle live in one holder class whose initialiser resolves the
     * symbol, so touching any of them when libnativescope cannot be loaded fails, and that
     * function then stays unusable in this class loader (NoClassDefFoundError, whose cause keeps
     * the message). Here there is no core to load it (this module's tests run without it): the
     * woven load hook's message says what to add.
     */
    @Test
    void touchingAFunctionBeforeTheLibraryIsLoadedFailsForGood() {
        String message = "unresolved symbol: nsc_noop_ctx: libnativescope.so is not loaded, and the nativescope core";
        assertThatThrownBy(nativescope_h::nsc_noop_ctx$address)
                .isInstanceOf(UnsatisfiedLinkError.class)
                .hasMessageStartingWith(message);
        assertThatThrownBy(nativescope_h::nsc_noop_ctx$descriptor)
                .isInstanceOf(NoClassDefFoundError.class)
                .cause().hasMessageContaining(message);
    }
}
