#!/usr/bin/env bash
# The long fuzz run (issue 18 item 4): every target of tests/fuzz, one after
# the other, niced (nice -n 19), each for SECONDS seconds over its seed corpus
# plus a scratch corpus that is kept between runs (never the repository's).
# Prints one JSON object: executions and crashes per target, and in all.
#
#   tests/fuzz/long_run.sh BIN_DIR [SECONDS_PER_TARGET] [WORK_DIR]
#     BIN_DIR   where fuzz_* are (a VB_FUZZ tree's bin/, e.g. build/asan/bin)
#     SECONDS   per target (default 300)
#     WORK_DIR  scratch corpora, crash inputs and logs (default /tmp/vb-fuzz-long)
#   VB_FUZZ_ONLY="coze_downlink tool_calls"  run only these targets
#
# A crash, leak, timeout or out-of-memory input is left as WORK_DIR/<target>/
# crash-* (leak-*, timeout-*, oom-*) and counted (a timeout only if it times
# out again when run alone at normal priority, else it is kept as starved-*);
# the exit status is 1 if any target found one. Reproduce: BIN_DIR/fuzz_<target> WORK_DIR/<target>/crash-…
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:?usage: long_run.sh BIN_DIR [SECONDS_PER_TARGET] [WORK_DIR]}"
secs="${2:-300}"
work="${3:-/tmp/vb-fuzz-long}"
targets="${VB_FUZZ_ONLY:-$(sed -n '/^set(VB_FUZZ_TARGETS/,/)/p' "$here/targets.cmake" | tr -d '()' |
                            sed 's/set//; s/VB_FUZZ_TARGETS//' | tr -s ' \n' ' ')}"
mkdir -p "$work"
total=0
found=0
entries=()
for t in $targets; do
  exe="$bin/fuzz_$t"
  [ -x "$exe" ] || { echo "long_run.sh: no $exe" >&2; exit 2; }
  dir="$work/$t"
  mkdir -p "$dir/corpus"
  log="$dir/run.log"
  nice -n 19 "$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$dir/" "$dir/corpus" "$here/corpus/$t" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  execs=${execs:-0}
  # A timeout seen while the niced run was starved of CPU (a loaded machine)
  # is run again at normal priority: an input that then finishes within the
  # limit is kept as starved-* and not counted; one that times out again is.
  starved=0
  for f in "$dir"/timeout-*; do
    [ -e "$f" ] || continue
    if "$exe" -timeout=10 -rss_limit_mb=2048 "$f" >>"$dir/recheck.log" 2>&1; then
      mv "$f" "$dir/starved-${f##*/timeout-}"
      starved=$((starved + 1))
    fi
  done
  [ "$starved" -gt 0 ] && [ "$(find "$dir" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)" -eq 0 ] && rc=0
  crashes=$(find "$dir" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ] && crashes=1  # a report without an artifact still counts
  total=$((total + execs))
  found=$((found + crashes))
  entries+=("\"$t\": {\"execs\": $execs, \"crashes\": $crashes, \"starved_timeouts\": $starved, \"seconds\": $secs, \"corpus\": $(ls "$dir/corpus" | wc -l)}")
done
printf '{"targets": {'
sep=""
for e in "${entries[@]}"; do printf '%s%s' "$sep" "$e"; sep=", "; done
printf '}, "execs": %d, "crashes": %d, "command": "tests/fuzz/long_run.sh %s %s %s"}\n' \
  "$total" "$found" "$bin" "$secs" "$work"
[ "$found" -eq 0 ]
