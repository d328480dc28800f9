#!/usr/bin/env python3
"""End-to-end test of iclient against a real imgr (iclient.md 2, 4.3; imgr.md 3).

Usage: test_iclient.py PATH-TO-iclient PATH-TO-imgr PATH-TO-iswift PATH-TO-icert
                       [PATH-TO-fsmodel]

Starts iswift and imgr on 127.0.0.1 (ephemeral ports, read back from their
logs), formats and serves the volume with imgr/mkmount.sh -fs, mounts it
with iclient (retryrpc to imgr) on a temporary directory and drives it with
real system calls: files small and large (checked by SHA-256), directories,
rename, hard and symbolic links, truncate, attributes, xattrs, statfs,
fsync and the errors ENOENT, EEXIST, ENOTEMPTY, EISDIR, ENOTDIR,
ENAMETOOLONG. Then the whole tree (contents, modes, owners, mtimes, link
counts, symlink targets, xattrs) is recorded, iclient is stopped (SIGTERM)
and started again, and the tree must be identical; then imgr is restarted
too (same retryrpc port, the volume served again with mkmount.sh -s) and
the tree must still be identical. With fsmodel, its random operations are
run on the mount and checked against its in-memory model.

Further cases, each with a cluster of its own: two iclients on one volume
(changes cross over through imgr's lease interrupts), the RenewMount
keep-alive against imgr's MountTimeout, retryrpc over TLS (icert's
certificates; a client trusting another CA is refused), Swift forgetting
every token (EAuthTokenRejected, re-auth, RenewMount, retry), and imgr
stopped and restarted under a mounted iclient (EIO while it is down, then
a remount and the operations resume).

Needs root and /dev/fuse (skips otherwise). Everything started is stopped
and the mount point detached on failure.
"""
import errno
import hashlib
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_imgr  # noqa: E402  (Cluster: iswift + imgr processes)

ICLIENT = ICERT = FSMODEL = None
SRC = test_imgr.SRC
MiB = 1 << 20


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(MiB), b""):
            h.update(b)
    return h.hexdigest()


def pattern(seed, n):
    """n deterministic, non-repeating-looking bytes."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(b"%d:%d" % (seed, i)).digest() * 64
        i += 1
    return bytes(out[:n])


def snapshot(root):
    """Everything that must survive a restart, by relative path."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            e = {"mode": st.st_mode, "uid": st.st_uid, "gid": st.st_gid,
                 "nlink": st.st_nlink, "mtime": st.st_mtime_ns, "ino": st.st_ino}
            if stat.S_ISREG(st.st_mode):
                e["size"] = st.st_size
                e["sha"] = sha(p)
            elif stat.S_ISLNK(st.st_mode):
                e["target"] = os.readlink(p)
            if not stat.S_ISLNK(st.st_mode):
                e["xattrs"] = {k: os.getxattr(p, k) for k in sorted(os.listxattr(p))}
            snap[os.path.relpath(p, root)] = e
    return snap


