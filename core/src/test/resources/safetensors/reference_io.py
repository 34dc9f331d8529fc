#!/usr/bin/python3
"""An independent safetensors writer and reader for nativescope's tests.

Standard library only (struct + json): no numpy, no safetensors package, so it shares no code
and no assumptions with the Java implementation beyond the format itself.

  reference_io.py write FILE   writes a multi-tensor file with metadata, prints the expected
                               contents as JSON
  reference_io.py read FILE    parses FILE strictly, prints its contents as JSON

Values are printed as strings (repr of floats, str of ints) so nothing is lost on the way.
"""
import json
import struct
import sys

FORMATS = {"F64": "d", "F32": "f", "F16": "e", "I64": "q", "I32": "i", "I16": "h", "I8": "b",
           "U64": "Q", "U32": "I", "U16": "H", "U8": "B", "BOOL": "?"}
SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
         "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1}


def encode(dtype, values):
    if dtype == "BF16":
        return b"".join(struct.pack("<H", struct.unpack("<I", struct.pack("<f", v))[0] >> 16) for v in values)
    return struct.pack("<%d%s" % (len(values), FORMATS[dtype]), *values)


def decode(dtype, raw):
    count = len(raw) // SIZES[dtype]
    if dtype == "BF16":
        return [struct.unpack("<f", struct.pack("<I", h << 16))[0] for h in struct.unpack("<%dH" % count, raw)]
    return list(struct.unpack("<%d%s" % (count, FORMATS[dtype]), raw))


def show(dtype, values):
    if dtype.startswith("F") or dtype == "BF16":
        return [repr(float(v)) for v in values]
    return [str(int(v)) for v in values]


def sample_tensors():
    """(name, dtype, shape, values): extremes of every integer type, specials of every float type."""
    return [
        ("bytes", "U8", [3], [0, 255, 7]),                 # 3 bytes: everything after it is misaligned
        ("weight/f32", "F32", [2, 3], [1.5, -2.25, 0.0, -0.0, float("inf"), 3.0e38]),
        ("f64", "F64", [2], [1.0 / 3.0, -1e-300]),
        ("half", "F16", [4], [0.5, -65504.0, 6.103515625e-05, float("-inf")]),
        ("brain", "BF16", [2, 2], [1.0, -3.0, 2.0 ** 100, 0.0078125]),
        ("i8", "I8", [4], [-128, 127, 0, -1]),
        ("i16", "I16", [2], [-32768, 32767]),
        ("i32", "I32", [2], [-2 ** 31, 2 ** 31 - 1]),
        ("i64", "I64", [3], [-2 ** 63, 2 ** 63 - 1, 42]),
        ("u16", "U16", [2], [0, 65535]),
        ("u32", "U32", [2], [0, 2 ** 32 - 1]),
        ("u64", "U64", [3], [0, 2 ** 64 - 1, 2 ** 63]),
        ("flags", "BOOL", [2, 2], [True, False, False, True]),
        ("scalar", "F32", [], [2.5]),
        ("empty", "F32", [0, 4], []),
        ("na\u00efve \U0001F600", "I16", [1], [-2]),
    ]


def write(path):
    tensors = sample_tensors()
    # data order is the reverse of the header order, and nothing is padded or aligned
    data = b""
    offsets = {}
    for name, dtype, shape, values in reversed(tensors):
        raw = encode(dtype, values)
        offsets[name] = [len(data), len(data) + len(raw)]
        data += raw
    header = {}
    for name, dtype, shape, values in tensors:
        header[name] = {"data_offsets": offsets[name], "shape": shape, "dtype": dtype}
    metadata = {"format": "pt", "note": "tab\t quote\" emoji \U0001F600 \u00e9"}
    header["__metadata__"] = metadata  # last, not first as the reference writer puts it
    text = json.dumps(header).encode("utf-8")  # ensure_ascii: \\u escapes, surrogate pairs included
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        out.write(data)
    print(json.dumps({
        "metadata": metadata,
        # the values as stored: 3e38 becomes the nearest float32, and so on
        "tensors": [{"name": n, "dtype": d, "shape": s, "values": show(d, decode(d, encode(d, v)))}
                    for n, d, s, v in tensors],
    }))


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate keys in %r" % keys)
    return dict(pairs)


def read(path):
    with open(path, "rb") as f:
        blob = f.read()
    (length,) = struct.unpack("<Q", blob[:8])
    text = blob[8:8 + length].decode("utf-8")
    assert text.startswith("{"), "header must start with {"
    header = json.loads(text, object_pairs_hook=no_duplicates)
    data = blob[8 + length:]
    metadata = header.pop("__metadata__", {})
    spans = sorted((info["data_offsets"][0], info["data_offsets"][1]) for info in header.values())
    covered = 0
    for begin, end in spans:
        assert begin == covered, "hole or overlap at %d" % begin
        covered = end
    assert covered == len(data), "data section has %d bytes, tensors cover %d" % (len(data), covered)
    tensors = []
    for name, info in header.items():
        assert sorted(info) == ["data_offsets", "dtype", "shape"], info
        begin, end = info["data_offsets"]
        count = 1
        for dim in info["shape"]:
            count *= dim
        assert end - begin == count * SIZES[info["dtype"]], name
        tensors.append({"name": name, "dtype": info["dtype"], "shape": info["shape"],
                        "aligned": begin % SIZES[info["dtype"]] == 0,
                        "values": show(info["dtype"], decode(info["dtype"], data[begin:end]))})
    print(json.dumps({"header_length": length, "padding": len(text) - len(text.rstrip(" ")),
                      "metadata": metadata, "tensors": tensors}))


if __name__ == "__main__":
    {"write": write, "read": read}[sys.argv[1]](sys.argv[2])
