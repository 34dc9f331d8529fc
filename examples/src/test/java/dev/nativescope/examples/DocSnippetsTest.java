package dev.nativescope.examples;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Every fenced {@code java} block of README.md and docs/*.md compiles against the library, so that the documents
 * cannot drift from the code. (Here because this module's test class path has every library module: core, the
 * bindings, onnxruntime and the exchange.)
 *
 * <p>A block is a fragment: statements, compiled as the body of a method that may throw anything, with the
 * imports below. What a fragment uses without declaring (its variables, the user's own jextract header class)
 * is declared by an HTML comment on the line just before the fence, invisible when the Markdown is rendered:
 * {@code <!-- java-snippet: Tensor x = null; class my_h { static int f() { return 0; } } -->}; its text goes
 * before the fragment, in the same method. A block that starts with {@code package} or {@code import} is compiled
 * as a whole compilation unit instead.
 */
class DocSnippetsTest {
    private static final Pattern BLOCK = Pattern.compile(
            "(?:<!-- java-snippet: (.*?) -->\\n)?```java\\n(.*?)```", Pattern.DOTALL);
    private static final String IMPORTS = """
            import java.lang.foreign.*;
            import java.lang.ref.Reference;
            import java.nio.file.*;
            import java.time.*;
            import java.util.*;
            import java.util.concurrent.*;
            import java.util.concurrent.StructuredTaskScope.Joiner;
            import dev.nativescope.*;
            import dev.nativescope.call.*;
            import dev.nativescope.interop.*;
            import dev.nativescope.library.*;
            import dev.nativescope.reference.*;
            import dev.nativescope.tensor.*;
            import dev.nativescope.tensor.io.*;
            import dev.nativescope.tensor.npy.*;
            import dev.nativescope.tensor.safetensors.*;
            import dev.nativescope.onnxruntime.*;
            import dev.nativescope.exchange.*;
            """;

    record Snippet(String className, Path document, int line, String source) {
    }

    @Test
    void everyJavaSnippetOfTheDocsCompiles() throws IOException, InterruptedException {
        Path root = Path.of("").toAbsolutePath().getParent(); // surefire runs in examples/
        List<Path> documents = new ArrayList<>(List.of(root.resolve("README.md")));
        try (Stream<Path> docs = Files.list(root.resolve("docs"))) {
            docs.filter(p -> p.toString().endsWith(".md")).sorted().forEach(documents::add);
        }
        List<Snippet> snippets = new ArrayList<>();
        for (Path document : documents) {
            String text = Files.readString(document, StandardCharsets.UTF_8);
            Matcher m = BLOCK.matcher(text);
            while (m.find()) {
                int line = (int) text.substring(0, m.start(2)).lines().count();
                String name = "Snippet" + snippets.size();
                String block = m.group(2);
                String source = block.startsWith("package ") || block.startsWith("import ")
                        ? block
                        : IMPORTS + "class " + name + " {\n    void snippet() throws Throwable {\n"
                                + (m.group(1) == null ? "" : m.group(1) + "\n") + block + "    }\n}\n";
                snippets.add(new Snippet(name, root.relativize(document), line, source));
            }
        }
        assertThat(snippets).as("java blocks in %s", documents).hasSizeGreaterThanOrEqualTo(7);

        // javac as a process (this module's tests run patched into a named module that does not read java.compiler).
        Path work = Files.createTempDirectory("doc-snippets");
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "javac").toString(),
                // The docs show StructuredTaskScope, a preview API of this module's JDK (25).
                "--release", Integer.toString(Runtime.version().feature()), "--enable-preview",
                "-proc:none", "-nowarn", "-d", work.resolve("classes").toString(),
                "-classpath", System.getProperty("java.class.path")));
        for (Snippet snippet : snippets) {
            command.add(Files.writeString(work.resolve(snippet.className() + ".java"), snippet.source()).toString());
        }
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        boolean ok = process.waitFor() == 0;
        // Name the document and block of each error.
        String report = output;
        for (Snippet snippet : snippets) {
            report = report.replace(work.resolve(snippet.className() + ".java").toString(),
                    snippet.document() + " (java block at line " + snippet.line() + ", wrapped)");
        }
        try (Stream<Path> files = Files.walk(work)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
        assertThat(ok).as("the docs' java snippets compile:%n%s", report).isTrue();
    }
}
