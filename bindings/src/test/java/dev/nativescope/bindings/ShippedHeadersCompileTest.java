package dev.nativescope.bindings;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * What a predictor author gets from the native-shim jar compiles on its own: {@code nativescope.h} and
 * {@code dlpack/dlpack.h} (with its licence) are both in {@code META-INF/native/include}, and gcc takes
 * dlpack.h from there, not from the build machine's {@code /usr/include} ({@code gcc -H} lists it).
 */
class ShippedHeadersCompileTest {
    private static final String INCLUDE = "META-INF/native/include/";

    @TempDir
    Path tmp;

    @Test
    void aPredictorCompilesAgainstTheUnpackedJarsHeadersAlone() throws Exception {
        Path sdk = unpackNativeShim(tmp.resolve("sdk"));
        Path include = sdk.resolve(INCLUDE);
        assertThat(include.resolve("dlpack/dlpack.h")).isRegularFile();
        assertThat(Files.readString(include.resolve("dlpack/LICENSE"))).contains("Apache-2.0").contains("dlpack");

        Path source = Files.writeString(tmp.resolve("predictor.c"), """
                #include <nativescope.h>
                #if !defined(DLPACK_VERSION)
                #error dlpack.h not included
                #endif
                int my_sum(nsc_context *ctx, const DLTensor *in) {
                    int status = nsc_check(ctx);
                    return status != NSC_OK ? status : (in->device.device_type == kDLCPU ? NSC_OK : NSC_ERR_INVALID);
                }
                """);
        Process gcc = new ProcessBuilder("gcc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-H", "-fsyntax-only",
                "-I", include.toString(), source.toString()).redirectErrorStream(true).start();
        String output = new String(gcc.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(gcc.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(gcc.exitValue()).as("gcc output: %s", output).isZero();
        // gcc -H prints each included header, one dot per nesting level.
        List<String> dlpack = output.lines().filter(l -> l.matches("^\\.+ .*dlpack/dlpack\\.h$")).toList();
        assertThat(dlpack).as("gcc -H: %s", output).hasSize(1);
        assertThat(dlpack.get(0).replaceFirst("^\\.+ ", "")).startsWith(include.toString());
    }

    /** The native-shim entry of the test class path (its jar after package, its classes before), unpacked. */
    private static Path unpackNativeShim(Path into) throws IOException {
        for (String entry : System.getProperty("java.class.path").split(java.io.File.pathSeparator)) {
            Path path = Path.of(entry);
            if (Files.isDirectory(path) && Files.isRegularFile(path.resolve(INCLUDE + "nativescope.h"))) {
                copyTree(path.resolve(INCLUDE), into.resolve(INCLUDE));
                return into;
            }
            if (entry.endsWith(".jar") && Files.isRegularFile(path)) {
                try (JarFile jar = new JarFile(path.toFile())) {
                    if (jar.getEntry(INCLUDE + "nativescope.h") == null) {
                        continue;
                    }
                    for (JarEntry e : jar.stream().filter(e -> e.getName().startsWith(INCLUDE) && !e.isDirectory()).toList()) {
                        Path target = into.resolve(e.getName());
                        Files.createDirectories(target.getParent());
                        try (InputStream in = jar.getInputStream(e)) {
                            Files.copy(in, target, StandardCopyOption.REPLACE_EXISTING);
                        }
                    }
                    return into;
                }
            }
        }
        throw new AssertionError("no native-shim jar or classes on the test class path");
    }

    private static void copyTree(Path from, Path to) throws IOException {
        try (var files = Files.walk(from)) {
            for (Path f : files.toList()) {
                Path target = to.resolve(from.relativize(f).toString());
                if (Files.isDirectory(f)) {
                    Files.createDirectories(target);
                } else {
                    Files.copy(f, target, StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
    }
}
