#!/usr/bin/env bash
# Recorder cost (issue 14 item 1: ≤ 2 % of one core): CPU of
# `vb-sniff record` while a whole dialog runs. Prints one JSON object.
#
#   bench/sniffer/record_cpu.sh [BUILD_BIN_DIR] [RUNS] [SECONDS]
#
# 1. `vb demo` (simulator, every actor, a spoken question and answer) with
#    the recorder on its bus: CPU of the recorder over the whole demo
#    (its start-up included) — dialog_cpu_percent.
# 2. That recording replayed in a loop at its original pacing into a bus
#    (the same traffic, sustained), a second recorder on it: CPU over
#    SECONDS, RUNS times — replay_cpu_percent (all runs) and its median.
set -euo pipefail
bin=${1:-build/bin}
runs=${2:-5}
secs=${3:-10}
src=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
now() { date +%s.%N; }
wait_size() {  # FILE: until it holds a chunk (the recorder hears traffic), ≤ 15 s
  for _ in $(seq 300); do [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -gt 200 ] && return 0; sleep 0.05; done
  echo "record_cpu: nothing recorded into $1" >&2; return 1
}

# 1. A whole dialog.
mkdir -p "$dir/run"
"$bin/vb-sniff" record "$dir/dialog.mcap" --endpoint "ipc://$dir/run/bus" --json > "$dir/rec1.json" 2>/dev/null &
rec=$!
t0=$(now); c0=$(ticks $rec)
"$bin/vb" demo --config "$src/config/demo.yaml" --out "$dir/run" --say "What time is it?" > "$dir/demo.log" 2>&1
t1=$(now); c1=$(ticks $rec)
kill -INT $rec; wait $rec || true
dialog_cpu=$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" -v hz="$hz" 'BEGIN{printf "%.3f", 100*(b-a)/hz/(e-s)}')
dialog_s=$(awk -v s="$t0" -v e="$t1" 'BEGIN{printf "%.1f", e-s}')
dialog_msgs=$(sed -n 's/.*"messages":\([0-9]*\).*/\1/p' "$dir/rec1.json")

# 2. The same traffic, replayed in a loop, recorded again.
cat > "$dir/vb.yaml" <<YAML
bus:
  endpoint: ipc://$dir/bus
YAML
"$bin/vb-broker" --config "$dir/vb.yaml" 2>/dev/null &
results=()
for r in $(seq "$runs"); do
  rm -f "$dir/again.mcap"
  "$bin/vb-sniff" record "$dir/again.mcap" --config "$dir/vb.yaml" --json > "$dir/rec2.json" 2>/dev/null &
  rec=$!
  "$bin/vb-sniff" replay "$dir/dialog.mcap" --loop --config "$dir/vb.yaml" 2>/dev/null &
  rep=$!
  wait_size "$dir/again.mcap"
  t0=$(now); c0=$(ticks $rec)
  sleep "$secs"   # the measured span (not synchronisation)
  t1=$(now); c1=$(ticks $rec)
  kill -INT $rep $rec; wait $rep $rec || true
  results+=("$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" -v hz="$hz" 'BEGIN{printf "%.3f", 100*(b-a)/hz/(e-s)}')")
done
median=$(printf '%s\n' "${results[@]}" | sort -g | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
rate=$(sed -n 's/.*"messages":\([0-9]*\).*"seconds":\([0-9.]*\).*/\1 \2/p' "$dir/rec2.json" | awk '{printf "%.0f", $1/$2}')
printf '{"bench":"record_cpu","dialog_seconds":%s,"dialog_messages":%s,"dialog_cpu_percent":%s,"replay_runs":%s,"replay_seconds":%s,"replay_msgs_per_s":%s,"replay_cpu_percent":[%s],"replay_cpu_percent_median":%s,"budget_percent":2}\n' \
  "$dialog_s" "${dialog_msgs:-0}" "$dialog_cpu" "$runs" "$secs" "${rate:-0}" "$(IFS=,; echo "${results[*]}")" "$median"
