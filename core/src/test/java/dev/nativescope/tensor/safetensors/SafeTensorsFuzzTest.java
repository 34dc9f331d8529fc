package dev.nativescope.tensor.safetensors;

import dev.nativescope.fuzz.FuzzMutator;
import dev.nativescope.fuzz.FuzzRun;
import dev.nativescope.tensor.Tensor;
import dev.nativescope.tensor.io.TensorFormatException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Seeded, structure-aware fuzzing of {@link SafeTensors#map}, end to end through a real file:
 * random valid files ({@link SafeTensorsBytes#randomValid}) and the corpus under
 * {@code fuzz/safetensors/}, mutated in their header JSON (token edits, number nudges that move
 * offsets and dimensions, byte edits, invalid UTF-8), their length field (with or without fixing
 * it up after a header edit), their data section (grown, shrunk) and as a whole (bit flips,
 * truncation).
 *
 * <p>Invariant: every input either maps to tensors that are views of the one mapping, lie inside
 * the data section, tile it exactly and read the file's bytes; or throws
 * {@link TensorFormatException} naming the file. Anything else fails, and the input is saved.
 */
class SafeTensorsFuzzTest {
    private static final long[] INTERESTING_LENGTHS = {0, 1, 2, 7, 8, 100_000_000, 100_000_001, Long.MAX_VALUE, -1,
        Integer.MAX_VALUE, 1L << 32};

    private static final Path SHM = Path.of("/dev/shm");

    @TempDir
    Path tempDir;

    /** The scratch file's folder: tmpfs when there is one, where rewriting a file is ~20x cheaper than on disk. */
    private Path dir;

    @BeforeEach
    void chooseScratchFolder() throws IOException {
        dir = Files.isDirectory(SHM) && Files.isWritable(SHM) ? Files.createTempDirectory(SHM, "nsc-fuzz-") : tempDir;
    }

    @AfterEach
    void removeScratchFolder() throws IOException {
        if (!dir.equals(tempDir)) {
            try (Stream<Path> files = Files.list(dir)) {
                for (Path file : (Iterable<Path>) files::iterator) {
                    Files.delete(file);
                }
            }
            Files.delete(dir);
        }
    }

    @Test
    void unmutatedRandomFilesAreAllAccepted() throws IOException {
        Random random = new Random(FuzzRun.seed());
        FuzzRun run = new FuzzRun("SafeTensorsFuzzTest seeds");
        Path scratch = dir.resolve("seed.safetensors");
        for (int i = 0; i < 500; i++) {
            byte[] file = SafeTensorsBytes.randomValid(random);
            assertThat(checkInvariant(file, scratch, run, i)).as(new String(file, StandardCharsets.UTF_8)).isTrue();
        }
        run.report(500);
    }

    @Test
    void corpusFilesKeepTheirVerdict() {
        Path scratch = dir.resolve("corpus.safetensors");
        FuzzRun.replayCorpus("safetensors", "SafeTensorsFuzzTest corpus",
                (input, run, iteration) -> checkInvariant(input, scratch, run, iteration));
    }

    @Test
    void mutatedFilesEitherMapInsideTheFileOrThrowTensorFormatException() {
        Random random = new Random(FuzzRun.seed());
        FuzzMutator mutator = new FuzzMutator(random);
        List<byte[]> corpus = FuzzRun.corpusInputs("safetensors");
        FuzzRun run = new FuzzRun("SafeTensorsFuzzTest");
        Path scratch = dir.resolve("fuzz.safetensors");
        int iterations = FuzzRun.iterations();
        for (int i = 0; i < iterations; i++) {
            byte[] input = random.nextInt(4) == 0 ? corpus.get(random.nextInt(corpus.size()))
                    : SafeTensorsBytes.randomValid(random);
            for (int edits = 1 + random.nextInt(2); edits > 0; edits--) {
                input = mutate(input, random, mutator);
            }
            checkInvariant(input, scratch, run, i);
        }
        run.report(iterations);
    }

    private static byte[] mutate(byte[] file, Random random, FuzzMutator mutator) {
        long headerLength = file.length >= Long.BYTES ? ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN).getLong() : -1;
        if (headerLength < 0 || headerLength > file.length - Long.BYTES) {
            return mutator.mutateBytes(file); // no structure left to respect
        }
        byte[] header = Arrays.copyOfRange(file, Long.BYTES, Long.BYTES + (int) headerLength);
        byte[] data = Arrays.copyOfRange(file, Long.BYTES + (int) headerLength, file.length);
        int choice = random.nextInt(10);
        if (choice <= 4) { // header edits: the length field follows them, mostly
            byte[] mutated = choice <= 2
                    ? mutator.mutateTokens(new String(header, StandardCharsets.UTF_8)).getBytes(StandardCharsets.UTF_8)
                    : mutator.mutateBytes(header);
            long length = random.nextInt(8) == 0 ? headerLength : mutated.length;
            return SafeTensorsBytes.file(length, mutated, data);
        }
        return switch (choice) {
            case 5 -> SafeTensorsBytes.file(lengthField(random, headerLength, file.length), header, data);
            case 6 -> SafeTensorsBytes.file(headerLength, header, resizedData(random, data));
            case 7 -> Arrays.copyOf(file, random.nextInt(file.length + 1));
            default -> mutator.mutateBytes(file);
        };
    }

    private static long lengthField(Random random, long headerLength, long fileLength) {
        return switch (random.nextInt(3)) {
            case 0 -> INTERESTING_LENGTHS[random.nextInt(INTERESTING_LENGTHS.length)];
            case 1 -> headerLength + random.nextInt(17) - 8;
            default -> fileLength - Long.BYTES + random.nextInt(3) - 1;
        };
    }

    private static byte[] resizedData(Random random, byte[] data) {
        if (data.length > 0 && random.nextBoolean()) {
            return Arrays.copyOf(data, random.nextInt(data.length));
        }
        byte[] extra = new byte[1 + random.nextInt(16)];
        random.nextBytes(extra);
        return FuzzMutator.insert(data, random.nextInt(data.length + 1), extra);
    }

    /** @return true when the input mapped */
    private static boolean checkInvariant(byte[] input, Path scratch, FuzzRun run, long iteration) {
        try {
            Files.write(scratch, input);
            try (Arena arena = Arena.ofConfined()) {
                SafeTensorsFile mapped = SafeTensors.map(scratch, arena);
                long covered = 0;
                for (Tensor tensor : mapped.tensors().values()) {
                    long start = tensor.byteOffset();
                    long end = start + tensor.byteSize();
                    assertThat(tensor.segment()).isSameAs(mapped.segment());
                    assertThat(start).as("tensor start").isGreaterThanOrEqualTo(mapped.dataStart());
                    assertThat(end).as("tensor end").isLessThanOrEqualTo(input.length);
                    if (tensor.byteSize() > 0) {
                        assertThat(tensor.data().get(ValueLayout.JAVA_BYTE, 0)).isEqualTo(input[(int) start]);
                        assertThat(tensor.data().get(ValueLayout.JAVA_BYTE, tensor.byteSize() - 1))
                                .isEqualTo(input[(int) end - 1]);
                    }
                    covered += tensor.byteSize();
                }
                assertThat(covered).as("tensors tile the data section").isEqualTo(input.length - mapped.dataStart());
                run.count("accepted");
                return true;
            }
        } catch (TensorFormatException rejected) {
            assertThat(rejected.file()).isEqualTo(scratch);
            assertThat(rejected.getMessage()).startsWith(scratch + ": ");
            run.count("rejected: " + FuzzRun.category(rejected.getMessage().substring(scratch.toString().length() + 2)
                    .replaceAll("\"[^\"]*\"", "\"...\"").replaceAll("\\d+", "N")));
            return false;
        } catch (Throwable broken) {
            throw run.failure(iteration, input, broken);
        }
    }
}
