#!/bin/bash
# fsmodel against the FUSE passthrough (tests/bench/passthrough_ll.c) mounted
# over a tmpfs directory: proves both the passthrough and the checker.
#   usage: fsmodel_passthrough.sh PATH/TO/passthrough_ll PATH/TO/fsmodel [OPS] [SEED]
# Needs /dev/fuse and the right to mount (root); skips (exit 0 with a
# message) when FUSE is not available.
set -euo pipefail
pt=$1 model=$2 ops=${3:-20000} seed=${4:-2}
if [ ! -c /dev/fuse ]; then
  echo "SKIP: no /dev/fuse"
  exit 0
fi
base=/dev/shm
[ -d "$base" ] || base=${TMPDIR:-/tmp}
tmp=$(mktemp -d "$base/fsmodel-pt.XXXXXX")
src=$tmp/src mnt=$tmp/mnt
mkdir "$src" "$mnt"
pid=
cleanup() {
  if mountpoint -q "$mnt"; then fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt"; fi
  if [ -n "$pid" ]; then wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

"$pt" -f -o source="$src" "$mnt" &
pid=$!
for _ in $(seq 100); do
  mountpoint -q "$mnt" && break
  kill -0 "$pid" 2>/dev/null || { echo "FAIL: passthrough_ll exited before mounting" >&2; exit 1; }
  sleep 0.1
done
mountpoint -q "$mnt" || { echo "FAIL: $mnt not mounted after 10 s" >&2; exit 1; }

# A file written through the mount lands in the source directory.
echo through-fuse >"$mnt/marker"
[ "$(cat "$src/marker")" = through-fuse ] || { echo "FAIL: marker not in the source" >&2; exit 1; }
rm "$mnt/marker"

"$model" "$mnt" --seed "$seed" --ops "$ops"
# The checker's files went through FUSE to the source directory.
[ -z "$(ls -A "$src")" ] || { echo "FAIL: fsmodel left files in the source" >&2; exit 1; }

fusermount3 -u "$mnt"
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" -eq 0 ] || { echo "FAIL: passthrough_ll exited with $rc after unmount" >&2; exit 1; }
echo "ok passthrough_ll mounted, passed fsmodel ($ops ops) and exited cleanly on unmount"
