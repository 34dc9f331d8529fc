"""nativescope_exchange: the Python side of the nativescope tensor exchange.

Reads and writes the shared-memory exchange files of nativescope (Java:
dev.nativescope.exchange, C: nsc_exchange.h) with nothing but the standard
library and NumPy (Debian's python3-numpy): `struct`/`ctypes` for the header,
`np.ndarray` over `mmap` for the data (no copy), the futex syscall through
`ctypes` for waiting. The layout is ExchangeDescriptor's (see docs/exchange.md).

    import nativescope_exchange as nx
    with nx.Exchange.open("/dev/shm/predictions") as x:
        r = x.wait_next(timeout=5.0)
        if r.status == nx.OK:
            print(r.version, r.array.sum())     # r.array: read-only view into the mapping
            assert r.still_valid()              # nothing was overwritten while we read

    with nx.Exchange.create("/dev/shm/mine", slots=4, capacity=1 << 20) as x:
        a = x.claim(np.float32, (16, 16))       # writable view of a slot
        a[:] = 1.0
        x.publish()

Memory ordering: x86-64 only (like the shim). Aligned 4- and 8-byte loads and
stores through ctypes are single instructions, and x86 keeps loads in order
and stores in order (TSO), which gives the acquire loads and release stores
the protocol needs. The read-modify-writes (taking and freeing lease entries)
and the two store-then-load (Dekker) points, the producer's odd sequence
store before it reads the lease table and a lease taker's slot store before
it re-reads the sequence, use a compare-and-swap: `lock cmpxchg`, the
instruction Java's and C's CAS compile to, so all three agree on the same
words. It is libatomic's __atomic_compare_exchange_4 (Debian's libatomic1, there
wherever GCC's runtime is), called through ctypes; without libatomic, a
7-byte function of our own in a page mapped executable for it (see _Cas;
systems that refuse executable anonymous memory refuse that too);
NSC_EXCHANGE_CAS=libatomic or code picks one, and without either, lease()
raises (reading and producing do not need it).

Views stay readable while the Exchange is open; a slot is reused after
slots - 1 further publications: check still_valid() after reading, or hold
the slot with lease(r) (released by release() or a with block).
Threading: one thread per Exchange object.
"""

import ctypes
import errno as _errno
import mmap
import os
import select
import stat
import struct
import time

import numpy as np

MAGIC = 0x004748435843534E
LAYOUT_VERSION = 1
HEADER_LENGTH = 1024
SLOT_META_LENGTH = 320
MAX_NDIM = 16
LEASE_COUNT = 32
MAX_SLOTS = 1024
DATA_ALIGNMENT = 4096

OFF_MAGIC, OFF_VERSION, OFF_HEADER_LENGTH = 0, 8, 12
OFF_SLOT_COUNT, OFF_SLOT_META_LENGTH, OFF_SLOT_CAPACITY = 16, 20, 24
OFF_DATA_OFFSET, OFF_FILE_LENGTH, OFF_MAX_NDIM, OFF_LEASE_COUNT = 32, 40, 48, 52
OFF_PRODUCER_PID, OFF_PRODUCER_EPOCH, OFF_PRODUCER_START = 64, 68, 72
OFF_HEARTBEAT_NS, OFF_CLOSED = 80, 88
OFF_NOTIFY, OFF_LATEST_VERSION, OFF_LATEST_SLOT = 128, 136, 144
OFF_LEASES, LEASE_LENGTH = 192, 16
LEASE_OFF_PID, LEASE_OFF_SLOT, LEASE_OFF_START = 0, 4, 8
SLOT_SEQ, SLOT_DTYPE, SLOT_VERSION, SLOT_NDIM, SLOT_FLAGS = 0, 4, 8, 16, 20
SLOT_DATA_OFFSET, SLOT_BYTE_LENGTH, SLOT_PUBLISH_NS = 24, 32, 40
SLOT_SHAPE, SLOT_STRIDES = 64, 192

