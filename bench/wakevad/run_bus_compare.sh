#!/usr/bin/env bash
# vb-wakevad and actors/wakevad-oww measured the same way, through the bus, on
# the same phrase ("hey jarvis"): generates the corpus (once) into the build
# directory, replays it into each actor (bus_bench.py) and writes
# BUILD/wakevad-bus/{vb-wakevad,wakevad-oww}.json and table.md. ~25 min on 2
# busy cores (2 × 68 min of non-wake speech dominate); niced; not in ctest.
#
#   bench/wakevad/run_bus_compare.sh BUILD_DIR [OWW_THRESHOLD]
set -euo pipefail
build=${1:?usage: run_bus_compare.sh BUILD_DIR [OWW_THRESHOLD]}
threshold=${2:-0.5}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
corpus=$build/wakevad-corpus-jarvis
out=$build/wakevad-bus
mkdir -p "$out"
[[ -f $corpus/manifest.tsv ]] || nice "$repo/actors/wakevad/eval/make_corpus.sh" "$corpus" 65 "hey jarvis"
common=(--broker "$build/bin/vb-broker" --corpus "$corpus" --phrase "hey jarvis"
        --conditions clean,pink20,pink10,music20,music10 --near)
nice /usr/bin/python3 "$here/bus_bench.py" "${common[@]}" --log "$out/oww.log" \
  --name "wakevad-oww (openWakeWord hey_jarvis_v0.1 + Silero VAD)" \
  --section "$(printf 'wakevad:\n  wake_threshold: %s' "$threshold")" \
  -- /usr/bin/node "$repo/actors/wakevad-oww/main.js" > "$out/wakevad-oww.json"
nice /usr/bin/python3 "$here/bus_bench.py" "${common[@]}" --log "$out/vb-wakevad.log" \
  --name "vb-wakevad (pocketsphinx kws + energy VAD)" \
  --section "$(printf 'wakevad:\n  wake:\n    phrase: hey jarvis')" \
  -- "$build/bin/vb-wakevad" > "$out/vb-wakevad.json"
/usr/bin/python3 "$here/bus_bench.py" --table "$out/vb-wakevad.json" "$out/wakevad-oww.json" > "$out/table.md"
cat "$out/table.md"
