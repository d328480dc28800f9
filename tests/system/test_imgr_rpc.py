#!/usr/bin/env python3
"""Process-level test of imgr's RPC layer (imgr.md 3): a real imgr and a real
iswift on 127.0.0.1 (ephemeral ports), driven by the C retryrpc client
imgr/test/rpc_probe.c, across a SIGTERM restart of imgr on the same
retryrpc port.

Usage: test_imgr_rpc.py PATH-TO-imgr PATH-TO-iswift PATH-TO-rpc_probe
"""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_imgr  # noqa: E402  (the Cluster helper of the imgr component test)

PROBE = None


class TestImgrRPC(unittest.TestCase):
    def setUp(self):
        self.c = test_imgr.Cluster()
        self.c.start_iswift()
        self.token, self.account = self.c.auth()
        self.c.swift("PUT", "/v1/AUTH_test", self.token)
        self.c.swift("PUT", "/v1/AUTH_test/rpccon", self.token)
        self.url = "%s/rpccon" % self.account

    def tearDown(self):
        self.c.close()

    def start(self, port=0, format_first=False):
        self.c.start_imgr("IMGR.RetryRPCPort=%d" % port, "IMGR.MinLeaseDuration=50ms",
                          "IMGR.LeaseInterruptInterval=50ms", "IMGR.TraceEnabled=true")
        m = test_imgr.wait_line(self.c.log, r"retryrpc server listening on 127\.0\.0\.1:(\d+)",
                                self.c.imgr)
        if format_first:
            s, _, b = test_imgr.req(self.c.port, "POST", "/volume", json.dumps(
                {"StorageURL": self.url, "AuthToken": self.token}).encode())
            self.assertEqual(s, 201, b)
        s, _, b = test_imgr.req(self.c.port, "PUT", "/volume/rpcvol",
                                json.dumps({"StorageURL": self.url}).encode())
        self.assertEqual(s, 201, b)
        return int(m.group(1))

    def test_probe_across_restart(self):
        port = self.start(format_first=True)
        p = subprocess.Popen([PROBE, "127.0.0.1", str(port), "rpcvol", self.token],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            line = p.stdout.readline()
            if line.strip() != "PHASE1 DONE":
                p.kill()
                self.fail("phase 1: %r %s" % (line, p.stderr.read()))
            self.assertEqual(self.c.stop_imgr(), 0)
            self.assertEqual(self.start(port), port)
            p.stdin.write("restarted\n")
            p.stdin.flush()
            out, err = p.communicate(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(p.returncode, 0, err)
        self.assertIn("PROBE OK", out)
        with open(self.c.log) as f:
            log = f.read()
        self.assertIn("unmounted (Unmount)", log)
        # TraceEnabled: every RPC on entry and exit, never with the token
        trace = [l for l in log.splitlines() if "==> " in l or "<== " in l]
        self.assertTrue(any("==> Mount(" in l and "(withheld)" in l for l in trace))
        self.assertTrue(any("<== Lease: " in l for l in trace))
        self.assertFalse(any(self.token in l for l in trace))
        # the RPC durations are in GET /stats
        s, _, b = test_imgr.req(self.c.port, "GET", "/stats")
        self.assertEqual(s, 200)
        self.assertIn(b"RPC.MountUsecs", b)
        self.assertIn(b"RPC.ExclusiveLeaseRequestUsecs", b)

    def test_bad_rpc_keys_refused(self):
        for kv, msg in (("IMGR.MountTimeout=bogus", "IMGR.MountTimeout: "),
                        ("IMGR.RetryRPCWorkers=3", "IMGR.RetryRPCWorkers: must be 8..4096"),
                        ("IMGR.LeaseRequestTimeout=0", "IMGR.LeaseRequestTimeout: must be > 0")):
            p = subprocess.run([test_imgr.IMGR, os.path.join(test_imgr.SRC, "imgr", "dev.conf"),
                                "IMGR.HTTPServerPort=0", "IMGR.RetryRPCPort=0", kv,
                                "IMGR.LogFilePath=", "IMGR.LogToConsole=true"],
                               capture_output=True, text=True, timeout=60)
            self.assertNotEqual(p.returncode, 0, kv)
            self.assertIn(msg, p.stderr)


if __name__ == "__main__":
    test_imgr.IMGR, test_imgr.ISWIFT, PROBE = sys.argv[1], sys.argv[2], sys.argv[3]
    del sys.argv[1:4]
    unittest.main(verbosity=2)
