#!/usr/bin/env python3
"""fsmodel (the random-I/O model checker) on a proxyfs-c mount.

Usage: test_fsmodel_mount.py iclient imgr iswift icert fsmodel [OPS]

Starts iswift, imgr and iclient (test_iclient.Env) and runs OPS (default
100,000) random writes, reads, truncates, fallocates, renames, unlinks and
fsyncs through the mount, each checked against fsmodel's in-memory model.
The seed is FSMODEL_SEED when set, else a new one per run; either way it is
printed ("fsmodel: seed N, ..."), so a failure can be replayed with
FSMODEL_SEED=N. Needs root and /dev/fuse (skips otherwise).
"""
import os
import random
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_iclient  # noqa: E402  (Env: iswift + imgr + iclient)
import test_imgr  # noqa: E402


def main():
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse") or not shutil.which("fusermount3"):
        print("SKIP: needs root, /dev/fuse and fusermount3")
        return 0
    if len(sys.argv) < 6:
        print(__doc__, file=sys.stderr)
        return 2
    test_iclient.ICLIENT, test_imgr.IMGR, test_imgr.ISWIFT, test_iclient.ICERT = sys.argv[1:5]
    fsmodel = sys.argv[5]
    ops = sys.argv[6] if len(sys.argv) > 6 else "100000"
    seed = os.environ.get("FSMODEL_SEED") or str(random.SystemRandom().getrandbits(48))
    e = test_iclient.Env().up()
    try:
        d = os.path.join(e.mnt, "model")
        os.mkdir(d)
        r = subprocess.run([fsmodel, d, "--ops", ops, "--seed", seed],
                           capture_output=True, text=True, timeout=1500)
        print(r.stdout.strip())
        if r.returncode:
            print(r.stderr[-6000:], file=sys.stderr)
            print("iclient log:", e.log_tail(), file=sys.stderr)
            print("replay with FSMODEL_SEED=%s" % seed, file=sys.stderr)
            return 1
        if e.stop_iclient() != 0:
            print("iclient did not stop cleanly:", e.log_tail(), file=sys.stderr)
            return 1
        return 0
    finally:
        e.close()


if __name__ == "__main__":
    sys.exit(main())
