#!/usr/bin/env python3
"""iclient at scale (issue 8, "Must show"): a 5 GiB file, iclient's peak RSS
against its configured caps, 100,000 entries in one directory, and the data
shapes (random overwrites, appends, truncates, sparse files) at small scale
across read-cache lines and log segments.

Usage: test_iclient_scale.py PATH-TO-iclient PATH-TO-imgr PATH-TO-iswift
                             [PATH-TO-fsmodel]

Uses test_iclient.Env (iswift + imgr + iclient on a temporary mount, the
volume formatted with mkmount.sh). iswift keeps objects in memory only
(no StoreDirPath), so the 5 GiB case raises its MaxMemoryBytes; its data is
gone when iswift is stopped at the end of each case. Figures (MB/s, rates,
RSS against the budget) are printed to stderr; the assertions are on data and
on memory, never on time.

Needs root and /dev/fuse (skips otherwise).
"""
import errno
import hashlib
import os
import random
import re
import stat
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_iclient  # noqa: E402
import test_imgr  # noqa: E402

FSMODEL = None
MiB = 1 << 20
GiB = 1 << 30
KiB = 1 << 10


def say(*a):
    print(*a, file=sys.stderr, flush=True)


# ---- the deterministic pattern ---------------------------------------------
# Block i (MiB i of a file) is a window of a random 2 MiB base at an offset
# that differs for every i below 2^20, stamped with i: no two blocks and no
# two pages are alike, so a misplaced page or block cannot go unnoticed.
_BASE = random.Random(20241).randbytes(2 * MiB)


def block(i):
    k = (i * 7919) % MiB
    b = bytearray(_BASE[k:k + MiB])
    b[0:8] = struct.pack("<Q", i)
    return b


class Model:
    """What a file must contain: the pattern up to `written`, changed by
    writes (offset, bytes) and zeroed ranges (truncates), in order."""

    def __init__(self, written):
        self.written = written  # bytes of pattern written sequentially
        self.size = written
        self.ops = []  # ("w", off, data) / ("z", start, end)

    def write(self, off, data):
        self.ops.append(("w", off, bytes(data)))
        self.size = max(self.size, off + len(data))

    def truncate(self, size):
        if size < self.size:
            self.ops.append(("z", size, self.size))
        self.size = size

    def expected(self, off, n):
        """The bytes [off, off+n) (off+n <= size)."""
        out = bytearray()
        first, last = off // MiB, (off + n - 1) // MiB
        for i in range(first, last + 1):
            out += block(i) if i * MiB < self.written else bytes(MiB)
        out = out[off - first * MiB:off - first * MiB + n]
        if self.written < off + n:  # past the pattern: zeros until written over
            z = max(self.written, off) - off
            out[z:] = bytes(n - z)
        for op in self.ops:
            if op[0] == "w":
                _, o, d = op
                s, e = max(o, off), min(o + len(d), off + n)
                if s < e:
                    out[s - off:e - off] = d[s - o:e - o]
            else:
                _, s, e = op
                s, e = max(s, off), min(e, off + n)
                if s < e:
                    out[s - off:e - off] = bytes(e - s)
        return out


def verify(testcase, path, model, chunk=4 * MiB):
    """Read the whole file, compare every chunk with the model and return
    (sha256 of what was read, MB/s)."""
    h = hashlib.sha256()
    want_h = hashlib.sha256()
    testcase.assertEqual(os.stat(path).st_size, model.size)
    t0 = time.monotonic()
    with open(path, "rb", buffering=0) as f:
        off = 0
        while off < model.size:
            n = min(chunk, model.size - off)
            got = f.read(n)
            want = model.expected(off, n)
            if got != want:
                bad = next((j for j in range(min(len(got), n)) if got[j] != want[j]), len(got))
                testcase.fail("%s: first difference at byte %d (read %d of %d bytes there)"
                              % (path, off + bad, len(got), n))
            h.update(got)
            want_h.update(want)
            off += n
        testcase.assertEqual(f.read(1), b"")
    dt = time.monotonic() - t0
    testcase.assertEqual(h.hexdigest(), want_h.hexdigest())
    return h.hexdigest(), model.size / MiB / dt


