#!/usr/bin/env python3
"""The README's main command, scripts/dev-cluster.sh, end to end, and the
daemons' HTML pages in headless Chromium.

Usage: test_dev_cluster.py [DevCluster | HtmlPages]   (both when none given)

Each case runs `scripts/dev-cluster.sh up` with its own state directory,
mount point and ports (picked free for this run, so it neither collides with
the fixed development ports, with the Swift all-in-one on 8080, nor with
other tests running at the same time), from the finished build in
PFS_BUILD_DIR (PFS_SKIP_BUILD=1: nothing is rebuilt).

DevCluster: up; files of several sizes written under the mount and read
back (SHA-256); status shows every daemon healthy; down (mount gone, every
daemon stopped); up again: the volume is reused (mkmount.sh -s, not -f) and
every file is there byte for byte; down.

HtmlPages: with the cluster up and files written, Debian's chromium
(headless) loads imgr's home and volume pages and iclient's status page:
each screenshot is a 1200x900 PNG with something drawn on it, and the DOM
(--dump-dom, after scripts ran) holds the volume name and live figures:
imgr's volume table shows testvol with one healthy mount, iclient's page
shows its mount and counters that grow when the mount is used between two
loads. chromium missing is a failure (scripts/deps.sh installs it).

Needs root and /dev/fuse (skips otherwise). On failure the cluster is taken
down, the mount detached and any daemon left is killed.
"""
import glob
import hashlib
import html.parser
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_iclient import pattern, sha  # noqa: E402

SRC = os.environ.get("PFS_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PFS_BUILD_DIR") or os.path.join(SRC, "build")
SCRIPT = os.path.join(SRC, "scripts", "dev-cluster.sh")
PORT_VARS = ("ISWIFT_PORT", "ICKPT_PORT", "IMGR_HTTP_PORT", "IMGR_RPC_PORT", "ICLIENT_HTTP_PORT")


