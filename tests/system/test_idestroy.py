#!/usr/bin/env python3
"""System tests of idestroy (ickpt-idestroy.md Part B).

Usage: test_idestroy.py PATH-TO-idestroy {fake|iswift PATH-TO-iswift|real}

fake    a Swift written here (auth v1, plain listings with marker/limit and a
        configurable page size, HEAD/DELETE), with switches for the failure
        cases: revoked tokens, lagging listings, objects that come back,
        refused DELETEs.
iswift  the project's iswift on an ephemeral port; exit 77 when the binary
        does not exist yet.
real    the Swift all-in-one on 127.0.0.1:8080 (tempauth test:tester/testing)
        with more objects than one listing page (10000) holds; exit 77 when it
        is not reachable.
"""
import os
import pty
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor

from swift_helpers import QuietHandler, reachable, serve, start_iswift, swift_request

IDESTROY = None
ISWIFT = None


class FakeSwift:
    def __init__(self, page=10000):
        self.page = page
        self.containers = {}      # name -> set of object names
        self.generation = 0       # bumps to revoke every token
        self.auth_count = 0
        self.lag = 0              # full listings that still show deleted names
        self.showing_ghosts = False
        self.ghosts = set()
        self.sticky = set()       # names that reappear after DELETE
        self.forbid = set()       # names whose DELETE gets 403
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()
        self.user_agents = set()
        fake = self

        class Handler(QuietHandler):
            def parts(self):
                u = urllib.parse.urlsplit(self.path)
                segs = [urllib.parse.unquote(s) for s in u.path.split("/", 4)[1:]]
                return segs, urllib.parse.parse_qs(u.query)

            def authorized(self):
                fake.user_agents.add(self.headers.get("User-Agent"))
                return self.headers.get("X-Auth-Token") == "AUTH_tk%d" % fake.generation

            def do_GET(self):
                if self.path == "/auth/v1.0":
                    if (self.headers.get("X-Auth-User"), self.headers.get("X-Auth-Key")) != \
                            ("test:tester", "testing"):
                        return self.reply(401, b"Unauthorized")
                    fake.auth_count += 1
                    return self.reply(200, b"", {
                        "X-Auth-Token": "AUTH_tk%d" % fake.generation,
                        "X-Storage-Url": "http://127.0.0.1:%d/v1/AUTH_test" % fake.port})
                if not self.authorized():
                    return self.reply(401)
                segs, q = self.parts()
                if len(segs) != 3:
                    return self.reply(400)
                with fake.lock:
                    objs = fake.containers.get(segs[2])
                    if objs is None:
                        return self.reply(404)
                    names = set(objs)
                    marker = q.get("marker", [""])[0]
                    if marker == "" and fake.lag > 0:
                        fake.lag -= 1  # one more full listing that lags
                        fake.showing_ghosts = True
                    elif marker == "":
                        fake.showing_ghosts = False
                    if fake.showing_ghosts:
                        names |= fake.ghosts
                names = sorted(names, key=lambda n: n.encode())
                limit = min(int(q.get("limit", [fake.page])[0]), fake.page)
                page = [n for n in names if n.encode() > marker.encode()][:limit]
                if not page:
                    return self.reply(204)
                self.reply(200, ("\n".join(page) + "\n").encode(),
                           {"Content-Type": "text/plain; charset=utf-8"})

            def do_HEAD(self):
                if not self.authorized():
                    return self.reply(401)
                segs, _ = self.parts()
                objs = fake.containers.get(segs[2]) if len(segs) == 3 else None
                if objs is None:
                    return self.reply(404)
                self.reply(204, b"", {"X-Container-Object-Count": str(len(objs))})

            def do_DELETE(self):
                if not self.authorized():
                    return self.reply(401)
                segs, _ = self.parts()
                with fake.lock:
                    fake.active += 1
                    fake.max_active = max(fake.max_active, fake.active)
                time.sleep(0.002)  # lets parallel DELETEs overlap
                try:
                    with fake.lock:
                        objs = fake.containers.get(segs[2])
                        if objs is None:
                            return self.reply(404)
                        if len(segs) == 3:
                            if objs:
                                return self.reply(409)
                            del fake.containers[segs[2]]
                            return self.reply(204)
                        name = segs[3]
                        if name in fake.forbid:
                            return self.reply(403)
                        if name not in objs:
                            return self.reply(404)
                        if name not in fake.sticky:
                            objs.discard(name)
                            fake.ghosts.add(name)
                        return self.reply(204)
                finally:
                    with fake.lock:
                        fake.active -= 1

        self.server = serve(Handler)
        self.port = self.server.server_address[1]

    @property
    def auth_url(self):
        return "http://127.0.0.1:%d/auth/v1.0" % self.port

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def write_conf(path, auth_url, container, key="testing", extra=""):
    value = ('{"AuthURL":"%s","AuthUser":"test:tester","AuthKey":"%s",'
             '"Account":"AUTH_test","Container":"%s"}' % (auth_url, key, container))
    with open(path, "w") as f:
        f.write("[ICLIENT]\n"
                "AuthPlugInPath: iauth/iauth-swift/iauth-swift.so\n"
                "AuthPlugInEnvName:\n"
                "AuthPlugInEnvValue: %s\n"
                "SwiftTimeout: 10s\n"
                "SwiftRetryDelay: 10ms\n"
                "SwiftRetryLimit: 2\n%s" % (value.replace(",", "\\u002C"), extra))


