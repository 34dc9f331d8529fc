#!/usr/bin/env python3
"""Writes the kept seed corpus of fuzz_exchange.c into corpus/exchange/.

Each seed is a whole exchange file image (the layout of nsc_exchange.h,
written here with struct alone, so the seeds do not depend on any of the
three implementations). Seeds are named after what they describe; the
harness decides what must be accepted, so nothing here states an expected
outcome. Rerun after changing the layout:
    python3 native-shim/src/test/fuzz/make_exchange_corpus.py
Inputs found by libFuzzer are added to the same folder by hand (crash-* files
renamed after the bug), not by this script.
"""
import os
import struct

MAGIC, VERSION, HEADER, META, MAX_NDIM, LEASES, ALIGN = 0x004748435843534E, 1, 1024, 320, 16, 32, 4096
F16, F32, F64, I8, I64, U8 = (2, 16), (2, 32), (2, 64), (0, 8), (0, 64), (1, 8)


def word(dtype, lanes=1):
    return dtype[0] | dtype[1] << 8 | lanes << 16


def data_offset(slots):
    return (HEADER + slots * META + ALIGN - 1) // ALIGN * ALIGN


def image(slots, capacity, **over):
    first = data_offset(slots)
    length = first + slots * capacity
    b = bytearray(length)
    fields = dict(magic=MAGIC, version=VERSION, header_length=HEADER, slot_count=slots, slot_meta_length=META,
                  slot_capacity=capacity, data_offset=first, file_length=length, max_ndim=MAX_NDIM, lease_count=LEASES)
    fields.update(over)
    struct.pack_into("<QIIIIQQQII", b, 0, *(fields[k] for k in (
        "magic", "version", "header_length", "slot_count", "slot_meta_length", "slot_capacity", "data_offset",
        "file_length", "max_ndim", "lease_count")))
    return b


def put_slot(b, i, dtype_word, shape, strides=None, offset=0, version=1, byte_length=None, seq=2, data_at=None):
    slots, capacity = struct.unpack_from("<I", b, 16)[0], struct.unpack_from("<Q", b, 24)[0]
    first = data_offset(slots)
    elem = ((dtype_word >> 8) & 0xff) // 8 or 1
    if strides is None:
        strides, acc = [], 1
        for n in reversed(shape):
            strides.insert(0, acc)
            acc *= n
    count = 1
    for n in shape:
        count *= n
    if byte_length is None:
        byte_length = count * elem
    at = data_at if data_at is not None else first + i * capacity + offset
    m = HEADER + i * META
    struct.pack_into("<IIQIIQQq", b, m, seq, dtype_word, version, len(shape), 0, at, byte_length, 1000 + version)
    for d, (n, s) in enumerate(zip(shape, strides)):
        struct.pack_into("<q", b, m + 64 + 8 * d, n)
        struct.pack_into("<q", b, m + 192 + 8 * d, s)
    struct.pack_into("<QI", b, 136, version, i)  # latest_version, latest_slot
    return b


def seeds():
    yield "valid-empty-1slot", image(1, 64)
    yield "valid-f32-4x4", put_slot(image(1, 64), 0, word(F32), [4, 4])
    yield "valid-i64-scalar", put_slot(image(1, 64), 0, word(I64), [])
    yield "valid-f64-1x1x1-max-ndim", put_slot(image(1, 64), 0, word(F64), [1] * 16)
    b = image(3, 256)
    put_slot(b, 0, word(F16), [2, 3], version=1)
    put_slot(b, 1, word(U8), [4, 8], strides=[1, 4], version=2)        # transposed
    put_slot(b, 2, word(I8), [16], strides=[-1], offset=15, version=3)  # negative stride from the last byte
    yield "valid-3slots-f16-transposed-negative", b
    yield "valid-empty-dim", put_slot(image(1, 64), 0, word(F32), [0, 5])
    yield "valid-broadcast-zero-stride", put_slot(image(1, 64), 0, word(F32), [1000, 4], strides=[0, 1], byte_length=16)
    yield "valid-slot-odd-seq", put_slot(image(1, 64), 0, word(F32), [4], seq=3)
    good = bytes(put_slot(image(2, 128), 0, word(F32), [8, 4]))
    yield "bad-magic", b"XXXXXXXX" + good[8:]
    yield "bad-version-2", good[:8] + struct.pack("<I", 2) + good[12:]
    yield "bad-version-0-unfinished", good[:8] + struct.pack("<I", 0) + good[12:]
    yield "bad-truncated", good[:-64]
    yield "bad-grown", good + bytes(64)
    yield "bad-header-only", good[:HEADER]
    yield "bad-short-of-header", good[:100]
    yield "bad-slot-count-0", image(1, 64, slot_count=0)
    yield "bad-slot-count-huge", image(1, 64, slot_count=0xFFFFFFFF)
    yield "bad-capacity-not-64", image(1, 64, slot_capacity=63)
    yield "bad-capacity-overflow", image(1, 64, slot_capacity=2**63)
    yield "bad-data-offset", image(1, 64, data_offset=1024)
    yield "bad-file-length", image(1, 64, file_length=2**64 - 1)
    yield "bad-meta-length", image(1, 64, slot_meta_length=256)
    yield "bad-max-ndim-64", image(1, 64, max_ndim=64)
    yield "slot-data-offset-outside", put_slot(image(2, 128), 0, word(F32), [4], data_at=2**63)
    yield "slot-data-in-next-slot", put_slot(image(2, 128), 0, word(F32), [4], offset=128)
    yield "slot-reach-past-end", put_slot(image(1, 64), 0, word(F32), [17])
    yield "slot-shape-overflow", put_slot(image(1, 64), 0, word(F32), [2**40, 2**40], strides=[0, 0], byte_length=4)
    yield "slot-stride-huge", put_slot(image(1, 64), 0, word(F32), [2, 2], strides=[2**62, 1], byte_length=16)
    yield "slot-negative-dim", put_slot(image(1, 64), 0, word(F32), [-1], byte_length=4)
    yield "slot-negative-stride-before-slot", put_slot(image(1, 64), 0, word(F32), [4], strides=[-1], byte_length=16)
    yield "slot-unaligned", put_slot(image(1, 64), 0, word(F32), [2], offset=2)
    yield "slot-byte-length-short", put_slot(image(1, 64), 0, word(F32), [4, 4], byte_length=8)
    yield "slot-dtype-lanes-2", put_slot(image(1, 64), 0, word(F32, 2), [4])
    yield "slot-dtype-unknown", put_slot(image(1, 64), 0, 0x7f7f, [4])
    b = put_slot(image(1, 64), 0, word(F32), [4])
    struct.pack_into("<I", b, HEADER + 16, 17)
    yield "slot-ndim-17", b
    b = put_slot(image(1, 64), 0, word(F32), [4])
    struct.pack_into("<I", b, HEADER + 16, 0xFFFFFFFF)
    yield "slot-ndim-uint32-max", b


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "exchange")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes(data))


if __name__ == "__main__":
    main()
