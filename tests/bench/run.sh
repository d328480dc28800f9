#!/usr/bin/env bash
# run.sh [TARGET ...]: the same file system workloads (tests/bench/fsbench.c)
# on each TARGET, then one table with the figures, the ratios and peak RSS.
#
#   passthrough  tests/bench/passthrough_ll mounted over a tmpfs directory:
#                what FUSE itself costs here, the limit for any FUSE mount
#   rclone       `rclone mount --vfs-cache-mode writes` of a container in iswift
#                (swift backend, auth v1): the peer a user would pick instead
#   proxyfs      the proxyfs-c mount over iswift: a cluster of its own
#                (scripts/dev-cluster.sh up, fresh state, ports BENCH_*_PORT,
#                default 18080, 18123, 18346, 18356, 18347); skipped while
#                build/iclient/iclient does not exist
# Every store is on tmpfs (/dev/shm): passthrough's files and both iswifts'
# objects, so that no target pays for a disk the others do not use.
#
# What the rclone figures mean: with --vfs-cache-mode writes a written file
# goes to a local cache, fsync syncs only that, and the upload to Swift runs
# in the background after close (--vfs-write-back, 5 s); its write figures
# are local-disk figures, as a user of it would see them.
#
# Default: all three, in that order. Needs root (FUSE mounts, drop_caches).
# Figures are rates (MB/s, ops/s, files/s, entries/s): higher is better, so
# a ratio proxyfs/other above 1 means proxyfs-c is faster. Not a test: it
# asserts nothing about time.
#
# Sizes (environment; K/M/G suffixes are binary):
#   BENCH_SEQ_BYTES=1G      sequential file (write+fsync, cold and warm read)
#   BENCH_BLOCK=1M          sequential I/O size
#   BENCH_RAND_READS=20000  random 4 KiB reads of that file (cold)
#   BENCH_FILES=10000       creates in one directory, then stat, ls -l, unlink
#   BENCH_DIRS=1000         mkdir then rmdir
#   BENCH_SMALL_FILES=2000  small files written (syncfs) then read (cold)
#   BENCH_SMALL_SIZE=16K
#   BENCH_CAP_SECONDS=60    each workload stops there and reports what it did
#   BENCH_TAR_SRC=/usr/include  tree to untar (tarred once, symlinks left out)
#   BENCH_QUICK=1           shorthand: 256M file, 2000 files, 500 dirs,
#                           500 small files, 5000 random reads (explicit
#                           BENCH_* values still win)
# Other knobs:
#   BENCH_WORK=/var/tmp/proxyfs-c-bench  tarball, results, logs, rclone cache
#   PASSTHROUGH_OPTS=            -o options of passthrough_ll added to source=
#                                (e.g. writeback, cache=always). None by default:
#                                iclient asks for no writeback cache either, and
#                                here it slows the fsync-ended sequential write
#   PFS_BUILD_DIR=build
#   ICLIENT_OVERRIDES=           ICLIENT.Key=value settings for proxyfs's
#                                iclient (scripts/dev-cluster.sh), e.g.
#                                "ICLIENT.ReadCacheLineSize=262144"
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
build=${PFS_BUILD_DIR:-$root/build}
work=${BENCH_WORK:-/var/tmp/proxyfs-c-bench}

if [ "${BENCH_QUICK:-0}" = 1 ]; then
  : "${BENCH_SEQ_BYTES:=256M}" "${BENCH_FILES:=2000}" "${BENCH_DIRS:=500}"
  : "${BENCH_SMALL_FILES:=500}" "${BENCH_RAND_READS:=5000}"
