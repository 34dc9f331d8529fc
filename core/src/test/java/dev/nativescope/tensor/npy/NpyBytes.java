package dev.nativescope.tensor.npy;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/** Builds {@code .npy} files byte by byte for tests, including broken ones. */
public final class NpyBytes {
    private NpyBytes() {
    }

    /** A well-formed file: {@code dict} padded with spaces and '\n' to {@code alignment}, then {@code data}. */
    public static byte[] npy(int major, String dict, int alignment, byte[] data) {
        byte[] text = dict.getBytes(major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
        int prefix = major == 1 ? 10 : 12;
        int total = prefix + text.length + 1;
        total = (total + alignment - 1) / alignment * alignment;
        byte[] header = new byte[total - prefix];
        java.util.Arrays.fill(header, (byte) ' ');
        System.arraycopy(text, 0, header, 0, text.length);
        header[header.length - 1] = '\n';
        return raw(major, 0, header.length, header, data);
    }

    /** A well-formed version-1.0, 64-aligned file. */
    public static byte[] npy(String dict, byte[] data) {
        return npy(1, dict, 64, data);
    }

    /** Exactly the given pieces: magic, version, a length field (of the version's width), header, data. */
    public static byte[] raw(int major, int minor, long headerLength, byte[] header, byte[] data) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', (byte) major, (byte) minor});
        out.write((int) headerLength);
        out.write((int) (headerLength >>> 8));
        if (major != 1) {
            out.write((int) (headerLength >>> 16));
            out.write((int) (headerLength >>> 24));
        }
        out.writeBytes(header);
        out.writeBytes(data);
        return out.toByteArray();
    }

    /** The dict NumPy writes. */
    public static String dict(String descr, boolean fortran, String shape) {
        return "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': " + shape + ", }";
    }
}