def sha_file(path):
    h = hashlib.sha256()
    t0 = time.monotonic()
    n = 0
    with open(path, "rb", buffering=0) as f:
        for b in iter(lambda: f.read(4 * MiB), b""):
            h.update(b)
            n += len(b)
    return h.hexdigest(), n / MiB / (time.monotonic() - t0)


# ---- iclient's memory ----------------------------------------------------
def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def kib(pid, key):
    return int(proc_status(pid)[key].split()[0]) * KiB


def iclient_config(overrides):
    """[ICLIENT] of iclient/dev.conf (what Env starts iclient with) plus the
    ICLIENT.Key=value overrides, as strings."""
    conf = {}
    section = None
    with open(os.path.join(test_iclient.SRC, "iclient", "dev.conf")) as f:
        for line in f:
            line = line.strip()
            m = re.match(r"\[(\w+)\]$", line)
            if m:
                section = m.group(1)
            elif section == "ICLIENT" and ":" in line and not line.startswith("#"):
                k, _, v = line.partition(":")
                conf[k.strip()] = v.strip()
    for o in overrides:
        k, _, v = o.partition("=")
        if k.startswith("ICLIENT."):
            conf[k[len("ICLIENT."):]] = v
    return conf


# Each FUSE thread (FUSEMaxThreads) holds a request buffer of up to
# FUSEMaxWrite plus the header, and a read reply of up to FUSEMaxRead.
FUSE_HEADER = 4096
# One extent map entry in memory: u64 key + 24-byte value, with the node's
# per-entry overhead (generous).
TREE_ENTRY_BYTES = 64


# Memory no configuration caps but that does not grow with the data: thread
# stacks in use, libcurl's connections, the logger, malloc's bookkeeping.
UNCAPPED_ALLOWANCE = 8 * MiB


