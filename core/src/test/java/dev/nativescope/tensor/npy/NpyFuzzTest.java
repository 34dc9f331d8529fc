package dev.nativescope.tensor.npy;

import dev.nativescope.tensor.DType;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Fuzzing the .npy reader with {@link NpyMutator}: a fixed-seed regression of 20,000 inputs (every
 * 64th also through a real file and {@link Npy#map}) and a replay of the kept corpus in
 * {@code src/test/resources/fuzz/npy/}. Every input must satisfy {@link NpyFuzzTarget}.
 *
 * <p>Long runs: {@code ./run fuzz} (or {@code -Dnsc.fuzz.iterations=N -Dnsc.fuzz.seed=S}); a failing
 * input is saved under {@code core/target/fuzz-failures/} with the seed and iteration that made it.
 * Coverage-guided fuzzing with Jazzer is {@link JazzerNpyFuzzer}.
 */
class NpyFuzzTest {
    private static final long DEFAULT_ITERATIONS = 20_000;
    private static final long DEFAULT_SEED = 0x5EED_0F_A99L;
    private static final int FILE_EVERY = 64;

    @TempDir
    Path dir;

    @Test
    void seededMutationsEitherParseInsideTheInputOrAreTensorFormatExceptions() throws IOException {
        long iterations = Long.getLong("nsc.fuzz.iterations", DEFAULT_ITERATIONS);
        long seed = Long.getLong("nsc.fuzz.seed", DEFAULT_SEED);
        NpyMutator mutator = new NpyMutator(seed, seeds());
        Path file = dir.resolve("fuzz.npy");
        long parsed = 0;
        long started = System.nanoTime();
        for (long i = 0; i < iterations; i++) {
            byte[] input = mutator.next();
            try {
                if (i % FILE_EVERY == 0) {
                    NpyFuzzTarget.checkFile(input, file);
                } else if (NpyFuzzTarget.checkView(input) != null) {
                    parsed++;
                }
            } catch (Throwable failure) {
                Path saved = save(input, seed, i);
                throw new AssertionError("fuzz input " + i + " of seed " + seed + " (saved as " + saved
                        + ", hex " + HexFormat.of().formatHex(input, 0, Math.min(input.length, 256)) + "): " + failure, failure);
            }
        }
        double seconds = (System.nanoTime() - started) / 1e9;
        System.out.printf("npy fuzz: %d inputs (seed %d), %d parsed, %.1f s, %.0f inputs/s%n",
                iterations, seed, parsed, seconds, iterations / seconds);
        // The mutator must reach both outcomes, or it is not exercising the parser.
        assertThat(parsed).isGreaterThan(iterations / 100);
        assertThat(parsed).isLessThan(iterations - iterations / 100);
    }

    @Test
    void keptCorpusReplays() throws Exception {
        List<Path> corpus = corpus();
        assertThat(corpus).hasSizeGreaterThan(20);
        Path file = dir.resolve("corpus.npy");
        int parsed = 0;
        for (Path input : corpus) {
            byte[] bytes = Files.readAllBytes(input);
            try {
                NpyFuzzTarget.checkFile(bytes, file);
                parsed += NpyFuzzTarget.checkView(bytes) != null ? 1 : 0;
            } catch (Throwable failure) {
                throw new AssertionError("corpus input " + input + ": " + failure, failure);
            }
        }
        assertThat(parsed).isGreaterThan(5).isLessThan(corpus.size());
    }

    /** Valid files of every dtype, several shapes and orders, and the kept corpus. */
    static List<byte[]> seeds() throws IOException {
        List<byte[]> seeds = new ArrayList<>();
        long[][] shapes = {{}, {0}, {3}, {2, 3}, {2, 0, 3}, {1, 2, 2}};
        for (DType dtype : DType.values()) {
            if (dtype.numpyDescr().isEmpty()) {
                continue;
            }
            for (long[] shape : shapes) {
                for (boolean fortran : new boolean[] {false, true}) {
                    NpyHeader header = NpyHeader.of(dtype, shape, fortran);
                    byte[] encoded = header.encode();
                    byte[] file = new byte[(int) (encoded.length + header.dataByteSize())];
                    System.arraycopy(encoded, 0, file, 0, encoded.length);
                    seeds.add(file);
                }
            }
        }
        try {
            for (Path input : corpus()) {
                seeds.add(Files.readAllBytes(input));
            }
        } catch (URISyntaxException impossible) {
            throw new IllegalStateException(impossible);
        }
        return seeds;
    }

    static List<Path> corpus() throws IOException, URISyntaxException {
        var url = NpyFuzzTest.class.getResource("/fuzz/npy");
        if (url == null) {
            throw new IllegalStateException("the fuzz corpus src/test/resources/fuzz/npy is not on the class path");
        }
        try (Stream<Path> files = Files.list(Path.of(url.toURI()))) {
            return files.filter(f -> f.getFileName().toString().endsWith(".npy")).sorted().toList();
        }
    }

    private static Path save(byte[] input, long seed, long iteration) throws IOException {
        Path failures = Path.of("target", "fuzz-failures");
        Files.createDirectories(failures);
        return Files.write(failures.resolve("seed" + seed + "-input" + iteration + ".npy"), input).toAbsolutePath();
    }
}
