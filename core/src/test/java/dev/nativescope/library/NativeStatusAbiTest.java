package dev.nativescope.library;

import dev.nativescope.bindings.nativescope_h;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@link NativeStatus} against the C side's one list of statuses ({@code nativescope.h}): the shim
 * names every status it defines ({@code nsc_status_name}, generated from that list), the bindings carry
 * each as a constant, and the Java enum must have exactly those names and codes.
 */
class NativeStatusAbiTest {
    /** Far wider than the statuses in use: a status added on the C side anywhere near them is found. */
    private static final int SCAN = 1024;

    @Test
    void everyStatusTheShimNamesIsAJavaStatusOfTheSameNameAndCode() {
        NativeLibrary.load();
        String unknown = cName(Integer.MIN_VALUE);
        List<String> shim = new ArrayList<>();
        for (int code = -SCAN; code <= SCAN; code++) {
            String name = cName(code);
            if (!name.equals(unknown)) {
                shim.add(name + "=" + code);
            }
        }
        List<String> java = new ArrayList<>();
        for (NativeStatus status : NativeStatus.values()) {
            java.add(status.cName() + "=" + status.code());
        }
        assertThat(java).as("NativeStatus vs nsc_status_name").containsExactlyInAnyOrderElementsOf(shim);
    }

    @Test
    void everyJavaStatusIsTheBindingsConstantOfItsName() throws ReflectiveOperationException {
        for (NativeStatus status : NativeStatus.values()) {
            int constant = (int) nativescope_h.class.getMethod(status.cName()).invoke(null);
            assertThat(status.code()).as(status.cName()).isEqualTo(constant);
            assertThat(NativeStatus.of(constant)).contains(status);
            assertThat(NativeStatus.nameOf(constant)).isEqualTo(status.cName());
            assertThat(status.isError()).isEqualTo(constant < 0);
            assertThat(status.description()).isNotBlank();
        }
        assertThat(NativeStatus.of(12345)).isEmpty();
        assertThat(NativeStatus.nameOf(12345)).isEqualTo("unknown status 12345");
    }

    private static String cName(int code) {
        return nativescope_h.nsc_status_name(code).reinterpret(256).getString(0);
    }
}
