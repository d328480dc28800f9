#!/usr/bin/env bash
# dev-cluster.sh up|down|status: a local proxyfs-c cluster on 127.0.0.1.
#
#   up      install missing packages, build, make certificates (icert), start
#           iswift, ickpt (TLS) and imgr (retryrpc over TLS, checkpoints to
#           ickpt), format the volume the first time (imgr/mkmount.sh -fs,
#           later -s), mount it with iclient at $MOUNTPOINT, print the URLs
#   down    unmount, then stop everything `up` started (by pid file)
#   status  each daemon: built or not, pid, and whether its HTTP answers
#
# Environment:
#   MOUNTPOINT     where iclient mounts the volume (default /mnt)
#   PFS_STATE_DIR  pid files, logs, certificates, the iswift store and the
#                  ickpt database (default /var/tmp/proxyfs-c); a second `up`
#                  reuses the volume kept there
#   PFS_BUILD_DIR  the build tree (default build/)
#   PFS_SKIP_BUILD=1  `up` uses the build tree as it is: no package check,
#                  no cmake (for tests that run from a finished build)
#   ISWIFT_PORT    iswift's port (default 8080)
#   ICKPT_PORT     ickpt's HTTPS port (default 33123)
#   IMGR_HTTP_PORT imgr's HTTP admin port (default 15346)
#   IMGR_RPC_PORT  imgr's retryrpc port (default 32356)
#   ICLIENT_HTTP_PORT  iclient's HTTP port (default 15347)
#   ICLIENT_OVERRIDES  more ICLIENT.Key=value arguments for iclient, space
#                  separated (e.g. "ICLIENT.ReadAheadLines=8")
# `status` and `down` need the same PFS_STATE_DIR and MOUNTPOINT as `up`
# (and `status` the same ports).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${PFS_BUILD_DIR:-$root/build}
state=${PFS_STATE_DIR:-/var/tmp/proxyfs-c}
mountpoint=${MOUNTPOINT:-/mnt}
swift_port=${ISWIFT_PORT:-8080}
ickpt_port=${ICKPT_PORT:-33123}
imgr_http=${IMGR_HTTP_PORT:-15346}
imgr_rpc=${IMGR_RPC_PORT:-32356}
iclient_http=${ICLIENT_HTTP_PORT:-15347}

daemons=(iswift ickpt imgr iclient)
declare -A health_url=(
  [iswift]="http://127.0.0.1:$swift_port/info"
  [ickpt]="https://127.0.0.1:$ickpt_port/version"
  [imgr]="http://127.0.0.1:$imgr_http/version"
  [iclient]="http://127.0.0.1:$iclient_http/version"
)

binary() { echo "$build/$1/$1"; }
pidfile() { echo "$state/run/$1.pid"; }
say() { echo "dev-cluster: $*"; }
die() { echo "dev-cluster: $*" >&2; exit 1; }