fi
fsbench_args=(
  --seq-bytes "${BENCH_SEQ_BYTES:-1G}" --block "${BENCH_BLOCK:-1M}"
  --rand-reads "${BENCH_RAND_READS:-20000}" --files "${BENCH_FILES:-10000}"
  --dirs "${BENCH_DIRS:-1000}" --small-files "${BENCH_SMALL_FILES:-2000}"
  --small-size "${BENCH_SMALL_SIZE:-16K}" --cap-seconds "${BENCH_CAP_SECONDS:-60}"
)
tar_src=${BENCH_TAR_SRC:-/usr/include}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(passthrough rclone proxyfs)
for t in "${targets[@]}"; do
  case $t in passthrough | rclone | proxyfs) ;; *)
    echo "run.sh: unknown target '$t' (passthrough, rclone, proxyfs)" >&2
    exit 2
    ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "run.sh: needs root (FUSE mounts, drop_caches)" >&2; exit 1; }

log() { echo "run.sh: $*" >&2; }

mkdir -p "$work/results"
tmp=$(mktemp -d "$work/run.XXXXXX")
# Stores on tmpfs for every target (passthrough's source, both iswifts), so
# that no target pays for a disk the others do not use.
shm=/dev/shm/pfs-bench.$$
mkdir -p "$shm"
# Everything started here is stopped by cleanup, whatever way the run ends.
declare -a cleanups=()
cleanup() {
  local i
  for ((i = ${#cleanups[@]} - 1; i >= 0; i--)); do eval "${cleanups[$i]}" || true; done
  cleanups=()
}
trap 'cleanup; rm -rf "$tmp" "$shm"' EXIT

log "building fsbench, passthrough_ll and iswift in $build"
cmake -S "$root" -B "$build" -Wno-dev >/dev/null
cmake --build "$build" -j2 --target fsbench passthrough_ll iswift -- --no-print-directory >/dev/null
fsbench=$build/tests/bench/fsbench

# The tarball: made once per source tree (regular files and directories only,
# since not every target has symlinks), with its entry count beside it.
tarball=$work/src.tar
if [ ! -f "$tarball" ] || [ "$(cat "$tarball.src" 2>/dev/null)" != "$tar_src" ]; then
  log "making $tarball from $tar_src"
  (cd "$(dirname "$tar_src")" && find "$(basename "$tar_src")" \( -type f -o -type d \) -print0 |
    tar --null --no-recursion -cf "$tarball.new" -T -)
  tar -tf "$tarball.new" | wc -l >"$tarball.entries"
  mv "$tarball.new" "$tarball"
  echo "$tar_src" >"$tarball.src"
fi
fsbench_args+=(--tarball "$tarball" --tar-entries "$(cat "$tarball.entries")")

# wait_mounted DIR PID: until DIR is a mount point, while PID lives (30 s).
wait_mounted() {
  local _
  for _ in $(seq 300); do
    mountpoint -q "$1" && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# unmount DIR PID: unmount and wait (60 s) for the daemon to exit.
unmount() {
  local _
  mountpoint -q "$1" && { fusermount3 -u "$1" 2>/dev/null || umount -l "$1"; }
  for _ in $(seq 600); do kill -0 "$2" 2>/dev/null || return 0; sleep 0.1; done
  log "pid $2 still running 60 s after unmount; killing it"
  kill -KILL "$2" 2>/dev/null || true
}

hwm_mib() { # peak resident set of PID in MiB
  awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"
}

# bench TARGET DIR: runs the workloads in a fresh directory under DIR.
bench() {
  local out=$work/results/$1.txt dir=$2/fsbench.$$
  mkdir "$dir"
  log "$1: workloads in $dir"
  "$fsbench" "$dir" "${fsbench_args[@]}" | tee "$out.new" >&2 || log "$1: some workload failed"
  rm -rf "$dir" 2>/dev/null || log "$1: could not remove $dir"
  mv "$out.new" "$out"
}

# iswift as the development cluster runs it (iswift/dev.conf: objects kept
# on disk too), but on an ephemeral port, in a store of its own, and taking
# objects up to 2 GiB (rclone PUTs the 1 GiB file as one object). Sets
# iswift_pid and iswift_url.
start_iswift() {
  local log_file=$tmp/iswift.log port= _
  "$build/iswift/iswift" "$root/iswift/dev.conf" ISWIFT.SwiftProxyTCPPort=0 \
    ISWIFT.StoreDirPath="$shm/iswift-store" ISWIFT.LogFilePath="$log_file" \
    ISWIFT.LogToConsole=false ISWIFT.MaxObjectSize=2147483648 ISWIFT.MaxMemoryBytes=6442450944 &
  iswift_pid=$!
  cleanups+=("kill -TERM $iswift_pid; wait $iswift_pid")
  for _ in $(seq 100); do
    port=$(sed -n 's/.*serving http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$log_file" 2>/dev/null | tail -1)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { log "iswift did not start"; cat "$log_file" >&2; return 1; }
  iswift_url=http://127.0.0.1:$port
  local tok
  tok=$(curl -sf -D - -o /dev/null -H "X-Auth-User: test:tester" -H "X-Auth-Key: testing" \
    "$iswift_url/auth/v1.0" | tr -d '\r' | sed -n 's/^X-Auth-Token: //Ip')
  curl -sf -o /dev/null -X PUT -H "X-Auth-Token: $tok" "$iswift_url/v1/AUTH_test"
}

run_passthrough() {
  local src=/dev/shm/pfs-bench-src.$$ mnt=$tmp/mnt-passthrough pt_opts=${PASSTHROUGH_OPTS:-}
  [ -d /dev/shm ] || { log "passthrough: no /dev/shm tmpfs"; return 1; }
  mkdir "$src" "$mnt"
  cleanups+=("rm -rf $src")
  "$build/tests/bench/passthrough_ll" -f -o "source=$src${pt_opts:+,$pt_opts}" "$mnt" &
  local pid=$!
  cleanups+=("unmount $mnt $pid")
  wait_mounted "$mnt" "$pid" || { log "passthrough_ll did not mount"; return 1; }
  bench passthrough "$mnt"
  echo "RSS passthrough_ll $(hwm_mib "$pid")" >>"$work/results/passthrough.txt"
  cleanup
}

run_rclone() {
  bash scripts/deps.sh rclone || return 1
  start_iswift || return 1
  local conf=$tmp/rclone.conf mnt=$tmp/mnt-rclone
  cat >"$conf" <<EOF
[iswift]
type = swift
user = test:tester
key = testing
auth = $iswift_url/auth/v1.0
auth_version = 1
EOF
  mkdir "$mnt"
  rclone --config "$conf" mkdir iswift:bench || return 1
  rclone --config "$conf" mount iswift:bench "$mnt" --vfs-cache-mode writes \
    --cache-dir "$tmp/rclone-cache" --log-file "$tmp/rclone.log" &
  local pid=$!
  cleanups+=("unmount $mnt $pid")
  wait_mounted "$mnt" "$pid" || { log "rclone did not mount"; cat "$tmp/rclone.log" >&2; return 1; }
  bench rclone "$mnt"
  { echo "RSS rclone $(hwm_mib "$pid")"; echo "RSS iswift $(hwm_mib "$iswift_pid")"; } \
    >>"$work/results/rclone.txt"
  # iswift lists without a delimiter, so rclone logs (and ignores) every
  # object below a subdirectory when it lists the one above.
  log "rclone: $(grep -c ERROR "$tmp/rclone.log" || true) ERROR lines in its log"
  cleanup
}

run_proxyfs() {
  if [ ! -x "$build/iclient/iclient" ]; then
    log "proxyfs: SKIPPED: $build/iclient/iclient does not exist yet (the mount is not built)"
    rm -f "$work/results/proxyfs.txt"
    return 0
  fi
  # A cluster of its own: a fresh volume whose iswift store is on tmpfs, as
  # passthrough's files are, on ports away from the dev cluster's defaults.
  local mnt=$tmp/mnt-proxyfs
  local -x MOUNTPOINT=$mnt PFS_STATE_DIR=$shm/proxyfs-state PFS_SKIP_BUILD=1
  local -x ISWIFT_PORT=${BENCH_ISWIFT_PORT:-18080} ICKPT_PORT=${BENCH_ICKPT_PORT:-18123}
  local -x IMGR_HTTP_PORT=${BENCH_IMGR_HTTP_PORT:-18346} IMGR_RPC_PORT=${BENCH_IMGR_RPC_PORT:-18356}
  local -x ICLIENT_HTTP_PORT=${BENCH_ICLIENT_HTTP_PORT:-18347}
  local state=$PFS_STATE_DIR
  mkdir "$mnt"
  cleanups+=("MOUNTPOINT=$mnt PFS_STATE_DIR=$state bash scripts/dev-cluster.sh down")
  bash scripts/dev-cluster.sh up || { log "proxyfs: dev-cluster.sh up failed"; return 1; }
  mountpoint -q "$mnt" || { log "proxyfs: $mnt is not mounted after up"; return 1; }
  bench proxyfs "$mnt"
  local d
  for d in iclient imgr iswift; do
    echo "RSS $d $(hwm_mib "$(cat "$state/run/$d.pid" 2>/dev/null)")" >>"$work/results/proxyfs.txt"
  done
  cleanup
}

start=$(date +%s)
for t in "${targets[@]}"; do
  rm -f "$work/results/$t.txt"
  "run_$t" || log "$t: FAILED (its column stays empty)"
  cleanup
done

# The table: one row per figure, one column per target, then the ratios.
python3 - "$work/results" "${targets[@]}" <<'EOF'
import os, sys
res_dir, targets = sys.argv[1], sys.argv[2:]
cols = ["passthrough", "rclone", "proxyfs"]
data, order, units, notes, rss = {}, [], {}, {}, {}
for t in cols:
    path = os.path.join(res_dir, t + ".txt")
    if t not in targets or not os.path.exists(path):
        continue
    for line in open(path):
        f = line.split()
        if len(f) >= 3 and f[0] == "RSS":
            rss.setdefault(t, []).append("%s %s MiB" % (f[1], f[2]))
        if len(f) < 4 or f[0] != "RESULT":
            continue
        name = f[1]
        if name not in order:
            order.append(name)
        if f[2] == "FAIL":
            data[(name, t)] = "FAIL"
            continue
        data[(name, t)] = float(f[2])
        units[name] = f[3]
        if "capped" in f:
            notes[(name, t)] = "*"

def cell(name, t):
    v = data.get((name, t))
    if v is None:
        return "-"
    if v == "FAIL":
        return "FAIL"
    return ("%.1f" % v if v < 100 else "%.0f" % v) + notes.get((name, t), "")

def ratio(name, a, b):
    x, y = data.get((name, a)), data.get((name, b))
    if not isinstance(x, float) or not isinstance(y, float) or y == 0:
        return "-"
    return "%.2f" % (x / y)

hdr = ["workload", "unit", "passthrough", "rclone", "proxyfs", "pfs/pass", "pfs/rclone"]
rows = [[n, units.get(n, ""), cell(n, "passthrough"), cell(n, "rclone"), cell(n, "proxyfs"),
         ratio(n, "proxyfs", "passthrough"), ratio(n, "proxyfs", "rclone")] for n in order]
w = [max(len(str(r[i])) for r in [hdr] + rows) for i in range(len(hdr))]
fmt = lambda r: "  ".join(str(c).ljust(w[i]) if i < 2 else str(c).rjust(w[i]) for i, c in enumerate(r))
print(fmt(hdr))
print(fmt(["-" * x for x in w]))
for r in rows:
    print(fmt(r))
print()
for t in cols:
    if t in rss:
        print("peak RSS (VmHWM) %s: %s" % (t, ", ".join(rss[t])))
if any(notes.values()):
    print("* capped: the workload hit BENCH_CAP_SECONDS; the rate is of the part done")
EOF
log "done in $(($(date +%s) - start)) s; raw figures in $work/results/"