def run(args, timeout=600):
    return subprocess.run([IDESTROY] + args, capture_output=True, text=True, timeout=timeout)


class TestFake(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="idestroy-")
        self.swift = FakeSwift(page=100)
        self.conf = os.path.join(self.tmp, "iclient.conf")
        write_conf(self.conf, self.swift.auth_url, "con")

    def tearDown(self):
        self.swift.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def fill(self, n, container="con"):
        self.swift.containers[container] = set("%016X" % i for i in range(n))

    def test_empties_more_than_one_page(self):
        self.fill(250)
        r = run([self.conf])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")  # as quiet as upstream on success
        self.assertIn("deleted 250 objects", r.stderr)
        self.assertEqual(self.swift.containers["con"], set())  # the container stays
        self.assertEqual(self.swift.user_agents, {"idestroy"})
        self.assertEqual(self.swift.max_active, 1)  # default: one DELETE at a time

    def test_parallel_limit(self):
        self.fill(1000)
        r = run(["-parallel", "8", "-page", "300", "-quiet", self.conf])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual((r.stdout, r.stderr), ("", ""))
        self.assertEqual(self.swift.containers["con"], set())
        self.assertGreater(self.swift.max_active, 1)
        self.assertLessEqual(self.swift.max_active, 8)

    def test_missing_container(self):
        r = run([self.conf])
        self.assertEqual(r.returncode, 0)
        self.assertEqual(r.stdout.strip(), "container http://127.0.0.1:%d/v1/AUTH_test/con "
                         "does not exist; nothing to destroy" % self.swift.port)
        r = run(["-strict", self.conf])
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "httpGETResponse.Status unexpected: 404 Not Found\n")

    def test_auth_failure(self):
        write_conf(self.conf, self.swift.auth_url, "con", key="wrong")
        self.fill(3)
        r = run([self.conf])
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "iauth.PerformAuth(AuthPlugInPath, AuthPlugInEnvValue) "
                         "failed: authResponse.Status unexpected: 401 Unauthorized\n")
        self.assertEqual(len(self.swift.containers["con"]), 3)

    def test_token_revoked_mid_run(self):
        self.fill(300)

        def revoke():
            while self.swift.containers["con"] and len(self.swift.containers["con"]) > 150:
                time.sleep(0.01)
            self.swift.generation += 1
        t = threading.Thread(target=revoke)
        t.start()
        r = run([self.conf])
        t.join()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.swift.containers["con"], set())
        self.assertGreaterEqual(self.swift.auth_count, 2)

    def test_lagging_listing(self):
        """Deleted names still listed: their DELETE gets 404, which is success."""
        self.fill(120)
        self.swift.lag = 2  # the first two passes: the second sees the deleted names
        r = run([self.conf])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("already gone", r.stderr)
        self.assertNotIn("(0 already gone)", r.stderr)
        self.assertEqual(self.swift.containers["con"], set())

    def test_objects_remain(self):
        self.fill(10)
        self.swift.sticky.add("0000000000000003")
        r = run(["-passes", "3", self.conf])
        self.assertEqual(r.returncode, 1)
        self.assertIn("objects remain in http://127.0.0.1:%d/v1/AUTH_test/con after 3 passes"
                      % self.swift.port, r.stdout)
        self.assertEqual(self.swift.containers["con"], {"0000000000000003"})

    def test_delete_refused(self):
        self.fill(10)
        self.swift.forbid.add("0000000000000005")
        r = run([self.conf])
        self.assertEqual(r.returncode, 1)
        self.assertIn("httpDELETEResponse.Status unexpected: 403 Forbidden", r.stdout)
        self.assertIn("/con/0000000000000005", r.stdout)

    def test_delete_container_flag(self):
        self.fill(150)
        r = run(["-container", self.conf])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("con", self.swift.containers)
        self.assertIn("container deleted", r.stderr)

    def test_names_are_escaped(self):
        names = {"a b", "x%y", "q?z", "h#t", "\u00e9t\u00e9", "dir/obj", "+plus"}
        self.swift.containers["con"] = set(names)
        r = run([self.conf])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.swift.containers["con"], set())

    def test_progress_on_terminal(self):
        self.fill(400)
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(IDESTROY, [IDESTROY, self.conf])
        out = b""
        while True:
            ready, _, _ = select.select([fd], [], [], 30)
            if not ready:
                break
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            out += data
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, out)
        text = out.decode(errors="replace")
        self.assertRegex(text, r"\rdeleted \d+ / 400 objects, \d+ objects/s")
        self.assertIn("deleted 400 objects", text)

    def test_config_errors(self):
        r = run([])
        self.assertEqual((r.returncode, r.stderr), (1, "no .conf file specified\n"))
        r = run([os.path.join(self.tmp, "missing.conf")])
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.startswith("failed to load config: "))
        r = run([self.conf, "no-equals-sign"])
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.startswith("failed to apply config overrides: "))
        r = run([self.conf, "ICLIENT.AuthPlugInEnvName=SOME_VAR"])
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "If [ICLIENT]AuthPlugInEnvName is present and non-empty, "
                         "[ICLIENT]AuthPlugInEnvValue must be missing or empty\n")
        old = os.path.join(self.tmp, "old.conf")
        with open(old, "w") as f:
            f.write("[ICLIENT]\nPlugInPath: iauth-swift.so\nPlugInEnvValue: x\n")
        r = run([old])
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stdout.startswith(
            'confMap.FetchOptionValueString("ICLIENT", "AuthPlugInPath") failed: '), r.stdout)
        r = run(["-parallel", "0", self.conf])
        self.assertEqual(r.returncode, 1)
        self.assertIn("usage: idestroy", r.stderr)
        # The plug-in input from the environment variable named in the conf.
        self.fill(5)
        env = dict(os.environ)
        env["IDESTROY_AUTH"] = ('{"AuthURL":"%s","AuthUser":"test:tester","AuthKey":"testing",'
                                '"Account":"AUTH_test","Container":"con"}' % self.swift.auth_url)
        r = subprocess.run([IDESTROY, self.conf, "ICLIENT.AuthPlugInEnvName=IDESTROY_AUTH",
                            "ICLIENT.AuthPlugInEnvValue="], capture_output=True, text=True,
                           env=env, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.swift.containers["con"], set())