OK, EMPTY, OVERRUN, TIMEOUT = "OK", "EMPTY", "OVERRUN", "TIMEOUT"
PRODUCER_DEAD, PRODUCER_CLOSED = "PRODUCER_DEAD", "PRODUCER_CLOSED"

# DLPack (code, bits) -> NumPy dtype, little-endian.
_DTYPES = {
    (0, 8): np.int8, (0, 16): np.int16, (0, 32): np.int32, (0, 64): np.int64,
    (1, 8): np.uint8, (1, 16): np.uint16, (1, 32): np.uint32, (1, 64): np.uint64,
    (2, 16): np.float16, (2, 32): np.float32, (2, 64): np.float64, (6, 8): np.bool_,
}
_CODES = {np.dtype(v).str: k for k, v in _DTYPES.items()}

_SYS_FUTEX = 202  # x86-64
_FUTEX_WAIT, _FUTEX_WAKE = 0, 1
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Cas:
    """cas(address, expected, new) -> the u32 found at address; it was replaced iff that equals expected.

    A full barrier either way (lock-prefixed). The function is
        mov eax, esi ; lock cmpxchg [rdi], edx ; ret
    (System V x86-64: rdi = address, esi = expected, edx = new; returns the old value in eax), copied
    into a private anonymous page that is then made read+execute (never writable and executable at once).
    """

    _CODE = bytes([0x89, 0xF0, 0xF0, 0x0F, 0xB1, 0x17, 0xC3])
    _PROT_READ, _PROT_WRITE, _PROT_EXEC = 1, 2, 4
    _MAP_PRIVATE, _MAP_ANONYMOUS = 0x02, 0x20

    def __init__(self, backend=None):
        self.backend, self.problem, self._fn, self._atomic = None, None, None, None
        problems = []
        if backend in (None, "libatomic"):
            try:
                lib = ctypes.CDLL("libatomic.so.1")
                f = getattr(lib, "__atomic_compare_exchange_4")  # getattr: a literal __name would be mangled here
                f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_int]
                f.restype = ctypes.c_bool
                self._atomic, self.backend = f, "libatomic"
            except (OSError, AttributeError) as e:
                problems.append("no libatomic.so.1 (%s)" % e)
        if self.backend is None and backend in (None, "code"):
            try:
                self._fn = self._map_code()
                self.backend = "code"
            except OSError as e:
                problems.append("executable page refused (%s)" % e)
        if self.backend is None:
            self.problem = "; ".join(problems) or "unknown backend %r" % backend

    @classmethod
    def _map_code(cls):
        mmap_ = _libc.mmap
        mmap_.restype, mmap_.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                                                          ctypes.c_int, ctypes.c_long]
        page = mmap_(None, 4096, cls._PROT_READ | cls._PROT_WRITE, cls._MAP_PRIVATE | cls._MAP_ANONYMOUS, -1, 0)
        if page in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap")
        ctypes.memmove(page, cls._CODE, len(cls._CODE))
        _libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        if _libc.mprotect(page, 4096, cls._PROT_READ | cls._PROT_EXEC) != 0:
            raise OSError(ctypes.get_errno(), "mprotect PROT_EXEC: " + os.strerror(ctypes.get_errno()))
        # The page is never unmapped: the module keeps the function for the life of the process.
        return ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32)(page)

    def __call__(self, address, expected, new):
        if self._fn is not None:
            return self._fn(address, expected & 0xFFFFFFFF, new & 0xFFFFFFFF)
        if self._atomic is None:
            raise OSError("the exchange's leases need a compare-and-swap, and none is available here: " + self.problem)
        seen = ctypes.c_uint32(expected & 0xFFFFFFFF)
        self._atomic(address, ctypes.byref(seen), new & 0xFFFFFFFF, 5, 5)  # __ATOMIC_SEQ_CST
        return seen.value  # left as expected on success, the value found on failure


# NSC_EXCHANGE_CAS=libatomic|code picks one (tests run both); unset: libatomic, else the code page.
_cas = _Cas(os.environ.get("NSC_EXCHANGE_CAS") or None)


