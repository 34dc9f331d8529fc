#!/usr/bin/env python3
"""Writes the kept seed corpus of fuzz_dlpack.c into corpus/dlpack/.

The encoding is the one documented at the top of fuzz_dlpack.c. Seeds are
named after what they describe, so a failing regression names its case; the
harness itself decides whether each one must be accepted, so nothing here
states an expected outcome. Rerun after changing the format:
    python3 native-shim/src/test/fuzz/make_corpus.py
Inputs found by libFuzzer are added to the same folder by hand (crash-* files
renamed after the bug), not by this script.
"""
import os
import struct

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
K_DL_CPU, K_DL_CUDA = 1, 2
K_DL_INT, K_DL_FLOAT = 0, 2

STRIDES_NULL, SHAPE_NULL, DATA_NULL = 0x01, 0x02, 0x04


def num(v):
    """One int64 in the harness's tagged encoding, as short as it gets (uint64 values wrap, like byte_offset)."""
    if v >= 2**63:
        v -= 2**64
    if v == INT64_MAX:
        return b"\xf3"
    if v == INT64_MIN:
        return b"\xf4"
    if 0 <= v <= 127 or -128 <= v <= -17 or -7 <= v <= -1:
        return bytes([v & 0xFF])
    if -(2**15) <= v < 2**15:
        return b"\xf0" + struct.pack("<h", v)
    if -(2**31) <= v < 2**31:
        return b"\xf1" + struct.pack("<i", v)
    return b"\xf2" + struct.pack("<q", v)


def tensor(shape, strides=None, byte_offset=0, flags=0, misalign=0, device=K_DL_CPU,
           code=K_DL_FLOAT, bits=32, lanes=1, ndim=None):
    shape = list(shape) if shape is not None else None
    if ndim is None:
        ndim = len(shape) if shape is not None else 0
    if shape is None:
        flags |= SHAPE_NULL
    if strides is None:
        flags |= STRIDES_NULL
    out = bytes([flags | (misalign << 3)])
    for field in (device, 0, code, bits, lanes, ndim, byte_offset):
        out += num(field)
    for values in (shape, strides):
        if values is not None:
            out += b"".join(num(v) for v in values)
    return out


def summed(t):
    return b"\x00" + t


def dense(x, w, y, bias=None, repeat=1):
    mode = 0x01 | (0x02 if bias is not None else 0)
    out = bytes([mode]) + num(repeat) + x + w
    if bias is not None:
        out += bias
    return out + y


