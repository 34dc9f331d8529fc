#!/usr/bin/python3
"""Writes the seed corpus of the seeded fuzzers (JsonParserFuzzTest, SafeTensorsFuzzTest).

Run from this folder: python3 make_seed_corpus.py. Names say the verdict the replay expects:
ok-* must parse or map, bad-* must be rejected. Findings of long fuzz runs are added by hand
(from core/target/fuzz-findings/) under a bad-* or ok-* name; this script never deletes them.
"""
import json
import subprocess
import sys
import struct

SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
         "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1}


def st(name, header, data=b"", length=None, pad=True):
    text = header if isinstance(header, bytes) else header.encode("utf-8")
    if pad:
        text += b" " * (-len(text) % 8)
    with open("safetensors/" + name + ".safetensors", "wb") as out:
        out.write(struct.pack("<Q", len(text) if length is None else length) + text + data)


def tensors(*entries, metadata=None):
    header, offset, data = {}, 0, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape in entries:
        count = 1
        for dim in shape:
            count *= dim
        size = count * SIZES[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        data += bytes((offset + i) % 251 for i in range(size))
        offset += size
    return json.dumps(header, separators=(",", ":")), data


def js(name, text):
    with open("json/" + name + ".json", "wb") as out:
        out.write(text if isinstance(text, bytes) else text.encode("utf-8"))


every = [("t_" + d.lower(), d, [2, 3]) for d in SIZES]
st("ok-every-dtype", *tensors(*every, metadata={"format": "pt"}))
st("ok-no-tensors", "{}")
st("ok-scalar-and-empty", *tensors(("s", "F32", []), ("e", "F64", [0, 5]), ("v", "U8", [3])))
st("ok-unpadded-misaligned", *tensors(("b", "U8", [3]), ("f", "F32", [2]), ("d", "F64", [1])), pad=False)
st("ok-unicode-names", *tensors(("na\u00efve \U0001F600", "I16", [2]), metadata={"\u20ac": "tab\t\"q\""}))
h, d = tensors(("w", "F32", [2, 2]))
st("bad-truncated-data", h, d[:-1])
st("bad-trailing-data", h, d + b"\0")
st("bad-length-beyond-file", h, d, length=100000)
st("bad-length-zero", h, d, length=0)
st("bad-length-huge", h, d, length=2 ** 64 - 1)
st("bad-not-utf8", b'{"w\xff":1}')
st("bad-duplicate-key", '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
   '"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', b"\0\0")
st("bad-trailing-garbage", '{}x')
st("bad-dtype", '{"w":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}', b"\0")
st("bad-shape-overflow", '{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}')
st("bad-negative-dim", '{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}')
st("bad-overlap", '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
   '"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', bytes(12))
st("bad-hole", '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
   '"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}', bytes(12))
st("bad-reversed", '{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}', bytes(4))
st("bad-metadata-number", '{"__metadata__":{"a":1}}')
st("bad-deep", '{"__metadata__":' + "[" * 100 + "]" * 100 + "}")

for name, text in {
    "ok-object": '{"a": [1, -2.5e3, true, false, null, "s"], "b": {}}',
    "ok-escapes": '"\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\ud83d\\ude00"',
    "ok-raw-utf8": '"na\u00efve \u20ac \U0001F600"',
    "ok-numbers": "[0, -0, 1.5, 1e308, 1E-7, 9223372036854775807, 9223372036854775808, -9223372036854775809]",
    "ok-whitespace": ' \t\r\n[ 1 , { "a" : 2 } ]\n',
    "ok-depth-64": "[" * 64 + "]" * 64,
    "bad-depth-65": "[" * 65 + "]" * 65,
    "bad-trailing-comma": "[1,]",
    "bad-leading-zero": "01",
    "bad-nan": "[NaN]",
    "bad-single-quotes": "{'a': 1}",
    "bad-duplicate": '{"a": 1, "a": 2}',
    "bad-lone-high": '"\\ud800"',
    "bad-lone-low": '"\\udc00x"',
    "bad-control-char": '"a\u0001b"',
    "bad-trailing": "{} {}",
    "bad-comment": "/* c */ 1",
    "bad-bom": "\ufeff{}",
    "bad-exponent-range": "1e99999999999",
    "bad-empty": "",
}.items():
    js(name, text)
js("bad-invalid-utf8", b'"\xc0\xaf"')
js("bad-encoded-surrogate", b'"\xed\xa0\x80"')

# a file laid out as no writer of ours would: reversed data order, metadata last, nothing aligned
subprocess.run([sys.executable, "../safetensors/reference_io.py", "write", "safetensors/ok-python-reference.safetensors"],
               check=True, stdout=subprocess.DEVNULL)

# ok-finding-*, bad-finding-*: inputs found by long fuzz runs, added by hand (see the docstring)
