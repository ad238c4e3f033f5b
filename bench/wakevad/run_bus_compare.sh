#!/usr/bin/env bash
# vb-wakevad and actors/wakevad-oww measured the same way, through the bus, on
# the same phrase ("hey jarvis"), on the product's path (audio.mic → vb-afe →
# audio.clean → wakevad; bus_replay.py --afe), with wakevad-oww's settings chosen
# on one corpus and reported on another:
#
#   dev  = actors/wakevad/eval/make_corpus.sh (6 espeak-ng voices, licence texts)
#   test = bench/wakevad/make_heldout.sh      (6 other voices, rates, pitches; other text)
#
# 1. wakevad-oww replays both corpora with score_trace on (every 80 ms score and
#    Silero probability recorded through the bus; wake_spot_threshold 0);
# 2. oww_sweep.py picks threshold / patience / smoothing / Silero gate on dev
#    (three rules on false accepts/h: ≤ 0.5 in noisy speech; ≤ 1 noisy and clean;
#    ≤ 2 noisy and ≤ 3 clean) and applies them to test's traces;
# 3. the picked settings run for real through the bus on test's positives
#    (their events, latency, VAD onset and CPU), and vb-wakevad runs on test.
# Writes BUILD/wakevad-bus/*.json, sweep-*.json and table.md. ~2 h on 2 busy
# cores (4 × 65 min of speech dominate); niced; not in ctest.
#
#   bench/wakevad/run_bus_compare.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: run_bus_compare.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export VB_PROTO_PY=$build/sdk/python
dev=$build/wakevad-corpus-jarvis
test=$build/wakevad-heldout-jarvis
out=$build/wakevad-bus
mkdir -p "$out"
[[ -f $dev/manifest.tsv ]] || nice "$repo/actors/wakevad/eval/make_corpus.sh" "$dev" 65 "hey jarvis"
[[ -f $test/manifest.tsv ]] || nice "$here/make_heldout.sh" "$test" "hey jarvis"
oww=(/usr/bin/node "$repo/actors/wakevad-oww/main.js")
bench() {  # NAME CORPUS OUT.json SECTION [bus_bench args…] -- COMMAND…
  local name=$1 corpus=$2 json=$3 section=$4; shift 4
  nice -n 10 /usr/bin/python3 "$here/bus_bench.py" --broker "$build/bin/vb-broker" --corpus "$corpus" \
    --phrase "hey jarvis" --name "$name" --section "$section" --log "$json.log" "$@" > "$json"
}
afe=(--afe "$build/bin/vb-afe")
# 1. traces (the first 50 frames of each replay are warm-up: offset 16000 samples)
for c in dev test; do
  corpus=$dev; [[ $c == test ]] && corpus=$test
  trace() { printf 'wakevad:\n  wake_spot_threshold: 0\n  score_trace: %s/{wav}.tsv' "$1"; }
  mkdir -p "$out/trace-$c-afe" "$out/trace-$c-raw"
  bench trace "$corpus" "$out/trace-$c-afe/result.json" "$(trace "$out/trace-$c-afe")" "${afe[@]}" \
    --conditions clean,pink10,music10 --neg pink10 -- "${oww[@]}"
  bench trace "$corpus" "$out/trace-$c-raw/result.json" "$(trace "$out/trace-$c-raw")" \
    --conditions pink20,music20 --neg clean --near -- "${oww[@]}"
done
# 2. settings chosen on dev, reported on test
sweep() {
  /usr/bin/python3 "$here/oww_sweep.py" --dev "$out/trace-dev-afe:16000" "$out/trace-dev-raw:16000" --dev-corpus "$dev" \
    --test "$out/trace-test-afe:16000" "$out/trace-test-raw:16000" --test-corpus "$test" "$@"
}
# three rules, as in the README: ≤ 0.5 FA/h in noisy speech; ≤ 1 in noisy and clean; ≤ 2 noisy and ≤ 3 clean
sweep --max-fa 0.5 > "$out/sweep-0.5.json"
sweep --max-fa 1 --max-fa-clean 1 > "$out/sweep-1.json"
sweep --max-fa 2 --max-fa-clean 3 > "$out/sweep-2.json"
section() {  # sweep.json [extra line] → the wakevad: section it chose
  /usr/bin/python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["chosen"]
print("wakevad:"); [print("  %s: %s" % kv) for kv in c.items()]' "$1"
  [[ -z ${2:-} ]] || printf '  %s\n' "$2"
}
# 3. through the bus on test's positives: the published default, the picks, one with 96 ms Silero windows
pos=(--conditions clean,pink10,music10 --neg none)
bench "wakevad-oww 0.5 (published default)" "$test" "$out/oww-default.json" "$(printf 'wakevad:\n  wake_threshold: 0.5')" "${afe[@]}" "${pos[@]}" -- "${oww[@]}"
for r in 0.5 1 2; do
  bench "wakevad-oww, dev pick ≤ $r FA/h" "$test" "$out/oww-pick-$r.json" "$(section "$out/sweep-$r.json")" "${afe[@]}" "${pos[@]}" -- "${oww[@]}"
done
bench "wakevad-oww, dev pick ≤ 2 FA/h, vad_window_ms 96" "$test" "$out/oww-pick-2-vad96.json" "$(section "$out/sweep-2.json" 'vad_window_ms: 96')" \
  "${afe[@]}" "${pos[@]}" -- "${oww[@]}"
bench "vb-wakevad (pocketsphinx kws + energy VAD)" "$test" "$out/vb-wakevad-afe.json" "$(printf 'wakevad:\n  wake:\n    phrase: hey jarvis')" \
  "${afe[@]}" --conditions clean,pink10,music10 --neg pink10 -- "$build/bin/vb-wakevad"
bench "vb-wakevad (pocketsphinx kws + energy VAD)" "$test" "$out/vb-wakevad-raw.json" "$(printf 'wakevad:\n  wake:\n    phrase: hey jarvis')" \
  --conditions none --neg clean --near -- "$build/bin/vb-wakevad"
# detection, latency, onset, CPU: the bus runs; false accepts/h of the picks: sweep-*.json ("test"),
# of vb-wakevad and the default: vb-wakevad-*.json and trace-test-*/result.json (run at 0.5)
/usr/bin/python3 "$here/bus_bench.py" --table "$out/vb-wakevad-afe.json" "$out/oww-default.json" "$out"/oww-pick-*.json > "$out/table.md"
cat "$out/table.md" "$out"/sweep-*.json
