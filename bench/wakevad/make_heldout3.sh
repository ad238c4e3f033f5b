#!/usr/bin/env bash
# A third corpus for the wakevad comparison, made after the head (run_bus_compare.sh's `head`
# stage) was fixed and evaluated once with it: no choice of the head's shape, data or threshold
# has seen it. Same generator and layout as make_heldout.sh, with voices, rates, pitches and text
# that neither dev (and dev-extra, dev-extra2) nor test (make_heldout.sh) use.
#
#   bench/wakevad/make_heldout3.sh OUT_DIR [PHRASES]
#
# Voices: espeak-ng en-us+m2 en-us+m5 en-gb+m1 en-gb+f3 en-gb-x-rp+m2 en-029+f3 en-gb-x-gbclan+m3
# en-us-nyc at 160/195/230 words/min, pitch 35/50/65 (72 renditions), then en-us+f1 en-gb+m6
# en-gb-scotland+f3 en-gb-x-gbcwmd+f4 en-gb-x-rp+m7 en-029+m5 en-us-nyc+f2 en-gb-x-gbclan+m4 at
# 135/170/205 words/min, pitch 40/60/80 (72 more): 144 renditions per condition. No flite voice:
# flite's kal and awb_time are dev's kal16 and awb speakers, slt and rms are test's. Near misses:
# the generator's 18 phrases in all 16 voices (288). Ordinary speech: every licence in
# /usr/share/common-licenses is read by dev, dev-extra, dev-extra2 or test, so the prose of
# Node.js's API documentation that none reads (http, net, process, child_process, worker_threads,
# cluster; code blocks and markup removed), ≥ 62 min.
set -euo pipefail
out=${1:?usage: make_heldout3.sh OUT_DIR [PHRASES]}
phrases=${2:-hey jarvis}
here=$(cd "$(dirname "$0")" && pwd)
gen=$here/../../actors/wakevad/eval/make_corpus.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
texts=()
for f in http net process child_process worker_threads cluster; do
  awk '/^```/ {code = !code; next} !code && !/^[|#<]/' "/usr/share/doc/nodejs/api/$f.md" |
    sed -e 's/`[^`]*`//g' -e 's/\[\([^]]*\)\]\[[^]]*\]/\1/g' -e 's/\[\([^]]*\)\]([^)]*)/\1/g' > "$tmp/$f.txt"
  texts+=("$tmp/$f.txt")
done
VB_CORPUS_VOICES="en-us+m2 en-us+m5 en-gb+m1 en-gb+f3 en-gb-x-rp+m2 en-029+f3 en-gb-x-gbclan+m3 en-us-nyc" \
VB_CORPUS_RATES="160 195 230" VB_CORPUS_PITCHES="35 50 65" \
  "$gen" "$out" 62 "$phrases" "${texts[@]}"
# the second 72 renditions and near misses (1 min of ordinary speech, unused), appended to the
# first: every positive file joined with its second half, labels shifted by the first's length
VB_CORPUS_VOICES="en-us+f1 en-gb+m6 en-gb-scotland+f3 en-gb-x-gbcwmd+f4 en-gb-x-rp+m7 en-029+m5 en-us-nyc+f2 en-gb-x-gbclan+m4" \
VB_CORPUS_RATES="135 170 205" VB_CORPUS_PITCHES="40 60 80" \
  "$gen" "$tmp/second" 1 "$phrases" "$tmp/cluster.txt"
append() {  # FIRST.wav SECOND.wav: FIRST becomes FIRST followed by SECOND
  sox "$1" "$2" "$tmp/both.wav"
  mv "$tmp/both.wav" "$1"
}
for d in "$out"/pos/*/; do
  slug=$(basename "$d")
  first_len=$(soxi -s "$d/clean.wav")
  for w in "$d"/*.wav; do append "$w" "$tmp/second/pos/$slug/$(basename "$w")"; done
  awk -v o="$first_len" '{ print $1 + o, $2 + o }' "$tmp/second/pos/$slug/labels.tsv" >> "$d/labels.tsv"
done
append "$out/neg/near.wav" "$tmp/second/neg/near.wav"
