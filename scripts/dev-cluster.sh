#!/usr/bin/env bash
# dev-cluster.sh up|down|status: a local proxyfs-c cluster on 127.0.0.1.
#
#   up      install missing packages, build, start iswift, ickpt and imgr,
#           format the volume (first time) or serve it, mount it at
#           $MOUNTPOINT (default /mnt) with iclient, print the URLs
#   down    unmount and stop everything `up` started (by pid file)
#   status  each daemon: built or not, pid, and whether its HTTP answers
#
# State (pid files, logs, the iswift store, the ickpt database) lives in
# $PFS_STATE_DIR (default /var/tmp/proxyfs-c). The build tree is build/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${PFS_BUILD_DIR:-$root/build}
state=${PFS_STATE_DIR:-/var/tmp/proxyfs-c}
mountpoint=${MOUNTPOINT:-/mnt}

# Daemons in start order: name, HTTP port of its stats page.
daemons=(iswift ickpt imgr iclient)
declare -A http_port=([iswift]=8080 [ickpt]=33123 [imgr]=15346 [iclient]=15347)

binary() { echo "$build/$1/$1"; }
pidfile() { echo "$state/run/$1.pid"; }

running_pid() { # prints the pid if the daemon runs
  local f; f=$(pidfile "$1")
  [ -f "$f" ] || return 1
  local pid; pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

status() {
  local name pid health
  for name in "${daemons[@]}"; do
    if [ ! -x "$(binary "$name")" ]; then
      printf '%-8s not built yet\n' "$name"
    elif pid=$(running_pid "$name"); then
      if curl -fsS -m 2 -o /dev/null "http://127.0.0.1:${http_port[$name]}/version" 2>/dev/null; then
        health="http ok"
      else
        health="http not answering"
      fi
      printf '%-8s running, pid %s, %s (http://127.0.0.1:%s/)\n' "$name" "$pid" "$health" "${http_port[$name]}"
    else
      printf '%-8s built, not running\n' "$name"
    fi
  done
  if mountpoint -q "$mountpoint" 2>/dev/null; then
    echo "mount    $mountpoint is mounted"
  else
    echo "mount    $mountpoint is not mounted"
  fi
}

build_tree() {
  bash scripts/deps.sh
  cmake -S "$root" -B "$build" -Wno-dev >/dev/null
  cmake --build "$build" -j"$(nproc)" -- --no-print-directory >/dev/null
}

up() {
  build_tree
  local missing=() name
  for name in "${daemons[@]}"; do
    [ -x "$(binary "$name")" ] || missing+=("$name")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "dev-cluster: built what exists; not built yet: ${missing[*]}" >&2
    echo "dev-cluster: the cluster cannot start until every daemon exists" >&2
    status
    exit 1
  fi
  echo "dev-cluster: every daemon is built, but starting them is not written yet" >&2
  exit 1
}

down() {
  local name pid
  if mountpoint -q "$mountpoint" 2>/dev/null; then
    fusermount3 -u "$mountpoint" 2>/dev/null || umount -l "$mountpoint" || true
  fi
  for ((i = ${#daemons[@]} - 1; i >= 0; i--)); do
    name=${daemons[$i]}
    if pid=$(running_pid "$name"); then
      kill -TERM "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -0 "$pid" 2>/dev/null && { echo "dev-cluster: $name did not stop; killing" >&2; kill -KILL "$pid"; }
      echo "dev-cluster: stopped $name"
    fi
    rm -f "$(pidfile "$name")"
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
