#!/usr/bin/env python3
"""POSIX semantics of an iclient mount that pjdfstest does not cover (issues 8 and 9).

Usage: test_posix.py PATH-TO-iclient PATH-TO-imgr PATH-TO-iswift

One cluster (test_iclient.Env: iswift + imgr + iclient with FUSEAllowOther)
for all cases:
  - EACCES/EPERM as a non-root user (a forked child that drops to uid/gid
    65534): private directories and files, access(2) with F_OK/R_OK/W_OK/X_OK,
    chmod/chown/utime of another user's file, the sticky directory rule;
  - setuid/setgid/sticky bits: kept (also across a remount), cleared by a
    non-root write and by chown as the kernel does on tmpfs (the same steps
    run on /dev/shm give the reference), a setgid directory passing on its
    group and its setgid bit;
  - EXDEV for rename and link between the mount and /tmp, both ways;
  - an unlinked (or renamed-over) file stays readable and writable through
    the descriptors still open, with st_nlink 0, until the last close;
  - renameat2 RENAME_NOREPLACE and RENAME_EXCHANGE (file/file and file/dir
    across directories: contents, "..", link counts, after a remount too);
  - flock and fcntl record locks conflict between two processes on the mount;
  - st_blocks counts the bytes referenced (a sparse file takes few), and
    setxattr changes ctime only;
  - readdirplus: `ls -l`-style listings are served by READDIRPLUS (iclient's
    DoReadDirPlusUsecs count grows) and agree with lstat.

Needs root, /dev/fuse and fusermount3 (skips otherwise).
"""
import ctypes
import errno
import fcntl
import json
import os
import re
import shutil
import socket
import stat
import struct
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_iclient  # noqa: E402
import test_imgr  # noqa: E402

NOBODY = 65534
LIBC = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2


def renameat2(old, new, flags):
    if LIBC.renameat2(AT_FDCWD, old.encode(), AT_FDCWD, new.encode(), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), old)


