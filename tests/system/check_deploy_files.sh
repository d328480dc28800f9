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
#      imgr.conf, iclient.conf and the compose file's ickpt command name;
#   5. every ./program and conf the compose commands and iclient.sh run is
#      in the deploy image.
# The compose file's syntax is checked with `docker-compose config -q`,
# which is not part of the test (docker-compose is not a build dependency).
#   usage: check_deploy_files.sh   (PFS_SOURCE_DIR and PFS_BUILD_DIR from ctest)
set -euo pipefail
src=${PFS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bld=${PFS_BUILD_DIR:-$src/build}
tmp=$(mktemp -d)
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
            grep -qw -- "$(basename "$rel")" <<<"$build_targets" ||
              fail "COPY $s: not a --target of the build stage"
          elif tracked "$rel"; then
            [ "$stage" = deploy ] && deployed_src+=("$rel")
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
in_deploy() { printf '%s\n' "${deployed[@]}" | grep -qx -- "$1"; }

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
# The deploy stage's RUN line (with its continuations), run in a scratch
# directory holding the freshly built icert.
cp "$bld/icert/icert" "$tmp/icert"
awk '/^RUN \.\/icert/ {on=1} on {print} on && !/\\$/ {exit}' "$dockerfile" |
  sed 's/^RUN //' >"$tmp/certs.sh"
[ -s "$tmp/certs.sh" ] || fail "Dockerfile: no RUN ./icert line"
(cd "$tmp" && bash -e certs.sh >certs.log 2>&1) || { cat "$tmp/certs.log" >&2; fail "icert commands"; }
needed=$( { grep -hoE '[A-Za-z0-9_]+\.pem' "$src/imgr/imgr.conf" "$src/iclient/iclient.conf";
            grep -oE '[A-Za-z0-9_]+\.pem' "$compose"; } | sort -u)
for pem in $needed; do
  [ -s "$tmp/$pem" ] || fail "$pem (named by a conf or the compose file) is not made by the Dockerfile"
done
for cert in imgr_cert.pem ickpt_cert.pem; do
  if [ -s "$tmp/$cert" ] && command -v openssl >/dev/null; then
    openssl verify -CAfile "$tmp/ca_cert.pem" "$tmp/$cert" >/dev/null || fail "$cert: not signed by ca_cert.pem"
  fi
done

# --- 5. what the compose commands and iclient.sh run is in the image --------
for f in $( { grep -E '^\s*(command:|\./)' "$compose" | grep -v '^\s*#';
              grep -E '^(exec )?\./' "$src/iclient/iclient.sh"; } |
            grep -oE '(\./[A-Za-z0-9_.-]+|[A-Za-z0-9_-]+\.(conf|pem))' | sed 's|^\./||' | sort -u); do
  [ "$f" = sleep ] && continue
  in_deploy "$f" || [ -s "$tmp/$f" ] || fail "$f: run by docker-compose.yml or iclient.sh but not in the deploy image"
done

if [ "$failures" -gt 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "OK: ${#deployed[@]} files copied into deploy; $(wc -w <<<"$needed") PEM files made"