SEEDS = {
    # nsc_dl_sum_f32: layouts the header says are accepted
    "sum-compact-2d-null-strides": summed(tensor([4, 6])),
    "sum-compact-2d-explicit-strides": summed(tensor([4, 6], [6, 1])),
    "sum-transposed": summed(tensor([6, 4], [1, 6])),
    "sum-sliced-byte-offset": summed(tensor([3, 3], [6, 2], byte_offset=28)),
    "sum-negative-strides": summed(tensor([4, 6], [-6, -1], byte_offset=92)),
    "sum-broadcast-zero-stride": summed(tensor([5, 3], [0, 1])),
    "sum-3d-size1-dim-huge-stride": summed(tensor([4, 1, 5], [30, INT64_MAX, 6], byte_offset=8)),
    "sum-0d-shape-null": summed(tensor(None, byte_offset=20)),
    "sum-0d-shape-empty": summed(tensor([])),
    "sum-empty-null-data-extreme-strides": summed(tensor([0, 7], [INT64_MAX, INT64_MIN], flags=DATA_NULL)),
    "sum-empty-dims-beyond-int64": summed(tensor([INT64_MAX, 0, INT64_MAX])),
    "sum-empty-unaligned": summed(tensor([3, 0], misalign=2)),
    "sum-max-ndim": summed(tensor([1] * 63 + [3])),
    "sum-1d-strided-long": summed(tensor([1000], [3])),
    "sum-4d-mixed-signs": summed(tensor([2, 3, 4, 5], [-60, 20, -5, 1], byte_offset=4000)),
    "sum-broadcast-count-2pow62": summed(tensor([2**31, 2**31], [0, 0])),
    "sum-reach-just-fits": summed(tensor([2], [2**61 - 1])),
    "sum-low-exactly-int64-min": summed(tensor([2, 2], [-(2**60), -(2**60)])),
    "sum-high-near-int64-max": summed(tensor([2, 2], [2**60 - 1, 2**60 - 1])),
    # ... and descriptors the header says are refused
    "bad-ndim-65": summed(tensor([1] * 65)),
    "bad-ndim-negative": summed(tensor([], ndim=-1)),
    "bad-ndim-int32-max": summed(tensor([], ndim=2**31 - 1)),
    "bad-device-cuda": summed(tensor([2, 2], device=K_DL_CUDA)),
    "bad-dtype-f64": summed(tensor([2, 2], bits=64)),
    "bad-dtype-lanes-2": summed(tensor([2, 2], lanes=2)),
    "bad-dtype-int32": summed(tensor([2, 2], code=K_DL_INT)),
    "bad-negative-dim": summed(tensor([3, -1])),
    "bad-shape-null": summed(tensor(None, ndim=2)),
    "bad-count-overflow": summed(tensor([2**32, 2**32], [0, 0])),
    "bad-reach-overflow": summed(tensor([2, 2], [2**62, 1])),
    "bad-low-below-int64-min": summed(tensor([3, 2], [-(2**60), -(2**60)])),
    "bad-base-wraps": summed(tensor([2], [1], byte_offset=2**63)),
    "bad-misaligned": summed(tensor([2, 3], misalign=1)),
    "bad-null-data": summed(tensor([2, 3], flags=DATA_NULL, byte_offset=64)),
    # nsc_predict_dense_dl
    "dense-compact-bias": dense(tensor([3, 4]), tensor([4, 5]), tensor([3, 5]), bias=tensor([5])),
    "dense-column-major-repeat-2": dense(tensor([3, 4], [1, 3]), tensor([4, 5], [1, 4]),
                                         tensor([3, 5], [1, 3]), repeat=2),
    "dense-tile-edges-33": dense(tensor([33, 2]), tensor([2, 33]), tensor([33, 33]), bias=tensor([33], [-1])),
    "dense-y-gaps-negative": dense(tensor([2, 3]), tensor([3, 2]), tensor([2, 2], [-5, -2], byte_offset=28)),
    "dense-broadcast-inputs": dense(tensor([4, 3], [0, 1]), tensor([3, 2], [1, 0]), tensor([4, 2]),
                                    bias=tensor([2], [0])),
    "dense-y-interleaved-strides": dense(tensor([2, 3]), tensor([3, 2]), tensor([2, 2], [3, 2])),
    "bad-dense-y-interleaved-collide": dense(tensor([4, 1]), tensor([1, 3]), tensor([4, 3], [2, 3])),
    "bad-dense-y-broadcast": dense(tensor([2, 3]), tensor([3, 2]), tensor([2, 2], [0, 1])),
    "bad-dense-repeat-0": dense(tensor([2, 3]), tensor([3, 2]), tensor([2, 2]), repeat=0),
    "bad-dense-inner-mismatch": dense(tensor([2, 3]), tensor([4, 2]), tensor([2, 2])),
    "bad-dense-zero-rows": dense(tensor([0, 3]), tensor([3, 2]), tensor([0, 2])),
    "bad-dense-bias-ndim-2": dense(tensor([2, 3]), tensor([3, 2]), tensor([2, 2]), bias=tensor([1, 2])),
}


def main():
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "dlpack")
    os.makedirs(folder, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
    print(f"{len(SEEDS)} seeds in {folder}")


if __name__ == "__main__":
    main()