class Env:
    """iswift + imgr (test_imgr.Cluster) + iclients on temporary mounts.

    imgr_args / iclient_args are extra KEY=value overrides for every start."""

    def __init__(self, imgr_args=(), iclient_args=()):
        self.c = test_imgr.Cluster()
        self.imgr_args = list(imgr_args)
        self.iclient_args = list(iclient_args)
        self.mnt = os.path.join(self.c.dir, "mnt")
        os.mkdir(self.mnt)
        self.iclient = None
        self.others = []  # (process, mount point) of extra clients
        self.rpc_port = 0
        self.n = 0

    def start_imgr(self):
        self.c.start_imgr("IMGR.RetryRPCPort=%d" % self.rpc_port,
                          "IMGR.MinLeaseDuration=50ms", "IMGR.LeaseInterruptInterval=50ms",
                          *self.imgr_args)
        m = test_imgr.wait_line(self.c.log, r"retryrpc server listening on 127\.0\.0\.1:(\d+)",
                                self.c.imgr)
        self.rpc_port = int(m.group(1))

    def format_volume(self):
        """Start iswift and imgr, format and serve the volume."""
        self.c.start_iswift()
        self.start_imgr()
        self.mkmount("-fs")

    def up(self, *iclient_args):
        """format_volume and start_iclient; everything stopped on failure."""
        try:
            self.format_volume()
            self.start_iclient(*iclient_args)
        except BaseException:
            self.close()
            raise
        return self

    def imgr_log(self):
        with open(self.c.log, errors="replace") as f:
            return f.read()

    def mkmount(self, *flags):
        env = dict(os.environ, SWIFT_ADDR="127.0.0.1:%d" % self.c.swift_port,
                   IMGR_ADDR="127.0.0.1:%d" % self.c.port, MKMOUNT_TRIES="20")
        r = subprocess.run(["bash", os.path.join(SRC, "imgr", "mkmount.sh")] + list(flags),
                           env=env, capture_output=True, timeout=120)
        if r.returncode:
            raise RuntimeError("mkmount.sh %s: %s %s" % (flags, r.stdout, r.stderr))

    def spawn_iclient(self, mnt, *extra):
        """Start an iclient on mnt; returns (process, log path) once mounted."""
        self.n += 1
        log = os.path.join(self.c.dir, "iclient%d.log" % self.n)
        auth = ('{"AuthURL":"http://127.0.0.1:%d/auth/v1.0"\\u002C"AuthUser":"test:tester"'
                '\\u002C"AuthKey":"testing"\\u002C"Account":"AUTH_test"\\u002C"Container":"con"}'
                % self.c.swift_port)
        p = subprocess.Popen(
            [ICLIENT, os.path.join(SRC, "iclient", "dev.conf"),
             "ICLIENT.MountPointDirPath=" + mnt,
             "ICLIENT.AuthPlugInEnvValue=" + auth,
             "ICLIENT.RetryRPCPort=%d" % self.rpc_port,
             "ICLIENT.HTTPServerPort=0",
             "ICLIENT.LogFilePath=" + log,
             "ICLIENT.LogToConsole=false",
             "ICLIENT.MountRetryDuration=10s"] + self.iclient_args + list(extra),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.time() + 30
        while not os.path.ismount(mnt):
            if p.poll() is not None or time.time() > end:
                if p.poll() is None:
                    p.kill()
                    p.wait()
                raise RuntimeError("iclient did not mount: %s" % tail(log))
            time.sleep(0.05)
        return p, log

    def start_iclient(self, *extra):
        self.iclient, self.iclient_log = self.spawn_iclient(self.mnt, *extra)

    def start_other(self, name, *extra):
        mnt = os.path.join(self.c.dir, name)
        os.mkdir(mnt)
        p, log = self.spawn_iclient(mnt, *extra)
        self.others.append((p, mnt))
        return mnt, log

    def log_tail(self):
        return tail(self.iclient_log)

    def start_iswift_admin(self):
        """Start iswift, then again on its port with the fault/admin API
        (POST /admin/faults, /admin/reauth); returns the port."""
        self.c.start_iswift()
        port = self.c.swift_port
        self.c.iswift.terminate()
        self.c.iswift.wait()
        self.c.iswift = subprocess.Popen([test_imgr.ISWIFT, os.path.join(self.c.dir, "iswift.conf"),
                                          "ISWIFT.SwiftProxyTCPPort=%d" % port,
                                          "ISWIFT.FaultAdminEnabled=true"])
        wait_for(lambda: test_imgr.req(port, "GET", "/info"), "iswift", timeout=20)
        return port

    @staticmethod
    def stop(p, mnt):
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=60)
        end = time.time() + 10
        while os.path.ismount(mnt) and time.time() < end:
            time.sleep(0.05)
        return rc

    def stop_iclient(self):
        p, self.iclient = self.iclient, None
        return self.stop(p, self.mnt)

    def close(self):
        for p, mnt in [(self.iclient, self.mnt)] + self.others:
            if p and p.poll() is None:
                p.kill()
                p.wait()
            subprocess.run(["fusermount3", "-u", "-z", mnt], capture_output=True)
        self.c.close()


