#!/usr/bin/env bash
# fuzz.sh SECONDS [TARGET ...]: run the libFuzzer targets of build-fuzz/
# (all of them, or the named ones: ilayout, sortedmap, ...) for SECONDS
# each, from their seed corpus tests/fuzz/corpus/<name>/, and print one line
# per target:
#   fuzz <name>: <executions> executions in <seconds> s, no crash
#   fuzz <name>: FAILED (then the end of its log; the input is kept)
# Exit status: the number of targets that failed (0: none).
#
# Environment:
#   PFS_FUZZ_BUILD=build-fuzz  the fuzz build (made with clang if missing:
#                              scripts/test.sh builds it too)
#   PFS_FUZZ_KEEP=DIR          keep what each run learns in DIR/<name>/ (new
#                              inputs, crash inputs) instead of a temporary
#                              directory: a later run goes on from there
#   PFS_FUZZ_NICE=0            nice level (long runs on a shared machine: 10)
# Hours-long runs: `PFS_FUZZ_KEEP=/var/tmp/proxyfs-c-fuzz PFS_FUZZ_NICE=10
# bash scripts/fuzz.sh 14400 ilayout`. Inputs worth keeping as seeds (new
# coverage) are copied into tests/fuzz/corpus/<name>/ by hand.
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { sed -n '2,20p' "$0" >&2; exit 2; }
seconds=$1; shift
build=${PFS_FUZZ_BUILD:-build-fuzz}
if [ ! -d "$build/fuzz" ]; then
  CC=clang cmake -S . -B "$build" -Wno-dev -DPFS_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null &&
    cmake --build "$build" -j"$(nproc)" >/dev/null || { echo "fuzz.sh: build failed" >&2; exit 1; }
fi
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for t in "$build"/fuzz/fuzz_*; do [ -x "$t" ] && names+=("${t##*/fuzz_}"); done
fi
failed=0
for name in "${names[@]}"; do
  target=$build/fuzz/fuzz_$name seeds=tests/fuzz/corpus/$name
  if [ ! -x "$target" ] || [ ! -d "$seeds" ]; then
    echo "fuzz $name: FAILED (no target $target or no seeds $seeds)"
    failed=$((failed + 1)); continue
  fi
  if [ -n "${PFS_FUZZ_KEEP:-}" ]; then work=$PFS_FUZZ_KEEP/$name; mkdir -p "$work"; else work=$(mktemp -d); fi
  log=$work.log
  start=$(date +%s)
  if nice -n "${PFS_FUZZ_NICE:-0}" "$target" -max_total_time="$seconds" -print_final_stats=1 \
       -artifact_prefix="$work/" "$work" "$seeds" >"$log" 2>&1; then
    runs=$(awk '/^stat::number_of_executed_units/ {print $2}' "$log")
    echo "fuzz $name: ${runs:-?} executions in $(($(date +%s) - start)) s, no crash"
  else
    echo "fuzz $name: FAILED"; tail -n 40 "$log"
    failed=$((failed + 1))
  fi
  [ -n "${PFS_FUZZ_KEEP:-}" ] || rm -rf "$work" "$log"
done
exit "$failed"
