#!/usr/bin/python3
"""Writes the kept .npy fuzz corpus into this directory (needs python3-numpy).

NpyFuzzTest replays every *.npy here on every test run and seeds its mutator with them;
./run fuzz gives them to Jazzer as seeds. Inputs found by fuzzing are added by hand (keep their
names: finding-<what>.npy). Regenerate with: /usr/bin/python3 make_corpus.py
"""
import io
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def save(name, data):
    with open(os.path.join(HERE, name), 'wb') as f:
        f.write(data)


def numpy_bytes(a, version=None):
    f = io.BytesIO()
    np.lib.format.write_array(f, a, version=version, allow_pickle=False)
    return f.getvalue()


def framed(dict_text, data=b'', major=1, align=64, length=None):
    text = dict_text.encode('utf-8' if major == 3 else 'latin1')
    prefix = 10 if major == 1 else 12
    total = -(-(prefix + len(text) + 1) // align) * align
    header = text + b' ' * (total - prefix - len(text) - 1) + b'\n'
    n = len(header) if length is None else length
    field = struct.pack('<H', n) if major == 1 else struct.pack('<I', n)
    return b'\x93NUMPY' + bytes([major, 0]) + field + header + data


def d(descr, shape, fortran=False):
    return "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)


# Valid files written by NumPy itself.
for t in ['<f2', '<f4', '<f8', '|i1', '<i2', '<i4', '<i8', '|u1', '<u2', '<u4', '<u8', '|b1']:
    a = (np.arange(6) * 37 % 200).astype(t).reshape(2, 3)
    save('numpy-%s.npy' % t[1:], numpy_bytes(a))
save('numpy-v2-fortran.npy', numpy_bytes(np.asfortranarray(np.arange(12, dtype='<f4').reshape(3, 4)), (2, 0)))
save('numpy-v3.npy', numpy_bytes(np.arange(5, dtype='<i8'), (3, 0)))
save('numpy-0d.npy', numpy_bytes(np.array(2.5)))
save('numpy-empty.npy', numpy_bytes(np.zeros((2, 0, 3), dtype='<f4')))
save('numpy-3d.npy', numpy_bytes(np.arange(24, dtype='<i2').reshape(2, 3, 4)))
# Refused by us, written by NumPy.
save('numpy-big-endian.npy', numpy_bytes(np.arange(4, dtype='>f4')))
save('numpy-complex.npy', numpy_bytes(np.zeros(3, dtype=np.complex64)))
save('numpy-unicode.npy', numpy_bytes(np.array(['ab', 'cd'])))
save('numpy-structured.npy', numpy_bytes(np.zeros(2, dtype=[('x', '<f4'), ('y', '<i8')])))

# Hand-made edge cases.
save('old-16-aligned.npy', framed(d('<f4', '(2L, 1L)'), b'\0' * 8, align=16))
save('double-quotes.npy', framed('{"descr": "<i2", "fortran_order": False, "shape": (1,)}', b'\1\0'))
save('little-u1.npy', framed(d('<u1', '(2,)'), b'\xc8\3'))
save('trailing-bytes.npy', framed(d('<f4', '(1,)'), b'\0' * 12))
save('empty.npy', b'')
save('magic-only.npy', b'\x93NUMPY')
save('not-npy.npy', b'PK\3\4 not a npy file')
save('version-4.npy', b'\x93NUMPY\x04\x00' + framed(d('<f4', '(1,)'), b'\0' * 4)[8:])
save('header-beyond-file.npy', framed(d('<f4', '(2,)'), b'', length=4000))
save('header-huge-v2.npy', framed(d('<f4', '(2,)'), b'', major=2, length=0xffffffff))
save('misaligned.npy', framed(d('<f4', '(2,)'), b'\0' * 8, align=1))
save('shape-overflow.npy', framed(d('<f4', '(4611686018427387904, 4)'), b'\0' * 8))
save('shape-overflow-zero.npy', framed(d('<f4', '(0, 4294967296, 4294967296)')))
save('dim-too-big.npy', framed(d('<f4', '(99999999999999999999999,)'), b'\0' * 8))
save('negative-dim.npy', framed(d('<f4', '(-1,)'), b'\0' * 8))
save('rank-65.npy', framed(d('<f4', '(' + '1, ' * 65 + ')'), b'\0' * 4))
save('absurd-dim.npy', framed(d('<f4', '(1000000000000,)'), b'\0' * 8))
save('data-short.npy', framed(d('<i8', '(2, 1)'), b'\0' * 15))
save('native-order.npy', framed(d('=f4', '(2,)'), b'\0' * 8))
v3 = bytearray(framed(d('<f4', '(2,)'), b'\0' * 8, major=3))
v3[12 + d('<f4', '(2,)').index('<f4')] = 0xff
save('v3-not-utf8.npy', bytes(v3))
save('duplicate-key.npy', framed("{'descr': '<f4', 'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", b'\0' * 16))
save('missing-key.npy', framed("{'descr': '<f4', 'shape': (2,), }", b'\0' * 8))
save('shape-int.npy', framed(d('<f4', '(2)'), b'\0' * 8))
save('shape-list.npy', framed(d('<f4', '[2]'), b'\0' * 8))
save('unclosed-dict.npy', framed("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", b'\0' * 8))
save('escape.npy', framed(d('<f\\x34', '(2,)'), b'\0' * 8))
save('deep-list.npy', framed("{'descr': " + '[' * 3000 + ']' * 3000 + ", 'fortran_order': False, 'shape': (2,), }"))
save('long-number.npy', framed(d('<f4', '(' + '9' * 5000 + ',)'), major=2))
