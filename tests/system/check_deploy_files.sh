#!/bin/bash
# Checks, without Docker, what can be checked of the container files
# (Dockerfile, docker-compose.yml, iclient/iclient.sh):
#   1. every COPY source exists: a tracked file of the repository, or, for
#      /clone/build/<module>/<exe>, an executable the build produced (and
#      the Dockerfile's build stage builds that target);
#   2. every shell script the image gets parses (bash -n) and is executable
#      (COPY keeps the mode);
#   3. every conf the image gets has its daemon's [SECTION];
#   4. the deploy stage's icert commands run and make every PEM file that
#      imgr.conf, iclient.conf, ickpt.conf and the compose file name;
#   5. every ./program and conf the compose commands and iclient.sh run is
#      in the deploy image;
#   6. when run as root with /dev/fuse and unshare: the deploy image's files,
#      assembled in a scratch directory, run with the compose file's
#      commands in private network and mount namespaces (the compose host
#      names map to 127.0.0.1 there, and /mnt is private): iclient.sh -fs
#      mounts testvol, a file written survives an iclient restart without
#      -f and one with -f (imgr refuses the second format). Skipped otherwise.
# The compose file's syntax is checked with `docker-compose config -q`,
# which is not part of the test (docker-compose is not a build dependency).
#   usage: check_deploy_files.sh   (PFS_SOURCE_DIR and PFS_BUILD_DIR from ctest)
set -euo pipefail
src=${PFS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bld=${PFS_BUILD_DIR:-$src/build}
tmp=$(mktemp -d)
root=$tmp/root # the deploy stage's / (its WORKDIR)
mkdir "$root"
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

dockerfile=$src/Dockerfile
compose=$src/docker-compose.yml
[ -f "$dockerfile" ] || { echo "FAIL: no $dockerfile" >&2; exit 1; }
[ -f "$compose" ] || { echo "FAIL: no $compose" >&2; exit 1; }

tracked() { # a file a fresh clone has (the image copies a clone's tree)
  if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$src" ls-files --error-unmatch -- "$1" >/dev/null 2>&1
  else
    [ -e "$src/$1" ]
  fi
}

# --- 1. COPY sources, and the names that land in the deploy image ----------
build_targets=$(sed -n 's/.*--target \(.*\)$/\1/p' "$dockerfile")
[ -n "$build_targets" ] || fail "Dockerfile: the build stage names no --target"
deployed=()     # basenames copied into the deploy stage (its WORKDIR is /)
deployed_src=() # the repository files among them
stage=
while read -r kw rest; do
  case $kw in
    FROM) stage=${rest##* } ;;
    COPY)
      read -r -a args <<<"$rest"
      from=
      if [[ ${args[0]} == --from=* ]]; then from=${args[0]#--from=}; args=("${args[@]:1}"); fi
      n=${#args[@]}
      [ "$n" -ge 2 ] || { fail "COPY without source and destination: $rest"; continue; }
      for s in "${args[@]:0:n-1}"; do
        if [ -z "$from" ]; then
          [ "$s" = . ] || tracked "$s" || fail "COPY $s: not in the repository"
        elif [ "$from" = build ]; then
          rel=${s#/clone/}
          [ "$rel" != "$s" ] || { fail "COPY --from=build $s: not under /clone"; continue; }
          if [[ $rel == build/* ]]; then
            [ -x "$bld/${rel#build/}" ] || fail "COPY $s: the build has no $bld/${rel#build/}"
            [ "$stage" = deploy ] && cp "$bld/${rel#build/}" "$root/"
            grep -qw -- "$(basename "$rel")" <<<"$build_targets" ||
              fail "COPY $s: not a --target of the build stage"
          elif tracked "$rel"; then
            [ "$stage" = deploy ] && deployed_src+=("$rel") && cp -p "$src/$rel" "$root/"
          else
            fail "COPY $s: not in the repository"
          fi
        else
          fail "COPY --from=$from: unknown stage"
        fi
        [ "$stage" = deploy ] && deployed+=("$(basename "$s")")
      done ;;
  esac
done < <(grep -E '^(FROM|COPY)[[:space:]]' "$dockerfile")
[ ${#deployed[@]} -gt 0 ] || fail "Dockerfile: nothing is copied into the deploy stage"

# --- 2, 3. scripts parse and run; confs have their section ------------------
for path in "${deployed_src[@]}"; do
  f=$(basename "$path")
  case $f in
    *.sh)
      bash -n "$src/$path" || fail "$path: bash -n"
      [ -x "$src/$path" ] || fail "$path: not executable" ;;
    *.conf)
      section=$(basename "$f" .conf | tr '[:lower:]' '[:upper:]')
      grep -q "^\[$section\]" "$src/$path" || fail "$path: no [$section] section" ;;
  esac
done
bash -n "$src/iclient/iclient.sh" || fail "iclient/iclient.sh: bash -n"

# --- 4. the certificates -----------------------------------------------------
# The deploy stage's RUN line (with its continuations), run in its /.
awk '/^RUN \.\/icert/ {on=1} on {print} on && !/\\$/ {exit}' "$dockerfile" |
  sed 's/^RUN //' >"$tmp/certs.sh"
[ -s "$tmp/certs.sh" ] || fail "Dockerfile: no RUN ./icert line"
(cd "$root" && bash -e ../certs.sh >certs.log 2>&1) || { cat "$root/certs.log" >&2; fail "icert commands"; }
needed=$( { grep -hoE '[A-Za-z0-9_]+\.pem' "$src/imgr/imgr.conf" "$src/iclient/iclient.conf" \
                "$src/ickpt/ickpt.conf";
            grep -oE '[A-Za-z0-9_]+\.pem' "$compose"; } | sort -u)
for pem in $needed; do
  [ -s "$root/$pem" ] || fail "$pem (named by a conf or the compose file) is not made by the Dockerfile"
done
for cert in imgr_cert.pem ickpt_cert.pem; do
  if [ -s "$root/$cert" ] && command -v openssl >/dev/null; then
    openssl verify -CAfile "$root/ca_cert.pem" "$root/$cert" >/dev/null || fail "$cert: not signed by ca_cert.pem"
  fi
done

# --- 5. what the compose commands and iclient.sh run is in the image --------
for f in $( { grep -E '^\s*(command:|\./)' "$compose" | grep -v '^\s*#';
              grep -E '^(exec )?\./' "$src/iclient/iclient.sh"; } |
            grep -oE '(\./[A-Za-z0-9_.-]+|[A-Za-z0-9_-]+\.(conf|pem))' | sed 's|^\./||' | sort -u); do
  [ "$f" = sleep ] && continue
  [ -e "$root/$f" ] || fail "$f: run by docker-compose.yml or iclient.sh but not in the deploy image"
done

# --- 6. the deploy image's files run as docker-compose.yml runs them ----------
# A service's command, with a folded (>-) one joined into a line.
compose_command() {
  awk -v svc="$1" '
    /^  [A-Za-z0-9_-]+:/ { in_svc = ($1 == svc ":"); fold = 0; next }
    in_svc && fold && /^      / { sub(/^ +/, ""); line = line " " $0; next }
    in_svc && fold { print line; exit }
    in_svc && /^    command:/ {
      sub(/^    command: */, "")
      if ($0 == ">-") { fold = 1; line = ""; next }
      print; exit
    }' "$compose" | sed 's/^ //'
}
simulate() {
  local ickpt_cmd imgr_cmd iclient_cmd
  ickpt_cmd=$(compose_command ickpt)
  imgr_cmd=$(compose_command imgr)
  # ${ICLIENT_FLAGS:--s}: this test passes the flags itself.
  iclient_cmd=$(compose_command iclient | sed 's/ \${ICLIENT_FLAGS[^}]*}//')
  [ -n "$ickpt_cmd" ] && [ -n "$imgr_cmd" ] && [ -n "$iclient_cmd" ] ||
    { fail "docker-compose.yml: a command of ickpt, imgr or iclient not found"; return; }
  cat >"$tmp/inner.sh" <<INNER
set -u
ip link set lo up
echo '127.0.0.1 localhost swift imgr ickpt' >"$tmp/hosts"
mount --bind "$tmp/hosts" /etc/hosts
mount -t tmpfs tmpfs /mnt
cd "$root"
isfuse() { findmnt -n -o FSTYPE /mnt | grep -q fuse; }
pids=()
cleanup() { kill "\${pids[@]}" 2>/dev/null; wait; }
trap cleanup EXIT
# Swift: the compose file's iswift fallback.
./iswift iswift.conf ISWIFT.SwiftProxyIPAddr=0.0.0.0 >"$tmp/iswift.log" 2>&1 & pids+=(\$!)
# The database goes to the scratch directory, not the named volume's path.
$ickpt_cmd ICKPT.DataBasePath="$tmp/ickptdb" >"$tmp/ickpt.log" 2>&1 & pids+=(\$!)
$imgr_cmd >"$tmp/imgr.log" 2>&1 & pids+=(\$!)
start_iclient() {
  MKMOUNT_TRIES=30 $iclient_cmd "\$@" >>"$tmp/iclient.log" 2>&1 & icpid=\$!
  for _ in \$(seq 60); do
    isfuse && return 0
    kill -0 \$icpid 2>/dev/null || break
    sleep 1
  done
  echo "iclient.sh \$*: no FUSE mount on /mnt"; return 1
}
stop_iclient() {
  kill \$icpid; wait \$icpid
  ! isfuse || { echo "iclient stopped but /mnt is still mounted"; return 1; }
}
start_iclient -fs || exit 1
echo hello >/mnt/f || exit 1
curl -s -f -o /dev/null http://imgr:15346/volume/testvol || { echo "imgr does not serve testvol"; exit 1; }
curl -s -f -o /dev/null http://imgr:15347/version || { echo "iclient's HTTP server is not on all addresses"; exit 1; }
stop_iclient || exit 1
start_iclient -s || exit 1
[ "\$(cat /mnt/f)" = hello ] || { echo "restart without -f lost /mnt/f"; exit 1; }
stop_iclient || exit 1
start_iclient -fs || exit 1
[ "\$(cat /mnt/f)" = hello ] || { echo "restart with -f of a formatted volume lost /mnt/f"; exit 1; }
stop_iclient || exit 1
INNER
  if ! timeout 240 unshare -n -m --propagation private bash "$tmp/inner.sh" >"$tmp/inner.log" 2>&1; then
    cat "$tmp/inner.log" >&2
    for l in iswift ickpt imgr iclient; do echo "--- $l.log" >&2; tail -20 "$tmp/$l.log" >&2; done
    fail "the deploy files do not run as docker-compose.yml runs them"
  fi
}
if [ "$(id -u)" -eq 0 ] && [ -c /dev/fuse ] && command -v unshare >/dev/null && command -v findmnt >/dev/null; then
  simulate
  ran=" and run in private namespaces"
else
  echo "SKIP step 6: needs root, /dev/fuse, unshare and findmnt"
  ran=
fi

if [ "$failures" -gt 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "OK: ${#deployed[@]} files copied into deploy; $(wc -w <<<"$needed") PEM files made${ran}"
