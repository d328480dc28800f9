#!/usr/bin/env python3
"""pjdfstest (POSIX conformance) on an iclient mount, against an expected-failure list.

Usage: test_pjdfstest.py PATH-TO-iclient PATH-TO-imgr PATH-TO-iswift EXPECTED-LIST [OUT-DIR]

Starts iswift + imgr + iclient (test_iclient.Env, with FUSEAllowOther so that
pjdfstest's non-root cases reach the mount), runs
../shared/scripts/pjdfstest.sh beside the repository (PJDFSTEST_SCRIPT overrides the path) on the
mount and compares its per-file failed cases with EXPECTED-LIST. That file has
one line per test file that is allowed to fail:

    chmod/00.t  1-3, 7    # cause
    mknod/03.t  all       # cause

"all" accepts any failure in that file. Fails (exit 1) when a case fails that
is not listed, and prints the listed cases that passed, so that the list only
shrinks. The pjdfstest summary and TAP log are kept in OUT-DIR (default: a
temporary directory that is removed). PJDFSTEST_JOBS and PJDFSTEST_TESTS are
passed through to pjdfstest.sh.

Needs root, /dev/fuse and the pjdfstest sources of pjdfstest.sh (skips otherwise).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_iclient  # noqa: E402
import test_imgr  # noqa: E402

# The workplace's script, beside the repository (as test.sh finds swift-aio.sh).
SCRIPT = os.environ.get("PJDFSTEST_SCRIPT") or os.path.join(
    test_imgr.SRC, "..", "shared", "scripts", "pjdfstest.sh")


def parse_ranges(text):
    """'1-3, 7' -> {1, 2, 3, 7}; 'all' -> None."""
    text = text.strip()
    if text == "all":
        return None
    out = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


def fmt_ranges(cases):
    cases = sorted(cases)
    parts, i = [], 0
    while i < len(cases):
        j = i
        while j + 1 < len(cases) and cases[j + 1] == cases[j] + 1:
            j += 1
        parts.append(str(cases[i]) if i == j else "%d-%d" % (cases[i], cases[j]))
        i = j + 1
    return ", ".join(parts)


def read_expected(path):
    exp = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            name, _, rest = line.partition(" ")
            if not rest.strip():
                raise ValueError("%s:%d: no cases for %s" % (path, n, name))
            cases = parse_ranges(rest)
            if name in exp:
                raise ValueError("%s:%d: %s listed twice" % (path, n, name))
            exp[name] = cases
    return exp


FILE_RE = re.compile(r"^  (\S+\.t)  failed \d+/\S+ \(wstat (\d+)\)(.*)$")


def read_summary(path):
    """(figures dict, {file: set of failed cases or None when the file broke})."""
    figs, failed = {}, {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            m = re.match(r"^(files|test_cases|passed|failed|files_failed|seconds|result): (\S+)$",
                         line)
            if m:
                figs[m.group(1)] = m.group(2)
                continue
            m = FILE_RE.match(line)
            if m:
                t = re.search(r"tests: ([\d, -]+)", m.group(3))
                broken = m.group(2) != "0" or "problems:" in m.group(3)
                failed[m.group(1)] = None if broken else parse_ranges(t.group(1) if t else "")
    return figs, failed


def compare(expected, failed):
    """(unexpected {file: cases}, now passing {file: cases})."""
    unexpected, fixed = {}, {}
    for name, cases in failed.items():
        allowed = expected.get(name, set())
        if allowed is None:
            continue
        if cases is None:
            unexpected[name] = None
        elif cases - allowed:
            unexpected[name] = cases - allowed
    for name, allowed in expected.items():
        if allowed is None:
            if name not in failed:
                fixed[name] = None
            continue
        now = failed.get(name, set())
        if now is not None and allowed - now:
            fixed[name] = allowed - now
    return unexpected, fixed


def main():
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse") or not shutil.which("fusermount3"):
        print("SKIP: needs root, /dev/fuse and fusermount3")
        return 0
    if not os.path.exists(SCRIPT):
        print("SKIP: %s not found" % SCRIPT)
        return 0
    test_iclient.ICLIENT, test_imgr.IMGR, test_imgr.ISWIFT, exp_path = sys.argv[1:5]
    expected = read_expected(exp_path)
    out_dir = sys.argv[5] if len(sys.argv) > 5 else None
    tmp = None
    if not out_dir:
        out_dir = tmp = tempfile.mkdtemp(prefix="pjdfstest-")
    os.makedirs(out_dir, exist_ok=True)
    summary = os.path.join(out_dir, "pjdfstest.summary")
    env = test_iclient.Env(iclient_args=["ICLIENT.FUSEAllowOther=true"]).up()
    try:
        run_env = dict(os.environ, PJDFSTEST_LOG=summary + ".log")
        run_env.setdefault("PJDFSTEST_TIMEOUT", "1800")
        r = subprocess.run(["bash", SCRIPT, env.mnt, summary], env=run_env)
        if r.returncode not in (0, 1):
            print("FAIL: pjdfstest.sh exited with %d" % r.returncode)
            return 1
        alive = env.iclient.poll() is None
    finally:
        env.close()
    figs, failed = read_summary(summary)
    print("pjdfstest on the iclient mount: files %s, cases %s, passed %s, failed %s (%s s)" %
          (figs.get("files"), figs.get("test_cases"), figs.get("passed"), figs.get("failed"),
           figs.get("seconds")))
    unexpected, fixed = compare(expected, failed)
    for name, cases in sorted(fixed.items()):
        print("NOW PASSING (shrink %s): %s %s" % (os.path.basename(exp_path), name,
                                                  "all" if cases is None else fmt_ranges(cases)))
    for name, cases in sorted(unexpected.items()):
        print("UNEXPECTED FAILURE: %s %s" % (name, "(file broke)" if cases is None
                                             else fmt_ranges(cases)))
    ok = not unexpected and alive and int(figs.get("test_cases", "0")) > 0
    if not alive:
        print("FAIL: iclient exited during the run")
    if tmp and ok:
        shutil.rmtree(tmp)
    elif tmp:
        print("summary and TAP log kept in", out_dir)
    print("ok" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
