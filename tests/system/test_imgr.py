#!/usr/bin/env python3
"""Component tests of the imgr daemon over its REST API (imgr.md 2, 5.2).

Usage: test_imgr.py PATH-TO-imgr PATH-TO-iswift PATH-TO-mkmount.sh [PATH-TO-ickpt [PATH-TO-icert]]

Starts iswift and imgr on 127.0.0.1 with ephemeral ports (read back from
their log lines) and temporary configs, then drives the REST API and
mkmount.sh: format, serve, list, volume and inode views (JSON and HTML),
error statuses, keepalive, SIGTERM restart and kill -9 restart. The inode
table entry API (no REST form) is tested by imgr/test/test_imgr_volume.c.
"""
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from datetime import datetime

IMGR = ISWIFT = MKMOUNT = ICKPT = ICERT = None
SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def wait_line(path, pattern, proc, timeout=20):
    rx = re.compile(pattern)
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(path):
            with open(path, errors="replace") as f:
                m = rx.search(f.read())
            if m:
                return m
        if proc.poll() is not None:
            raise RuntimeError("process exited: %s" % open(path).read())
        time.sleep(0.05)
    raise RuntimeError("timeout waiting for %r in %s" % (pattern, path))


def req(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.getheader("Content-Type"), data


class Cluster:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="imgr_test_")
        self.iswift = self.imgr = None

    def start_iswift(self, *extra):
        """extra: ISWIFT.Key=value overrides (e.g. a larger MaxMemoryBytes)."""
        conf = os.path.join(self.dir, "iswift.conf")
        with open(conf, "w") as f:
            f.write("[ISWIFT]\nSwiftProxyIPAddr: 127.0.0.1\nSwiftProxyTCPPort: 0\n"
                    "MaxAccountNameLength: 256\nMaxContainerNameLength: 256\n"
                    "MaxObjectNameLength: 1024\nAccountListingLimit: 10000\n"
                    "ContainerListingLimit: 10000\nEmulateRealSwift: true\n"
                    "LogFilePath: %s/iswift.log\nLogToConsole: false\n" % self.dir)
        self.iswift = subprocess.Popen([ISWIFT, conf] + list(extra))
        m = wait_line(os.path.join(self.dir, "iswift.log"), r"serving http://127\.0\.0\.1:(\d+)",
                      self.iswift)
        self.swift_port = int(m.group(1))

    def start_imgr(self, *extra):
        self.log = os.path.join(self.dir, "imgr%d.log" % time.time_ns())
        self.imgr = subprocess.Popen(
            [IMGR, os.path.join(SRC, "imgr", "dev.conf"), "IMGR.HTTPServerPort=0", "IMGR.RetryRPCPort=0",
             "IMGR.LogFilePath=" + self.log, "IMGR.LogToConsole=false",
             "IMGR.CheckPointInterval=500ms", "IMGR.SwiftRetryLimit=1",
             "IMGR.SwiftRetryDelay=10ms", "IMGR.HTTPMaxBodySize=4096"] + list(extra))
        m = wait_line(self.log, r"HTTP server listening on 127\.0\.0\.1:(\d+)", self.imgr)
        wait_line(self.log, r"\bUP\b", self.imgr)
        self.port = int(m.group(1))

    def stop_imgr(self, sig=signal.SIGTERM):
        self.imgr.send_signal(sig)
        rc = self.imgr.wait(timeout=60)
        self.imgr = None
        return rc

    def auth(self):
        s, _, _ = 0, None, None
        c = http.client.HTTPConnection("127.0.0.1", self.swift_port, timeout=10)
        c.request("GET", "/auth/v1.0", headers={"X-Auth-User": "test:tester",
                                                "X-Auth-Key": "testing"})
        r = c.getresponse()
        r.read()
        tok, url = r.getheader("X-Auth-Token"), r.getheader("X-Storage-Url")
        c.close()
        return tok, url

    def swift(self, method, path, token, body=None):
        return req(self.swift_port, method, path, body, {"X-Auth-Token": token})

    def close(self):
        for p in (self.imgr, self.iswift):
            if p and p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class TestImgr(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster()
        cls.c.start_iswift()
        cls.c.start_imgr()
        cls.token, cls.account = cls.c.auth()

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def get(self, path, **h):
        return req(self.c.port, "GET", path, headers=h)

    def mkmount(self, *flags, container="con", volume="testvol"):
        env = dict(os.environ, SWIFT_ADDR="127.0.0.1:%d" % self.c.swift_port,
                   IMGR_ADDR="127.0.0.1:%d" % self.c.port, CONTAINER=container,
                   VOLUME=volume, MKMOUNT_TRIES="20")
        return subprocess.run(["bash", MKMOUNT] + list(flags), env=env,
                              capture_output=True, timeout=120)

    def test_1_basics(self):
        s, ct, b = self.get("/version")
        self.assertEqual((s, ct), (200, "text/plain"))
        self.assertRegex(b.decode(), r"^\d+\.\d+\.\d+$")
        s, ct, b = self.get("/config")
        self.assertEqual((s, ct), (200, "application/json"))
        cfg = json.loads(b)
        self.assertEqual(list(cfg)[:4], ["PublicIPAddr", "PrivateIPAddr", "RetryRPCPort",
                                         "HTTPServerPort"])
        self.assertEqual(cfg["CheckPointInterval"], 500000000)
        self.assertIsNone(cfg["CheckPointIPAddrs"])
        s, ct, b = self.get("/stats")
        self.assertEqual(s, 200)
        self.assertIn(b"GetConfigUsecs", b)
        s, _, b = self.get("/metrics")
        self.assertEqual(s, 200)
        s, ct, b = self.get("/", Accept="text/html")
        self.assertEqual((s, ct), (200, "text/html"))
        self.assertIn(b"ProxyFS imgr", b)
        s, ct, b = self.get("/config", Accept="text/html,application/xhtml+xml")
        self.assertEqual(ct, "text/html")
        self.assertEqual(self.get("/volume")[2], b"[]")
        self.assertEqual(self.get("/nothing")[0], 404)
        self.assertEqual(self.get("/volumeX")[0], 404)
        self.assertEqual(req(self.c.port, "PATCH", "/volume")[0], 405)

    def test_2_format_and_serve(self):
        p = self.mkmount("-f", "-s")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"AuthToken: AUTH_", p.stdout)
        s, _, b = self.c.swift("GET", "/v1/AUTH_test/con", self.token)
        self.assertEqual(s, 200)
        self.assertEqual(b, b"0000000000000000\n2000000000000000\n3000000000000000\n")
        s, _, b = self.c.swift("GET", "/v1/AUTH_test/con/0000000000000000", self.token)
        self.assertEqual(b, b"%016X %016X %016X %016X" % (1, 3, 96, 3))
        url = "http://127.0.0.1:%d/v1/AUTH_test/con" % self.c.swift_port
        s, _, b = self.get("/volume")
        self.assertEqual(b.decode(), '[{"Name":"testvol","StorageURL":"%s","AuthToken":"%s",'
                         '"HealthyMounts":0,"LeasesExpiredMounts":0,"AuthTokenExpiredMounts":0}]'
                         % (url, self.token))
        s, ct, b = self.get("/volume/testvol")
        self.assertEqual((s, ct), (200, "application/json"))
        v = json.loads(b)
        self.assertEqual(v["SuperBlockObjectName"], "3000000000000000")
        self.assertEqual(v["SuperBlockLength"], 96)
        self.assertEqual(v["InodeTableLayout"], [{"ObjectName": "3000000000000000",
                                                  "ObjectSize": 58, "BytesReferenced": 58}])
        self.assertEqual(v["InodeTable"], [{"InodeNumber": 1,
                                            "InodeHeadObjectName": "2000000000000000",
                                            "InodeHeadLength": 174}])
        s, ct, b = self.get("/volume/testvol/inode/1")
        self.assertEqual(s, 200)
        ino = json.loads(b)
        self.assertEqual(ino["InodeType"], "Dir")
        self.assertEqual(ino["Mode"], 511)
        self.assertEqual([p["BaseName"] for p in ino["Payload"]], [".", ".."])
        for k in ("ModificationTime", "StatusChangeTime"):
            datetime.strptime(ino[k], "%Y-%m-%dT%H:%M:%SZ")
        s, ct, b = self.get("/volume/testvol", Accept="text/html")
        self.assertEqual((s, ct), (200, "text/html"))
        self.assertIn(b"InodeTable", b)
        s, ct, b = self.get("/volume/testvol/inode/1", Accept="text/html")
        self.assertEqual((s, ct), (200, "text/html"))
        s, ct, b = self.get("/volume", Accept="text/html")
        self.assertIn(b"testvol", b)

    def test_3_bad_input(self):
        port = self.c.port
        self.assertEqual(req(port, "POST", "/volume", b"{not json")[0], 400)
        self.assertEqual(req(port, "POST", "/volume", b"[]")[0], 400)
        self.assertEqual(req(port, "POST", "/volume", b"{}")[0], 400)
        self.assertEqual(req(port, "PUT", "/volume/x", b"{bad")[0], 400)
        self.assertEqual(req(port, "PUT", "/volume/x/y", b"{}")[0], 400)
        self.assertEqual(req(port, "PUT", "/volume/x", b'{"StorageURL":"nonsense"}')[0], 400)
        self.assertEqual(req(port, "DELETE", "/volume/nope")[0], 404)
        self.assertEqual(req(port, "DELETE", "/volume")[0], 400)
        s, ct, b = req(port, "POST", "/volume", b"x" * 10000)
        self.assertEqual(s, 413)
        self.assertEqual(self.get("/volume/nope")[0], 404)
        self.assertEqual(self.get("/volume/testvol/inode/abc")[0], 400)
        self.assertEqual(self.get("/volume/testvol/inode/99")[0], 404)
        self.assertEqual(self.get("/volume/testvol/x/1")[0], 400)
        self.assertEqual(self.get("/volume/testvol/inode/1/x")[0], 400)
        # Already formatted / served.
        s, _, b = req(port, "POST", "/volume", json.dumps(
            {"StorageURL": "http://127.0.0.1:%d/v1/AUTH_test/con" % self.c.swift_port,
             "AuthToken": self.token}).encode())
        self.assertEqual(s, 409)
        self.assertIn(b"already formatted", b)
        self.assertEqual(self.mkmount("-s").returncode, 0)  # PUT again: 409, ignored
        s, _, _ = req(port, "PUT", "/volume/testvol", json.dumps(
            {"StorageURL": "http://127.0.0.1:1/v1/AUTH_test/con"}).encode())
        self.assertEqual(s, 409)
        # A wrong token (case-insensitive member names, as Go decodes).
        self.c.swift("PUT", "/v1/AUTH_test/other", self.token)
        s, _, b = req(port, "POST", "/volume", json.dumps(
            {"storageurl": "http://127.0.0.1:%d/v1/AUTH_test/other" % self.c.swift_port,
             "authtoken": "AUTH_wrong"}).encode())
        self.assertEqual(s, 401, b)
        # A storage URL that does not answer: a clear status, nobody else hurt.
        s, _, _ = req(port, "PUT", "/volume/dead", json.dumps(
            {"StorageURL": "http://127.0.0.1:1/v1/AUTH_test/c", "AuthToken": "x"}).encode())
        self.assertEqual(s, 201)
        s, _, b = self.get("/volume/dead")
        self.assertEqual(s, 502, b)
        self.assertEqual(self.get("/volume/testvol")[0], 200)
        # Served without a token: fresh reads need one (401), or a header.
        s, _, _ = req(port, "PUT", "/volume/notoken", json.dumps(
            {"StorageURL": "http://127.0.0.1:%d/v1/AUTH_test/con" % self.c.swift_port}).encode())
        self.assertEqual(s, 201)
        self.assertEqual(self.get("/volume/notoken")[0], 401)
        self.assertEqual(self.get("/volume/notoken", **{"X-Auth-Token": self.token})[0], 200)
        for n in ("dead", "notoken"):
            self.assertEqual(req(port, "DELETE", "/volume/" + n)[0], 204)
        self.assertEqual(req(port, "DELETE", "/volume/dead")[0], 404)

    def test_4_restart(self):
        before = json.loads(self.get("/volume/testvol")[2])
        self.assertEqual(self.c.stop_imgr(), 0)
        self.c.start_imgr()
        self.assertEqual(self.get("/volume")[2], b"[]")
        self.assertEqual(self.mkmount("-s").returncode, 0)
        after = json.loads(self.get("/volume/testvol")[2])
        self.assertEqual(before["InodeTable"], after["InodeTable"])
        self.assertEqual(before["ReservedToNonce"], after["ReservedToNonce"])
        self.c.stop_imgr(signal.SIGKILL)
        self.c.start_imgr()
        self.assertEqual(self.mkmount("-s").returncode, 0)
        after = json.loads(self.get("/volume/testvol")[2])
        self.assertEqual(before["InodeTable"], after["InodeTable"])

    def test_5_keepalive(self):
        port = self.c.port
        self.assertEqual(self.get("/keepalive")[0], 404)
        self.assertEqual(req(port, "PUT", "/keepalive/nonsense")[0], 400)
        self.assertEqual(req(port, "PUT", "/keepalive/2s")[0], 204)
        s, _, b = self.get("/keepalive")
        self.assertEqual((s, b), (200, b"2000000000ns"))
        self.assertEqual(len(json.loads(self.get("/volume")[2])), 1)
        time.sleep(3.5)
        self.assertEqual(self.get("/volume")[2], b"[]")
        self.assertEqual(self.get("/keepalive")[0], 404)
        self.assertEqual(req(port, "PUT", "/keepalive/1h")[0], 204)
        self.assertEqual(req(port, "DELETE", "/keepalive")[0], 204)
        self.assertEqual(self.get("/keepalive")[0], 404)

    def test_6_help(self):
        p = subprocess.run(["bash", MKMOUNT, "-h"], capture_output=True)
        self.assertEqual(p.returncode, 0)
        self.assertIn(b"usage", p.stdout)
        p = subprocess.run(["bash", MKMOUNT, "-x"], capture_output=True)
        self.assertEqual(p.returncode, 1)


