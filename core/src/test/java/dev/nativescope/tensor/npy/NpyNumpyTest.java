package dev.nativescope.tensor.npy;

import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.Tensor;
import dev.nativescope.tensor.io.MappedFile;
import dev.nativescope.tensor.io.TensorFormatException;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.lang.foreign.Arena;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.fail;

/**
 * Interoperability with real NumPy (Debian's python3-numpy under /usr/bin/python3): NumPy writes,
 * we map; we write, NumPy loads; and both sides write one shared mapping. Never skipped: without
 * NumPy the tests fail and say how to install it.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class NpyNumpyTest {
    private static final String PYTHON = "/usr/bin/python3";
    private static final long[][] SHAPES = {{}, {0}, {2, 0, 3}, {5}, {3, 4}, {2, 3, 4}};
    private static final int[] VERSIONS = {1, 2, 3};

    /** Element k (in row-major order) of every test array; the Python side computes the same. */
    private static final String VALUES_PY = """
            import sys, numpy as np
            def values(shape, dt):
                n = int(np.prod(shape, dtype=np.int64))
                k = np.arange(n, dtype=np.int64)
                if dt.kind == 'b':
                    v = (k % 3 == 0)
                elif dt.kind == 'u':
                    v = k * 37 % 200
                elif dt.kind == 'f':
                    v = (k * 37 % 200 - 100) / 4
                else:
                    v = k * 37 % 200 - 100
                return v.astype(dt).reshape(shape)
            """;

    @TempDir
    Path dir;

    @BeforeAll
    static void requireNumpy() throws Exception {
        if (!Files.isExecutable(Path.of(PYTHON))) {
            fail(PYTHON + " is missing: these tests need Debian's python3 with python3-numpy; run ./run test "
                    + "(it installs them) or: apt-get update && apt-get install -y python3-numpy");
        }
        Process probe = new ProcessBuilder(PYTHON, "-c", "import numpy; print(numpy.__version__)")
                .redirectErrorStream(true).start();
        String out = new String(probe.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        if (probe.waitFor() != 0) {
            fail(PYTHON + " cannot import numpy (" + out + "): install python3-numpy with ./run test (it installs "
                    + "it) or: apt-get update && apt-get install -y python3-numpy");
        }
    }

    private static double expected(long k, DType dtype) {
        return switch (dtype) {
            case BOOL -> k % 3 == 0 ? 1 : 0;
            case UINT8, UINT16, UINT32, UINT64 -> k * 37 % 200;
            case FLOAT16, FLOAT32, FLOAT64 -> (k * 37 % 200 - 100) / 4.0;
            default -> k * 37 % 200 - 100;
        };
    }

    private static List<DType> numpyTypes() {
        return Arrays.stream(DType.values()).filter(t -> t.numpyDescr().isPresent()).toList();
    }

    private record Spec(String name, DType dtype, long[] shape, boolean fortran, int version) {
        String line() {
            return name + " " + dtype.numpyDescr().orElseThrow() + " " + version + " " + (fortran ? "F" : "C") + " s"
                    + Arrays.stream(shape).mapToObj(Long::toString).collect(Collectors.joining(","));
        }
    }

    private static List<Spec> specs() {
        List<Spec> specs = new ArrayList<>();
        for (DType dtype : numpyTypes()) {
            for (long[] shape : SHAPES) {
                for (boolean fortran : new boolean[] {false, true}) {
                    for (int version : VERSIONS) {
                        String name = dtype.displayName() + "_" + (fortran ? "F" : "C") + "_v" + version + "_"
                                + Arrays.stream(shape).mapToObj(Long::toString).collect(Collectors.joining("x")) + ".npy";
                        specs.add(new Spec(name, dtype, shape, fortran, version));
                    }
                }
            }
        }
        return specs;
    }

    /** Runs a Python script with {@code input} on stdin; fails the test with its output unless it exits 0. */
    private static String python(String script, String input, String... args) throws Exception {
        List<String> command = new ArrayList<>(List.of(PYTHON, "-c", script));
        command.addAll(List.of(args));
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        try (var stdin = process.getOutputStream()) {
            stdin.write(input.getBytes(StandardCharsets.UTF_8));
        }
        String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(process.waitFor(60, TimeUnit.SECONDS)).as("python finished").isTrue();
        assertThat(process.exitValue()).as("python failed:\n" + out).isZero();
        return out;
    }

    @Test
    void numpyWritesEveryDTypeShapeOrderAndVersionAndWeMapThem() throws Exception {
        List<Spec> specs = specs();
        String script = VALUES_PY + """
                out = sys.argv[1]
                for line in sys.stdin:
                    name, descr, version, order, dims = line.split()
                    shape = tuple(int(d) for d in dims[1:].split(',') if d)
                    a = values(shape, np.dtype(descr))
                    a = a.copy(order=order)
                    with open(out + '/' + name, 'wb') as f:
                        np.lib.format.write_array(f, a, version=(int(version), 0))
                print('wrote', len(list(__import__('os').listdir(out))))
                """;
        python(script, specs.stream().map(Spec::line).collect(Collectors.joining("\n", "", "\n")), dir.toString());
        int checked = 0;
        try (Arena arena = Arena.ofShared()) {
            for (Spec spec : specs) {
                NpyFile npy = Npy.map(dir.resolve(spec.name()), MappedFile.Mode.READ_ONLY, arena);
                NpyHeader header = npy.header();
                assertThat(header.dtype()).as(spec.name()).isEqualTo(spec.dtype());
                assertThat(header.shape()).as(spec.name()).containsExactly(spec.shape());
                assertThat(header.majorVersion()).as(spec.name()).isEqualTo(spec.version());
                // NumPy writes fortran_order True only for arrays that are Fortran- but not C-contiguous.
                // (Empty arrays are both, so NumPy writes them as C order.)
                boolean numpyFortran = spec.fortran() && Arrays.stream(spec.shape()).filter(d -> d > 1).count() > 1
                        && Arrays.stream(spec.shape()).allMatch(d -> d > 0);
                assertThat(header.fortranOrder()).as(spec.name()).isEqualTo(numpyFortran);
                assertThat(header.dataOffset() % 64).as(spec.name()).isZero();
                Tensor t = npy.tensor();
                long[] index = new long[t.rank()];
                for (long k = 0; k < t.elementCount(); k++) {
                    assertThat(t.getDouble(index)).as("%s %s", spec.name(), Arrays.toString(index))
                            .isEqualTo(expected(k, spec.dtype()));
                    increment(index, spec.shape());
                    checked++;
                }
            }
        }
        assertThat(checked).isGreaterThan(1000);
    }

    @Test
    void numpyExtremesBigEndianAndPlainNpSave() throws Exception {
        String script = """
                import sys, numpy as np
                out = sys.argv[1]
                for t in ['i1', 'i2', 'i4', 'i8', 'u1', 'u2', 'u4', 'u8']:
                    info = np.iinfo(np.dtype(t))
                    np.save(out + '/ext_' + t + '.npy', np.array([info.min, info.max, 0, 1], dtype=t))
                for t in ['f2', 'f4', 'f8']:
                    info = np.finfo(np.dtype(t))
                    np.save(out + '/ext_' + t + '.npy', np.array([info.max, info.tiny, -0.0, np.inf, -np.inf, np.nan], dtype=t))
                np.save(out + '/big.npy', np.arange(4, dtype='>f4'))
                np.save(out + '/strided.npy', np.arange(20, dtype='<i4').reshape(4, 5)[::2, 1::2])
                np.save(out + '/complex.npy', np.zeros(3, dtype=np.complex64))
                np.save(out + '/strings.npy', np.array(['ab', 'cd']))
                np.save(out + '/structured.npy', np.zeros(2, dtype=[('x', '<f4'), ('y', '<i8')]))
                """;
        python(script, "", dir.toString());
        try (Arena arena = Arena.ofShared()) {
            long[][] ints = {
                    {Byte.MIN_VALUE, Byte.MAX_VALUE}, {Short.MIN_VALUE, Short.MAX_VALUE},
                    {Integer.MIN_VALUE, Integer.MAX_VALUE}, {Long.MIN_VALUE, Long.MAX_VALUE},
                    {0, 255}, {0, 65535}, {0, 0xffff_ffffL}, {0, -1L}};
            String[] intTypes = {"i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8"};
            for (int i = 0; i < intTypes.length; i++) {
                Tensor t = Npy.map(dir.resolve("ext_" + intTypes[i] + ".npy"), MappedFile.Mode.READ_ONLY, arena).tensor();
                assertThat(new long[] {t.getLong(0), t.getLong(1), t.getLong(2), t.getLong(3)})
                        .as(intTypes[i]).containsExactly(ints[i][0], ints[i][1], 0, 1);
            }
            double[][] floats = {
                    {65504, 6.103515625e-05}, {Float.MAX_VALUE, Float.MIN_NORMAL}, {Double.MAX_VALUE, Double.MIN_NORMAL}};
            String[] floatTypes = {"f2", "f4", "f8"};
            for (int i = 0; i < floatTypes.length; i++) {
                Tensor t = Npy.map(dir.resolve("ext_" + floatTypes[i] + ".npy"), MappedFile.Mode.READ_ONLY, arena).tensor();
                assertThat(t.getDouble(0)).as(floatTypes[i]).isEqualTo(floats[i][0]);
                assertThat(t.getDouble(1)).as(floatTypes[i]).isEqualTo(floats[i][1]);
                assertThat(Double.doubleToRawLongBits(t.getDouble(2))).isEqualTo(Double.doubleToRawLongBits(-0.0));
                assertThat(t.getDouble(3)).isEqualTo(Double.POSITIVE_INFINITY);
                assertThat(t.getDouble(4)).isEqualTo(Double.NEGATIVE_INFINITY);
                assertThat(t.getDouble(5)).isNaN();
            }
            Tensor strided = Npy.map(dir.resolve("strided.npy"), MappedFile.Mode.READ_ONLY, arena).tensor();
            assertThat(strided.shape()).containsExactly(2, 2);
            assertThat(strided.toFloatArray()).containsExactly(1, 3, 11, 13);
            Path big = dir.resolve("big.npy");
            assertThatThrownBy(() -> Npy.map(big, MappedFile.Mode.READ_ONLY, arena))
                    .isInstanceOf(TensorFormatException.class).hasMessageContaining(big.toString())
                    .hasMessageContaining("big-endian data (descr '>f4') is not supported");
            assertThatThrownBy(() -> Npy.map(dir.resolve("complex.npy"), MappedFile.Mode.READ_ONLY, arena))
                    .isInstanceOf(TensorFormatException.class).hasMessageContaining("unsupported dtype descr \"<c8\"");
            assertThatThrownBy(() -> Npy.map(dir.resolve("strings.npy"), MappedFile.Mode.READ_ONLY, arena))
                    .isInstanceOf(TensorFormatException.class).hasMessageContaining("unsupported dtype descr \"<U2\"");
            assertThatThrownBy(() -> Npy.map(dir.resolve("structured.npy"), MappedFile.Mode.READ_ONLY, arena))
                    .isInstanceOf(TensorFormatException.class).hasMessageContaining("structured dtypes are not supported");
        }
    }

    @Test
    void weWriteEveryDTypeShapeAndOrderAndNumpyLoadsThem() throws Exception {
        List<Spec> specs = specs().stream().filter(s -> s.version() == 1).toList();
        try (Arena arena = Arena.ofShared()) {
            for (Spec spec : specs) {
                Tensor t = Npy.create(dir.resolve(spec.name()), spec.dtype(), spec.shape(), spec.fortran(), arena);
                long[] index = new long[t.rank()];
                for (long k = 0; k < t.elementCount(); k++) {
                    t.setDouble(expected(k, spec.dtype()), index);
                    increment(index, spec.shape());
                }
            }
        }
        String script = VALUES_PY + """
                out = sys.argv[1]
                n = 0
                for line in sys.stdin:
                    name, descr, version, order, dims = line.split()
                    shape = tuple(int(d) for d in dims[1:].split(',') if d)
                    path = out + '/' + name
                    with open(path, 'rb') as f:
                        assert np.lib.format.read_magic(f) == (1, 0), name
                        hshape, hfortran, hdtype = np.lib.format.read_array_header_1_0(f)
                        assert f.tell() % 64 == 0, (name, f.tell())
                    assert hshape == shape and hfortran == (order == 'F') and hdtype == np.dtype(descr), (name, hshape, hfortran, hdtype)
                    a = np.load(path, mmap_mode='r')
                    assert a.dtype == np.dtype(descr) and a.shape == shape, (name, a.dtype, a.shape)
                    if order == 'F' and len([d for d in shape if d > 1]) > 1 and a.size > 0:
                        assert a.flags.f_contiguous and not a.flags.c_contiguous, name
                    assert np.array_equal(a, values(shape, np.dtype(descr))), (name, a)
                    n += 1
                print('verified', n)
                """;
        String out = python(script, specs.stream().map(Spec::line).collect(Collectors.joining("\n", "", "\n")),
                dir.toString());
        assertThat(out.trim()).isEqualTo("verified " + specs.size());
    }

    @Test
    void sharedMappingSeesWritesFromBothSides() throws Exception {
        Path file = dir.resolve("shared.npy");
        try (Arena arena = Arena.ofShared()) {
            Tensor ours = Npy.create(file, DType.FLOAT32, new long[] {4, 8}, false, arena);
            ours.setDouble(1.5, 0, 0);
            String script = """
                    import sys, numpy as np
                    a = np.load(sys.argv[1], mmap_mode='r+')
                    m = np.memmap(sys.argv[1], dtype='<f4', mode='r+', offset=int(sys.argv[2]), shape=(4, 8))
                    print('ready', a.dtype, a.shape, flush=True)
                    for line in sys.stdin:
                        cmd = line.split()
                        if cmd[0] == 'get':
                            print(repr(float(a[int(cmd[1]), int(cmd[2])])), flush=True)
                        elif cmd[0] == 'sum':
                            print(repr(float(m.sum())), flush=True)
                        elif cmd[0] == 'set':
                            a[int(cmd[1]), int(cmd[2])] = float(cmd[3])
                            print('ok', flush=True)
                        elif cmd[0] == 'mset':
                            m[int(cmd[1]), int(cmd[2])] = float(cmd[3])
                            print('ok', flush=True)
                        elif cmd[0] == 'quit':
                            break
                    """;
            Process child = new ProcessBuilder(PYTHON, "-c", script, file.toString(), "128")
                    .redirectError(ProcessBuilder.Redirect.INHERIT).start();
            try (BufferedReader in = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8));
                 PrintWriter out = new PrintWriter(new OutputStreamWriter(child.getOutputStream(), StandardCharsets.UTF_8), true)) {
                assertThat(in.readLine()).isEqualTo("ready float32 (4, 8)");
                out.println("get 0 0");
                assertThat(in.readLine()).as("NumPy sees what we wrote before it mapped").isEqualTo("1.5");
                ours.setDouble(-2.25, 3, 7);
                out.println("get 3 7");
                assertThat(in.readLine()).as("NumPy sees what we write while both map it").isEqualTo("-2.25");
                out.println("set 1 2 6.5");
                assertThat(in.readLine()).isEqualTo("ok");
                assertThat(ours.getFloat(1, 2)).as("we see what NumPy writes through np.load(mmap_mode='r+')").isEqualTo(6.5f);
                out.println("mset 2 5 -8");
                assertThat(in.readLine()).isEqualTo("ok");
                assertThat(ours.getFloat(2, 5)).as("and through np.memmap").isEqualTo(-8f);
                for (long j = 0; j < 8; j++) {
                    ours.setDouble(100, 1, j);
                }
                out.println("sum");
                assertThat(Double.parseDouble(in.readLine())).isEqualTo(1.5 - 2.25 + 800 - 8);
                out.println("quit");
            }
            assertThat(child.waitFor(30, TimeUnit.SECONDS)).isTrue();
            assertThat(child.exitValue()).isZero();
        }
    }

    private static void increment(long[] index, long[] shape) {
        for (int i = index.length - 1; i >= 0; i--) {
            if (++index[i] < shape[i]) {
                return;
            }
            index[i] = 0;
        }
    }
}
