package dev.nativescope.tensor.io;

import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Mapping files read-only, shared and copy-on-write; creating and growing them; failures; truncation. */
class MappedFileTest {
    @TempDir
    Path dir;

    private Path fileOf(int... bytes) throws IOException {
        byte[] data = new byte[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            data[i] = (byte) bytes[i];
        }
        return Files.write(dir.resolve("data.bin"), data);
    }

    @Test
    void readOnlyMappingSeesTheFileAndRefusesWrites() throws IOException {
        Path file = fileOf(1, 2, 3, 4, 5);
        try (Arena arena = Arena.ofConfined()) {
            MappedFile mapped = MappedFile.map(file, MappedFile.Mode.READ_ONLY, arena);
            assertThat(mapped.byteSize()).isEqualTo(5);
            assertThat(mapped.segment().toArray(ValueLayout.JAVA_BYTE)).containsExactly(1, 2, 3, 4, 5);
            assertThat(mapped.segment().isReadOnly()).isTrue();
            assertThat(mapped.file()).isEqualTo(file);
            assertThat(mapped.mode()).isEqualTo(MappedFile.Mode.READ_ONLY);
            assertThatThrownBy(() -> mapped.segment().set(ValueLayout.JAVA_BYTE, 0, (byte) 9))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("read-only");
            // Shared: a write to the file through another channel shows through the mapping.
            try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
                channel.write(java.nio.ByteBuffer.wrap(new byte[] {42}), 2);
            }
            assertThat(mapped.segment().get(ValueLayout.JAVA_BYTE, 2)).isEqualTo((byte) 42);
            mapped.force(); // no-op for read-only
        }
    }

    @Test
    void regionsNeedNotBePageAligned() throws IOException {
        byte[] data = new byte[10_000];
        for (int i = 0; i < data.length; i++) {
            data[i] = (byte) i;
        }
        Path file = Files.write(dir.resolve("region.bin"), data);
        try (Arena arena = Arena.ofConfined()) {
            MappedFile region = MappedFile.map(file, MappedFile.Mode.READ_ONLY, 4099, 17, arena);
            assertThat(region.offset()).isEqualTo(4099);
            assertThat(region.byteSize()).isEqualTo(17);
            assertThat(region.segment().get(ValueLayout.JAVA_BYTE, 0)).isEqualTo((byte) 4099);
            MappedFile rest = MappedFile.map(file, MappedFile.Mode.READ_ONLY, 9990, -1, arena);
            assertThat(rest.byteSize()).isEqualTo(10);
            assertThat(MappedFile.map(file, MappedFile.Mode.READ_ONLY, 10_000, 0, arena).byteSize()).isZero();
            assertThat(rest.toString()).contains("region.bin").contains("READ_ONLY").contains("offset=9990");
        }
    }

    @Test
    void readWriteMappingWritesThroughToTheFile() throws IOException {
        Path file = fileOf(0, 0, 0, 0);
        try (Arena arena = Arena.ofConfined()) {
            MappedFile mapped = MappedFile.map(file, MappedFile.Mode.READ_WRITE, arena);
            mapped.segment().set(ValueLayout.JAVA_INT_UNALIGNED, 0, 0x01020304);
            mapped.force();
            assertThat(Files.readAllBytes(file)).containsExactly(4, 3, 2, 1);
        }
    }

    @Test
    void privateMappingIsCopyOnWrite() throws IOException {
        Path file = fileOf(7, 7, 7);
        try (Arena arena = Arena.ofConfined()) {
            MappedFile cow = MappedFile.map(file, MappedFile.Mode.PRIVATE, arena);
            MappedFile shared = MappedFile.map(file, MappedFile.Mode.READ_ONLY, arena);
            cow.segment().set(ValueLayout.JAVA_BYTE, 1, (byte) 99);
            assertThat(cow.segment().get(ValueLayout.JAVA_BYTE, 1)).isEqualTo((byte) 99);
            assertThat(shared.segment().get(ValueLayout.JAVA_BYTE, 1)).isEqualTo((byte) 7);
        }
        assertThat(Files.readAllBytes(file)).containsExactly(7, 7, 7);
    }

    @Test
    void createMakesASparseExclusiveFileWithMode0644OrStricter() throws IOException {
        Path file = dir.resolve("new.bin");
        try (Arena arena = Arena.ofConfined()) {
            MappedFile created = MappedFile.create(file, 1 << 20, IfExists.FAIL, arena);
            assertThat(created.byteSize()).isEqualTo(1 << 20);
            created.segment().set(ValueLayout.JAVA_LONG, (1 << 20) - 8, -1L);
            assertThat(created.mode()).isEqualTo(MappedFile.Mode.READ_WRITE);
        }
        assertThat(Files.size(file)).isEqualTo(1 << 20);
        Set<PosixFilePermission> permissions = Files.getPosixFilePermissions(file);
        assertThat(permissions).doesNotContain(PosixFilePermission.GROUP_WRITE, PosixFilePermission.OTHERS_WRITE,
                PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.GROUP_EXECUTE, PosixFilePermission.OTHERS_EXECUTE);
        assertThat(permissions).contains(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE);

        try (Arena arena = Arena.ofConfined()) {
            assertThatThrownBy(() -> MappedFile.create(file, 10, IfExists.FAIL, arena))
                    .isInstanceOf(FileAlreadyExistsException.class)
                    .hasMessageContaining(file.toString()).hasMessageContaining("IfExists.REPLACE");
        }
        assertThat(Files.size(file)).as("a refused create leaves the existing file alone").isEqualTo(1 << 20);
    }

    @Test
    void replaceSwapsInANewFileAndKeepsOldMappingsValid() throws IOException {
        Path file = fileOf(5, 5, 5, 5);
        try (Arena arena = Arena.ofConfined()) {
            MappedFile old = MappedFile.map(file, MappedFile.Mode.READ_ONLY, arena);
            MappedFile fresh = MappedFile.create(file, 2, IfExists.REPLACE, arena);
            fresh.segment().set(ValueLayout.JAVA_BYTE, 0, (byte) 1);
            // The old mapping still reads the old (now unlinked) file: no SIGBUS, old data.
            assertThat(old.segment().toArray(ValueLayout.JAVA_BYTE)).containsExactly(5, 5, 5, 5);
        }
        assertThat(Files.readAllBytes(file)).containsExactly(1, 0);
        try (var listing = Files.list(dir)) {
            assertThat(listing).as("no temporary file left").containsExactly(file);
        }
    }

    @Test
    void growExtendsButNeverShrinks() throws IOException {
        Path file = fileOf(1, 2);
        try (Arena arena = Arena.ofConfined()) {
            MappedFile grown = MappedFile.grow(file, 4096 * 3 + 1, arena);
            assertThat(grown.byteSize()).isEqualTo(4096 * 3 + 1);
            assertThat(grown.segment().get(ValueLayout.JAVA_BYTE, 1)).isEqualTo((byte) 2);
            assertThat(grown.segment().get(ValueLayout.JAVA_BYTE, 4096 * 3)).isZero();
            MappedFile smaller = MappedFile.grow(file, 1, arena);
            assertThat(smaller.byteSize()).isEqualTo(1);
        }
        assertThat(Files.size(file)).isEqualTo(4096 * 3 + 1);
    }

    @Test
    void failuresNameTheFileAndSayWhatIsWrong() throws IOException {
        Path missing = dir.resolve("missing.bin");
        Path small = fileOf(1, 2, 3);
        try (Arena arena = Arena.ofConfined()) {
            assertThatThrownBy(() -> MappedFile.map(missing, MappedFile.Mode.READ_ONLY, arena))
                    .isInstanceOf(NoSuchFileException.class).hasMessageContaining(missing.toString())
                    .hasMessageContaining("no such file");
            assertThatThrownBy(() -> MappedFile.map(dir, MappedFile.Mode.READ_ONLY, arena))
                    .isInstanceOf(FileSystemException.class).hasMessageContaining(dir.toString())
                    .hasMessageContaining("is a directory");
            assertThatThrownBy(() -> MappedFile.map(small, MappedFile.Mode.READ_ONLY, 0, 4, arena))
                    .isInstanceOf(FileSystemException.class).hasMessageContaining(small.toString())
                    .hasMessageContaining("has 3 bytes, too small to map 4 bytes at offset 0");
            assertThatThrownBy(() -> MappedFile.map(small, MappedFile.Mode.READ_WRITE, 4, -1, arena))
                    .isInstanceOf(FileSystemException.class).hasMessageContaining("too small");
            assertThatThrownBy(() -> MappedFile.map(small, MappedFile.Mode.READ_ONLY, -1, 1, arena))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("offset must be >= 0");
            assertThatThrownBy(() -> MappedFile.grow(missing, 10, arena)).isInstanceOf(NoSuchFileException.class);
            assertThatThrownBy(() -> MappedFile.create(dir.resolve("no/such/dir.bin"), 10, IfExists.FAIL, arena))
                    .isInstanceOf(NoSuchFileException.class);
            assertThatThrownBy(() -> MappedFile.create(dir.resolve("neg.bin"), -1, IfExists.FAIL, arena))
                    .isInstanceOf(IllegalArgumentException.class);
            // sysfs attributes claim 4096 bytes but refuse mmap (ENODEV): a real mapping failure.
            Path unmappable = sysfsAttribute();
            assertThatThrownBy(() -> MappedFile.map(unmappable, MappedFile.Mode.READ_ONLY, arena))
                    .isInstanceOf(FileSystemException.class).hasMessageContaining(unmappable.toString())
                    .hasMessageContaining("cannot map 4096 bytes").hasMessageContaining("No such device");
        }
        assertThat(dir.resolve("no")).doesNotExist();
    }

    /** A readable sysfs attribute file: 4096 bytes by stat, but not mappable. */
    private static Path sysfsAttribute() throws IOException {
        try (var files = Files.walk(Path.of("/sys/kernel"), 2)) {
            return files.filter(Files::isRegularFile).filter(Files::isReadable)
                    .filter(f -> {
                        try {
                            return Files.size(f) == 4096;
                        } catch (IOException unreadable) {
                            return false;
                        }
                    })
                    .findFirst().orElseThrow(() -> new AssertionError("no readable sysfs attribute under /sys/kernel"));
        }
    }

    @Test
    void truncatedUnderAMappingGivesAnExceptionNotACrash() throws IOException {
        Path file = dir.resolve("shrinks.bin");
        try (Arena arena = Arena.ofShared()) {
            MappedFile mapped = MappedFile.create(file, 64 * 1024, IfExists.FAIL, arena);
            Tensor tensor = Tensor.of(mapped.segment(), DType.FLOAT32, 16 * 1024);
            tensor.setDouble(1, 16 * 1024 - 1);
            try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
                channel.truncate(4096);
            }
            // Within the remaining page: still fine.
            tensor.setDouble(2, 0);
            assertThat(tensor.getFloat(0)).isEqualTo(2f);
            // Beyond the new end: SIGBUS, which the JVM turns into InternalError for segment accesses.
            for (int round = 0; round < 3; round++) { // interpreted and (maybe) compiled
                assertThatThrownBy(() -> tensor.getFloat(16 * 1024 - 1)).isInstanceOf(InternalError.class)
                        .hasMessageContaining("fault occurred");
                assertThatThrownBy(() -> tensor.setDouble(3, 8 * 1024)).isInstanceOf(InternalError.class);
                assertThatThrownBy(() -> tensor.toFloatArray()).isInstanceOf(InternalError.class);
                MemorySegment copy = MemorySegment.ofArray(new byte[64 * 1024]);
                assertThatThrownBy(() -> tensor.copyTo(copy)).isInstanceOf(InternalError.class);
            }
            assertThat(tensor.getFloat(0)).as("the JVM goes on").isEqualTo(2f);
        }
    }
}