def budget(conf, baseline, dirty_inodes, file_extents, cached_inodes, read_cache):
    """iclient's memory bound for one workload, term by term from the caps in
    conf: [(name, bytes, formula)]."""
    trigger = int(conf["FileFlushTriggerSize"])
    max_write, max_read = int(conf["FUSEMaxWrite"]), int(conf["FUSEMaxRead"])
    keys = int(conf["FileInodeMaxKeysPerBPlusTreePage"])
    lines, line_size = int(conf["ReadCacheLineCountMax"]), int(conf["ReadCacheLineSize"])
    # Full log segments wait for their background PUT (ic_upload.c), at
    # most SegmentUploadLimit of them, counting the stored ones' buffers
    # kept for reuse.
    uploading, threads = int(conf["SegmentUploadLimit"]), int(conf["FUSEMaxThreads"])
    nodes = 2 * (file_extents // (keys // 2) + 1)  # leaves at least half full, plus the inner nodes
    terms = [
        ("baseline (idle after mount)", baseline, "VmHWM measured"),
        ("log segments being filled", dirty_inodes * (trigger + max_write + 64 * KiB),
         "%d dirty inodes x (FileFlushTriggerSize %d + FUSEMaxWrite %d + 64 KiB head/nodes)"
         % (dirty_inodes, trigger, max_write)),
        ("segments uploaded or spare", uploading * (trigger + max_write),
         "SegmentUploadLimit %d x (FileFlushTriggerSize + FUSEMaxWrite)" % uploading),
        ("FUSE request buffers", threads * (max_write + max_read + FUSE_HEADER),
         "FUSEMaxThreads %d x (FUSEMaxWrite + FUSEMaxRead + %d)" % (threads, FUSE_HEADER)),
        ("B+tree pages", nodes * keys * TREE_ENTRY_BYTES,
         "%d nodes for %d extents x FileInodeMaxKeysPerBPlusTreePage %d x %d B"
         % (nodes, file_extents, keys, TREE_ENTRY_BYTES)),
        ("inode cache", min(cached_inodes, int(conf["InodeCacheLimit"])) * 4 * KiB,
         "min(%d inodes, InodeCacheLimit) x 4 KiB" % cached_inodes),
        ("read cache", (lines + 1) * line_size if read_cache else 0,
         "(ReadCacheLineCountMax %d + 1 evicted, kept for reuse) x ReadCacheLineSize %d"
         % (lines, line_size) if read_cache else "no reads yet: no lines"),
        ("uncapped allowance", UNCAPPED_ALLOWANCE, "stacks, curl, logger, malloc"),
    ]
    return terms


def check_rss(testcase, pid, what, terms):
    hwm = kib(pid, "VmHWM")
    total = sum(t[1] for t in terms)
    say("  iclient peak RSS %s: VmHWM %.1f MiB, budget %.1f MiB =" % (what, hwm / MiB, total / MiB))
    for name, b, formula in terms:
        say("    %-28s %8.1f MiB  %s" % (name, b / MiB, formula))
    testcase.assertLessEqual(hwm, total, "iclient VmHWM %s beyond its caps" % what)
    return hwm, total


def scale_env(*iswift_args):
    """An Env whose iswift takes the given overrides; everything stopped on
    failure."""
    e = test_iclient.Env()
    try:
        e.c.start_iswift(*iswift_args)
        e.start_imgr()
        e.mkmount("-fs")
        e.start_iclient()
    except BaseException:
        e.close()
        raise
    return e


def remount(testcase, e):
    testcase.assertEqual(e.stop_iclient(), 0, e.log_tail())
    testcase.assertFalse(os.path.ismount(e.mnt))
    e.start_iclient()


class TestFiveGiB(unittest.TestCase):
    """A 5 GiB file end to end, and iclient's peak RSS while writing it."""

    SIZE = 5 * GiB

    def test_five_gib(self):
        # iswift holds every object in memory: room for the file and what
        # the overwrites leave behind.
        e = scale_env("ISWIFT.MaxMemoryBytes=%d" % (8 * GiB))
        self.addCleanup(e.close)
        path = os.path.join(e.mnt, "five")
        pid = e.iclient.pid
        conf = iclient_config(e.iclient_args)
        trigger = int(conf["FileFlushTriggerSize"])
        os.stat(e.mnt)
        baseline = kib(pid, "VmHWM")

        # 1. sequential write, checksummed as it goes, then fsync
        h = hashlib.sha256()
        t0 = time.monotonic()
        with open(path, "wb", buffering=0) as f:
            for i in range(self.SIZE // MiB):
                b = block(i)
                h.update(b)
                self.assertEqual(f.write(b), MiB)
            os.fsync(f.fileno())
        write_mbs = self.SIZE / MiB / (time.monotonic() - t0)
        written_sha = h.hexdigest()
        say("  5 GiB write + fsync: %.0f MB/s" % (write_mbs * MiB / 1e6))
        # Nothing was read, so the read cache holds no lines; one file is
        # dirty (its segment is written at FileFlushTriggerSize; the dirty
        # set's cap, 4 x FileFlushTriggerSize, matters only for many files);
        # it has one extent per log segment.
        extents = self.SIZE // trigger + 1
        check_rss(self, pid, "after the 5 GiB write",
                  budget(conf, baseline, 1, extents, 2, read_cache=False))

        # 2. read back
        model = Model(self.SIZE)
        sha, read_mbs = verify(self, path, model)
        self.assertEqual(sha, written_sha)
        say("  5 GiB read back: %.0f MB/s" % (read_mbs * MiB / 1e6))
        check_rss(self, pid, "after reading it back",
                  budget(conf, baseline, 1, extents, 2, read_cache=True))

        # 3. overwrites, across 4 GiB and across read-cache lines, checked
        rng = random.Random(5)
        writes = [(4 * GiB - 100 * KiB, 300 * KiB), (4 * GiB - 3, 7), (4 * GiB + MiB - 10, 20),
                  (0, 5), (self.SIZE - 9, 9)]
        writes += [(rng.randrange(self.SIZE - 3 * MiB), rng.randrange(1, 3 * MiB))
                   for _ in range(6)]
        fd = os.open(path, os.O_RDWR)
        try:
            for n, (off, ln) in enumerate(writes):
                data = random.Random(n).randbytes(ln)
                self.assertEqual(os.pwrite(fd, data, off), ln)
                model.write(off, data)
            # an append, partly in the put buffer when read back below
            tail = random.Random(99).randbytes(12345)
            self.assertEqual(os.pwrite(fd, tail, self.SIZE), len(tail))
            model.write(self.SIZE, tail)
            os.fsync(fd)
            for off, ln in writes + [(self.SIZE, len(tail))]:
                lo, hi = max(0, off - 4096), min(model.size, off + ln + 4096)
                self.assertEqual(os.pread(fd, hi - lo, lo), model.expected(lo, hi - lo),
                                 "overwrite at %d" % off)

            # 4. truncate down (into data), up (zeros), and a sparse write
            # far beyond: holes must read as zeros, cut bytes never return
            down = 4 * GiB + 1234567
            os.ftruncate(fd, down)
            model.truncate(down)
            self.assertEqual(os.pread(fd, 8192, down - 4096), model.expected(down - 4096, 4096))
            up = self.SIZE + 777
            os.ftruncate(fd, up)
            model.truncate(up)
            self.assertEqual(os.pread(fd, 3 * MiB, down - MiB), model.expected(down - MiB, 3 * MiB))
            far = 6 * GiB + 5
            data = random.Random(77).randbytes(4096)
            os.pwrite(fd, data, far)
            model.write(far, data)
            self.assertEqual(os.pread(fd, 2 * MiB, far - 2 * MiB + 4096),
                             model.expected(far - 2 * MiB + 4096, 2 * MiB))
            os.fsync(fd)
        finally:
            os.close(fd)
        final_sha, _ = verify(self, path, model)

        # 5. unmount, mount again: the same bytes
        remount(self, e)
        self.assertEqual(os.stat(path).st_size, model.size)
        sha, cold_mbs = sha_file(path)
        self.assertEqual(sha, final_sha)
        say("  %.1f GiB read after remount (cold cache, holes included): %.0f MB/s"
            % (model.size / GiB, cold_mbs * MiB / 1e6))
        os.unlink(path)


def entry_name(i):
    """Names of 2..250 bytes (UTF-8; renamed with a 2-byte prefix), with
    characters a shell would quote."""
    return "%d-%s" % (i, "x y_é."[i % 6] * (i % 122))


class TestHundredThousandEntries(unittest.TestCase):
    """100,000 entries in one directory: create, list, stat, rename, remount,
    unlink, rmdir."""

    N = 100000

    @staticmethod
    def timed(fn, items):
        """fn on each item in turn; returns items per second. One thread:
        the kernel serialises changes to one directory (the VFS holds its
        inode lock across create, unlink and rename), and threads measured
        slower (4 threads: 594 creates/s and 405 unlinks/s against about
        1000 and 870 with one)."""
        t0 = time.monotonic()
        for x in items:
            fn(x)
        return len(items) / (time.monotonic() - t0)

    def test_hundred_thousand(self):
        e = scale_env()
        self.addCleanup(e.close)
        d = os.path.join(e.mnt, "big")
        os.mkdir(d)
        names = [entry_name(i) for i in range(self.N)]
        self.assertEqual(len(set(names)), self.N)
        with_data = set(range(0, self.N, 997))

        def create(i):
            fd = os.open(os.path.join(d, names[i]), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o640)
            try:
                if i in with_data:
                    os.write(fd, b"entry %d" % i)
            finally:
                os.close(fd)

        rate = self.timed(create, range(self.N))
        say("  100k creates: %.0f/s" % rate)

        t0 = time.monotonic()
        listed = os.listdir(d)
        say("  readdir of 100k entries: %.0f entries/s" % (self.N / (time.monotonic() - t0)))
        self.assertEqual(len(listed), self.N)
        self.assertEqual(set(listed), set(names))

        rng = random.Random(3)
        for i in rng.sample(range(self.N), 500) + sorted(with_data):
            st = os.stat(os.path.join(d, names[i]))
            self.assertTrue(stat.S_ISREG(st.st_mode))
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o640)
            self.assertEqual(st.st_nlink, 1)
            self.assertEqual(st.st_size, len(b"entry %d" % i) if i in with_data else 0)
        for i in sorted(with_data):
            with open(os.path.join(d, names[i]), "rb") as f:
                self.assertEqual(f.read(), b"entry %d" % i)

        # renames: in place (new names), and out to another directory
        other = os.path.join(e.mnt, "other")
        os.mkdir(other)
        renamed = rng.sample(range(self.N), 2000)
        expect = set(names)
        for i in renamed[:1500]:
            os.rename(os.path.join(d, names[i]), os.path.join(d, "r-" + names[i]))
            expect.remove(names[i])
            expect.add("r-" + names[i])
        for i in renamed[1500:]:
            os.rename(os.path.join(d, names[i]), os.path.join(other, names[i]))
            expect.remove(names[i])
        self.assertEqual(set(os.listdir(d)), expect)
        self.assertEqual(len(os.listdir(other)), 500)

        remount(self, e)
        listed = os.listdir(d)
        self.assertEqual(len(listed), self.N - 500)
        self.assertEqual(set(listed), expect)
        i = next(iter(with_data - set(renamed)))
        with open(os.path.join(d, names[i]), "rb") as f:
            self.assertEqual(f.read(), b"entry %d" % i)

        rate = self.timed(lambda n: os.unlink(os.path.join(d, n)), sorted(expect))
        say("  %d unlinks: %.0f/s" % (len(expect), rate))
        self.assertEqual(os.listdir(d), [])
        os.rmdir(d)
        for n in os.listdir(other):
            os.unlink(os.path.join(other, n))
        os.rmdir(other)
        self.assertEqual(os.listdir(e.mnt), [])
        say("  iclient VmHWM: %.1f MiB (InodeCacheLimit %s)"
            % (kib(e.iclient.pid, "VmHWM") / MiB, iclient_config(e.iclient_args)["InodeCacheLimit"]))
        remount(self, e)
        self.assertEqual(os.listdir(e.mnt), [])


class TestDataShapes(unittest.TestCase):
    """Small-scale shapes test_iclient.py does not reach: random overwrites
    spanning read-cache lines (ReadCacheLineSize) and log segments (FileFlushTriggerSize
    10 MiB), data still in the unflushed segment, O_APPEND, holes at start
    and middle with SEEK_DATA/SEEK_HOLE, truncates cutting unflushed
    extents. Every file is checked again after a remount (test_9)."""

    @classmethod
    def setUpClass(cls):
        cls.e = scale_env()
        cls.m = cls.e.mnt
        cls.files = {}  # path -> expected bytes

    @classmethod
    def tearDownClass(cls):
        cls.e.close()

    def p(self, name):
        return os.path.join(self.m, name)

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()

    def test_1_random_overwrites(self):
        path = self.p("overwritten")
        rng = random.Random(11)
        size = 24 * MiB
        model = bytearray(rng.randbytes(size))
        with open(path, "wb") as f:
            f.write(model)
        fd = os.open(path, os.O_RDWR)
        try:
            for r in range(200):
                ln = rng.choice([1, 7, 4096, 65537, MiB + 3, 3 * MiB])
                off = rng.randrange(size + MiB)  # some past the end: the file grows
                data = rng.randbytes(ln)
                self.assertEqual(os.pwrite(fd, data, off), ln)
                if off > len(model):
                    model += bytes(off - len(model))
                model[off:off + ln] = data
                if r % 40 == 39:
                    os.fsync(fd)
                if r % 20 == 19:  # whole-file check, some unflushed data in it
                    self.assertEqual(os.pread(fd, len(model) + 1, 0), bytes(model), "round %d" % r)
        finally:
            os.close(fd)
        self.assertEqual(self.read(path), bytes(model))
        self.files[path] = bytes(model)

    def test_2_append(self):
        path = self.p("appended")
        a = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
        b = os.open(path, os.O_WRONLY | os.O_APPEND)
        want = b""
        try:
            for i in range(300):
                chunk = random.Random(i).randbytes(1 + (i * 7717) % (300 * KiB))
                os.write(a if i % 2 else b, chunk)
                want += chunk
                if i == 150:
                    os.fsync(a)
        finally:
            os.close(a)
            os.close(b)
        self.assertEqual(self.read(path), want)
        self.files[path] = want

    def test_3_sparse(self):
        path = self.p("sparse")
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        d1, d2 = random.Random(1).randbytes(5000), random.Random(2).randbytes(2 * MiB)
        try:
            os.pwrite(fd, d1, 3 * MiB + 1)  # hole at the start
            os.pwrite(fd, d2, 11 * MiB - 17)  # hole in the middle, across a segment size
            os.ftruncate(fd, 20 * MiB)  # hole at the end
            want = bytearray(20 * MiB)
            want[3 * MiB + 1:3 * MiB + 1 + len(d1)] = d1
            want[11 * MiB - 17:11 * MiB - 17 + len(d2)] = d2
            self.assertEqual(os.pread(fd, 21 * MiB, 0), bytes(want))
            os.fsync(fd)
            self.assertEqual(os.lseek(fd, 0, os.SEEK_DATA), 3 * MiB + 1)
            self.assertEqual(os.lseek(fd, 3 * MiB + 1, os.SEEK_HOLE), 3 * MiB + 1 + len(d1))
            self.assertEqual(os.lseek(fd, 4 * MiB, os.SEEK_DATA), 11 * MiB - 17)
            self.assertEqual(os.lseek(fd, 11 * MiB, os.SEEK_HOLE), 13 * MiB - 17)
            self.assertEqual(os.lseek(fd, 14 * MiB, os.SEEK_HOLE), 14 * MiB)  # in one
            with self.assertRaises(OSError) as cm:  # no data after it
                os.lseek(fd, 14 * MiB, os.SEEK_DATA)
            self.assertEqual(cm.exception.errno, errno.ENXIO)
        finally:
            os.close(fd)
        self.assertEqual(self.read(path), bytes(want))
        self.files[path] = bytes(want)

    def test_4_truncate_unflushed(self):
        path = self.p("truncated")
        data = random.Random(4).randbytes(3 * MiB)
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            os.write(fd, data)  # still in the unflushed segment
            os.ftruncate(fd, MiB + 5)  # cuts the unflushed extent
            os.pwrite(fd, b"after", 2 * MiB)  # the cut bytes must not reappear
            want = data[:MiB + 5] + bytes(MiB - 5) + b"after"
            self.assertEqual(os.pread(fd, 3 * MiB, 0), want)
            os.fsync(fd)
            os.ftruncate(fd, 0)
            os.pwrite(fd, b"again", 10)
            want = bytes(10) + b"again"
            self.assertEqual(os.pread(fd, 100, 0), want)
            os.ftruncate(fd, 100 * KiB)
            want += bytes(100 * KiB - len(want))
        finally:
            os.close(fd)
        self.assertEqual(self.read(path), want)
        self.files[path] = want

    def test_5_fsmodel_large(self):
        """fsmodel's random writes, truncates and punches on files up to
        24 MiB (its default stays within one read-cache line)."""
        if not FSMODEL:
            self.skipTest("no fsmodel given")
        os.mkdir(self.p("model"))
        r = test_iclient.subprocess.run(
            [FSMODEL, self.p("model"), "--ops", "1500", "--seed", "8", "--files", "3",
             "--max-size", str(24 * MiB), "--max-io", str(3 * MiB), "--keep"],
            capture_output=True, text=True, timeout=900)
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-3000:])
        for dirpath, _, filenames in os.walk(self.p("model")):
            for n in filenames:
                self.files[os.path.join(dirpath, n)] = self.read(os.path.join(dirpath, n))

    def test_9_remount(self):
        self.assertTrue(self.files)
        remount(self, self.e)
        for path, want in sorted(self.files.items()):
            self.assertEqual(hashlib.sha256(self.read(path)).hexdigest(),
                             hashlib.sha256(want).hexdigest(), path)


def main():
    global FSMODEL
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse") or not test_iclient.shutil.which(
            "fusermount3"):
        print("SKIP: needs root, /dev/fuse and fusermount3")
        return 0
    test_iclient.ICLIENT, test_imgr.IMGR, test_imgr.ISWIFT = sys.argv[1:4]
    # then fsmodel (optional), then unittest's own arguments (test names)
    FSMODEL = sys.argv[4] if len(sys.argv) > 4 and os.path.isfile(sys.argv[4]) else None
    del sys.argv[1:5 if FSMODEL else 4]
    r = unittest.main(verbosity=2, exit=False)
    return 0 if r.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