def write_synced(path, data):
    """Write, fsync the file and its directory: durable once this returns."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()  # out of Python's buffer, then fsync
        os.fsync(f.fileno())
    fd = os.open(os.path.dirname(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def tail(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-4000:]
    except OSError:
        return "(no log)"


class TestIclient(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.e = Env().up()
        cls.m = cls.e.mnt

    @classmethod
    def tearDownClass(cls):
        cls.e.close()

    def p(self, *parts):
        return os.path.join(self.m, *parts)

    def assertErrno(self, err, fn, *args):
        with self.assertRaises(OSError) as cm:
            fn(*args)
        self.assertEqual(cm.exception.errno, err, "%s%r" % (fn.__name__, args))

    def test_1_files(self):
        small = pattern(1, 1000)
        with open(self.p("small"), "wb") as f:
            f.write(small)
        with open(self.p("small"), "rb") as f:
            self.assertEqual(f.read(), small)
        big = pattern(2, 64 * MiB)
        with open(self.p("big"), "wb") as f:
            for off in range(0, len(big), 4 * MiB):
                f.write(big[off:off + 4 * MiB])
            f.flush()
            os.fsync(f.fileno())
        self.assertEqual(os.stat(self.p("big")).st_size, 64 * MiB)
        self.assertEqual(sha(self.p("big")), hashlib.sha256(big).hexdigest())
        # overwrite in the middle, append at the end, read both back
        with open(self.p("big"), "r+b") as f:
            f.seek(10 * MiB + 7)
            f.write(b"middle")
            f.seek(0, os.SEEK_END)
            f.write(b"tail")
        with open(self.p("big"), "rb") as f:
            f.seek(10 * MiB)
            self.assertEqual(f.read(16), big[10 * MiB:10 * MiB + 7] + b"middle" +
                             big[10 * MiB + 13:10 * MiB + 16])
            f.seek(64 * MiB - 2)
            self.assertEqual(f.read(), big[-2:] + b"tail")
        # pwrite leaving a hole, then read the zeros back
        fd = os.open(self.p("sparse"), os.O_CREAT | os.O_RDWR, 0o644)
        os.pwrite(fd, b"end", 5 * MiB)
        os.fsync(fd)
        os.close(fd)
        with open(self.p("sparse"), "rb") as f:
            data = f.read()
        self.assertEqual(len(data), 5 * MiB + 3)
        self.assertEqual(data[:5 * MiB], bytes(5 * MiB))
        self.assertEqual(data[5 * MiB:], b"end")

    def test_2_namespace(self):
        os.mkdir(self.p("d"))
        os.mkdir(self.p("d", "sub"))
        for i in range(50):
            with open(self.p("d", "f%02d" % i), "wb") as f:
                f.write(b"file %d\n" % i)
        self.assertEqual(sorted(os.listdir(self.p("d"))),
                         sorted(["sub"] + ["f%02d" % i for i in range(50)]))
        os.mkdir(self.p("gone"))
        os.rmdir(self.p("gone"))
        self.assertFalse(os.path.exists(self.p("gone")))
        # rename: within a directory, across directories, over an existing file
        os.rename(self.p("d", "f00"), self.p("d", "renamed"))
        os.rename(self.p("d", "f01"), self.p("d", "sub", "moved"))
        os.rename(self.p("d", "f02"), self.p("d", "f03"))
        with open(self.p("d", "f03"), "rb") as f:
            self.assertEqual(f.read(), b"file 2\n")
        os.rename(self.p("d", "sub"), self.p("subdir"))
        self.assertEqual(os.listdir(self.p("subdir")), ["moved"])
        # hard links
        os.link(self.p("d", "renamed"), self.p("hard"))
        self.assertEqual(os.stat(self.p("hard")).st_nlink, 2)
        self.assertEqual(os.stat(self.p("hard")).st_ino, os.stat(self.p("d", "renamed")).st_ino)
        os.link(self.p("d", "f04"), self.p("d", "f04link"))
        os.unlink(self.p("d", "f04"))
        self.assertEqual(os.stat(self.p("d", "f04link")).st_nlink, 1)
        with open(self.p("d", "f04link"), "rb") as f:
            self.assertEqual(f.read(), b"file 4\n")
        os.unlink(self.p("d", "f05"))
        self.assertFalse(os.path.exists(self.p("d", "f05")))
        # symbolic links
        os.symlink("d/renamed", self.p("sym"))
        os.symlink("/nowhere/" + "x" * 200, self.p("dangling"))
        self.assertEqual(os.readlink(self.p("sym")), "d/renamed")
        self.assertEqual(os.readlink(self.p("dangling")), "/nowhere/" + "x" * 200)
        with open(self.p("sym"), "rb") as f:
            self.assertEqual(f.read(), b"file 0\n")
        # unlink of an open file: still readable through the descriptor
        with open(self.p("d", "f06"), "rb") as f:
            os.unlink(self.p("d", "f06"))
            self.assertEqual(f.read(), b"file 6\n")

    def test_3_attributes(self):
        path = self.p("attrs")
        with open(path, "wb") as f:
            f.write(pattern(3, 100000))
        os.truncate(path, 3 * MiB)  # up: zeros
        with open(path, "rb") as f:
            data = f.read()
        self.assertEqual(data[:100000], pattern(3, 100000))
        self.assertEqual(data[100000:], bytes(3 * MiB - 100000))
        os.truncate(path, 5000)  # down
        with open(path, "rb") as f:
            self.assertEqual(f.read(), pattern(3, 5000))
        os.truncate(path, 6000)  # up again: the cut bytes must not come back
        with open(path, "rb") as f:
            self.assertEqual(f.read(), pattern(3, 5000) + bytes(1000))
        os.chmod(path, 0o640)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o640)
        os.chown(path, 1234, 5678)
        st = os.stat(path)
        self.assertEqual((st.st_uid, st.st_gid), (1234, 5678))
        os.utime(path, ns=(1000000001, 2000000002))
        st = os.stat(path)
        # atime is not stored: it is reported as mtime (iclient.md 7)
        self.assertEqual((st.st_atime_ns, st.st_mtime_ns), (2000000002, 2000000002))
        os.setxattr(path, "user.color", b"blue")
        os.setxattr(path, "user.empty", b"")
        os.setxattr(path, "user.bin", bytes(range(256)))
        self.assertEqual(os.getxattr(path, "user.color"), b"blue")
        self.assertEqual(os.getxattr(path, "user.bin"), bytes(range(256)))
        self.assertEqual(sorted(os.listxattr(path)), ["user.bin", "user.color", "user.empty"])
        os.setxattr(path, "user.color", b"green", os.XATTR_REPLACE)
        self.assertEqual(os.getxattr(path, "user.color"), b"green")
        os.removexattr(path, "user.empty")
        self.assertErrno(errno.ENODATA, os.getxattr, path, "user.empty")
        self.assertErrno(errno.EEXIST, os.setxattr, path, "user.color", b"x", os.XATTR_CREATE)
        os.mkdir(self.p("xdir"))
        os.setxattr(self.p("xdir"), "user.dir", b"on a directory")
        sv = os.statvfs(self.m)
        self.assertGreater(sv.f_bsize, 0)
        self.assertGreater(sv.f_namemax, 0)
        fd = os.open(self.p("synced"), os.O_CREAT | os.O_WRONLY, 0o600)
        os.write(fd, b"fsync me")
        os.fsync(fd)
        os.fdatasync(fd)
        os.close(fd)
        dfd = os.open(self.m, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(dfd)
        os.close(dfd)

    def test_4_errors(self):
        os.mkdir(self.p("e"))
        with open(self.p("e", "file"), "wb") as f:
            f.write(b"x")
        self.assertErrno(errno.ENOENT, os.stat, self.p("e", "missing"))
        self.assertErrno(errno.ENOENT, os.unlink, self.p("e", "missing"))
        self.assertErrno(errno.ENOENT, os.rename, self.p("e", "missing"), self.p("e", "x"))
        self.assertErrno(errno.ENOENT, open, self.p("nodir", "file"), "wb")
        self.assertErrno(errno.EEXIST, os.mkdir, self.p("e"))
        self.assertErrno(errno.EEXIST, os.mkdir, self.p("e", "file"))
        self.assertErrno(errno.EEXIST, os.link, self.p("e", "file"), self.p("e", "file"))
        self.assertErrno(errno.EEXIST, os.symlink, "t", self.p("e", "file"))
        self.assertErrno(errno.EEXIST, os.open, self.p("e", "file"),
                         os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        self.assertErrno(errno.ENOTEMPTY, os.rmdir, self.p("e"))
        os.mkdir(self.p("e2"))
        os.mkdir(self.p("e2", "x"))
        self.assertErrno(errno.ENOTEMPTY, os.rename, self.p("e2"), self.p("e"))
        self.assertErrno(errno.EISDIR, open, self.p("e"), "wb")
        self.assertErrno(errno.EISDIR, os.unlink, self.p("e"))
        self.assertErrno(errno.EISDIR, os.rename, self.p("e", "file"), self.p("e2"))
        self.assertErrno(errno.ENOTDIR, os.listdir, self.p("e", "file"))
        self.assertErrno(errno.ENOTDIR, os.rmdir, self.p("e", "file"))
        self.assertErrno(errno.ENOTDIR, os.stat, self.p("e", "file", "x"))
        self.assertErrno(errno.ENOTDIR, os.rename, self.p("e2"), self.p("e", "file"))
        self.assertErrno(errno.ENAMETOOLONG, os.mkdir, self.p("n" * 256))
        self.assertErrno(errno.ENAMETOOLONG, open, self.p("n" * 300), "wb")
        # still intact
        with open(self.p("e", "file"), "rb") as f:
            self.assertEqual(f.read(), b"x")

    def check_same(self, before):
        after = snapshot(self.m)
        self.assertEqual(sorted(after), sorted(before))
        for k in before:
            self.assertEqual(after[k], before[k], k)

    def test_5_restart_iclient(self):
        before = snapshot(self.m)
        self.assertIn("big", before)
        self.assertEqual(self.e.stop_iclient(), 0, self.e.log_tail())
        self.assertFalse(os.path.ismount(self.m))
        self.e.start_iclient()
        self.check_same(before)

    def test_6_restart_imgr(self):
        before = snapshot(self.m)
        self.assertEqual(self.e.stop_iclient(), 0, self.e.log_tail())
        self.assertEqual(self.e.c.stop_imgr(), 0)
        self.e.start_imgr()
        self.e.mkmount("-s")
        self.e.start_iclient()
        self.check_same(before)
        # and it still takes changes
        with open(self.p("after_restart"), "wb") as f:
            f.write(b"new")
        with open(self.p("after_restart"), "rb") as f:
            self.assertEqual(f.read(), b"new")

    def test_7_fsmodel(self):
        if not FSMODEL:
            self.skipTest("no fsmodel given")
        os.mkdir(self.p("model"))
        r = subprocess.run([FSMODEL, self.p("model"), "--ops", "20000", "--seed", "1"],
                           capture_output=True, text=True, timeout=1500)
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-3000:])
        print(r.stdout.strip().splitlines()[-1:], file=sys.stderr)


def wait_for(fn, what, timeout=10):
    end = time.time() + timeout
    while True:
        try:
            return fn()
        except (OSError, AssertionError):
            if time.time() > end:
                raise
        time.sleep(0.1)


class TestTwoClients(unittest.TestCase):
    """Two iclients mount the same volume: each sees the other's changes,
    which needs imgr's lease interrupts (upcalls) to reach the holder and
    be acted on (flush, Demote/Release)."""

    @classmethod
    def setUpClass(cls):
        cls.e = Env(imgr_args=["IMGR.TraceEnabled=true"]).up()
        try:
            cls.b, cls.b_log = cls.e.start_other("mnt_b")
        except BaseException:
            cls.e.close()
            raise
        cls.a = cls.e.mnt

    @classmethod
    def tearDownClass(cls):
        cls.e.close()

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()

    def test_ping_pong(self):
        a, b = self.a, self.b
        with open(os.path.join(a, "shared"), "wb") as f:
            f.write(b"from a")
        # b's first look: the lookup goes to imgr (entries are cached 250 ms)
        wait_for(lambda: self.assertEqual(self.read(os.path.join(b, "shared")), b"from a"),
                 "b sees a's file")
        with open(os.path.join(b, "shared"), "ab") as f:
            f.write(b", then b")
        wait_for(lambda: self.assertEqual(self.read(os.path.join(a, "shared")),
                                          b"from a, then b"), "a sees b's append")
        for i in range(10):  # the exclusive lease goes back and forth
            side, other = (a, b) if i % 2 == 0 else (b, a)
            with open(os.path.join(side, "shared"), "wb") as f:
                f.write(b"round %d" % i)
            wait_for(lambda: self.assertEqual(self.read(os.path.join(other, "shared")),
                                              b"round %d" % i), "round %d" % i)
        os.mkdir(os.path.join(b, "dir_b"))
        with open(os.path.join(b, "dir_b", "x"), "wb") as f:
            f.write(pattern(9, 3 * MiB))
        wait_for(lambda: self.assertEqual(sha(os.path.join(a, "dir_b", "x")),
                                          hashlib.sha256(pattern(9, 3 * MiB)).hexdigest()),
                 "a sees b's directory")
        os.rename(os.path.join(a, "dir_b", "x"), os.path.join(a, "moved"))
        wait_for(lambda: self.assertEqual(sorted(os.listdir(os.path.join(b, "dir_b"))), []),
                 "b sees the rename")
        self.assertEqual(os.stat(os.path.join(b, "moved")).st_size, 3 * MiB)
        # it took interrupts (imgr traces each upcall), and both still serve
        self.assertIn("upcall to mount", self.e.imgr_log())
        self.assertIsNone(self.e.iclient.poll())
        self.assertIsNone(self.e.others[0][0].poll())

    def test_concurrent_appends(self):
        """O_APPEND from both clients at once: every record lands whole, once,
        each writer's in its order (each append takes the exclusive lease and
        writes at the size the last holder committed)."""
        n, rec = 60, 16
        name = "appended"
        open(os.path.join(self.a, name), "wb").close()
        wait_for(lambda: os.stat(os.path.join(self.b, name)), "b sees the file")
        errors = []

        def writer(mnt, tag):
            try:
                fd = os.open(os.path.join(mnt, name), os.O_WRONLY | os.O_APPEND)
                try:
                    for i in range(n):
                        r = (b"%s%05d" % (tag, i)).ljust(rec - 1, b".") + b"\n"
                        self.assertEqual(os.write(fd, r), rec)
                finally:
                    os.close(fd)
            except BaseException as ex:  # noqa: B902  (reported below)
                errors.append(ex)

        threads = [threading.Thread(target=writer, args=(m, t))
                   for m, t in ((self.a, b"A"), (self.b, b"B"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        self.assertEqual(errors, [])

        def check():
            data = self.read(os.path.join(self.a, name))
            self.assertEqual(len(data), 2 * n * rec)
            recs = [data[i:i + rec] for i in range(0, len(data), rec)]
            for tag in (b"A", b"B"):
                mine = [r for r in recs if r.startswith(tag)]
                self.assertEqual(mine, [(b"%s%05d" % (tag, i)).ljust(rec - 1, b".") + b"\n"
                                        for i in range(n)])
        wait_for(check, "both writers' records, whole and in order", timeout=20)

    def test_concurrent_creates(self):
        """Both clients create files in one directory at once: its lease
        moves back and forth, including denied promotions (imgr.md 3.6)."""
        os.mkdir(os.path.join(self.a, "common"))
        errs = []

        def work(root, tag):
            try:
                for i in range(100):
                    with open(os.path.join(root, "common", "%s%03d" % (tag, i)), "wb") as f:
                        f.write(b"%s %d" % (tag.encode(), i))
            except OSError as x:
                errs.append((tag, i, x))

        th = [threading.Thread(target=work, args=(self.a, "a")),
              threading.Thread(target=work, args=(self.b, "b"))]
        for t in th:
            t.start()
        for t in th:
            t.join()
        self.assertEqual(errs, [])
        want = sorted(["a%03d" % i for i in range(100)] + ["b%03d" % i for i in range(100)])
        for root in (self.a, self.b):
            wait_for(lambda: self.assertEqual(sorted(os.listdir(os.path.join(root, "common"))),
                                              want), "listing")
            for n in want:
                with open(os.path.join(root, "common", n), "rb") as f:
                    self.assertEqual(f.read(), b"%s %d" % (n[0].encode(), int(n[1:])))

    def test_fsmodel_on_both(self):
        """fsmodel on each client at once, in directories of their own."""
        if not FSMODEL:
            self.skipTest("no fsmodel given")
        os.mkdir(os.path.join(self.a, "model_a"))
        os.mkdir(os.path.join(self.b, "model_b"))
        ps = [subprocess.Popen([FSMODEL, os.path.join(root, d), "--ops", "5000", "--seed", seed],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
              for root, d, seed in ((self.a, "model_a", "2"), (self.b, "model_b", "3"))]
        outs = [p.communicate(timeout=900)[0] for p in ps]
        for p, out in zip(ps, outs):
            self.assertEqual(p.returncode, 0, out[-3000:])


class TestInvalidation(unittest.TestCase):
    """Two clients whose kernels cache attributes and entries for 60 s: a
    change on one is seen by the other at once, because a lease imgr takes
    back (Release interrupt) makes iclient invalidate the kernel's copy of
    that inode (fuse_lowlevel_notify_inval_inode) and, for a directory, of
    the entries it had cached (fuse_lowlevel_notify_inval_entry)."""

    def test_changes_seen_before_the_timeouts(self):
        long = ["ICLIENT.FUSEAttrValidDuration=60s", "ICLIENT.FUSEEntryValidDuration=60s"]
        e = Env(iclient_args=long).up()
        try:
            a = e.mnt
            b, _ = e.start_other("mnt_b")
            fa, fb = os.path.join(a, "f"), os.path.join(b, "f")
            with open(fa, "wb") as f:
                f.write(b"one")
            with open(fb, "rb") as f:  # b caches f's attributes and pages
                self.assertEqual(f.read(), b"one")
            self.assertEqual(os.stat(fb).st_size, 3)
            for i in range(3):
                data = b"longer %d " % i * (i + 2)
                with open(fa, "wb") as f:  # a takes the lease: b's is released
                    f.write(data)
                # within 2 s, far below the 60 s the kernel would otherwise wait
                wait_for(lambda: self.assertEqual(os.stat(fb).st_size, len(data)),
                         "b sees the size", timeout=2)
                with open(fb, "rb") as f:
                    self.assertEqual(f.read(), data)
            os.chmod(fa, 0o600)
            wait_for(lambda: self.assertEqual(stat.S_IMODE(os.stat(fb).st_mode), 0o600),
                     "b sees the mode", timeout=2)
            # names: b's kernel has d/x cached; a renames, then unlinks it
            os.mkdir(os.path.join(a, "d"))
            with open(os.path.join(a, "d", "x"), "wb") as f:
                f.write(b"x")
            self.assertEqual(os.stat(os.path.join(b, "d", "x")).st_size, 1)
            os.rename(os.path.join(a, "d", "x"), os.path.join(a, "d", "y"))
            wait_for(lambda: self.assertFalse(os.path.exists(os.path.join(b, "d", "x"))),
                     "b sees the rename", timeout=2)
            self.assertEqual(os.stat(os.path.join(b, "d", "y")).st_size, 1)
            os.unlink(os.path.join(a, "d", "y"))
            wait_for(lambda: self.assertFalse(os.path.exists(os.path.join(b, "d", "y"))),
                     "b sees the unlink", timeout=2)
        finally:
            e.close()


class TestKeepAlive(unittest.TestCase):
    """imgr unmounts a mount that is silent for MountTimeout; iclient's
    RenewMount keep-alive prevents that (and without it, it happens, and
    the client mounts again)."""

    def test_idle_mounts(self):
        e = Env(imgr_args=["IMGR.MountTimeout=2s"])
        try:
            e.format_volume()
            e.start_iclient("ICLIENT.MountKeepAlivePeriod=300ms")
            with open(os.path.join(e.mnt, "kept"), "wb") as f:
                f.write(b"before")
            silent, silent_log = e.start_other("mnt_silent", "ICLIENT.MountKeepAlivePeriod=0s")
            os.listdir(silent)
            kept_id = re.search(r"mount (\S+) of volume testvol by client", e.imgr_log()).group(1)
            time.sleep(4.5)  # more than twice MountTimeout, both idle
            log = e.imgr_log()
            # the silent one is unmounted (and, told so, mounts again); the
            # kept-alive one never is
            self.assertGreaterEqual(log.count("no RPC within MountTimeout"), 1, log[-3000:])
            self.assertNotIn("mount %s of volume testvol unmounted" % kept_id, log)
            # the kept-alive mount still works (new names need imgr)
            with open(os.path.join(e.mnt, "kept2"), "wb") as f:
                f.write(b"after")
            with open(os.path.join(e.mnt, "kept"), "rb") as f:
                self.assertEqual(f.read(), b"before")
            self.assertNotIn("mount %s of volume testvol unmounted" % kept_id, e.imgr_log())
            self.assertNotIn("remounted", tail(e.iclient_log))
            # the silent one lost its mount: it mounts again and goes on
            with open(os.path.join(silent, "new_file"), "wb") as f:
                f.write(b"x")
            with open(os.path.join(e.mnt, "new_file"), "rb") as f:
                self.assertEqual(f.read(), b"x")
            self.assertIn("remounted testvol as mount", tail(silent_log))
        finally:
            e.close()


class TestSwiftTokenInvalidated(unittest.TestCase):
    """Swift forgets every token (iswift POST /admin/reauth): imgr's next
    token check fails, it answers EAuthTokenRejected, and iclient
    re-authenticates, sends RenewMount and repeats the request
    (iclient.md 2.2); its own Swift requests re-authenticate on 401."""

    def test_reauth(self):
        e = Env(imgr_args=["IMGR.AuthTokenCheckInterval=100ms"])
        try:
            port = e.start_iswift_admin()
            e.start_imgr()
            e.mkmount("-fs")
            e.start_iclient()
            with open(os.path.join(e.mnt, "before"), "wb") as f:
                f.write(pattern(7, 300000))
            for round_ in range(2):
                s, _, _ = test_imgr.req(port, "POST", "/admin/reauth")
                self.assertIn(s, (200, 204))
                time.sleep(0.3)  # past imgr's AuthTokenCheckInterval
                name = os.path.join(e.mnt, "after%d" % round_)
                with open(name, "wb") as f:
                    f.write(b"after")
                    f.flush()
                    os.fsync(f.fileno())  # the commit meets the rejected token
                with open(name, "rb") as f:
                    self.assertEqual(f.read(), b"after")
            self.assertIn("AuthToken rejected by imgr; renewing the mount", tail(e.iclient_log))
            self.assertEqual(e.stop_iclient(), 0)
            e.start_iclient()
            with open(os.path.join(e.mnt, "before"), "rb") as f:
                self.assertEqual(f.read(), pattern(7, 300000))
        finally:
            e.close()


class TestImgrRestartUnderClient(unittest.TestCase):
    """imgr stopped and restarted while an iclient stays mounted. While imgr
    is down, operations that need it fail with EIO within the RPC timeout
    (2 x RetryRPCDeadlineIO) instead of hanging; when it is back (same
    retryrpc port, volume served again) iclient mounts again (a new MountID,
    leases asked again) and operations resume, nothing fsynced is lost, and
    a new iclient finds everything too."""

    def test_imgr_restart(self):
        e = Env()
        try:
            e.format_volume()
            e.start_iclient("ICLIENT.RetryRPCDeadlineIO=1s")
            kept = pattern(11, 200000)
            write_synced(os.path.join(e.mnt, "kept"), kept)
            held = os.path.join(e.mnt, "held_open")
            write_synced(held, b"open across the restart")
            held_fd = os.open(held, os.O_RDONLY)
            held_ino = os.fstat(held_fd).st_ino
            self.assertEqual(e.c.stop_imgr(), 0)
            # imgr down: EIO, each within the timeout (2 s) plus slack
            for what in ("statfs", "create"):
                t0 = time.time()
                with self.assertRaises(OSError) as cm:
                    if what == "statfs":
                        os.statvfs(e.mnt)
                    else:
                        write_synced(os.path.join(e.mnt, "while_down"), b"x")
                self.assertEqual(cm.exception.errno, errno.EIO, what)
                self.assertLess(time.time() - t0, 8, what)
            self.assertIsNone(e.iclient.poll())
            e.start_imgr()
            e.mkmount("-s")
            # back: the next operations remount and work
            new = pattern(12, 300000)
            write_synced(os.path.join(e.mnt, "new"), new)
            with open(os.path.join(e.mnt, "kept"), "rb") as f:
                self.assertEqual(f.read(), kept)
            os.mkdir(os.path.join(e.mnt, "dir_after"))
            os.rename(os.path.join(e.mnt, "new"), os.path.join(e.mnt, "dir_after", "new"))
            fd = os.open(os.path.join(e.mnt, "dir_after"), os.O_RDONLY)
            os.fsync(fd)  # the rename, checkpointed: it survives the SIGKILL below
            os.close(fd)
            os.statvfs(e.mnt)
            self.assertIn("remounted testvol as mount", tail(e.iclient_log))
            # the open handle is counted at the new imgr: an unlink keeps
            # the inode until the last close
            wait_for(lambda: self.assertIn("1 open inodes counted again",
                                           tail(e.iclient_log)), "open counts sent again")
            os.unlink(held)
            time.sleep(1.2)  # checkpoints (500 ms) and deletes would have run

            def inode_status():
                return test_imgr.req(e.c.port, "GET", "/volume/testvol/inode/%d" % held_ino,
                                     headers={"Accept": "application/json"})[0]
            self.assertEqual(inode_status(), 200)
            self.assertEqual(os.pread(held_fd, 100, 0), b"open across the restart")
            os.close(held_fd)
            wait_for(lambda: self.assertNotEqual(inode_status(), 200), "removed at last close")
            # a second restart, by SIGKILL this time
            self.assertEqual(e.c.stop_imgr(signal.SIGKILL), -signal.SIGKILL)
            e.start_imgr()
            e.mkmount("-s")
            with open(os.path.join(e.mnt, "dir_after", "new"), "rb") as f:
                self.assertEqual(f.read(), new)
            write_synced(os.path.join(e.mnt, "after_kill"), b"after kill")
            self.assertEqual(e.stop_iclient(), 0)
            e.start_iclient()
            with open(os.path.join(e.mnt, "kept"), "rb") as f:
                self.assertEqual(f.read(), kept)
            with open(os.path.join(e.mnt, "dir_after", "new"), "rb") as f:
                self.assertEqual(f.read(), new)
            with open(os.path.join(e.mnt, "after_kill"), "rb") as f:
                self.assertEqual(f.read(), b"after kill")
        finally:
            e.close()


class TestTLS(unittest.TestCase):
    """retryrpc over TLS: imgr with a certificate from icert's CA, iclient
    with RetryRPCCACertFilePath; a client trusting another CA cannot mount."""

    def test_tls(self):
        e = None
        try:
            e = Env()
            d = e.c.dir
            for ca in ("ca", "otherca"):
                subprocess.run([ICERT, "-ca", "-ed25519", "-caCert", "%s/%s_cert.pem" % (d, ca),
                                "-caKey", "%s/%s_key.pem" % (d, ca), "-commonName", ca,
                                "-ttl", "10"], check=True, capture_output=True)
            subprocess.run([ICERT, "-ed25519", "-caCert", d + "/ca_cert.pem", "-caKey",
                            d + "/ca_key.pem", "-commonName", "imgr", "-ttl", "10",
                            "-cert", d + "/imgr_cert.pem", "-key", d + "/imgr_key.pem",
                            "-ip", "127.0.0.1"], check=True, capture_output=True)
            e.imgr_args = ["IMGR.RetryRPCCertFilePath=" + d + "/imgr_cert.pem",
                           "IMGR.RetryRPCKeyFilePath=" + d + "/imgr_key.pem"]
            e.format_volume()
            with self.assertRaises(RuntimeError) as cm:
                e.start_other("mnt_wrong_ca",
                              "ICLIENT.RetryRPCCACertFilePath=" + d + "/otherca_cert.pem")
            self.assertIn("Mount(testvol) failed", str(cm.exception))
            e.start_iclient("ICLIENT.RetryRPCCACertFilePath=" + d + "/ca_cert.pem")
            data = pattern(5, 2 * MiB + 3)
            with open(os.path.join(e.mnt, "over_tls"), "wb") as f:
                f.write(data)
            self.assertEqual(e.stop_iclient(), 0)
            e.start_iclient("ICLIENT.RetryRPCCACertFilePath=" + d + "/ca_cert.pem")
            with open(os.path.join(e.mnt, "over_tls"), "rb") as f:
                self.assertEqual(f.read(), data)
        finally:
            if e:
                e.close()


def main():
    global ICLIENT, ICERT, FSMODEL
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse") or not shutil.which("fusermount3"):
        print("SKIP: needs root, /dev/fuse and fusermount3")
        return 0
    ICLIENT, test_imgr.IMGR, test_imgr.ISWIFT, ICERT = sys.argv[1:5]
    FSMODEL = sys.argv[5] if len(sys.argv) > 5 else None
    del sys.argv[1:]
    r = unittest.main(verbosity=2, exit=False)
    return 0 if r.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
