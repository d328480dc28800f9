#!/usr/bin/env python3
"""Crash safety of iclient + imgr (issue 9): nothing fsync-acknowledged is lost.

Usage: test_crash.py PATH-TO-iclient PATH-TO-imgr PATH-TO-iswift PATH-TO-icert

TestCrash: a writer process creates files of random sizes and contents on
the mount, fsyncs each (and its directory) and only then records its name,
size and SHA-256 in a file outside the mount. Over ROUNDS rounds, iclient
and imgr are killed with SIGKILL in turn at a random moment; imgr is started
again with the same configuration and `mkmount.sh -s`, a killed iclient's
stale FUSE mount is detached (fusermount3 -u -z) and iclient started again,
and every recorded file must read back byte for byte (files being written
at the kill may be partial or missing: they were never recorded). After an
imgr kill the writer keeps going through the outage (EIO) and the remount.
Then iclient is stopped and, once imgr is quiet (two walks agree), the volume
is walked through imgr's inspection API (checkpoint ->
superblock -> inode table -> inode heads -> layouts and extents): every
object referenced must exist in Swift, and extents must lie within their
objects; unreferenced objects are garbage (reported, allowed).

TestSwiftFaults: iswift's fault injection (POST /admin/faults): 503s,
latency and dropped connections at a rate iclient's retries absorb (the
writes and reads succeed), then Swift failing every request and answering
slower than SwiftTimeout: operations fail with EIO within the configured
retry budget instead of hanging, and work again once Swift is healthy;
nothing acknowledged is lost.

The seed is CRASH_SEED from the environment, else random; it is printed so
that a failure can be replayed. Needs root and /dev/fuse (skips otherwise).
"""
import errno
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_iclient  # noqa: E402  (Env: iswift + imgr + iclient)
import test_imgr  # noqa: E402

SEED = None
ROUNDS = 6
ICLIENT_ARGS = ["ICLIENT.RetryRPCDeadlineIO=1s", "ICLIENT.SwiftRetryLimit=3",
                "ICLIENT.SwiftRetryDelay=50ms", "ICLIENT.SwiftTimeout=5s"]