running_pid() { # prints the pid if the daemon runs
  local f pid
  f=$(pidfile "$1")
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

healthy() { curl -fsS -m 2 --cacert "$state/certs/ca_cert.pem" -o /dev/null "${health_url[$1]}" 2>/dev/null; }

status() {
  local name pid
  for name in "${daemons[@]}"; do
    if [ ! -x "$(binary "$name")" ]; then
      printf '%-8s not built yet\n' "$name"
    elif pid=$(running_pid "$name"); then
      if healthy "$name"; then
        printf '%-8s running, pid %s, healthy (%s)\n' "$name" "$pid" "${health_url[$name]}"
      else
        printf '%-8s running, pid %s, not answering %s\n' "$name" "$pid" "${health_url[$name]}"
      fi
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
  [ "${PFS_SKIP_BUILD:-0}" = 1 ] && return 0
  bash scripts/deps.sh
  cmake -S "$root" -B "$build" -Wno-dev >/dev/null
  cmake --build "$build" -j"$(nproc)" -- --no-print-directory >/dev/null
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The ports of the daemons `up` will start (those not running yet) must be
# free: something else answering there would be mistaken for our daemon.
check_ports() {
  local name port
  declare -A ports=([iswift]="$swift_port" [ickpt]="$ickpt_port" [imgr]="$imgr_http $imgr_rpc"
                    [iclient]="$iclient_http")
  for name in "${daemons[@]}"; do
    [ -z "$(running_pid "$name")" ] || continue
    for port in ${ports[$name]}; do
      port_free "$port" || die "port $port (for $name) is in use: stop what listens there \
(\`ss -ltnp | grep :$port\`) or choose another port (see the top of $0)"
    done
  done
}

certificates() { # the original's compose profile: one CA, ickpt and imgr certs
  local d=$state/certs icert
  icert=$(binary icert)
  [ -f "$d/imgr_cert.pem" ] && return 0
  mkdir -p "$d"
  rm -f "$d"/*.pem
  "$icert" -ca -ed25519 -caCert "$d/ca_cert.pem" -caKey "$d/ca_key.pem" -commonName RootCA -ttl 3560
  for name in ickpt imgr; do
    "$icert" -ed25519 -caCert "$d/ca_cert.pem" -caKey "$d/ca_key.pem" -commonName "$name" \
      -ttl 3560 -cert "$d/${name}_cert.pem" -key "$d/${name}_key.pem" -dns localhost -ip 127.0.0.1
  done
}

# start NAME ARGS...: run the daemon in the background, wait until healthy.
start() {
  local name=$1 pid
  shift
  if pid=$(running_pid "$name"); then
    say "$name already running (pid $pid)"
    return 0
  fi
  "$(binary "$name")" "$@" >>"$state/log/$name.out" 2>&1 &
  echo $! >"$(pidfile "$name")"
  for _ in $(seq 100); do
    healthy "$name" && { say "started $name (pid $!)"; return 0; }
    kill -0 "$!" 2>/dev/null || break
    sleep 0.2
  done
  tail -n 20 "$state/log/$name.out" "$state/log/$name.log" 2>/dev/null >&2 || true
  die "$name did not come up (logs in $state/log/)"
}

up() {
  build_tree
  local name missing=()
  for name in "${daemons[@]}" icert; do
    [ -x "$(binary "$name")" ] || missing+=("$name")
  done
  [ ${#missing[@]} -eq 0 ] || { status; die "not built yet: ${missing[*]}"; }
  mkdir -p "$state"/{run,log,iswift,ickptDB}
  certificates
  local c=$state/certs
  check_ports

  start iswift iswift/dev.conf "ISWIFT.SwiftProxyTCPPort=$swift_port" \
    "ISWIFT.StoreDirPath=$state/iswift" "ISWIFT.LogFilePath=$state/log/iswift.log" \
    "ISWIFT.LogToConsole=false"
  start ickpt ickpt/dev.conf "ICKPT.Port=$ickpt_port" "ICKPT.DataBasePath=$state/ickptDB" \
    "ICKPT.CertFilePath=$c/ickpt_cert.pem" "ICKPT.KeyFilePath=$c/ickpt_key.pem" \
    "ICKPT.CACertFilePath=$c/ca_cert.pem" "ICKPT.LogFilePath=$state/log/ickpt.log" \
    "ICKPT.LogToConsole=false"
  start imgr imgr/dev.conf "IMGR.HTTPServerPort=$imgr_http" "IMGR.RetryRPCPort=$imgr_rpc" \
    "IMGR.CheckPointIPAddrs=127.0.0.1" "IMGR.CheckPointPort=$ickpt_port" \
    "IMGR.CheckPointCACertFilePath=$c/ca_cert.pem" \
    "IMGR.RetryRPCCertFilePath=$c/imgr_cert.pem" "IMGR.RetryRPCKeyFilePath=$c/imgr_key.pem" \
    "IMGR.LogFilePath=$state/log/imgr.log" "IMGR.LogToConsole=false"

  local flags=-s
  [ -f "$state/formatted" ] || flags=-fs
  SWIFT_ADDR=127.0.0.1:$swift_port IMGR_ADDR=127.0.0.1:$imgr_http MKMOUNT_TRIES=30 \
    bash imgr/mkmount.sh $flags \
    >>"$state/log/mkmount.out" 2>&1 || die "imgr/mkmount.sh $flags failed (see $state/log/mkmount.out)"
  touch "$state/formatted"

  mkdir -p "$mountpoint"
  if mountpoint -q "$mountpoint"; then
    [ -n "$(running_pid iclient)" ] || die "$mountpoint is already mounted by something else"
  fi
  local auth='{"AuthURL":"http://127.0.0.1:'$swift_port'/auth/v1.0"\u002C"AuthUser":"test:tester"\u002C"AuthKey":"testing"\u002C"Account":"AUTH_test"\u002C"Container":"con"}'
  start iclient iclient/dev.conf "ICLIENT.MountPointDirPath=$mountpoint" \
    "ICLIENT.RetryRPCPort=$imgr_rpc" "ICLIENT.HTTPServerPort=$iclient_http" \
    "ICLIENT.RetryRPCCACertFilePath=$c/ca_cert.pem" "ICLIENT.AuthPlugInEnvValue=$auth" \
    "ICLIENT.LogFilePath=$state/log/iclient.log" "ICLIENT.LogToConsole=false" \
    ${ICLIENT_OVERRIDES:-}
  for _ in $(seq 50); do mountpoint -q "$mountpoint" && break; sleep 0.2; done
  mountpoint -q "$mountpoint" || die "iclient runs but $mountpoint is not mounted"

  cat <<EOT
dev-cluster: volume testvol is mounted at $mountpoint
  imgr     http://127.0.0.1:$imgr_http/  (volumes: /volume, stats: /stats, /metrics)
  iclient  http://127.0.0.1:$iclient_http/  (status page; /stats, /leases, /config)
  ickpt    https://127.0.0.1:$ickpt_port/  (CA: $c/ca_cert.pem)
  iswift   http://127.0.0.1:$swift_port/info
  logs     $state/log/
stop with: bash scripts/dev-cluster.sh down
EOT
}

down() {
  local name pid i
  if mountpoint -q "$mountpoint" 2>/dev/null; then
    fusermount3 -u "$mountpoint" 2>/dev/null || umount -l "$mountpoint" || true
  fi
  for ((i = ${#daemons[@]} - 1; i >= 0; i--)); do
    name=${daemons[$i]}
    if pid=$(running_pid "$name"); then
      kill -TERM "$pid"
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      if kill -0 "$pid" 2>/dev/null; then
        say "$name did not stop in 20 s; killing it"
        kill -KILL "$pid"
      fi
      say "stopped $name"
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