def free_ports(n):
    """n distinct ports nothing listens on now (bound together, then freed)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Cluster:
    """scripts/dev-cluster.sh with a private state dir, mount point and ports."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pfs-devcluster-")
        self.state = os.path.join(self.dir, "state")
        self.mnt = os.path.join(self.dir, "mnt")
        self.ports = dict(zip(PORT_VARS, free_ports(len(PORT_VARS))))
        self.env = dict(os.environ, PFS_STATE_DIR=self.state, MOUNTPOINT=self.mnt,
                        PFS_BUILD_DIR=BUILD, PFS_SKIP_BUILD="1",
                        **{k: str(v) for k, v in self.ports.items()})

    def run(self, cmd, timeout=180):
        r = subprocess.run(["bash", SCRIPT, cmd], env=self.env, capture_output=True, text=True,
                           timeout=timeout)
        return r.returncode, r.stdout + r.stderr

    def logs(self):
        out = []
        for p in sorted(glob.glob(os.path.join(self.state, "log", "*"))):
            with open(p, errors="replace") as f:
                out.append("--- %s\n%s" % (p, f.read()[-3000:]))
        return "\n".join(out)

    def pids(self):
        """Daemon name -> pid from the pid files."""
        out = {}
        for p in glob.glob(os.path.join(self.state, "run", "*.pid")):
            with open(p) as f:
                out[os.path.basename(p)[:-4]] = int(f.read().strip() or 0)
        return out

    def url(self, var, path="/"):
        return "http://127.0.0.1:%d%s" % (self.ports[var], path)

    def close(self):
        """down; then whatever is left: kill daemons, detach the mount."""
        pids = self.pids()
        try:
            self.run("down", timeout=120)
        except subprocess.TimeoutExpired:
            pass
        for pid in pids.values():
            if pid and alive(pid):
                os.kill(pid, signal.SIGKILL)
        subprocess.run(["fusermount3", "-u", "-z", self.mnt], capture_output=True)
        subprocess.run(["umount", "-l", self.mnt], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


class Base(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
            self.skipTest("needs root and /dev/fuse")
        for exe in ("iswift", "ickpt", "imgr", "iclient", "icert"):
            if not os.access(os.path.join(BUILD, exe, exe), os.X_OK):
                self.fail("%s is not built in %s" % (exe, BUILD))
        self.c = Cluster()
        self.addCleanup(self.c.close)

    def up(self):
        rc, out = self.c.run("up")
        self.assertEqual(rc, 0, "dev-cluster.sh up failed:\n%s\n%s" % (out, self.c.logs()))
        self.assertIn("volume testvol is mounted at %s" % self.c.mnt, out)
        self.assertTrue(os.path.ismount(self.c.mnt))
        return out

    def down(self):
        pids = self.c.pids()
        self.assertEqual(sorted(pids), ["ickpt", "iclient", "imgr", "iswift"])
        rc, out = self.c.run("down")
        self.assertEqual(rc, 0, out)
        self.assertFalse(os.path.ismount(self.c.mnt), "still mounted after down")
        for name, pid in pids.items():
            self.assertFalse(alive(pid), "%s (pid %d) still runs after down" % (name, pid))
        self.assertEqual(self.c.pids(), {}, "pid files left after down")


FILES = {  # relative path -> size
    "empty": 0,
    "one": 1,
    "page": 4096,
    "odd": 3 * (1 << 20) + 17,
    "big": 12 * (1 << 20),
    "dir/sub/deep.txt": 1000,
}


class DevCluster(Base):
    def write_files(self):
        sums = {}
        for i, (rel, size) in enumerate(sorted(FILES.items())):
            p = os.path.join(self.c.mnt, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            data = pattern(i, size)
            with open(p, "wb") as f:
                f.write(data)
                os.fsync(f.fileno())
            sums[rel] = (size, hashlib.sha256(data).hexdigest())
        for n in range(20):
            with open(os.path.join(self.c.mnt, "dir", "small%02d" % n), "w") as f:
                f.write("file %d\n" % n)
            sums["dir/small%02d" % n] = (len("file %d\n" % n), None)
        return sums

    def check_files(self, sums):
        for rel, (size, digest) in sorted(sums.items()):
            p = os.path.join(self.c.mnt, rel)
            self.assertEqual(os.path.getsize(p), size, rel)
            if digest:
                self.assertEqual(sha(p), digest, rel)
            else:
                with open(p) as f:
                    self.assertEqual(f.read(), "file %d\n" % int(rel[-2:]), rel)
        self.assertEqual(sorted(os.listdir(os.path.join(self.c.mnt, "dir"))),
                         sorted(["sub"] + ["small%02d" % n for n in range(20)]))

    def test_up_down_up(self):
        t0 = time.time()
        out = self.up()
        t_up = time.time() - t0
        for var in ("IMGR_HTTP_PORT", "ICLIENT_HTTP_PORT"):
            self.assertIn(self.c.url(var), out)
        rc, st = self.c.run("status")
        self.assertEqual(rc, 0, st)
        for name in ("iswift", "ickpt", "imgr", "iclient"):
            self.assertRegex(st, r"(?m)^%s +running, pid \d+, healthy" % name)
        self.assertIn("%s is mounted" % self.c.mnt, st)

        sums = self.write_files()
        self.check_files(sums)
        self.down()
        rc, st = self.c.run("status")
        self.assertRegex(st, r"(?m)^imgr +built, not running")
        self.assertIn("%s is not mounted" % self.c.mnt, st)

        t0 = time.time()
        self.up()
        t_up2 = time.time() - t0
        with open(os.path.join(self.c.state, "log", "mkmount.out")) as f:
            tokens = f.read().count("AuthToken:")
        self.assertEqual(tokens, 2, "mkmount.sh ran once per up")
        self.check_files(sums)
        self.down()
        print("dev-cluster.sh up: %.1f s (first), %.1f s (second)" % (t_up, t_up2))


# ---- headless Chromium ---------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1200,900"]


def chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def png_info(path):
    """(width, height, distinct byte values in the decoded scanlines)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, width, height = 8, b"", 0, 0
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


class Cells(html.parser.HTMLParser):
    """Every table of a document as rows of cell texts; and id -> text."""

    def __init__(self, doc):
        super().__init__()
        self.tables, self.ids, self._cell, self._id = [], {}, None, None
        self.feed(doc)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""
            self._id = dict(attrs).get("id")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            if self.tables and self.tables[-1]:
                self.tables[-1][-1].append(self._cell.strip())
            if self._id:
                self.ids[self._id] = self._cell.strip()
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


class HtmlPages(Base):
    def setUp(self):
        self.browser = chromium()
        if not self.browser:  # before the cluster: nothing to clean up
            self.fail("chromium is not installed (bash scripts/deps.sh installs it)")
        super().setUp()

    def chromium(self, url, *args):
        profile = tempfile.mkdtemp(prefix="chromium-", dir=self.c.dir)
        # A session of its own, so that a hung browser goes with all of its
        # helper processes.
        p = subprocess.Popen([self.browser] + CHROMIUM_FLAGS +
                             ["--user-data-dir=" + profile] + list(args) + [url],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.c.dir,
                             start_new_session=True)
        try:
            out, err = p.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            self.fail("chromium %s: no result in 120 s" % url)
        finally:
            shutil.rmtree(profile, ignore_errors=True)
        self.assertEqual(p.returncode, 0, "chromium %s: %s" % (url, err[-2000:]))
        return out.decode(errors="replace")

    def screenshot(self, url, name):
        png = os.path.join(self.c.dir, name + ".png")
        self.chromium(url, "--screenshot=" + png)
        self.assertTrue(os.path.exists(png), "no screenshot of " + url)
        size = os.path.getsize(png)
        width, height, shades = png_info(png)
        print("%s: %s, %dx%d, %d bytes, %d distinct byte values" %
              (name, url, width, height, size, shades))
        self.assertEqual((width, height), (1200, 900), url)
        self.assertGreater(size, 4000, "%s: a nearly empty image" % url)
        self.assertGreater(shades, 8, "%s: a blank image" % url)
        keep = os.environ.get("PFS_SCREENSHOT_DIR")
        if keep:
            shutil.copy(png, os.path.join(keep, name + ".png"))

    def use_mount(self, n):
        for i in range(n):
            p = os.path.join(self.c.mnt, "f%03d" % i)
            with open(p, "wb") as f:
                f.write(pattern(i, 70000))
            with open(p, "rb") as f:
                self.assertEqual(f.read(), pattern(i, 70000))

    def test_pages(self):
        self.up()
        self.use_mount(5)

        # imgr: home page and the volume list (rendered by the page's script).
        home = self.c.url("IMGR_HTTP_PORT", "/")
        self.screenshot(home, "imgr-home")
        self.assertIn("ProxyFS imgr", self.chromium(home, "--dump-dom"))
        vols = self.c.url("IMGR_HTTP_PORT", "/volume")
        self.screenshot(vols, "imgr-volumes")
        doc = Cells(self.chromium(vols, "--dump-dom"))
        self.assertTrue(doc.tables, "imgr's volume page rendered no table")
        header, *rows = doc.tables[0]
        vol = {k: v for r in rows for k, v in zip(header, r) if r[0] == "testvol"}
        self.assertEqual(vol.get("Name"), "testvol", doc.tables)
        self.assertEqual(vol.get("HealthyMounts"), "1", vol)

        # iclient: its status page, twice, with the mount used in between.
        page = self.c.url("ICLIENT_HTTP_PORT", "/")
        self.screenshot(page, "iclient-status")
        first = Cells(self.chromium(page, "--dump-dom"))
        ids = first.ids
        self.assertEqual(ids.get("volume"), "testvol", ids)
        self.assertEqual(ids.get("mount-point"), self.c.mnt)
        self.assertRegex(ids.get("mount-id", ""), r"^\S+$")
        self.assertGreaterEqual(int(ids["inodes-cached"]), 1)
        self.assertGreaterEqual(int(ids["leases-held"]), 1)
        counts = {r[0]: int(r[1]) for t in first.tables for r in t[1:]
                  if len(r) == 2 and r[1].isdigit() and r[0].startswith(("Do", "Lease", "Flush"))}
        self.assertGreaterEqual(counts.get("DoWriteUsecs", 0), 5, counts)
        self.assertGreaterEqual(counts.get("DoCreateUsecs", 0), 5, counts)
        # The page as served (no browser): the links to the other routes.
        with urllib.request.urlopen(page, timeout=10) as r:
            self.assertTrue(r.headers["Content-Type"].startswith("text/html"))
            served = r.read().decode()
        for link in ("/stats", "/metrics", "/version", "/config", "/leases"):
            self.assertIn('<a href="%s">' % link, served)

        time.sleep(1.1)
        self.use_mount(12)
        again = Cells(self.chromium(page, "--dump-dom"))
        counts2 = {r[0]: int(r[1]) for t in again.tables for r in t[1:]
                   if len(r) == 2 and r[1].isdigit() and r[0].startswith("Do")}
        self.assertGreater(counts2["DoCreateUsecs"], counts["DoCreateUsecs"])
        self.assertGreater(int(again.ids["uptime-s"]), int(ids["uptime-s"]))
        self.assertGreater(int(again.ids["inodes-cached"]), int(ids["inodes-cached"]))
        self.down()


if __name__ == "__main__":
    unittest.main(verbosity=2)
