package dev.nativescope.tensor.npy;

import dev.nativescope.tensor.DType;
import dev.nativescope.tensor.io.TensorFormatException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * Maps NumPy's {@code descr} type strings to {@link DType}s: a byte-order character ({@code '<'}
 * little-endian, {@code '>'} big-endian, {@code '|'} not applicable, {@code '='} native), a kind
 * character and the item size in bytes. Accepted: little-endian numbers ({@code '<f4'}) and
 * one-byte types with any order character but {@code '='} (NumPy writes {@code '|u1'}, some C
 * writers {@code '<u1'}). Everything else is refused with a message that says why and what to do.
 * Stateless and thread-safe.
 */
final class NpyDescr {
    private NpyDescr() {
    }

    /**
     * @return the dtype {@code descr} names
     * @throws TensorFormatException for big-endian, native-order, structured or unsupported types
     */
    static DType parse(Path file, String descr) throws TensorFormatException {
        if (descr.length() < 2) {
            throw unsupported(file, descr, "it is too short to be a type string");
        }
        char order = descr.charAt(0);
        String kindAndSize = descr.substring(1);
        DType type = byKindAndSize(kindAndSize);
        if (type == null) {
            if ("<>|=".indexOf(order) < 0) {
                throw unsupported(file, descr, "it does not start with a byte-order character ('<', '>' or '|')");
            }
            throw unsupported(file, descr, "this type has no tensor equivalent here");
        }
        if (type.byteSize() == 1 ? order == '=' : order != '<') {
            switch (order) {
                case '>' -> throw new TensorFormatException(file, "big-endian data (descr '" + descr
                        + "') is not supported; convert it with NumPy first: np.save(path, a.astype('<"
                        + kindAndSize + "'))");
                case '=' -> throw unsupported(file, descr, "'=' (the writer's native order) does not say which order "
                        + "the data is in");
                case '|' -> throw unsupported(file, descr, "'|' (no byte order) is only valid for one-byte types");
                default -> throw unsupported(file, descr, "it does not start with a byte-order character ('<', '>' or '|')");
            }
        }
        return type;
    }

    /** @return the descr NumPy writes for {@code type} */
    static String of(DType type) {
        return type.numpyDescr().orElseThrow(() -> new IllegalArgumentException(type.displayName()
                + " has no NumPy equivalent, so it cannot be stored in a .npy file; use safetensors or convert to float32"));
    }

    private static DType byKindAndSize(String kindAndSize) {
        for (DType type : DType.values()) {
            if (type.numpyDescr().map(d -> d.substring(1).equals(kindAndSize)).orElse(false)) {
                return type;
            }
        }
        return null;
    }

    private static TensorFormatException unsupported(Path file, String descr, String why) {
        String supported = Arrays.stream(DType.values())
                .flatMap(t -> t.numpyDescr().stream())
                .collect(Collectors.joining(", "));
        return new TensorFormatException(file, "unsupported dtype descr " + NpyDictParser.quote(descr) + ": " + why
                + "; supported: " + supported + " (1-byte types with any of '<', '>', '|')");
    }
}