def as_user(fn, *args, uid=NOBODY, gid=NOBODY):
    """Run fn(*args) in a forked child as uid/gid; returns its value or raises
    its OSError (same errno) here."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            out = {"ok": fn(*args)}
        except OSError as e:
            out = {"errno": e.errno, "msg": str(e)}
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            out = {"error": repr(e)}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    out = json.loads(data)
    if "errno" in out:
        raise OSError(out["errno"], out["msg"])
    if "error" in out:
        raise RuntimeError(out["error"])
    return out["ok"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_file(path, data, mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def append_as(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        return os.write(fd, data)
    finally:
        os.close(fd)


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


class TestPosix(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.http = free_port()
        cls.e = test_iclient.Env(iclient_args=["ICLIENT.FUSEAllowOther=true",
                                               "ICLIENT.HTTPServerPort=%d" % cls.http]).up()
        cls.m = cls.e.mnt
        os.chmod(cls.e.c.dir, 0o755)  # the mount's parent: other users pass through
        base = "/dev/shm" if os.path.isdir("/dev/shm") else None
        cls.ref = tempfile.mkdtemp(prefix="posix-ref-", dir=base)
        os.chmod(cls.ref, 0o777)

    @classmethod
    def tearDownClass(cls):
        cls.e.close()
        shutil.rmtree(cls.ref, ignore_errors=True)

    def p(self, *parts):
        return os.path.join(self.m, *parts)

    def assertErrno(self, err, fn, *args, **kw):
        with self.assertRaises(OSError) as cm:
            fn(*args, **kw)
        self.assertEqual(cm.exception.errno, err, "%s%r: %s" % (fn.__name__, args, cm.exception))

    def remount(self):
        self.assertEqual(self.e.stop_iclient(), 0)
        self.e.start_iclient()

    def stat_count(self, name):
        with urllib.request.urlopen("http://127.0.0.1:%d/stats" % self.http, timeout=30) as r:
            body = r.read().decode()
        m = re.search(r"\.%s avg:\d+ count:(\d+)" % re.escape(name), body)
        self.assertIsNotNone(m, "no %s in /stats:\n%s" % (name, body[:2000]))
        return int(m.group(1))

    # ---- permissions as a non-root user ----

    def test_eacces_nonroot(self):
        os.mkdir(self.p("priv"), 0o700)
        write_file(self.p("priv", "f"), b"secret", 0o644)
        self.assertErrno(errno.EACCES, as_user, os.listdir, self.p("priv"))
        self.assertErrno(errno.EACCES, as_user, read_file, self.p("priv", "f"))
        self.assertErrno(errno.EACCES, as_user, os.stat, self.p("priv", "f"))
        os.mkdir(self.p("ro"), 0o755)
        write_file(self.p("ro", "f644"), b"readable", 0o644)
        write_file(self.p("ro", "f600"), b"private", 0o600)
        write_file(self.p("ro", "f755"), b"#!/bin/sh\n", 0o755)
        self.assertEqual(as_user(lambda: read_file(self.p("ro", "f644")).decode()), "readable")
        self.assertErrno(errno.EACCES, as_user, read_file, self.p("ro", "f600"))
        self.assertErrno(errno.EACCES, as_user, append_as, self.p("ro", "f644"), b"x")
        self.assertErrno(errno.EACCES, as_user, write_file, self.p("ro", "new"), b"x")
        self.assertErrno(errno.EACCES, as_user, os.mkdir, self.p("ro", "d"))
        self.assertErrno(errno.EACCES, as_user, os.unlink, self.p("ro", "f644"))
        self.assertErrno(errno.EACCES, as_user, os.rename, self.p("ro", "f644"),
                         self.p("ro", "g"))
        self.assertErrno(errno.EACCES, as_user, os.symlink, "t", self.p("ro", "l"))
        # access(2): the kernel answers from the mode bits (default_permissions)
        acc = as_user(lambda: {n: [os.access(self.p("ro", n), m)
                                   for m in (os.F_OK, os.R_OK, os.W_OK, os.X_OK)]
                               for n in ("f644", "f600", "f755", "missing")})
        self.assertEqual(acc, {"f644": [True, True, False, False],
                               "f600": [True, False, False, False],
                               "f755": [True, True, False, True],
                               "missing": [False, False, False, False]})
        self.assertTrue(os.access(self.p("ro", "f600"), os.R_OK | os.W_OK))  # root
        self.assertErrno(errno.EPERM, as_user, os.chmod, self.p("ro", "f644"), 0o666)
        self.assertErrno(errno.EPERM, as_user, os.chown, self.p("ro", "f644"), NOBODY, NOBODY)
        self.assertErrno(errno.EPERM, as_user, os.utime, self.p("ro", "f644"), (1, 1))
        self.assertErrno(errno.EACCES, as_user, os.utime, self.p("ro", "f644"), None)
        self.assertEqual(read_file(self.p("ro", "f644")), b"readable")
        # a user's own files: everything allowed
        os.mkdir(self.p("mine"))
        os.chmod(self.p("mine"), 0o777)
        as_user(write_file, self.p("mine", "f"), b"own", 0o600)
        st = os.stat(self.p("mine", "f"))
        self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (NOBODY, NOBODY, 0o600))
        as_user(os.chmod, self.p("mine", "f"), 0o640)
        as_user(os.utime, self.p("mine", "f"), (1000, 2000))
        self.assertEqual(os.stat(self.p("mine", "f")).st_mtime, 2000)
        as_user(os.rename, self.p("mine", "f"), self.p("mine", "g"))
        as_user(os.unlink, self.p("mine", "g"))

    def test_sticky_directory(self):
        os.mkdir(self.p("tmpdir"))
        os.chmod(self.p("tmpdir"), 0o1777)
        self.assertEqual(mode_of(self.p("tmpdir")), 0o1777)
        write_file(self.p("tmpdir", "roots"), b"r")
        os.chmod(self.p("tmpdir", "roots"), 0o666)
        as_user(write_file, self.p("tmpdir", "nobodys"), b"n", 0o666)
        # anyone may write a 0666 file, only its owner (or the dir's) may remove it
        self.assertEqual(as_user(append_as, self.p("tmpdir", "roots"), b"x"), 1)
        self.assertErrno(errno.EPERM, as_user, os.unlink, self.p("tmpdir", "roots"))
        self.assertErrno(errno.EPERM, as_user, os.rename, self.p("tmpdir", "roots"),
                         self.p("tmpdir", "stolen"))
        as_user(os.rename, self.p("tmpdir", "nobodys"), self.p("tmpdir", "mine"))
        as_user(os.unlink, self.p("tmpdir", "mine"))
        os.unlink(self.p("tmpdir", "roots"))  # root may
        self.remount()
        self.assertEqual(mode_of(self.p("tmpdir")), 0o1777)

    # ---- setuid / setgid ----

    def suid_steps(self, d):
        """The same steps on the mount and on tmpfs; returns what was seen."""
        seen = {}
        f = os.path.join(d, "suid")
        write_file(f, b"x", 0o644)
        os.chown(f, NOBODY, NOBODY)
        os.chmod(f, 0o6755)
        seen["set"] = mode_of(f)
        as_user(append_as, f, b"y")  # the owner writes: both bits go
        seen["after write by owner"] = mode_of(f)
        os.chmod(f, 0o6755)
        append_as(f, b"z")  # root writes: kept
        seen["after write by root"] = mode_of(f)
        os.chown(f, 0, 0)  # chown: cleared even by root
        seen["after chown"] = mode_of(f)
        os.chmod(f, 0o2745)  # setgid without group exec is mandatory-locking: kept
        os.chown(f, NOBODY, NOBODY)
        seen["sgid no gx after chown"] = mode_of(f)
        os.chmod(f, 0o4777)
        as_user(os.truncate, f, 1)  # another user truncates: cleared
        seen["after truncate by other"] = mode_of(f)
        g = os.path.join(d, "sgiddir")
        os.mkdir(g, 0o755)
        os.chown(g, 0, 65533)
        os.chmod(g, 0o2775)
        write_file(os.path.join(g, "f"), b"", 0o644)
        os.mkdir(os.path.join(g, "sub"), 0o755)
        st_f, st_s = os.stat(os.path.join(g, "f")), os.stat(os.path.join(g, "sub"))
        seen["sgid dir: file gid"] = st_f.st_gid
        seen["sgid dir: subdir gid, mode"] = [st_s.st_gid, stat.S_IMODE(st_s.st_mode)]
        return seen

    def test_setuid_setgid(self):
        ref_dir = os.path.join(self.ref, "suid")
        for d in (self.p("suid"), ref_dir):
            os.mkdir(d)
            os.chmod(d, 0o777)
        ours, ref = self.suid_steps(self.p("suid")), self.suid_steps(ref_dir)
        self.assertEqual(ours, ref)
        self.assertEqual(ref["set"], 0o6755)
        self.assertEqual(ref["after write by owner"], 0o755)
        self.remount()
        self.assertEqual(mode_of(self.p("suid", "sgiddir")), 0o2775)
        self.assertEqual(os.stat(self.p("suid", "sgiddir", "sub")).st_gid, 65533)

    # ---- st_blocks, xattr times ----

    def test_blocks_and_xattr_ctime(self):
        dense, sparse = self.p("dense"), self.p("sparse")
        write_file(dense, test_iclient.pattern(3, test_iclient.MiB))
        with open(sparse, "wb") as f:
            f.truncate(100 * test_iclient.MiB)
            f.seek(50 * test_iclient.MiB)
            f.write(b"x" * 4096)
        for _ in range(2):  # before and after a remount (from the committed heads)
            b = os.stat(dense).st_blocks
            self.assertTrue(2048 <= b <= 2048 + 64, b)
            st = os.stat(sparse)
            self.assertEqual(st.st_size, 100 * test_iclient.MiB)
            self.assertTrue(8 <= st.st_blocks <= 8 + 64, st.st_blocks)
            self.remount()
        # an overwrite references no more bytes than before
        with open(dense, "r+b") as f:
            f.write(b"y" * 65536)
        self.assertTrue(2048 <= os.stat(dense).st_blocks <= 2048 + 64)
        os.utime(dense, ns=(10**18, 10**18))
        before = os.stat(dense)
        time.sleep(0.01)
        os.setxattr(dense, "user.k", b"v")
        after = os.stat(dense)
        self.assertEqual(after.st_mtime_ns, before.st_mtime_ns)
        self.assertGreater(after.st_ctime_ns, before.st_ctime_ns)

    # ---- EXDEV ----

    def test_exdev(self):
        other = tempfile.mkdtemp(prefix="posix-exdev-")
        try:
            write_file(self.p("xd"), b"here")
            write_file(os.path.join(other, "there"), b"there")
            self.assertErrno(errno.EXDEV, os.rename, self.p("xd"), os.path.join(other, "xd"))
            self.assertErrno(errno.EXDEV, os.rename, os.path.join(other, "there"), self.p("there"))
            self.assertErrno(errno.EXDEV, os.link, self.p("xd"), os.path.join(other, "xd"))
            self.assertErrno(errno.EXDEV, os.link, os.path.join(other, "there"), self.p("there"))
            self.assertEqual(read_file(self.p("xd")), b"here")
            self.assertFalse(os.path.exists(self.p("there")))
        finally:
            shutil.rmtree(other)

    # ---- unlink / rename over a file that is still open ----

    def test_unlink_open_file(self):
        data = test_iclient.pattern(7, 3 * test_iclient.MiB + 5)
        inodes = os.statvfs(self.m).f_files  # imgr's inode count (+ a constant)
        fd = os.open(self.p("open-unlinked"), os.O_RDWR | os.O_CREAT, 0o644)
        fd2 = os.open(self.p("open-unlinked"), os.O_RDONLY)
        try:
            os.write(fd, data)  # not flushed yet: the data must survive the unlink
            os.unlink(self.p("open-unlinked"))
            self.assertFalse(os.path.exists(self.p("open-unlinked")))
            self.assertNotIn("open-unlinked", os.listdir(self.m))
            self.assertEqual(os.fstat(fd).st_nlink, 0)
            self.assertEqual(os.pread(fd, len(data) + 10, 0), data)
            os.pwrite(fd, b"more", len(data))
            os.fsync(fd)
            os.close(fd)
            fd = -1
            # the other descriptor still reads it all, after the first closed
            self.assertEqual(os.pread(fd2, len(data) + 10, 0), data + b"more")
            self.assertEqual(os.fstat(fd2).st_size, len(data) + 4)
        finally:
            if fd >= 0:
                os.close(fd)
            os.close(fd2)
        # the name is free and new
        write_file(self.p("open-unlinked"), b"new")
        self.assertEqual(read_file(self.p("open-unlinked")), b"new")
        # rename over an open file: the replaced one stays readable
        write_file(self.p("victim"), b"old contents")
        write_file(self.p("winner"), b"new contents")
        with open(self.p("victim"), "rb") as f:
            os.rename(self.p("winner"), self.p("victim"))
            self.assertEqual(f.read(), b"old contents")
            self.assertEqual(os.fstat(f.fileno()).st_nlink, 0)
        self.assertEqual(read_file(self.p("victim")), b"new contents")
        # imgr removed both once closed: only the two names left count
        self.remount()
        self.assertEqual(os.statvfs(self.m).f_files, inodes + 2)

    # ---- renameat2 ----

    def test_renameat2(self):
        os.mkdir(self.p("r2a"))
        os.mkdir(self.p("r2b"))
        write_file(self.p("r2a", "f"), b"file a")
        write_file(self.p("r2b", "g"), b"file b")
        os.mkdir(self.p("r2b", "dir"))
        write_file(self.p("r2b", "dir", "inner"), b"inner")
        self.assertErrno(errno.EEXIST, renameat2, self.p("r2a", "f"), self.p("r2b", "g"),
                         RENAME_NOREPLACE)
        renameat2(self.p("r2a", "f"), self.p("r2a", "f2"), RENAME_NOREPLACE)
        self.assertEqual(read_file(self.p("r2a", "f2")), b"file a")
        self.assertErrno(errno.ENOENT, renameat2, self.p("r2a", "f2"), self.p("r2b", "none"),
                         RENAME_EXCHANGE)
        # file <-> file across directories
        ino_f, ino_g = os.stat(self.p("r2a", "f2")).st_ino, os.stat(self.p("r2b", "g")).st_ino
        renameat2(self.p("r2a", "f2"), self.p("r2b", "g"), RENAME_EXCHANGE)
        self.assertEqual(read_file(self.p("r2a", "f2")), b"file b")
        self.assertEqual(read_file(self.p("r2b", "g")), b"file a")
        self.assertEqual(os.stat(self.p("r2a", "f2")).st_ino, ino_g)
        self.assertEqual(os.stat(self.p("r2b", "g")).st_ino, ino_f)
        # file <-> directory across directories: ".." and link counts follow
        nl_a, nl_b = os.stat(self.p("r2a")).st_nlink, os.stat(self.p("r2b")).st_nlink
        renameat2(self.p("r2a", "f2"), self.p("r2b", "dir"), RENAME_EXCHANGE)

        def check():
            self.assertTrue(stat.S_ISDIR(os.lstat(self.p("r2a", "f2")).st_mode))
            self.assertEqual(read_file(self.p("r2a", "f2", "inner")), b"inner")
            self.assertEqual(read_file(self.p("r2b", "dir")), b"file b")
            self.assertEqual(os.stat(self.p("r2a", "f2", "..")).st_ino,
                             os.stat(self.p("r2a")).st_ino)
            self.assertEqual(os.stat(self.p("r2a")).st_nlink, nl_a + 1)
            self.assertEqual(os.stat(self.p("r2b")).st_nlink, nl_b - 1)
            kinds = {e.name: e.is_dir() for e in os.scandir(self.p("r2a"))}
            self.assertEqual(kinds, {"f2": True})
            kinds = {e.name: e.is_dir() for e in os.scandir(self.p("r2b"))}
            self.assertEqual(kinds, {"dir": False, "g": False})
        check()
        self.remount()
        check()
        # the moved directory is removable from its new place
        os.unlink(self.p("r2a", "f2", "inner"))
        os.rmdir(self.p("r2a", "f2"))
        self.assertEqual(os.stat(self.p("r2a")).st_nlink, nl_a)

    # ---- locks ----

    def lock_holder(self, path, lock):
        """A child process that takes `lock`(fd) on path and holds it until
        told; returns (pid, write end to release it)."""
        ready_r, ready_w = os.pipe()
        go_r, go_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                fd = os.open(path, os.O_RDWR)
                lock(fd)
                os.write(ready_w, b"1")
                os.read(go_r, 1)
            finally:
                os._exit(0)
        os.close(ready_w)
        os.close(go_r)
        self.assertEqual(os.read(ready_r, 1), b"1")
        os.close(ready_r)
        return pid, go_w

    def release_holder(self, pid, go_w):
        os.write(go_w, b"1")
        os.close(go_w)
        os.waitpid(pid, 0)

    def test_flock_conflicts(self):
        path = self.p("flocked")
        write_file(path, b"lock me")
        pid, go = self.lock_holder(path, lambda fd: fcntl.flock(fd, fcntl.LOCK_EX))
        fd = os.open(path, os.O_RDWR)
        try:
            self.assertErrno(errno.EWOULDBLOCK, fcntl.flock, fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.assertErrno(errno.EWOULDBLOCK, fcntl.flock, fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            self.release_holder(pid, go)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        # shared locks coexist
        pid, go = self.lock_holder(path, lambda fd: fcntl.flock(fd, fcntl.LOCK_SH))
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            self.assertErrno(errno.EWOULDBLOCK, fcntl.flock, fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
            self.release_holder(pid, go)

    def test_posix_record_locks(self):
        path = self.p("fcntl-locked")
        write_file(path, b"0123456789" * 10)
        # the child write-locks bytes 10..19
        pid, go = self.lock_holder(
            path, lambda fd: fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 10))
        fd = os.open(path, os.O_RDWR)
        try:
            self.assertErrno(errno.EAGAIN, fcntl.lockf, fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 5, 15)
            self.assertErrno(errno.EAGAIN, fcntl.lockf, fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, 19)
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)  # bytes 0..9: free
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 20)  # bytes 20..29: free
            # F_GETLK names the holder
            fl = struct.pack("hhqqixxxx", fcntl.F_WRLCK, os.SEEK_SET, 15, 1, 0)
            got = struct.unpack("hhqqixxxx", fcntl.fcntl(fd, fcntl.F_GETLK, fl))
            self.assertEqual((got[0], got[2], got[3], got[4]), (fcntl.F_WRLCK, 10, 10, pid))
            self.release_holder(pid, go)
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 10)
        finally:
            os.close(fd)

    # ---- readdirplus ----

    def test_readdirplus(self):
        d = self.p("plus")
        os.mkdir(d)
        for i in range(300):
            write_file(os.path.join(d, "f%03d" % i), b"x" * i, 0o600 + (i % 64))
        os.mkdir(os.path.join(d, "sub"))
        os.symlink("f001", os.path.join(d, "link"))
        self.remount()  # a kernel with nothing cached
        before = self.stat_count("DoReadDirPlusUsecs")
        listed = {}
        with os.scandir(d) as it:
            for e in it:
                st = e.stat(follow_symlinks=False)
                listed[e.name] = (st.st_ino, st.st_mode, st.st_size, st.st_nlink)
        self.assertGreater(self.stat_count("DoReadDirPlusUsecs"), before)
        self.assertEqual(len(listed), 302)
        for name, got in listed.items():
            st = os.lstat(os.path.join(d, name))
            self.assertEqual(got, (st.st_ino, st.st_mode, st.st_size, st.st_nlink), name)
        self.assertEqual(listed["f100"][1:3], (stat.S_IFREG | 0o644, 100))
        self.assertTrue(stat.S_ISLNK(listed["link"][1]))
        self.assertEqual(listed["sub"][3], 2)
        # ls -l agrees with the changes made since
        os.chmod(os.path.join(d, "f005"), 0o640)
        os.unlink(os.path.join(d, "f006"))
        out = {e.name: stat.S_IMODE(e.stat().st_mode) for e in os.scandir(d)}
        self.assertEqual(out["f005"], 0o640)
        self.assertNotIn("f006", out)


def main():
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse") or not shutil.which("fusermount3"):
        print("SKIP: needs root, /dev/fuse and fusermount3")
        return 0
    test_iclient.ICLIENT, test_imgr.IMGR, test_imgr.ISWIFT = sys.argv[1:4]
    del sys.argv[1:]
    r = unittest.main(verbosity=2, exit=False)
    return 0 if r.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