def populate(storage, token, container, n, threads=8):
    st, _, _ = swift_request("PUT", "%s/%s" % (storage, container), token)
    assert st in (201, 202), st

    def put(i):
        # A loaded one-replica Swift AIO may error-limit its object server or
        # its memcached (token checks) for a while: 503s, or 401s for a valid
        # token. Keep trying for two minutes: filling the container is not
        # what is tested.
        end = time.time() + 120
        while True:
            st, _, _ = swift_request("PUT", "%s/%s/%016X" % (storage, container, i), token,
                                     body=b"x")
            if st == 201:
                return
            if st not in (401, 503) or time.time() > end:
                raise AssertionError("PUT %d: %d" % (i, st))
            time.sleep(1)
    with ThreadPoolExecutor(threads) as ex:
        list(ex.map(put, range(n)))


class TestReal(unittest.TestCase):
    """Real Swift: more objects than one 10000-name listing page."""
    N = 10050

    def test_real_swift(self):
        auth = "http://127.0.0.1:8080/auth/v1.0"
        end = time.time() + 90  # an error-limited memcached answers 503 for a minute
        while True:
            st, h, _ = swift_request("GET", auth, headers={"X-Auth-User": "test:tester",
                                                           "X-Auth-Key": "testing"})
            if st != 503 or time.time() > end:
                break
            time.sleep(1)
        self.assertEqual(st, 200)
        token, storage = h["X-Auth-Token"], h["X-Storage-Url"]
        container = "idestroy-test-" + uuid.uuid4().hex[:12]
        tmp = tempfile.mkdtemp(prefix="idestroy-real-")
        conf = os.path.join(tmp, "iclient.conf")
        try:
            t0 = time.time()
            populate(storage, token, container, self.N)
            t1 = time.time()
            print("\ncreated %d objects in %.1f s" % (self.N, t1 - t0))
            write_conf(conf, auth, container)
            r = run(["-parallel", "8", conf], timeout=900)
            print("idestroy: %.1f s; %s" % (time.time() - t1, r.stderr.strip()))
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("deleted", r.stderr)
            # Every object is gone: the listing of the still existing container is empty.
            st, _, body = swift_request("GET", "%s/%s" % (storage, container), token)
            self.assertIn(st, (200, 204))
            self.assertEqual(body.strip(), b"")
            # Wrong key: clear auth failure, exit 1.
            write_conf(conf, auth, container, key="wrong")
            r = run([conf])
            self.assertEqual(r.returncode, 1)
            self.assertIn("authResponse.Status unexpected: 401 Unauthorized", r.stdout)
            # The emptied container can be removed with -container.
            write_conf(conf, auth, container)
            r = run(["-container", conf])
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            st, _, _ = swift_request("HEAD", "%s/%s" % (storage, container), token)
            self.assertEqual(st, 404)
            # And a missing container: upstream's exact failure with -strict.
            r = run(["-strict", conf])
            self.assertEqual((r.returncode, r.stdout),
                             (1, "httpGETResponse.Status unexpected: 404 Not Found\n"))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class TestIswift(unittest.TestCase):
    """iswift with a 100-name listing page."""

    def test_iswift(self):
        tmp = tempfile.mkdtemp(prefix="idestroy-iswift-")
        proc, base = start_iswift(ISWIFT, tmp, listing_limit=100)
        try:
            st, h, _ = swift_request("GET", base + "/auth/v1.0",
                                     headers={"X-Auth-User": "test:tester",
                                              "X-Auth-Key": "testing"})
            self.assertEqual(st, 200)
            token, storage = h["X-Auth-Token"], h["X-Storage-Url"]
            self.assertIn(swift_request("PUT", storage, token)[0], (201, 202))
            iconf = os.path.join(tmp, "iclient.conf")
            write_conf(iconf, base + "/auth/v1.0", "con")
            r = run([iconf])
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("does not exist; nothing to destroy", r.stdout)
            populate(storage, token, "con", 350, threads=4)
            r = run(["-parallel", "4", iconf])
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("deleted 350 objects", r.stderr)
            st, _, body = swift_request("GET", storage + "/con", token)
            self.assertEqual((st, body), (204, b""))
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    IDESTROY = os.path.abspath(sys.argv[1])
    mode = sys.argv[2] if len(sys.argv) > 2 else "fake"
    if mode == "fake":
        case = TestFake
    elif mode == "iswift":
        ISWIFT = sys.argv[3] if len(sys.argv) > 3 else ""
        if not os.access(ISWIFT, os.X_OK):
            print("iswift binary %r not built: skipped" % ISWIFT)
            sys.exit(77)
        case = TestIswift
    elif mode == "real":
        if not reachable("127.0.0.1", 8080):
            print("Swift all-in-one not reachable on 127.0.0.1:8080: skipped")
            sys.exit(77)
        case = TestReal
    else:
        sys.exit("unknown mode " + mode)
    suite = unittest.TestLoader().loadTestsFromTestCase(case)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    sys.exit(0 if result.wasSuccessful() else 1)
