#!/usr/bin/env bash
# Sniffer cost: CPU of `vb-sniff echo` (and hz) while a publisher sends
# 1,000 audio frames per second through the broker. Prints one JSON object.
#
#   bench/bus/sniff_cpu.sh [BUILD_BIN_DIR] [SECONDS]
set -euo pipefail
bin=${1:-build/bin}
secs=${2:-10}
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
cat > "$dir/vb.yaml" <<YAML
bus:
  endpoint: ipc://$dir/bus
probe:
  publish_hz: 1000
YAML
"$bin/vb-broker" --config "$dir/vb.yaml" 2>/dev/null &
"$bin/vb-probe" --config "$dir/vb.yaml" 2>/dev/null &
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
measure() {  # $@: sniff arguments; prints CPU % of one core over $secs
  "$bin/vb-sniff" "$@" --config "$dir/vb.yaml" > "$dir/out.txt" 2>/dev/null &
  local pid=$!
  # Wait until it is printing (the publisher is running and connected).
  for _ in $(seq 100); do [ -s "$dir/out.txt" ] && break; sleep 0.05; done
  local t0 c0 t1 c1
  t0=$(date +%s.%N); c0=$(ticks $pid)
  sleep "$secs"
  t1=$(date +%s.%N); c1=$(ticks $pid)
  local lines; lines=$(wc -l < "$dir/out.txt")
  kill $pid; wait $pid 2>/dev/null || true
  echo "$c0 $c1 $t0 $t1 $lines" | awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f %d\n", 100*($2-$1)/hz/($4-$3), $5}'
}
read -r echo_cpu echo_lines < <(measure echo)
read -r json_cpu json_lines < <(measure echo --json)
read -r hz_cpu _ < <(measure hz)
# The publisher may fall short of 1,000/s on a loaded machine: report the
# rate achieved and the CPU scaled to 1,000 messages per second.
awk -v s="$secs" -v e="$echo_cpu" -v el="$echo_lines" -v j="$json_cpu" -v jl="$json_lines" -v h="$hz_cpu" 'BEGIN {
  er = el / s; jr = jl / s;
  printf "{\"bench\":\"sniff_cpu\",\"target_rate_hz\":1000,\"seconds\":%s,\"echo_rate_hz\":%.0f,\"echo_cpu_percent\":%.2f,\"echo_cpu_percent_at_1000hz\":%.2f,\"echo_json_rate_hz\":%.0f,\"echo_json_cpu_percent\":%.2f,\"echo_json_cpu_percent_at_1000hz\":%.2f,\"hz_cpu_percent\":%.2f}\n",
    s, er, e, (er > 0 ? e * 1000 / er : 0), jr, j, (jr > 0 ? j * 1000 / jr : 0), h }'
