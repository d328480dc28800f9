"""Helpers shared by the ickpt and idestroy system tests: plain Swift
requests, reachability, and an iswift process on an ephemeral port."""
import http.client
import os
import socket
import subprocess
import time
import urllib.parse


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
    returns (process, base URL)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    conf = os.path.join(tmp, "iswift.conf")
    with open(conf, "w") as f:
        f.write("[ISWIFT]\nSwiftProxyIPAddr: 127.0.0.1\nSwiftProxyTCPPort: %d\n"
                "MaxAccountNameLength: 256\nMaxContainerNameLength: 256\n"
                "MaxObjectNameLength: 1024\nAccountListingLimit: %d\n"
                "ContainerListingLimit: %d\n" % (port, listing_limit, listing_limit))
    proc = subprocess.Popen([path, conf])
    base = "http://127.0.0.1:%d" % port
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            if swift_request("GET", base + "/info")[0] == 200:
                return proc, base
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("iswift did not start")