class ExchangeFormatError(ValueError):
    """The file is not a valid exchange of this layout version, or a slot's metadata is invalid."""


class ExchangeBusyError(RuntimeError):
    """A live producer holds the exchange."""


def _file_length(slots, capacity):
    meta_end = HEADER_LENGTH + slots * SLOT_META_LENGTH
    data = (meta_end + DATA_ALIGNMENT - 1) // DATA_ALIGNMENT * DATA_ALIGNMENT
    return data, data + slots * capacity


def _proc_stat(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            text = f.read().decode("latin-1")
    except OSError:
        return None
    rest = text[text.rindex(")") + 2:].split()
    return rest[0], int(rest[19])  # field 3 (state), field 22 (start time)


def process_alive(pid, start):
    """True while pid runs with that start time (any start time when start is 0) and is no zombie."""
    if pid <= 0:
        return False
    st = _proc_stat(pid)
    if st is None or st[0] in ("Z", "X"):
        return False
    return start == 0 or st[1] == start


_SELF_START = _proc_stat(os.getpid())[1]


def _dtype_word(dtype):
    dt = np.dtype(dtype)
    key = _CODES.get(dt.newbyteorder("<").str if dt.byteorder not in ("|", "<", "=") else dt.str)
    if key is None:
        key = _CODES.get(np.dtype(dt.name).str)
    if key is None:
        raise ValueError("dtype %s has no exchange code" % dt)
    return key[0] | key[1] << 8 | 1 << 16


class Received:
    """A read result: status, and for OK a read-only zero-copy array over the slot."""

    def __init__(self, status, exchange=None, array=None, version=0, slot=-1, seq=0, missed=0, publish_ns=0):
        self.status, self.array, self.version, self.slot = status, array, version, slot
        self.missed, self.publish_ns = missed, publish_ns
        self._exchange, self._seq = exchange, seq

    def still_valid(self):
        """True while the slot still holds this version: what was read meanwhile is intact."""
        return self.array is not None and self._exchange._u32(self._exchange._slot_off(self.slot) + SLOT_SEQ) == self._seq

    def __repr__(self):
        if self.status == OK:
            return "Received(v%d slot %d %s %s)" % (self.version, self.slot, self.array.dtype, self.array.shape)
        return "Received(%s%s)" % (self.status, ", %d missed" % self.missed if self.status == OVERRUN else "")


class Lease:
    """A consumer's hold on a slot (Exchange.lease): the producer skips it until release().

    While held, the leased Received's array stays unchanged and still_valid() stays true.
    Released by release() or at the end of a with block; a process killed while holding it
    leaves nothing behind (the producer frees entries whose holder is gone).
    """

    def __init__(self, exchange, entry, received):
        self.entry, self.received, self._exchange = entry, received, exchange

    def release(self):
        """Frees the entry: slot, start, then the pid that frees it (as Java's Leases.release). Idempotent."""
        x, self._exchange = self._exchange, None
        if x is None or x._mm is None:
            return
        e = OFF_LEASES + self.entry * LEASE_LENGTH
        if x._u32(e + LEASE_OFF_PID) != os.getpid():
            return  # freed for us already (it can only be so if this process was taken for dead)
        x._set_u32(e + LEASE_OFF_SLOT, 0xFFFFFFFF)
        x._set_u64(e + LEASE_OFF_START, 0)
        x._set_u32(e + LEASE_OFF_PID, 0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def __repr__(self):
        return "Lease(entry %d, %r%s)" % (self.entry, self.received, "" if self._exchange else ", released")


class Exchange:
    """An open exchange file: a producer (create / open(producer=True)) or a consumer (open)."""

    def __init__(self, path, fd, mm, producer):
        self.path, self._fd, self._mm, self.producer = path, fd, mm, producer
        base = ctypes.c_char.from_buffer(mm)
        self._base_address = ctypes.addressof(base)
        del base  # releases the buffer export; the address stays valid while mm is open
        self.slot_count = self._u32(OFF_SLOT_COUNT)
        self.slot_capacity = self._u64(OFF_SLOT_CAPACITY)
        self.data_offset = self._u64(OFF_DATA_OFFSET)
        self.position = 0
        self._claimed = None

    # -- creation and opening --------------------------------------------------------------

    @classmethod
    def create(cls, path, slots, capacity):
        """Creates a new exchange file (O_EXCL, mode 0600, storage reserved) and becomes its producer."""
        if not 1 <= slots <= MAX_SLOTS or capacity <= 0:
            raise ValueError("slots must be 1..%d and capacity positive" % MAX_SLOTS)
        capacity = (capacity + 63) // 64 * 64
        data_offset, length = _file_length(slots, capacity)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.posix_fallocate(fd, 0, length)
            mm = mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            os.close(fd)
            os.unlink(path)
            raise
        struct.pack_into("<QIIIIQQQII", mm, 0, MAGIC, 0, HEADER_LENGTH, slots, SLOT_META_LENGTH, capacity,
                         data_offset, length, MAX_NDIM, LEASE_COUNT)
        for i in range(LEASE_COUNT):
            struct.pack_into("<I", mm, OFF_LEASES + i * LEASE_LENGTH + LEASE_OFF_SLOT, 0xFFFFFFFF)
        x = cls(path, fd, mm, True)
        x._set_u64(OFF_PRODUCER_START, _SELF_START)
        x._set_u32(OFF_PRODUCER_EPOCH, 1)
        x._set_u64(OFF_HEARTBEAT_NS, time.monotonic_ns())
        x._set_u32(OFF_PRODUCER_PID, os.getpid())
        x._set_u32(OFF_VERSION, LAYOUT_VERSION)  # published last
        return x

    @classmethod
    def open(cls, path, producer=False):
        """Opens an exchange file; as producer, takes it over from a dead or closed producer."""
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise ExchangeFormatError("%s is not a regular file" % path)
            if st.st_uid != os.geteuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                raise PermissionError(_errno.EACCES, "other users can write the exchange file (mode %o, uid %d); "
                                      "refusing to map it read-write" % (st.st_mode & 0o777, st.st_uid), path)
            problem = _validate_header(os.pread(fd, HEADER_LENGTH, 0), st.st_size)
            if problem:
                raise ExchangeFormatError("%s: %s" % (path, problem))
            mm = mmap.mmap(fd, st.st_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            os.close(fd)
            raise
        x = cls(path, fd, mm, False)
        if producer:
            x._take_over()
        return x

    def _take_over(self):
        if not self._u32(OFF_CLOSED) and process_alive(self._u32(OFF_PRODUCER_PID), self._u64(OFF_PRODUCER_START)):
            self.close()
            raise ExchangeBusyError("%s: its producer, pid %d, is alive" % (self.path, self._u32(OFF_PRODUCER_PID)))
        self._set_u32(OFF_PRODUCER_PID, os.getpid())
        self._set_u64(OFF_PRODUCER_START, _SELF_START)
        self._set_u32(OFF_PRODUCER_EPOCH, self._u32(OFF_PRODUCER_EPOCH) + 1)
        for i in range(self.slot_count):
            seq = self._u32(self._slot_off(i) + SLOT_SEQ)
            if seq & 1:
                self._mark_empty(i, seq + 1)
        self._set_u32(OFF_CLOSED, 0)
        self.producer = True
        self._notify()

    def close(self):
        """A producer marks the exchange closed and wakes waiters. Arrays still referenced keep the mapping."""
        if self._mm is None:
            return
        if self.producer:
            if self._claimed is not None:
                self._mark_empty(self._claimed[0], self._claimed[1])
            self._set_u32(OFF_CLOSED, 1)
            self._notify()
        try:
            self._mm.close()
        except BufferError:
            pass  # arrays over it are alive: the mapping goes with the last of them
        os.close(self._fd)
        self._mm = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- fields -----------------------------------------------------------------------------

    def _u32(self, off):
        return ctypes.c_uint32.from_address(self._base_address + off).value

    def _u64(self, off):
        return ctypes.c_uint64.from_address(self._base_address + off).value

    def _set_u32(self, off, v):
        ctypes.c_uint32.from_address(self._base_address + off).value = v & 0xFFFFFFFF

    def _set_u64(self, off, v):
        ctypes.c_uint64.from_address(self._base_address + off).value = v

    def _slot_off(self, i):
        return HEADER_LENGTH + i * SLOT_META_LENGTH

    def _cas(self, off, expected, new):
        """Compare-and-swap of the u32 at off: the value found (it was replaced iff it equals expected)."""
        if self._mm is None:
            raise ValueError("the exchange %s is closed" % self.path)
        return _cas(self._base_address + off, expected, new)

    def _futex(self, off, op, val, timeout_s=None):
        ts = None
        if timeout_s is not None:
            ts = _Timespec(int(timeout_s), int((timeout_s - int(timeout_s)) * 1e9))
        return _libc.syscall(_SYS_FUTEX, ctypes.c_void_p(self._base_address + off), op, ctypes.c_uint32(val),
                             ctypes.byref(ts) if ts is not None else None, None, 0)

    def _notify(self):
        self._set_u32(OFF_NOTIFY, self._u32(OFF_NOTIFY) + 1)
        self._futex(OFF_NOTIFY, _FUTEX_WAKE, 0x7FFFFFFF)

    def _mark_empty(self, i, even_seq):
        o = self._slot_off(i)
        self._set_u64(o + SLOT_VERSION, 0)
        self._set_u32(o + SLOT_NDIM, 0)
        self._set_u64(o + SLOT_BYTE_LENGTH, 0)
        self._set_u32(o + SLOT_SEQ, even_seq)

    def producer_state(self):
        """'ALIVE', 'DEAD' or 'CLOSED', as the header names the producer."""
        if self._u32(OFF_CLOSED):
            return "CLOSED"
        return "ALIVE" if process_alive(self._u32(OFF_PRODUCER_PID), self._u64(OFF_PRODUCER_START)) else "DEAD"

    def latest_version(self):
        return self._u64(OFF_LATEST_VERSION)

    # -- producer ---------------------------------------------------------------------------

    def _leased(self, slot):
        """True when a live consumer holds slot; frees the entries of dead holders."""
        for i in range(LEASE_COUNT):
            e = OFF_LEASES + i * LEASE_LENGTH
            pid = self._u32(e + LEASE_OFF_PID)
            if pid and self._u32(e + LEASE_OFF_SLOT) == slot:
                if process_alive(pid, self._u64(e + LEASE_OFF_START)):
                    return True
                # pid, slot and start are three loads: the holder may have released the entry and
                # another consumer taken it since (its start then fails the check above). Free the
                # entry only if it still names pid (a CAS), never a new holder's lease.
                if _cas.backend is not None:  # without a CAS the entry stays taken; its slot is free anyway
                    self._cas(e + LEASE_OFF_PID, pid, 0)
        return False

    def claim(self, dtype, shape):
        """Claims a slot and returns a writable C-contiguous array over it; publish() publishes it."""
        if not self.producer or self._claimed is not None:
            raise RuntimeError("not the producer, or a slot is claimed already")
        shape = tuple(int(n) for n in shape)
        dt = np.dtype(dtype)
        word = _dtype_word(dt)
        if len(shape) > MAX_NDIM or any(n < 0 for n in shape):
            raise ValueError("bad shape %r" % (shape,))
        nbytes = dt.itemsize * int(np.prod(shape, dtype=object))
        if nbytes > self.slot_capacity:
            raise ValueError("%d bytes do not fit a slot of %d" % (nbytes, self.slot_capacity))
        latest_slot, any_published = self._u32(OFF_LATEST_SLOT), self._u64(OFF_LATEST_VERSION) != 0
        for k in range(1, self.slot_count + 1):
            i = (latest_slot + k) % self.slot_count
            if self.slot_count > 1 and any_published and i == latest_slot:
                continue
            if self._leased(i):
                continue
            so = self._slot_off(i) + SLOT_SEQ
            seq = self._u32(so)
            # The odd store as a CAS (only the producer writes seq): a full barrier before the lease
            # loads below, Dekker with a lease taker, who stores its slot and then re-reads seq.
            if _cas.backend is not None:
                self._cas(so, seq, seq + 1)
            else:
                self._set_u32(so, seq + 1)
                self._futex(so, _FUTEX_WAKE, 1)  # no CAS here: the kernel's futex_wake runs a full barrier
            if self._leased(i):
                self._set_u32(so, seq)
                continue
            start = self.data_offset + i * self.slot_capacity
            self._claimed = (i, seq + 2, word, shape, nbytes)
            return np.ndarray(shape, dtype=dt.newbyteorder("<") if dt.itemsize > 1 else dt, buffer=self._mm, offset=start)
        raise RuntimeError("every slot is leased by a consumer")

    def publish(self):
        """Publishes the claimed slot. Returns its version."""
        i, even, word, shape, nbytes = self._claimed
        o = self._slot_off(i)
        version = self._u64(OFF_LATEST_VERSION) + 1
        strides, acc = [], 1
        for n in reversed(shape):
            strides.insert(0, acc)
            acc *= max(n, 1)
        struct.pack_into("<II", self._mm, o + SLOT_DTYPE, word, 0)
        struct.pack_into("<IIQQ", self._mm, o + SLOT_NDIM, len(shape), 0, self.data_offset + i * self.slot_capacity, nbytes)
        struct.pack_into("<%dq" % len(shape), self._mm, o + SLOT_SHAPE, *shape)
        struct.pack_into("<%dq" % len(shape), self._mm, o + SLOT_STRIDES, *strides)
        now = time.monotonic_ns()
        self._set_u64(o + SLOT_VERSION, version)
        self._set_u64(o + SLOT_PUBLISH_NS, now)
        self._set_u32(o + SLOT_SEQ, even)
        self._set_u32(OFF_LATEST_SLOT, i)
        self._set_u64(OFF_LATEST_VERSION, version)
        self._set_u64(OFF_HEARTBEAT_NS, now)
        self._claimed = None
        self._notify()
        return version

    def publish_array(self, array):
        """Copies array into a slot and publishes it. Returns its version."""
        a = np.asarray(array)
        self.claim(a.dtype, a.shape)[...] = a
        return self.publish()

    # -- consumer ---------------------------------------------------------------------------

    def _read_slot(self, i):
        o = self._slot_off(i)
        for _ in range(64):
            s1 = self._u32(o + SLOT_SEQ)
            if s1 & 1:
                continue
            dtype, version, ndim, _flags, data_off, nbytes, pub = struct.unpack_from("<IQIIQQq", self._mm, o + SLOT_DTYPE)
            n = min(ndim, MAX_NDIM)
            shape = struct.unpack_from("<%dq" % n, self._mm, o + SLOT_SHAPE)
            strides = struct.unpack_from("<%dq" % n, self._mm, o + SLOT_STRIDES)
            if self._u32(o + SLOT_SEQ) == s1:
                if version == 0:
                    return None
                return (i, s1, dtype, version, ndim, data_off, nbytes, pub, shape, strides)
        return None

    def _view(self, m):
        i, seq, word, version, ndim, data_off, nbytes, pub, shape, strides = m
        problem = _validate_slot(m, self.slot_count, self.slot_capacity, self.data_offset)
        if problem:
            raise ExchangeFormatError("%s: %s" % (self.path, problem))
        dt = np.dtype(_DTYPES[(word & 0xFF, (word >> 8) & 0xFF)])
        if dt.itemsize > 1:
            dt = dt.newbyteorder("<")
        a = np.ndarray(shape, dtype=dt, buffer=self._mm, offset=data_off, strides=tuple(s * dt.itemsize for s in strides))
        a.flags.writeable = False
        return Received(OK, self, a, version, i, seq, 0, pub)

    def latest(self):
        """The newest tensor (status OK) or Received(EMPTY)."""
        for _ in range(64):
            v, i = self._u64(OFF_LATEST_VERSION), self._u32(OFF_LATEST_SLOT)
            if v == 0:
                return Received(EMPTY)
            if i >= self.slot_count:
                raise ExchangeFormatError("%s: latest slot %d out of range" % (self.path, i))
            m = self._read_slot(i)
            if m is not None and m[3] == v:
                self.position = v
                return self._view(m)
        # A producer killed between its latest_slot and latest_version stores: scan for the newest.
        found = [m for m in (self._read_slot(i) for i in range(self.slot_count)) if m is not None]
        if not found:
            return Received(EMPTY)
        best = max(found, key=lambda m: m[3])
        self.position = best[3]
        return self._view(best)

    def next(self):
        """The version after self.position: OK, EMPTY, or OVERRUN (then the next call returns the oldest left)."""
        if self._u64(OFF_LATEST_VERSION) <= self.position:
            return Received(EMPTY)
        best = None
        for i in range(self.slot_count):
            m = self._read_slot(i)
            if m is not None and m[3] > self.position and (best is None or m[3] < best[3]):
                best = m
        if best is None:
            return Received(EMPTY)
        if best[3] != self.position + 1:
            missed = best[3] - self.position - 1
            self.position = best[3] - 1
            return Received(OVERRUN, missed=missed)
        r = self._view(best)
        self.position = best[3]
        return r

    def lease(self, received):
        """Holds received's slot against reuse until the returned Lease is released (or its with block ends).

        None when the slot was overwritten before the lease took hold (nothing is held: read again).
        Raises RuntimeError when all LEASE_COUNT entries are taken, OSError when no compare-and-swap
        is available (see the module docstring). The table is the one Java's Consumer.lease and C's
        nsc_exchange_lease use: this process's pid is CASed into a free entry, then its start time
        and the slot are stored, then (a CAS on the entry: a full barrier) the slot's seq is read
        again; the producer makes seq odd before it reads the table, so one of the two sees the other.
        A process that dies holding leases leaves nothing behind: the producer frees their entries.
        """
        if received.status != OK or received._exchange is not self:
            raise ValueError("nothing of this exchange to lease: %r" % (received,))
        pid = os.getpid()
        for i in range(LEASE_COUNT):
            e = OFF_LEASES + i * LEASE_LENGTH
            if self._u32(e + LEASE_OFF_PID) != 0 or self._cas(e + LEASE_OFF_PID, 0, pid) != 0:
                continue
            self._set_u64(e + LEASE_OFF_START, _SELF_START)
            self._set_u32(e + LEASE_OFF_SLOT, received.slot)
            self._cas(e + LEASE_OFF_PID, pid, pid)  # the barrier: the slot store before the seq load
            lease = Lease(self, i, received)
            if self._u32(self._slot_off(received.slot) + SLOT_SEQ) != received._seq:
                lease.release()
                return None
            return lease
        raise RuntimeError("all %d lease entries of %s are taken" % (LEASE_COUNT, self.path))

    def wait_next(self, timeout=None, liveness=0.002):
        """Blocks (futex on the notify word) for the next version; TIMEOUT, PRODUCER_DEAD or PRODUCER_CLOSED else."""
        until = None if timeout is None else time.monotonic() + timeout
        pidfd, watched = None, None
        try:
            while True:
                seen = self._u32(OFF_NOTIFY)
                r = self.next()
                if r.status != EMPTY:
                    return r
                if self._u32(OFF_CLOSED):
                    return Received(PRODUCER_CLOSED)
                who = (self._u32(OFF_PRODUCER_PID), self._u64(OFF_PRODUCER_START))
                if who != watched:
                    if pidfd is not None:
                        os.close(pidfd)
                    pidfd, watched = None, who
                    try:
                        pidfd = os.pidfd_open(who[0])
                    except (OSError, AttributeError):
                        pidfd = None
                    if not process_alive(*who):
                        return Received(PRODUCER_DEAD)
                if pidfd is not None:
                    p = select.poll()
                    p.register(pidfd, select.POLLIN)
                    if p.poll(0):
                        r = self.next()
                        return r if r.status != EMPTY else Received(PRODUCER_DEAD)
                elif not process_alive(*who):
                    return Received(PRODUCER_DEAD)
                slice_s = liveness
                if until is not None:
                    left = until - time.monotonic()
                    if left <= 0:
                        return Received(TIMEOUT)
                    slice_s = min(slice_s, left)
                self._futex(OFF_NOTIFY, _FUTEX_WAIT, seen, slice_s)
        finally:
            if pidfd is not None:
                os.close(pidfd)


def _validate_header(head, file_size):
    if len(head) < HEADER_LENGTH:
        return "the file has %d bytes, fewer than the %d-byte header" % (file_size, HEADER_LENGTH)
    magic, version, hlen, slots, mlen, cap, data_off, flen, max_ndim, leases = struct.unpack_from("<QIIIIQQQII", head, 0)
    if magic != MAGIC:
        return "bad magic 0x%016x: not an exchange file" % magic
    if version != LAYOUT_VERSION:
        return "layout version %d is not the supported version %d" % (version, LAYOUT_VERSION)
    if (hlen, mlen, max_ndim, leases) != (HEADER_LENGTH, SLOT_META_LENGTH, MAX_NDIM, LEASE_COUNT):
        return "header geometry does not match layout version %d" % LAYOUT_VERSION
    if not 1 <= slots <= MAX_SLOTS or cap <= 0 or cap % 64:
        return "bad slot count %d or capacity %d" % (slots, cap)
    want_data, want_len = _file_length(slots, cap)
    if data_off != want_data or flen != want_len:
        return "data offset %d / file length %d do not match the geometry" % (data_off, flen)
    if file_size != want_len:
        return "the file has %d bytes but its header describes %d (truncated or resized)" % (file_size, want_len)
    return None


def _validate_slot(m, slot_count, capacity, first_data):
    i, _seq, word, _version, ndim, data_off, nbytes, _pub, shape, strides = m
    if not 0 <= i < slot_count:
        return "slot %d out of range" % i
    if ndim > MAX_NDIM:
        return "slot %d: ndim %d is outside 0..%d" % (i, ndim, MAX_NDIM)
    if (word >> 16) != 1 or (word & 0xFF, (word >> 8) & 0xFF) not in _DTYPES:
        return "slot %d: unknown dtype word 0x%08x" % (i, word)
    elem = ((word >> 8) & 0xFF) // 8
    lo = hi = 0
    count = 1
    for n, s in zip(shape, strides):  # Python ints: exact, no overflow
        if n < 0:
            return "slot %d: negative dimension" % i
        count *= n
        if n > 0:
            reach = (n - 1) * s * elem
            lo, hi = (lo + reach, hi) if reach < 0 else (lo, hi + reach)
    slot_lo = first_data + i * capacity
    slot_hi = slot_lo + capacity
    if count > 1 << 62:
        return "slot %d: the element count overflows" % i
    if not slot_lo <= data_off <= slot_hi:
        return "slot %d: data offset %d is outside the slot's data [%d, %d)" % (i, data_off, slot_lo, slot_hi)
    if count == 0:
        return None if nbytes == 0 else "slot %d: empty tensor with byte length %d" % (i, nbytes)
    if data_off + lo < slot_lo or data_off + hi + elem > slot_hi:
        return "slot %d: the tensor's bytes are outside the slot's data" % i
    if nbytes > capacity or nbytes < hi - lo + elem or data_off % elem:
        return "slot %d: bad byte length %d or alignment" % (i, nbytes)
    return None