class TestStartup(unittest.TestCase):
    """Start-up failures: exit 1 with a message naming the problem."""

    def run_imgr(self, *args):
        return subprocess.run([IMGR] + list(args), capture_output=True, timeout=60)

    def test_errors(self):
        p = self.run_imgr()
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"no .conf file specified", p.stderr)
        dev = os.path.join(SRC, "imgr", "dev.conf")
        p = self.run_imgr(dev, "IMGR.HTTPServerPort")
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"failed to apply config overrides", p.stderr)
        with tempfile.TemporaryDirectory() as d:
            conf = os.path.join(d, "imgr.conf")
            with open(dev) as f, open(conf, "w") as g:
                g.write("".join(l for l in f if not l.startswith("MountLimit:")))
            p = self.run_imgr(conf, "IMGR.HTTPServerPort=0")
            self.assertEqual(p.returncode, 1)
            self.assertIn(b"MountLimit", p.stderr)
            self.assertIn(b"imgrpkg.Start() failed", p.stderr)
            p = self.run_imgr(dev, "IMGR.HTTPServerPort=0", "IMGR.RetryRPCCertFilePath=/nonexistent",
                              "IMGR.RetryRPCKeyFilePath=/nonexistent")
            self.assertEqual(p.returncode, 1)
            self.assertIn(b"not a usable key pair", p.stderr)
            if ICERT and os.path.exists(ICERT):
                for args in (["-ca", "-caCert", d + "/ca.pem", "-caKey", d + "/cakey.pem"],
                             ["-caCert", d + "/ca.pem", "-caKey", d + "/cakey.pem", "-cert",
                              d + "/cert.pem", "-key", d + "/key.pem", "-ip", "127.0.0.1"]):
                    subprocess.run([ICERT, "-ed25519", "-ttl", "10"] + args, check=True,
                                   capture_output=True)
                log = os.path.join(d, "imgr.log")
                proc = subprocess.Popen([IMGR, dev, "IMGR.HTTPServerPort=0",
                                         "IMGR.RetryRPCPort=0", "IMGR.LogFilePath=" + log, "IMGR.LogToConsole=false",
                                         "IMGR.RetryRPCCertFilePath=%s/cert.pem" % d,
                                         "IMGR.RetryRPCKeyFilePath=%s/key.pem" % d])
                try:
                    wait_line(log, r"\bUP\b", proc)
                finally:
                    proc.send_signal(signal.SIGTERM)
                    self.assertEqual(proc.wait(timeout=30), 0)


