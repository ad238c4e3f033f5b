#!/usr/bin/env bash
# The held-out ("test") corpus for the wakevad comparison: the same layout as
# actors/wakevad/eval/make_corpus.sh, but other espeak-ng voices, rates and
# pitches and other text for the ordinary speech, so settings chosen on the
# default ("dev") corpus are reported on audio they were never tuned on.
#
#   bench/wakevad/make_heldout.sh OUT_DIR [PHRASES]
#
# Voices: espeak-ng en-us+f2 en-us+m1 en-gb-scotland+m4 en-gb-x-gbclan+f1 en-gb-x-gbcwmd+m6
# en-us+f5 and flite slt (US female) and rms (US male), at 140/175/210 words/min, pitch
# 30/55/75 (72 renditions), then 8 more espeak-ng voices (en-us+m3 en-us+f4 en-gb+f2
# en-gb-x-rp+m5 en-029+f1 en-gb-scotland+Annie en-us+Alex en-gb-x-gbcwmd+Andy) at
# 150/185/220 words/min, pitch 25/45/70 (72 more): 144 renditions of the phrase per
# condition, so one phrase is 0.7 points (the dev corpus has flite's awb and kal16
# instead, see run_bus_compare.sh). Near misses: 18 phrases in all 16 voices (288). Ordinary speech: the licences the dev set does not read (GPL-1, LGPL-3,
# CC0-1.0, GFDL-1.2, BSD) and the prose of Node.js's API documentation (stream,
# events, fs; code blocks and markup removed), ≥ 65 min.
set -euo pipefail
out=${1:?usage: make_heldout.sh OUT_DIR [PHRASES]}
phrases=${2:-hey jarvis}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
lic=/usr/share/common-licenses
texts=("$lic/GPL-1" "$lic/LGPL-3" "$lic/CC0-1.0" "$lic/GFDL-1.2" "$lic/BSD")
for f in stream events fs; do
  md=/usr/share/doc/nodejs/api/$f.md
  [[ -f $md ]] || continue
  # prose only: no fenced code, no tables or headings, no link targets or inline code
  awk '/^```/ {code = !code; next} !code && !/^[|#<]/' "$md" |
    sed -e 's/`[^`]*`//g' -e 's/\[\([^]]*\)\]\[[^]]*\]/\1/g' -e 's/\[\([^]]*\)\]([^)]*)/\1/g' > "$tmp/$f.txt"
  texts+=("$tmp/$f.txt")
done
gen=$here/../../actors/wakevad/eval/make_corpus.sh
VB_CORPUS_VOICES="en-us+f2 en-us+m1 en-gb-scotland+m4 en-gb-x-gbclan+f1 en-gb-x-gbcwmd+m6 en-us+f5 flite:slt flite:rms" \
VB_CORPUS_RATES="140 175 210" VB_CORPUS_PITCHES="30 55 75" \
  "$gen" "$out" 65 "$phrases" "${texts[@]}"
# The second half of the positives and near misses (1 min of ordinary speech, unused), appended
# to the first: the same files, labels shifted by the first half's length.
VB_CORPUS_VOICES="en-us+m3 en-us+f4 en-gb+f2 en-gb-x-rp+m5 en-029+f1 en-gb-scotland+Annie en-us+Alex en-gb-x-gbcwmd+Andy" \
VB_CORPUS_RATES="150 185 220" VB_CORPUS_PITCHES="25 45 70" \
  "$gen" "$tmp/more" 1 "$phrases" /usr/share/common-licenses/MPL-1.1
for d in "$out"/pos/*/; do
  slug=$(basename "$d")
  shift_by=$(soxi -s "$d/clean.wav")
  for w in "$d"/*.wav; do
    sox "$w" "$tmp/more/pos/$slug/$(basename "$w")" "$tmp/joined.wav" && mv "$tmp/joined.wav" "$w"
  done
  awk -v o="$shift_by" '{ print $1 + o, $2 + o }' "$tmp/more/pos/$slug/labels.tsv" >> "$d/labels.tsv"
done
sox "$out/neg/near.wav" "$tmp/more/neg/near.wav" "$tmp/joined.wav" && mv "$tmp/joined.wav" "$out/neg/near.wav"
