#!/bin/bash
# Runs the swiftclient component suite against a real OpenStack Swift
# all-in-one, started here (CI starts from a fresh machine).
#   usage: swift_component_real.sh PATH/TO/swift_component
# The run is skipped (exit 0, "SKIP" line) only when swift-aio.sh cannot start
# Swift on this machine and we are not in CI ($CI set): there it fails.
set -u
bin=$1
aio=${PFS_SOURCE_DIR:-.}/../shared/scripts/swift-aio.sh
skip() {
  if [ -n "${CI:-}" ]; then echo "FAIL: $*" >&2; exit 1; fi
  echo "SKIP real Swift: $*"
  exit 0
}
[ -x "$aio" ] || skip "$aio not found"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
t0=$(date +%s.%N)
if ! "$aio" start >"$log" 2>&1; then
  tail -20 "$log" >&2
  skip "swift-aio.sh start failed (log above)"
fi
t1=$(date +%s.%N)
printf 'swift-aio.sh start took %.1f s\n' "$(echo "$t1 - $t0" | bc)"
"$bin" real http://127.0.0.1:${SWIFT_PROXY_PORT:-8080}/auth/v1.0
