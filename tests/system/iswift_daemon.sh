#!/bin/bash
# The iswift executable: sample config with overrides, ephemeral port read
# from its log, the directory store across a restart, the loopback admin
# endpoint, SIGTERM stop with exit 0.
#   usage: iswift_daemon.sh PATH/TO/iswift
set -euo pipefail
bin=$1
src=${PFS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$tmp/log" ] && cat "$tmp/log" >&2; exit 1; }

start() {
  : >"$tmp/log"
  "$bin" "$src/iswift/iswift.conf" ISWIFT.SwiftProxyTCPPort=0 ISWIFT.StoreDirPath="$tmp/store" \
    ISWIFT.FaultAdminEnabled=true ISWIFT.LogFilePath="$tmp/log" ISWIFT.LogToConsole=false &
  pid=$!
  for _ in $(seq 100); do
    port=$(sed -n 's/.*serving http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/log" | tail -1)
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || fail "iswift exited at start"
    sleep 0.1
  done
  [ -n "$port" ] || fail "no port in the log"
  url=http://127.0.0.1:$port
  tok=$(curl -sf -D - -o /dev/null -H "X-Auth-User: test:tester" -H "X-Auth-Key: testing" \
        "$url/auth/v1.0" | tr -d '\r' | sed -n 's/^X-Auth-Token: //Ip')
  [ -n "$tok" ] || fail "no token"
}
stop() {
  kill -TERM "$pid"
  local rc=0
  wait "$pid" || rc=$?
  pid=
  [ "$rc" -eq 0 ] || fail "exit status $rc after SIGTERM"
}
code() { curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $tok" "$@"; }

[ "$("$bin" 2>&1 >/dev/null; echo "rc=$?")" != "rc=0" ] || fail "no conf accepted"
start
[ "$(code -X PUT "$url/v1/AUTH_test")" = 201 ] || fail "account PUT"
[ "$(code -X PUT "$url/v1/AUTH_test/con")" = 201 ] || fail "container PUT"
head -c 100000 /dev/urandom >"$tmp/data"
[ "$(code -X PUT --data-binary @"$tmp/data" "$url/v1/AUTH_test/con/a/b")" = 201 ] || fail "object PUT"
curl -sf -X POST "$url/admin/faults?error_rate=100" >/dev/null || fail "admin POST"
[ "$(code "$url/v1/AUTH_test/con/a/b")" -ge 500 ] || fail "fault not injected"
curl -sf -X POST "$url/admin/faults?error_rate=0" >/dev/null
stop
echo "ok iswift stopped by SIGTERM with exit 0"
start
curl -sf -H "X-Auth-Token: $tok" -o "$tmp/back" "$url/v1/AUTH_test/con/a/b" || fail "GET after restart"
cmp -s "$tmp/data" "$tmp/back" || fail "data changed across restart"
[ "$(curl -sf -H "X-Auth-Token: $tok" "$url/v1/AUTH_test/con")" = "a/b" ] || fail "listing after restart"
stop
echo "ok directory store kept a 100000-byte object across a restart"
