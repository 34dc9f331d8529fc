package dev.nativescope.call;

import static org.assertj.core.api.Assertions.assertThat;

import dev.nativescope.bindings.nsc_context;
import dev.nativescope.library.NativeLibrary;

import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout.PathElement;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

/**
 * The bridge's constant offsets of {@code nsc_context} ({@link ContextStruct}) are those of the
 * generated bindings, which {@code AbiConformanceTest} checks against the header: a field moved in
 * the header fails here, not as a corrupted struct.
 */
class ContextStructTest {
    @Test
    void everyOffsetAndTheSizeAreTheBindings() {
        assertThat(ContextStruct.SIZE).isEqualTo(nsc_context.sizeof());
        assertThat((long) ContextStruct.STATE).isEqualTo(nsc_context.state$offset());
        assertThat((long) ContextStruct.DEADLINE_NS).isEqualTo(nsc_context.deadline_ns$offset());
        assertThat((long) ContextStruct.VALUES).isEqualTo(nsc_context.values$offset());
        assertThat((long) ContextStruct.VALUE_COUNT).isEqualTo(nsc_context.value_count$offset());
        assertThat((long) ContextStruct.HEARTBEAT_COUNT).isEqualTo(nsc_context.heartbeat_count$offset());
        assertThat((long) ContextStruct.HEARTBEAT_NS).isEqualTo(nsc_context.heartbeat_ns$offset());
        assertThat((long) ContextStruct.HOOKS).isEqualTo(nsc_context.hooks$offset());
    }

    @Test
    void theAccessorsUseTheFieldsTypes() {
        // The accessors' value layouts have the bindings' sizes (an int state, a pointer, longs).
        assertThat(ValueLayout.JAVA_INT.byteSize()).isEqualTo(nsc_context.state$layout().byteSize());
        assertThat(ValueLayout.ADDRESS.byteSize()).isEqualTo(nsc_context.hooks$layout().byteSize());
        assertThat(ValueLayout.ADDRESS.byteSize()).isEqualTo(nsc_context.values$layout().byteSize());
        // Pointers are written as 64-bit addresses through the view.
        assertThat(ValueLayout.ADDRESS.byteSize()).isEqualTo(8);
        for (String field : new String[] {"deadline_ns", "value_count", "heartbeat_count", "heartbeat_ns"}) {
            assertThat(nsc_context.layout().select(PathElement.groupElement(field)).byteSize()).as(field).isEqualTo(8);
        }
    }

    @Test
    void writesAndReadsLandInTheBindingsFields() {
        NativeLibrary.load();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment struct = arena.allocate(nsc_context.layout());
            ByteBuffer view = ContextStruct.view(struct);
            MemorySegment values = arena.allocate(16);
            ContextStruct.arm(view, 123_456_789L, values, 3);
            assertThat(nsc_context.deadline_ns(struct)).isEqualTo(123_456_789L);
            assertThat(nsc_context.values(struct)).isEqualTo(values);
            assertThat(nsc_context.value_count(struct)).isEqualTo(3);
            nsc_context.state(struct, 2);
            nsc_context.hooks(struct, values);
            nsc_context.heartbeat_count(struct, 7);
            nsc_context.heartbeat_ns(struct, 11);
            assertThat(ContextStruct.state(view)).isEqualTo(2);
            assertThat(ContextStruct.hasHooks(view)).isTrue();
            assertThat(ContextStruct.heartbeat(view, ContextStruct.HEARTBEAT_COUNT)).isEqualTo(7);
            assertThat(ContextStruct.heartbeat(view, ContextStruct.HEARTBEAT_NS)).isEqualTo(11);
            nsc_context.hooks(struct, MemorySegment.NULL);
            assertThat(ContextStruct.hasHooks(view)).isFalse();
            ContextStruct.resetHeartbeat(view);
            assertThat(nsc_context.heartbeat_count(struct)).isZero();
            assertThat(nsc_context.heartbeat_ns(struct)).isZero();
        }
    }
}
