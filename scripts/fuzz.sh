#!/usr/bin/env bash
# fuzz.sh SECONDS [TARGET ...]: run the libFuzzer targets of build-fuzz/
# (all of them, or the named ones: ilayout, sortedmap, ...) for SECONDS
# each, from their seed corpus tests/fuzz/corpus/<name>/, and print one line
# per target:
#   fuzz <name>: <executions> executions in <seconds> s (<cpu> s CPU), no crash
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
#   PFS_FUZZ_PARALLEL=0        1: run the targets at the same time (they
#                              share the cores; the CPU figure says how much
#                              each got), not one after another
# Hours-long runs: `PFS_FUZZ_KEEP=/var/tmp/proxyfs-c-fuzz PFS_FUZZ_NICE=10
# bash scripts/fuzz.sh 14400 ilayout`. What such a run found goes into the
# seeds with libFuzzer's merge, which keeps only inputs that add coverage:
# `build-fuzz/fuzz/fuzz_<name> -merge=1 tests/fuzz/corpus/<name> DIR/<name>`.
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { sed -n '2,23p' "$0" >&2; exit 2; }
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
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

# run_one NAME: fuzzes one target; writes its line (and, on failure, the
# end of its log) to $results/NAME and exits 1 on failure.
run_one() {
  local name=$1 target=$build/fuzz/fuzz_$1 seeds=tests/fuzz/corpus/$1 out=$results/$1
  local work log start cpu rc
  if [ ! -x "$target" ] || [ ! -d "$seeds" ]; then
    echo "fuzz $name: FAILED (no target $target or no seeds $seeds)" >"$out"; return 1
  fi
  if [ -n "${PFS_FUZZ_KEEP:-}" ]; then work=$PFS_FUZZ_KEEP/$name; mkdir -p "$work"; else work=$(mktemp -d); fi
  log=$work.log
  start=$(date +%s)
  # bash's time keyword reports the child's user+system CPU seconds
  cpu=$( { TIMEFORMAT='%U %S'; time nice -n "${PFS_FUZZ_NICE:-0}" "$target" \
           -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$work/" \
           "$work" "$seeds" >"$log" 2>&1; } 2>&1 )
  rc=$?
  if [ $rc -eq 0 ]; then
    local runs
    runs=$(awk '/^stat::number_of_executed_units/ {print $2}' "$log")
    cpu=$(awk '{printf "%d", $1 + $2}' <<<"$cpu")
    echo "fuzz $name: ${runs:-?} executions in $(($(date +%s) - start)) s ($cpu s CPU), no crash" >"$out"
  else
    { echo "fuzz $name: FAILED"; tail -n 40 "$log"; } >"$out"
  fi
  [ -n "${PFS_FUZZ_KEEP:-}" ] || rm -rf "$work" "$log"
  return $((rc != 0))
}

failed=0
if [ "${PFS_FUZZ_PARALLEL:-0}" = 1 ]; then
  pids=()
  for name in "${names[@]}"; do run_one "$name" & pids+=($!); done
  for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
  for name in "${names[@]}"; do cat "$results/$name"; done
else
  for name in "${names[@]}"; do
    run_one "$name" || failed=$((failed + 1))
    cat "$results/$name"
  done
fi
exit "$failed"