def writer_main(mnt, record, seed):
    """The writer process: create, fsync, record; errors (imgr down) are
    retried with a new name; ENOTCONN (iclient gone) ends it."""
    rng = random.Random(seed)
    d = os.path.join(mnt, "w%d" % seed)
    i = 0
    while True:
        try:
            os.makedirs(d, exist_ok=True)
            name = os.path.join(d, "f%05d" % i)
            i += 1
            size = rng.choice([0, 1, rng.randrange(1, 5000), rng.randrange(5000, 300000),
                               rng.randrange(300000, 2500000)])
            data = rng.randbytes(size)
            with open(name, "wb") as f:
                for off in range(0, size, 65536 + rng.randrange(65536)):
                    f.seek(off)  # overlapping writes: some bytes are overwritten
                    f.write(data[off:off + 131072])
                f.flush()  # out of Python's buffer, then fsync
                os.fsync(f.fileno())
            fd = os.open(d, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            with open(record, "a") as r:
                r.write(json.dumps({"path": os.path.relpath(name, mnt), "size": size,
                                    "sha": hashlib.sha256(data).hexdigest()}) + "\n")
                r.flush()
                os.fsync(r.fileno())
        except OSError as e:
            if e.errno == errno.ENOTCONN:
                return 0
            time.sleep(0.1)


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def records(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.endswith("\n")]
    except FileNotFoundError:
        return []


def swift_listing(e):
    """{object name: bytes} of the volume's container."""
    tok, _ = e.c.auth()
    out, marker = {}, ""
    while True:
        s, _, b = e.c.swift("GET", "/v1/AUTH_test/con?format=json&marker=" + marker, tok)
        assert s in (200, 204), s
        page = json.loads(b or b"[]")
        if not page:
            return out
        for o in page:
            out[o["name"]] = o["bytes"]
        marker = page[-1]["name"]


def walk_volume(e):
    """Every object the volume references, with the byte ranges used in it:
    ({name: max end offset}, pending deletes). Raises on a page imgr cannot
    read (imgr walks the whole inode table and each inode's tree)."""
    def get(path):
        s, _, b = test_imgr.req(e.c.port, "GET", path, headers={"Accept": "application/json"})
        assert s == 200, (path, s, b[:300])
        return json.loads(b)

    vol = get("/volume/testvol")
    refs, why = {"0000000000000000": 0}, {}  # the checkpoint object

    def ref(name, end, what):
        refs[name] = max(refs.get(name, 0), end)
        why.setdefault(name, what)

    ref(vol["SuperBlockObjectName"], 0, "superblock")
    for lay in vol["InodeTableLayout"]:
        ref(lay["ObjectName"], lay["ObjectSize"], "inode table layout")
    for ent in vol["InodeTable"]:
        n = ent["InodeNumber"]
        ref(ent["InodeHeadObjectName"], 0, "head of inode %d" % n)
        ino = get("/volume/testvol/inode/%d" % n)
        for lay in ino.get("Layout") or []:
            ref(lay["ObjectName"], lay["ObjectSize"], "layout of inode %d" % n)
        if ino.get("InodeType") == "File":
            for x in ino.get("Payload") or []:
                ref(x["ObjectName"], x["ObjectOffset"] + x["Length"], "extent of inode %d" % n)
    return refs, why, set(vol.get("PendingDeleteObjectNameArray") or [])


class TestCrash(unittest.TestCase):
    def check_records(self, e, rec):
        recs = records(rec)
        for r in recs:
            p = os.path.join(e.mnt, r["path"])
            self.assertEqual(os.path.getsize(p), r["size"], r["path"])
            self.assertEqual(sha(p), r["sha"], r["path"])
        return len(recs)

    def test_kill_rounds(self):
        rng = random.Random(SEED)
        e = test_iclient.Env(iclient_args=ICLIENT_ARGS)
        rec = os.path.join(e.c.dir, "fsynced.jsonl")
        writer = None
        try:
            e.format_volume()
            e.start_iclient()
            for rnd in range(ROUNDS):
                victim = "iclient" if rnd % 2 == 0 else "imgr"
                writer = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--writer",
                                           e.mnt, rec, str(SEED * 100 + rnd)])
                time.sleep(rng.uniform(0.3, 2.5))
                before = len(records(rec))
                if victim == "iclient":
                    e.iclient.kill()
                    e.iclient.wait()
                    e.iclient = None
                    writer.wait(timeout=60)  # ENOTCONN ends it
                    # The stale mount may still look mounted to Env's wait:
                    # detach it here (iclient would detach it too).
                    subprocess.run(["fusermount3", "-u", "-z", e.mnt], check=True)
                    e.start_iclient()
                else:
                    e.c.imgr.kill()
                    e.c.imgr.wait()
                    e.c.imgr = None
                    time.sleep(rng.uniform(0, 1))
                    e.start_imgr()
                    e.mkmount("-s")
                    n = len(records(rec))  # the writer goes on after the remount
                    end = time.time() + 30
                    while len(records(rec)) < n + 2 and time.time() < end:
                        time.sleep(0.1)
                    writer.kill()
                    writer.wait()
                    self.assertGreaterEqual(len(records(rec)), n + 2,
                                            "writer stuck after imgr restart: " + e.log_tail())
                writer = None
                total = self.check_records(e, rec)
                print("round %d: SIGKILL %s, %d files fsynced before it, %d checked" %
                      (rnd, victim, before, total), file=sys.stderr)
            # A quiet volume: no client commits, imgr done checkpointing and
            # deleting (else the walk races imgr's garbage collection).
            self.assertEqual(e.stop_iclient(), 0)
            time.sleep(1)  # two checkpoint intervals: the last commits and deletes
            for _ in range(20):
                refs, why, pending = walk_volume(e)
                objs = swift_listing(e)
                again = walk_volume(e)
                if again[0] == refs and again[2] == pending:
                    break
                time.sleep(0.5)
            missing = sorted("%s (%s%s)" % (n, why.get(n, "checkpoint"),
                                            ", pending delete" if n in pending else "")
                             for n in refs if n not in objs)
            self.assertEqual(missing, [], "referenced objects missing from Swift")
            short = sorted("%s (%s)" % (n, why[n]) for n, end in refs.items() if objs[n] < end)
            self.assertEqual(short, [], "extents beyond their objects' ends")
            garbage = [n for n in objs if n not in refs and n not in pending]
            print("walk: %d objects referenced, %d in Swift, %d pending delete, %d unreferenced "
                  "(garbage)" % (len(refs), len(objs), len(pending), len(garbage)),
                  file=sys.stderr)
        finally:
            if writer and writer.poll() is None:
                writer.kill()
                writer.wait()
            e.close()


