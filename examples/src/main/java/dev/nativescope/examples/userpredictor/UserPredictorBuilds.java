package dev.nativescope.examples.userpredictor;

import dev.nativescope.library.NativeLibrary;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Raw {@code user_conv2d} handles of the builds the user-predictor Makefile produces, each looked
 * up in its own library rather than through the bindings' loader lookup, so that two builds that
 * export the same symbol can be called side by side: the shipped {@link #CHECKED} one and the
 * {@link #WITHOUT_CHECKS} one, compiled with {@code -DUSER_PREDICTOR_NO_CHECKS}, which never
 * looks at its context. The handle's signature is {@code int (nsc_context *ctx, DLTensor *input,
 * DLTensor *kernel, DLTensor *output, int64_t repeat, int64_t *rows_done)}.
 *
 * <p>Thread-safe; each library is extracted to a private temporary directory, mapped for the life
 * of the process, and its file deleted at once.
 */
public final class UserPredictorBuilds {
    /** {@code libuser_predictor.so}: polls its context once per output row. */
    public static final String CHECKED = "libuser_predictor.so";
    /** {@code libuser_predictor_nochecks.so}: the same source with the checks compiled out. */
    public static final String WITHOUT_CHECKS = "libuser_predictor_nochecks.so";

    private static final FunctionDescriptor CONV2D = FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
            ValueLayout.JAVA_LONG, ValueLayout.ADDRESS);

    private UserPredictorBuilds() {
    }

    /**
     * @param library {@link #CHECKED} or {@link #WITHOUT_CHECKS}
     * @return a downcall handle of that build's {@code user_conv2d}
     */
    public static MethodHandle conv2d(String library) {
        NativeLibrary.load(); // the user libraries need libnativescope.so in the process first
        try {
            Path dir = Files.createTempDirectory("nsc-user-predictor");
            Path file = dir.resolve(library);
            try (InputStream in = UserPredictorBuilds.class.getClassLoader()
                    .getResourceAsStream("META-INF/native/linux-x86_64/" + library)) {
                if (in == null) {
                    throw new IllegalStateException(library + " is not on the class path: build the examples module");
                }
                Files.copy(in, file);
                SymbolLookup lookup = SymbolLookup.libraryLookup(file, Arena.global());
                return Linker.nativeLinker().downcallHandle(lookup.find("user_conv2d").orElseThrow(), CONV2D);
            } finally {
                Files.deleteIfExists(file);
                Files.delete(dir);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot extract " + library, e);
        }
    }
}
