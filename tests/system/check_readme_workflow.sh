#!/bin/bash
# The original's developer workflow, as README.md writes it, run word for
# word from the build tree. The commands are read from README.md (the code
# block after the "readme-workflow" marker), so the README and this test
# cannot drift apart; each line is run as written, one at a time, and after
# a line that starts a daemon in the background the test waits until that
# daemon answers (as a person typing the lines would).
#
# The lines use the fixed development ports (8080, 33123, 32356, 15346,
# 15347), /tmp/ickptDB, /tmp/iswiftStore and /mnt. So that they neither
# collide with the Swift all-in-one on 8080 nor with other tests, they run
# in private network and mount namespaces (unshare -n -m, as
# check_deploy_files.sh does): a loopback of their own, and fresh tmpfs on
# /tmp and /mnt.
#
# Three rounds, as the original's notes describe them:
#   1. first launch: idestroy finds no container ("nothing to destroy"),
#      mkmount.sh -fs formats, iclient mounts /mnt; a file is written and
#      read back (SHA-256); iclient's status page names the volume;
#   2. "clear out prior launches": iclient, imgr and ickpt stopped (SIGTERM),
#      every line again except the Swift's (still running): idestroy empties
#      the container, the volume is formatted afresh, /mnt is empty;
#   3. "relaunch without reformatting": the rm and idestroy lines skipped;
#      the file written in round 2 is still there.
# Needs root, /dev/fuse, unshare and curl (skips otherwise).
#   usage: check_readme_workflow.sh   (PFS_SOURCE_DIR and PFS_BUILD_DIR from ctest)
set -euo pipefail
src=${PFS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bld=${PFS_BUILD_DIR:-$src/build}

if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/fuse ] || ! command -v unshare >/dev/null ||
   ! command -v curl >/dev/null; then
  echo "SKIP: needs root, /dev/fuse, unshare and curl"
  exit 0
fi