class TestSwiftFaults(unittest.TestCase):
    def faults(self, port, **kw):
        q = "&".join("%s=%s" % kv for kv in kw.items())
        s, _, b = test_imgr.req(port, "POST", "/admin/faults?" + q)
        self.assertEqual(s, 200, b)

    def test_faults(self):
        rng = random.Random(SEED)
        # imgr's own Swift requests meet the faults too: give it retries
        e = test_iclient.Env(imgr_args=["IMGR.SwiftRetryLimit=6", "IMGR.SwiftRetryDelay=20ms"],
                             iclient_args=ICLIENT_ARGS + ["ICLIENT.ReadCacheLineCountMax=4",
                                                          "ICLIENT.SwiftTimeout=1s",
                                                          "ICLIENT.SwiftRetryLimit=5"])
        acked = {}
        try:
            port = e.start_iswift_admin()
            e.start_imgr()
            e.mkmount("-fs")
            e.start_iclient()
            # Faults iclient's retries absorb: everything succeeds.
            # (10% of requests fail: with 6 attempts a request fails 1 in 10^6)
            for kind, kw in (("503s", {"error_rate": 10}), ("latency", {"latency_ms": 150}),
                             ("drops", {"drop_rate": 10})):
                self.faults(port, **kw)
                for i in range(4):
                    name = os.path.join(e.mnt, "%s_%d" % (kind, i))
                    data = rng.randbytes(rng.randrange(1, 3000000))
                    test_iclient.write_synced(name, data)
                    acked[name] = data
                for name, data in acked.items():  # reads go to Swift (a 4-line cache)
                    with open(name, "rb") as f:
                        self.assertEqual(f.read(), data, name)
                self.faults(port, error_rate=0, latency_ms=0, drop_rate=0)
                print("%s: %d files written and read back" % (kind, len(acked)), file=sys.stderr)
            # Faults beyond the retry budget: EIO in bounded time, no hang.
            big = os.path.join(e.mnt, "503s_0")
            for kw in ({"error_rate": 100}, {"latency_ms": 3000}):
                self.faults(port, **kw)
                t0 = time.time()
                with self.assertRaises(OSError) as cm:
                    test_iclient.write_synced(os.path.join(e.mnt, "during_outage"),
                                              rng.randbytes(200000))
                self.assertEqual(cm.exception.errno, errno.EIO)
                with self.assertRaises(OSError):
                    with open(big, "rb") as f:
                        f.seek(len(acked[big]) // 2)
                        f.read()
                took = time.time() - t0
                self.assertLess(took, 60, kw)
                self.assertIsNone(e.iclient.poll())
                self.faults(port, error_rate=0, latency_ms=0)
                print("%s: EIO after %.1f s" % (kw, took), file=sys.stderr)
            # Healthy again: works, nothing acknowledged lost.
            test_iclient.write_synced(os.path.join(e.mnt, "after"), b"after")
            for name, data in acked.items():
                with open(name, "rb") as f:
                    self.assertEqual(f.read(), data, name)
            self.assertEqual(e.stop_iclient(), 0)
            e.start_iclient()
            for name, data in acked.items():
                with open(name, "rb") as f:
                    self.assertEqual(f.read(), data, name)
        finally:
            e.close()


def main():
    global SEED
    if len(sys.argv) == 5 and sys.argv[1] == "--writer":
        return writer_main(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse") or not shutil.which("fusermount3"):
        print("SKIP: needs root, /dev/fuse and fusermount3")
        return 0
    test_iclient.ICLIENT, test_imgr.IMGR, test_imgr.ISWIFT, test_iclient.ICERT = sys.argv[1:5]
    SEED = int(os.environ.get("CRASH_SEED") or random.SystemRandom().randrange(1, 1 << 30))
    print("CRASH_SEED=%d (set it to replay)" % SEED, file=sys.stderr)
    del sys.argv[1:]
    r = unittest.main(verbosity=2, exit=False)
    if not r.result.wasSuccessful():
        print("CRASH_SEED=%d failed" % SEED, file=sys.stderr)
    return 0 if r.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