class TestImgrWithIckpt(unittest.TestCase):
    """Checkpoints go to object 0 and to ickpt; reads come from ickpt."""

    def start(self, tls=False):
        if not ICKPT or not os.path.exists(ICKPT):
            self.skipTest("ickpt not built")
        if tls and (not ICERT or not os.path.exists(ICERT)):
            self.skipTest("icert not built")
        self.c = Cluster()
        self.c.start_iswift()
        d = self.c.dir
        tls_keys = "CertFilePath:\nKeyFilePath:\nCACertFilePath:\n"
        imgr_tls = []
        if tls:
            for args in (["-ca", "-commonName", "RootCA", "-caCert", d + "/ca.pem", "-caKey",
                          d + "/cakey.pem"],
                         ["-commonName", "ickpt", "-caCert", d + "/ca.pem", "-caKey",
                          d + "/cakey.pem", "-cert", d + "/cert.pem", "-key", d + "/key.pem",
                          "-ip", "127.0.0.1"]):
                subprocess.run([ICERT, "-ed25519", "-ttl", "10"] + args, check=True,
                               capture_output=True)
            tls_keys = ("CertFilePath: %s/cert.pem\nKeyFilePath: %s/key.pem\n"
                        "CACertFilePath: %s/ca.pem\n" % (d, d, d))
            # The same pair serves as imgr's retryrpc key pair (checked at start).
            imgr_tls = ["IMGR.CheckPointCACertFilePath=%s/ca.pem" % d,
                        "IMGR.RetryRPCCertFilePath=%s/cert.pem" % d,
                        "IMGR.RetryRPCKeyFilePath=%s/key.pem" % d]
        conf = os.path.join(d, "ickpt.conf")
        with open(conf, "w") as f:
            f.write("[ICKPT]\nIPAddr: 127.0.0.1\nPort: 0\n%sDataBasePath: %s/ickptdb\n"
                    "SwiftTimeout: 10s\nSwiftConnectionPoolSize: 4\nTransactionTimeout: 10s\n"
                    "LogFilePath: %s/ickpt.log\nLogToConsole: false\nTraceEnabled: false\n"
                    % (tls_keys, d, d))
        self.ickpt = subprocess.Popen([ICKPT, conf])
        try:
            m = wait_line(os.path.join(d, "ickpt.log"), r"serving https?://[^:]+:(\d+)",
                          self.ickpt)
        except RuntimeError as e:
            if tls and "not implemented" in str(e):
                self.skipTest("this ickpt has no TLS yet")
            raise
        self.ickpt_port = int(m.group(1))
        self.c.start_imgr("IMGR.CheckPointIPAddrs=127.0.0.1",
                          "IMGR.CheckPointPort=%d" % self.ickpt_port,
                          "IMGR.CheckPointRetryLimit=1", "IMGR.CheckPointRetryDelay=10ms",
                          *imgr_tls)
        self.token, _ = self.c.auth()
        env = dict(os.environ, SWIFT_ADDR="127.0.0.1:%d" % self.c.swift_port,
                   IMGR_ADDR="127.0.0.1:%d" % self.c.port, MKMOUNT_TRIES="20")
        p = subprocess.run(["bash", MKMOUNT, "-f", "-s"], env=env, capture_output=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)

    def tearDown(self):
        if hasattr(self, "ickpt") and self.ickpt.poll() is None:
            self.ickpt.kill()
            self.ickpt.wait()
        if hasattr(self, "c"):
            self.c.close()

    def test_ickpt_tls(self):
        self.start(tls=True)
        s, _, b = req(self.c.port, "GET", "/volume/testvol")
        self.assertEqual(s, 200, b)
        self.assertEqual(json.loads(b)["SuperBlockLength"], 96)
        # imgr trusting another CA cannot read the checkpoint.
        self.c.stop_imgr()
        d = self.c.dir
        subprocess.run([ICERT, "-ed25519", "-ttl", "10", "-ca", "-commonName", "OtherCA",
                        "-caCert", d + "/ca2.pem",
                        "-caKey", d + "/ca2key.pem"], check=True, capture_output=True)
        self.c.start_imgr("IMGR.CheckPointIPAddrs=127.0.0.1",
                          "IMGR.CheckPointPort=%d" % self.ickpt_port,
                          "IMGR.CheckPointRetryLimit=0",
                          "IMGR.CheckPointCACertFilePath=%s/ca2.pem" % d)
        s, _, b = req(self.c.port, "PUT", "/volume/testvol", json.dumps(
            {"StorageURL": "http://127.0.0.1:%d/v1/AUTH_test/con" % self.c.swift_port,
             "AuthToken": self.token}).encode())
        self.assertEqual(s, 201)
        self.assertEqual(req(self.c.port, "GET", "/volume/testvol")[0], 502)

    def test_ickpt(self):
        self.start()
        url = "http://127.0.0.1:%d/v1/AUTH_test/con" % self.c.swift_port
        want = b"%016X %016X %016X %016X" % (1, 3, 96, 3)
        s, _, b = req(self.ickpt_port, "GET", "/", headers={
            "X-Storage-Url": url + "/0000000000000000", "X-Auth-Token": self.token})
        self.assertEqual((s, b), (200, want))
        self.assertEqual(req(self.c.port, "GET", "/volume/testvol")[0], 200)
        # Object 0 damaged: imgr still reads the checkpoint from ickpt.
        self.c.swift("PUT", "/v1/AUTH_test/con/0000000000000000", self.token, b"garbage")
        s, _, b = req(self.c.port, "GET", "/volume/testvol")
        self.assertEqual(s, 200, b)
        self.assertEqual(json.loads(b)["SuperBlockLength"], 96)
        # ickpt gone: a clear error, imgr keeps serving.
        self.ickpt.kill()
        self.ickpt.wait()
        s, _, b = req(self.c.port, "GET", "/volume/testvol")
        self.assertEqual(s, 502, b)
        self.assertEqual(req(self.c.port, "GET", "/version")[0], 200)


if __name__ == "__main__":
    IMGR, ISWIFT, MKMOUNT = sys.argv[1:4]
    ICKPT = sys.argv[4] if len(sys.argv) > 4 else None
    ICERT = sys.argv[5] if len(sys.argv) > 5 else None
    if not os.path.exists(ISWIFT):
        print("iswift not built")
        sys.exit(77)
    unittest.main(argv=sys.argv[:1], verbosity=2)
