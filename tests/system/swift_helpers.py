"""Helpers shared by the ickpt and idestroy system tests: a base for the
fake Swift servers, plain Swift requests, reachability, and an iswift
process on an ephemeral port."""
import http.client
import http.server
import os
import re
import socket
import subprocess
import threading
import time
import urllib.parse


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler that logs nothing and has reply()."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def serve(handler):
    """A threading server for handler on 127.0.0.1 and an ephemeral port,
    running in a daemon thread. Stop with shutdown() + server_close()."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def swift_request(method, url, token=None, headers=None, body=None):
    """One request; returns (status, headers, body)."""
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    h = dict(headers or {})
    if token:
        h["X-Auth-Token"] = token
    c.request(method, u.path + ("?" + u.query if u.query else ""), body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.headers, data


def reachable(host, port):
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


def start_iswift(path, tmp, listing_limit=10000):
    """iswift on an ephemeral port with the given listing page size;
    returns (process, base URL). iswift binds port 0 itself and the port is
    read from its log: a port picked here and freed before iswift binds it
    could be taken meanwhile by any other server on the machine."""
    log = os.path.join(tmp, "iswift.log")
    conf = os.path.join(tmp, "iswift.conf")
    with open(conf, "w") as f:
        f.write("[ISWIFT]\nSwiftProxyIPAddr: 127.0.0.1\nSwiftProxyTCPPort: 0\n"
                "MaxAccountNameLength: 256\nMaxContainerNameLength: 256\n"
                "MaxObjectNameLength: 1024\nAccountListingLimit: %d\n"
                "ContainerListingLimit: %d\nLogFilePath: %s\nLogToConsole: false\n"
                % (listing_limit, listing_limit, log))
    proc = subprocess.Popen([path, conf])
    deadline = time.time() + 20
    while time.time() < deadline:
        m = None
        if os.path.exists(log):
            with open(log) as f:
                m = re.search(r"serving http://127\.0\.0\.1:(\d+)", f.read())
        if m:
            return proc, "http://127.0.0.1:%s" % m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("iswift did not start")
