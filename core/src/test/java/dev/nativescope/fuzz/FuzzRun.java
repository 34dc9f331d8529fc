package dev.nativescope.fuzz;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Settings and bookkeeping shared by the seeded fuzzers.
 *
 * <p>{@code -Dnsc.fuzz.iterations=N} (default 20,000) sets the inputs per fuzzer and
 * {@code -Dnsc.fuzz.seed=S} (default fixed) the seed, so the normal test run is a short,
 * reproducible regression run and {@code ./run fuzz} a long one. An input that breaks an invariant
 * is saved under {@code target/fuzz-findings/}; copy it into the corpus
 * ({@code src/test/resources/fuzz/...}) once fixed, so every later run replays it.
 */
public final class FuzzRun {
    static final long DEFAULT_SEED = 0x5afe_7e45_0f00_dL;
    static final int DEFAULT_ITERATIONS = 20_000;

    private final String name;
    private final Map<String, Integer> outcomes = new TreeMap<>();
    private final long startNanos = System.nanoTime();

    public FuzzRun(String name) {
        this.name = name;
    }

    public static int iterations() {
        return Integer.getInteger("nsc.fuzz.iterations", DEFAULT_ITERATIONS);
    }

    public static long seed() {
        return Long.getLong("nsc.fuzz.seed", DEFAULT_SEED);
    }

    /** Counts an outcome, such as "accepted" or the first words of a rejection message. */
    public void count(String outcome) {
        outcomes.merge(outcome, 1, Integer::sum);
    }

    /** @return {@code message} cut to its first few words, to group rejections in the summary */
    public static String category(String message) {
        String[] words = message.split(" ", 8);
        return String.join(" ", List.of(words).subList(0, Math.min(words.length, 7)));
    }

    /** Saves the input and returns the failure to throw. */
    public AssertionError failure(long iteration, byte[] input, Throwable cause) {
        Path finding = Path.of("target", "fuzz-findings", name + "-seed" + seed() + "-" + iteration + ".bin");
        try {
            Files.createDirectories(finding.getParent());
            Files.write(finding, input);
        } catch (IOException e) {
            cause.addSuppressed(e);
        }
        return new AssertionError(name + ": input " + iteration + " (seed " + seed() + ") broke the invariant; saved to "
                + finding.toAbsolutePath() + "; replay it by copying it into the corpus", cause);
    }

    /** Prints the totals: the run's scale and what it exercised. */
    public void report(int inputs) {
        long millis = (System.nanoTime() - startNanos) / 1_000_000;
        System.out.printf("%s: %d inputs (seed %d) in %d ms%n", name, inputs, seed(), millis);
        outcomes.entrySet().stream().sorted(Map.Entry.<String, Integer>comparingByValue().reversed()).limit(25)
                .forEach(outcome -> System.out.printf("  %7d  %s%n", outcome.getValue(), outcome.getKey()));
    }

    /** One fuzzer's invariant: true when the input was accepted, false when rightly rejected; throws otherwise. */
    @FunctionalInterface
    public interface Invariant {
        boolean check(byte[] input, FuzzRun run, long iteration);
    }

    /**
     * Replays a corpus folder under {@code src/test/resources/fuzz/}: every file must keep the
     * invariant, {@code ok-*} files must be accepted and {@code bad-*} files rejected.
     */
    public static void replayCorpus(String folder, String name, Invariant invariant) {
        List<Path> corpus = corpus(folder);
        assertThat(corpus).as("corpus fuzz/" + folder).isNotEmpty();
        FuzzRun run = new FuzzRun(name);
        for (Path file : corpus) {
            boolean accepted = invariant.check(read(file), run, 0);
            String fileName = file.getFileName().toString();
            if (fileName.startsWith("ok-")) {
                assertThat(accepted).as("%s is accepted", fileName).isTrue();
            } else if (fileName.startsWith("bad-")) {
                assertThat(accepted).as("%s is rejected", fileName).isFalse();
            }
        }
        run.report(corpus.size());
    }

    /** @return the contents of the files of a corpus folder, to mutate */
    public static List<byte[]> corpusInputs(String folder) {
        return corpus(folder).stream().map(FuzzRun::read).toList();
    }

    private static byte[] read(Path file) {
        try {
            return Files.readAllBytes(file);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static List<Path> corpus(String folder) {
        URL url = FuzzRun.class.getResource("/fuzz/" + folder);
        if (url == null) {
            throw new IllegalStateException("no corpus folder fuzz/" + folder + " on the test class path");
        }
        try (Stream<Path> files = Files.list(Path.of(url.toURI()))) {
            return files.filter(Files::isRegularFile).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }
}