# The block: the lines of the first ``` fence after the marker, comments kept
# (bash ignores them), blank lines dropped.
workflow=$(awk '/<!-- readme-workflow/ {m=1; next}
                m && /^```/ {if (in_block) exit; in_block=1; next}
                in_block && NF {print}' "$src/README.md")
[ -n "$workflow" ] || { echo "FAIL: README.md has no readme-workflow block" >&2; exit 1; }
echo "README workflow:"
echo "$workflow" | sed 's/^/    /'
for word in "iswift/iswift iswift/dev.conf &" "rm -rf /tmp/ickptDB" "ickpt/ickpt ickpt/dev.conf &" \
            "imgr/imgr imgr/dev.conf &" "idestroy/idestroy iclient/dev.conf" \
            "imgr/mkmount.sh -fs" "iclient/iclient iclient/dev.conf &"; do
  grep -qF -- "$word" <<<"$workflow" || { echo "FAIL: the README workflow lacks '$word'" >&2; exit 1; }
done
for f in iswift/iswift ickpt/ickpt imgr/imgr idestroy/idestroy iclient/iclient \
         iswift/dev.conf ickpt/dev.conf imgr/dev.conf iclient/dev.conf imgr/mkmount.sh; do
  [ -e "$bld/$f" ] || { echo "FAIL: $bld/$f is missing (the build tree must hold it)" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '%s\n' "$workflow" >"$tmp/workflow"

cat >"$tmp/inner.sh" <<'INNER'
set -u -o pipefail
workflow_file=$1 bld=$2
# A line that starts a daemon in the background: "dir/prog ... &", maybe
# followed by a comment.
background='^[[:space:]]*[a-z]+/([a-z]+)[[:space:]][^#]*&[[:space:]]*(#.*)?$'
mapfile -t lines <"$workflow_file"
cd "$bld" # before /tmp is covered: the build tree may live there
ip link set lo up
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /mnt

fail() { echo "FAIL: $*"; exit 1; }
isfuse() { findmnt -n -o FSTYPE /mnt 2>/dev/null | grep -q '^fuse'; }
declare -A pid=()
cleanup() {
  [ -n "${pid[iclient]:-}" ] && kill -TERM "${pid[iclient]}" 2>/dev/null && wait "${pid[iclient]}"
  for p in "${pid[@]}"; do kill -TERM "$p" 2>/dev/null; done
  wait
}
trap cleanup EXIT

wait_for() { # NAME: until the daemon the line started answers (30 s)
  local ok=false
  for _ in $(seq 150); do
    case $1 in
      iswift) curl -fsS -m 2 -o /dev/null http://127.0.0.1:8080/info 2>/dev/null && ok=true ;;
      ickpt) curl -sS -m 2 -o /dev/null -I http://127.0.0.1:33123/ 2>/dev/null && ok=true ;;
      imgr) curl -fsS -m 2 -o /dev/null http://127.0.0.1:15346/version 2>/dev/null && ok=true ;;
      iclient) isfuse && ok=true ;;
    esac
    $ok && return 0
    kill -0 "${pid[$1]}" 2>/dev/null || fail "$1 exited (see its output above)"
    sleep 0.2
  done
  fail "$1 did not come up in 30 s"
}

# run_round SKIP-REGEX: every line not matching it, as written.
run_round() {
  local line name
  for line in "${lines[@]}"; do
    [[ -n $1 && $line =~ $1 ]] && continue
    echo "+ $line"
    if [[ $line =~ ^cd[[:space:]]+build[[:space:]]*$ ]]; then
      cd "$bld" # the build tree under test, wherever it is
    elif [[ $line =~ $background ]]; then
      name=${BASH_REMATCH[1]}
      eval "$line"
      pid[$name]=$!
      wait_for "$name"
    elif [[ $line =~ ^[[:space:]]*idestroy/ ]]; then
      eval "$line" 2>&1 | tee /tmp/idestroy.out || fail "idestroy failed"
    else
      eval "$line" || fail "'$line' failed"
    fi
  done
}

stop() { # NAME...: SIGTERM, wait for the exit
  local n
  for n in "$@"; do
    kill -TERM "${pid[$n]}" && wait "${pid[$n]}"
    echo "stopped $n (exit $?)"
    unset "pid[$n]"
  done
  ! isfuse || fail "/mnt is still mounted after iclient stopped"
}

echo "=== round 1: first launch"
run_round ""
grep -q "does not exist; nothing to destroy" /tmp/idestroy.out ||
  fail "the first idestroy did not report a missing container"
head -c 3000000 /dev/urandom >/tmp/data
cp /tmp/data /mnt/data && sync /mnt/data
cmp /tmp/data /mnt/data || fail "/mnt/data reads back different"
sha=$(sha256sum </tmp/data)
page=$(curl -fsS -m 5 http://127.0.0.1:15347/) || fail "iclient's status page does not answer"
grep -q '<td id="volume">testvol</td>' <<<"$page" || fail "iclient's status page lacks the volume"
stop iclient imgr ickpt

echo "=== round 2: clear out prior launches (Swift still running)"
run_round '^[[:space:]]*iswift/'
grep -qE "deleted [1-9][0-9]* objects" /tmp/idestroy.out || fail "the second idestroy emptied nothing"
[ -z "$(ls -A /mnt)" ] || fail "the volume was not formatted afresh: $(ls -A /mnt)"
echo round2 >/mnt/kept && sync /mnt/kept
cp /tmp/data /mnt/data && sync /mnt/data
stop iclient imgr ickpt

echo "=== round 3: relaunch without reformatting"
run_round '^[[:space:]]*(iswift/|rm -rf /tmp/ickptDB|idestroy/)'
[ "$(cat /mnt/kept)" = round2 ] || fail "the relaunch lost /mnt/kept"
[ "$(sha256sum </mnt/data)" = "$sha" ] || fail "the relaunch changed /mnt/data"
stop iclient imgr ickpt iswift
echo "README workflow: 3 rounds OK"
INNER

if ! timeout 400 unshare -n -m --propagation private bash "$tmp/inner.sh" "$tmp/workflow" "$bld" \
     >"$tmp/inner.log" 2>&1; then
  grep -v '\]\[INFO\]' "$tmp/inner.log" | tail -80 >&2
  echo "FAIL: the README workflow does not run as written" >&2
  exit 1
fi
grep -E '^(\+ |=== |stopped |README workflow:)|destroy' "$tmp/inner.log"
