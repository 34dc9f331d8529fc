package dev.nativescope.internal.json;

import dev.nativescope.fuzz.FuzzMutator;
import dev.nativescope.fuzz.FuzzRun;
import dev.nativescope.tensor.safetensors.SafeTensorsBytes;
import org.junit.jupiter.api.Test;

import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Seeded, structure-aware fuzzing of {@link JsonParser}: random JSON texts and safetensors headers,
 * mutated by {@link FuzzMutator}. Invariant: every input either parses, to a value that the
 * writer serialises and the parser reads back equal, from bytes that are valid UTF-8; or it throws
 * {@link JsonException} with a positioned message. Anything else (another exception, a stack
 * overflow, a hang) fails. The corpus under {@code fuzz/json/} is replayed first: {@code ok-*}
 * files must parse, {@code bad-*} files must not.
 */
class JsonParserFuzzTest {
    private static final JsonParser.Limits REPARSE = new JsonParser.Limits(64, Integer.MAX_VALUE, 10_000);

    @Test
    void corpusFilesKeepTheirVerdict() {
        FuzzRun.replayCorpus("json", "JsonParserFuzzTest corpus", JsonParserFuzzTest::checkInvariant);
    }

    @Test
    void mutatedInputsEitherParseOrThrowJsonException() {
        Random random = new Random(FuzzRun.seed());
        FuzzMutator mutator = new FuzzMutator(random);
        List<byte[]> seeds = FuzzRun.corpusInputs("json");
        FuzzRun run = new FuzzRun("JsonParserFuzzTest");
        int iterations = FuzzRun.iterations();
        for (int i = 0; i < iterations; i++) {
            byte[] input = switch (random.nextInt(4)) {
                case 0 -> seeds.get(random.nextInt(seeds.size()));
                case 1 -> safetensorsHeader(SafeTensorsBytes.randomValid(random));
                default -> randomJson(random, 0).getBytes(StandardCharsets.UTF_8);
            };
            for (int edits = 1 + random.nextInt(3); edits > 0; edits--) {
                input = random.nextInt(3) == 0 ? mutator.mutateBytes(input)
                        : mutator.mutateTokens(new String(input, StandardCharsets.UTF_8)).getBytes(StandardCharsets.UTF_8);
            }
            checkInvariant(input, run, i);
        }
        run.report(iterations);
    }

    /** @return true when the input parsed */
    private static boolean checkInvariant(byte[] input, FuzzRun run, long iteration) {
        try {
            Object value = JsonParser.parse(ByteBuffer.wrap(input), JsonParser.Limits.DEFAULT);
            assertThat(isUtf8(input)).as("accepted input is valid UTF-8").isTrue();
            Object again = JsonParser.parse(JsonWriter.write(value), REPARSE);
            assertThat(again).as("round trip").isEqualTo(value);
            run.count("accepted " + (value == null ? "null" : value.getClass().getSimpleName()));
            return true;
        } catch (JsonException rejected) {
            String message = rejected.getMessage();
            assertThat(message.startsWith("at character ") || message.startsWith("not valid UTF-8")).as(message).isTrue();
            run.count("rejected: " + FuzzRun.category(message.replaceFirst("^at character \\d+: ", "")));
            return false;
        } catch (Throwable broken) {
            throw run.failure(iteration, input, broken);
        }
    }

    private static boolean isUtf8(byte[] input) {
        try {
            StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(input));
            return true;
        } catch (CharacterCodingException e) {
            return false;
        }
    }

    private static byte[] safetensorsHeader(byte[] file) {
        return Arrays.copyOfRange(file, Long.BYTES, file.length);
    }

    /** A random JSON text with random whitespace and escapes. */
    static String randomJson(Random random, int depth) {
        int kind = random.nextInt(depth > 4 ? 5 : 7);
        return switch (kind) {
            case 0 -> SafeTensorsBytes.str(random, randomString(random));
            case 1 -> Long.toString(random.nextInt(3) == 0 ? random.nextLong() : random.nextInt(1000) - 500);
            case 2 -> new BigDecimal(random.nextGaussian() * 1e6).round(new java.math.MathContext(1 + random.nextInt(20)))
                    .toString().replace("E", random.nextBoolean() ? "e" : "E");
            case 3 -> List.of("true", "false", "null").get(random.nextInt(3));
            case 4 -> "\"\"";
            case 5 -> {
                List<String> items = new ArrayList<>();
                for (int n = random.nextInt(4); n > 0; n--) {
                    items.add(randomJson(random, depth + 1));
                }
                yield "[" + String.join(random.nextBoolean() ? "," : " , ", items) + "]";
            }
            default -> {
                Map<String, String> members = new LinkedHashMap<>();
                for (int n = random.nextInt(4); n > 0; n--) {
                    members.put(randomString(random), randomJson(random, depth + 1));
                }
                List<String> items = new ArrayList<>();
                members.forEach((key, value) -> items.add(SafeTensorsBytes.str(random, key) + ":" + value));
                yield "{" + String.join(",\n", items) + "}";
            }
        };
    }

    private static String randomString(Random random) {
        String[] parts = {"a", "dtype", "\u00e9", "\ud83d\ude00", "\"", "\\", "\n", "\u0001", " ", "\u20ac", "x y"};
        StringBuilder out = new StringBuilder();
        for (int n = random.nextInt(4); n > 0; n--) {
            out.append(parts[random.nextInt(parts.length)]);
        }
        return out.toString();
    }
}
