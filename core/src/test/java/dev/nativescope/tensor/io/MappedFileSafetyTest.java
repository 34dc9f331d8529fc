package dev.nativescope.tensor.io;

import dev.nativescope.internal.posix.PosixFiles;
import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.npy.Npy;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * What {@link MappedFile} refuses and reserves: shared read-write mappings of files other users can
 * write, links planted under the name of a file being created, and storage for created files.
 */
class MappedFileSafetyTest {
    private static final long OTHER_UID = 65534; // "nobody" on Debian

    @TempDir
    Path dir;

    private Path fileWithMode(String permissions) throws IOException {
        Path file = Files.write(dir.resolve("shared-" + permissions + ".bin"), new byte[4096]);
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString(permissions));
        return file;
    }

    @ParameterizedTest
    @ValueSource(strings = {"rw-rw-rw-", "rw-rw-r--", "rw-r--rw-", "rw--w----"})
    void sharedReadWriteMappingOfAFileOthersCanWriteIsRefused(String permissions) throws IOException {
        Path file = fileWithMode(permissions);
        try (Arena arena = Arena.ofConfined()) {
            assertThatThrownBy(() -> MappedFile.map(file, MappedFile.Mode.READ_WRITE, arena))
                    .isInstanceOf(AccessDeniedException.class)
                    .hasMessageContaining(file.toString())
                    .hasMessageContaining("other users can write")
                    .hasMessageContaining(String.format("mode %04o", PosixFilePermissions.fromString(permissions)
                            .stream().mapToInt(p -> 1 << (8 - p.ordinal())).sum()))
                    .hasMessageContaining("MappedFile.Option.ALLOW_WRITABLE_BY_OTHERS");
            assertThatThrownBy(() -> MappedFile.grow(file, 8192, arena)).isInstanceOf(AccessDeniedException.class);
            assertThat(Files.size(file)).as("grow refused before touching the file").isEqualTo(4096);

            // Read-only and private mappings never write the file: allowed.
            assertThat(MappedFile.map(file, MappedFile.Mode.READ_ONLY, arena).byteSize()).isEqualTo(4096);
            assertThat(MappedFile.map(file, MappedFile.Mode.PRIVATE, arena).byteSize()).isEqualTo(4096);
            // The explicit opt-in.
            MappedFile allowed = MappedFile.map(file, MappedFile.Mode.READ_WRITE, arena,
                    MappedFile.Option.ALLOW_WRITABLE_BY_OTHERS);
            allowed.segment().set(java.lang.foreign.ValueLayout.JAVA_BYTE, 0, (byte) 7);
            assertThat(Files.readAllBytes(file)[0]).isEqualTo((byte) 7);
        }
    }

    @Test
    void ownerOnlyFilesMapReadWrite() throws IOException {
        for (String permissions : List.of("rw-------", "rw-r--r--", "rw-r-----")) {
            Path file = fileWithMode(permissions);
            try (Arena arena = Arena.ofConfined()) {
                assertThat(MappedFile.map(file, MappedFile.Mode.READ_WRITE, arena).byteSize()).isEqualTo(4096);
            }
        }
    }

    @Test
    void npyReadWriteMappingAppliesTheSameCheck() throws IOException {
        Path file = dir.resolve("shared.npy");
        try (Arena arena = Arena.ofConfined()) {
            Npy.create(file, DType.FLOAT32, new long[] {4}, false, arena).setDouble(2.5, 1);
        }
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-rw-rw-"));
        try (Arena arena = Arena.ofConfined()) {
            assertThatThrownBy(() -> Npy.map(file, MappedFile.Mode.READ_WRITE, arena))
                    .isInstanceOf(AccessDeniedException.class).hasMessageContaining("other users can write");
            assertThat(Npy.map(file, MappedFile.Mode.READ_ONLY, arena).tensor().getFloat(1)).isEqualTo(2.5f);
            assertThat(Npy.map(file, MappedFile.Mode.READ_WRITE, arena, MappedFile.Option.ALLOW_WRITABLE_BY_OTHERS)
                    .tensor().getFloat(1)).isEqualTo(2.5f);
        }
    }

    @Test
    void aFileOfAnotherUserIsRefusedEvenWhenOnlyItsOwnerCanWrite() throws IOException {
        assumeTrue(PosixFiles.effectiveUid() == 0, "needs root to give a file to another user");
        Path file = fileWithMode("rw-r--r--");
        Files.setAttribute(file, "unix:uid", (int) OTHER_UID);
        try (Arena arena = Arena.ofConfined()) {
            assertThatThrownBy(() -> MappedFile.map(file, MappedFile.Mode.READ_WRITE, arena))
                    .isInstanceOf(AccessDeniedException.class).hasMessageContaining("owner uid " + OTHER_UID)
                    .hasMessageContaining("runs as uid 0");
        }
    }

    @Test
    void creatingRefusesALinkPlantedUnderTheNameAndLeavesItsTargetAlone() throws IOException {
        Path target = Files.write(dir.resolve("victim.bin"), new byte[] {1, 2, 3});
        Path planted = Files.createSymbolicLink(dir.resolve("out.bin"), target);
        Path dangling = Files.createSymbolicLink(dir.resolve("dangling.bin"), dir.resolve("not-yet.bin"));
        try (Arena arena = Arena.ofConfined()) {
            assertThatThrownBy(() -> MappedFile.create(planted, 1 << 20, IfExists.FAIL, arena))
                    .isInstanceOf(FileAlreadyExistsException.class);
            assertThatThrownBy(() -> MappedFile.create(dangling, 1 << 20, IfExists.FAIL, arena))
                    .isInstanceOf(FileAlreadyExistsException.class);
        }
        assertThat(Files.readAllBytes(target)).containsExactly(1, 2, 3);
        assertThat(dir.resolve("not-yet.bin")).doesNotExist();
        assertThat(Files.isSymbolicLink(planted)).isTrue();
    }

    @Test
    void createdFilesHaveTheirStorageReservedUnlessSparse() throws Exception {
        long size = 8L << 20;
        try (Arena arena = Arena.ofConfined()) {
            MappedFile.create(dir.resolve("reserved.bin"), size, IfExists.FAIL, arena);
            MappedFile.create(dir.resolve("replaced.bin"), size, IfExists.REPLACE, arena);
            MappedFile.create(dir.resolve("sparse.bin"), size, IfExists.FAIL, arena,
                    MappedFile.Option.SPARSE);
            Files.write(dir.resolve("grown.bin"), new byte[1]);
            MappedFile.grow(dir.resolve("grown.bin"), size, arena);
        }
        assertThat(allocatedBytes(dir.resolve("reserved.bin"))).isGreaterThanOrEqualTo(size);
        assertThat(allocatedBytes(dir.resolve("replaced.bin"))).isGreaterThanOrEqualTo(size);
        assertThat(allocatedBytes(dir.resolve("grown.bin"))).isGreaterThanOrEqualTo(size);
        assertThat(allocatedBytes(dir.resolve("sparse.bin"))).isLessThan(size / 8);
        assertThat(Files.size(dir.resolve("sparse.bin"))).isEqualTo(size);
    }

    /** @return the bytes of storage the file system has given the file ({@code st_blocks * 512}) */
    private static long allocatedBytes(Path file) throws IOException, InterruptedException {
        Process stat = new ProcessBuilder("stat", "-c", "%b %B", file.toString()).redirectErrorStream(true).start();
        String[] fields = new String(stat.getInputStream().readAllBytes()).trim().split(" ");
        assertThat(stat.waitFor()).isZero();
        return Long.parseLong(fields[0]) * Long.parseLong(fields[1]);
    }
}
