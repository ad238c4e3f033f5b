#!/usr/bin/env bash
# The wakevad evaluation as a bench: generates the corpus (once) into the
# build directory and measures VAD and the wake phrase on it, JSON into
# BUILD/wakevad-eval/. Takes ~10 min of CPU for one phrase and threshold
# (the ≥ 1 h false-accept run dominates); not part of ctest.
#
#   bench/wakevad/run_eval.sh BUILD_DIR [PHRASE] [THRESHOLDS]
set -euo pipefail
build=${1:?usage: run_eval.sh BUILD_DIR [PHRASE] [THRESHOLDS]}
phrase=${2:-}
thresholds=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
corpus=$build/wakevad-corpus
out=$build/wakevad-eval
mkdir -p "$out"
[[ -f $corpus/manifest.tsv ]] || "$here/../../actors/wakevad/eval/make_corpus.sh" "$corpus" 65
eval_bin=$build/bin/vb-wakevad-eval
"$eval_bin" vad --corpus "$corpus" > "$out/vad.json"
args=(wake --corpus "$corpus")
[[ -n $phrase ]] && args+=(--phrases "$phrase")
[[ -n $thresholds ]] && args+=(--thresholds "$thresholds")
"$eval_bin" "${args[@]}" > "$out/wake.json"
"$build/bin/bench_wakevad" > "$out/cost.json"
echo "results in $out: vad.json wake.json cost.json" >&2
