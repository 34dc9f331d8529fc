package dev.nativescope.tensor;

import dev.nativescope.tensor.io.MappedFile;
import dev.nativescope.tensor.npy.Npy;
import dev.nativescope.Context;
import dev.nativescope.call.NativeCall;
import dev.nativescope.library.NativeLibrary;
import dev.nativescope.reference.PredictionStats;
import dev.nativescope.reference.ReferencePredictors;
import dev.nativescope.bindings.DLTensor;
import dev.nativescope.bindings.nativescope_h;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The whole zero-copy path on real files: NumPy writes the inputs, we map them, a native predictor
 * reads them where they are mapped and writes its output straight into a mapped {@code .npy}, and
 * NumPy then finds the complete result on disk. No buffer stands between the file pages and the
 * native code: the descriptors native code receives point into the mappings themselves.
 */
class ZeroCopyEndToEndTest {
    private static final String PYTHON = "/usr/bin/python3";
    private static final int ROWS = 96;
    private static final int INNER = 200;
    private static final int COLS = 72;

    @TempDir
    Path dir;

    @BeforeAll
    static void load() {
        NativeLibrary.load();
    }

    @Test
    void nativePredictorReadsMappedNpyInputsAndWritesAMappedNpyOutput() throws Exception {
        Path xFile = dir.resolve("x.npy");
        Path wFile = dir.resolve("w.npy");
        Path bFile = dir.resolve("b.npy");
        Path yFile = dir.resolve("y.npy");
        python("""
                import numpy as np, sys
                rng = np.random.default_rng(3)
                np.save(sys.argv[1], rng.standard_normal((%d, %d), dtype=np.float32))
                # Fortran order: the predictor must honour w's strides, not assume row-major.
                np.save(sys.argv[2], np.asfortranarray(rng.standard_normal((%d, %d), dtype=np.float32)))
                np.save(sys.argv[3], rng.standard_normal(%d, dtype=np.float32))
                print("ok")
                """.formatted(ROWS, INNER, INNER, COLS, COLS), xFile, wFile, bFile);

        try (Arena arena = Arena.ofShared()) {
            Tensor x = Npy.map(xFile, MappedFile.Mode.READ_ONLY, arena).tensor();
            Tensor w = Npy.map(wFile, MappedFile.Mode.READ_ONLY, arena).tensor();
            Tensor b = Npy.map(bFile, MappedFile.Mode.READ_ONLY, arena).tensor();
            Tensor y = Npy.create(yFile, DType.FLOAT32, new long[] {ROWS, COLS}, false, arena);
            assertThat(w.isContiguous()).as("w is Fortran-ordered in its file").isFalse();

            // The descriptors handed to native code point into the mappings, not into copies.
            // Shared: -Dnativescope.callMode=OFFLOAD moves the raw downcall below to a native thread.
            try (Arena call = Arena.ofShared()) {
                for (Tensor tensor : new Tensor[] {x, w, b, y}) {
                    MemorySegment descriptor = DLPack.export(tensor, call);
                    assertThat(DLTensor.data(descriptor).address() + DLTensor.byte_offset(descriptor))
                            .isEqualTo(tensor.segment().address() + tensor.byteOffset());
                }
                // Native code reads exactly the mapped bytes: its sum equals Java's over the mapping.
                MemorySegment xDescriptor = DLPack.export(x, call);
                MemorySegment sum = call.allocate(ValueLayout.JAVA_DOUBLE);
                NativeCall.invoke(Context.background(), ctx -> nativescope_h.nsc_dl_sum_f32(ctx, xDescriptor, sum));
                double javaSum = 0;
                for (long i = 0; i < ROWS; i++) {
                    for (long k = 0; k < INNER; k++) {
                        javaSum += x.getFloat(i, k);
                    }
                }
                assertThat(sum.get(ValueLayout.JAVA_DOUBLE, 0)).isEqualTo(javaSum);
            }

            PredictionStats stats = ReferencePredictors.denseDLPack(Context.background(), x, w, b, y, 1, null);
            assertThat(stats.status()).isZero();
        } // closing the arena unmaps every file: what NumPy reads next comes from the file itself

        assertThat(Files.size(yFile)).as("header plus every output byte").isEqualTo(
                Npy.readHeader(yFile).dataOffset() + (long) ROWS * COLS * Float.BYTES);
        String verdict = python("""
                import numpy as np, sys
                x, w, b = (np.load(p) for p in sys.argv[1:4])
                y = np.load(sys.argv[4], mmap_mode="r")
                expected = np.maximum(x.astype(np.float64) @ w.astype(np.float64) + b, 0)
                print("shape", y.shape, y.dtype, "maxdiff %.3g" % float(np.max(np.abs(y - expected))))
                """, xFile, wFile, bFile, yFile);
        assertThat(verdict).contains("shape (" + ROWS + ", " + COLS + ") float32");
        double maxDiff = Double.parseDouble(verdict.substring(verdict.indexOf("maxdiff ") + 8).trim());
        assertThat(maxDiff).isLessThan(1e-3);
    }

    private static String python(String script, Path... args) throws IOException, InterruptedException {
        String[] command = new String[args.length + 3];
        command[0] = PYTHON;
        command[1] = "-c";
        command[2] = script;
        for (int i = 0; i < args.length; i++) {
            command[3 + i] = args[i].toString();
        }
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(process.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(process.exitValue()).as("python said: %s (install python3-numpy with ./run test)", output).isZero();
        return output.strip();
    }
}
