#!/usr/bin/env bash
# Generates the labelled corpus vb-wakevad-eval measures on, with espeak-ng
# (several voices, rates and pitches) and sox (noise and music-like
# interference mixed at several SNRs). Deterministic: same tools, same corpus.
#
#   make_corpus.sh OUT_DIR [NEG_MINUTES] [PHRASES] [NEG_TEXT...]
#     NEG_MINUTES  minutes of non-wake speech (default 65: FA/hour needs ≥ 1 h)
#     PHRASES      candidate wake phrases, comma-separated
#                  (default "hey computer,ok voice bus,hello jarvis,hey assistant")
#     NEG_TEXT     text files the non-wake speech is read from (default: the
#                  licences in /usr/share/common-licenses); another text makes
#                  a held-out set for settings tuned on the default one
#
# Writes OUT_DIR/manifest.tsv (format: see wakevad_eval.cc) and:
#   pos/<slug>/clean.wav   every rendition of "<phrase> <question>", 2 s apart
#   pos/<slug>/labels.tsv  phrase start/end samples, one line per rendition
#   pos/<slug>/<noise><snr>.wav   the same mixed with pink noise or music at SNR dB
#   neg/speech.wav         long non-wake speech (licence texts read aloud, in turns
#                          by every voice); neg/pink10.wav the same mixed at 10 dB
#   neg/near.wav           near-miss phrases ("hey commuter", "okay voice mail", …)
# Never commit the output; put it in a build directory.
set -euo pipefail

out=${1:?usage: make_corpus.sh OUT_DIR [NEG_MINUTES] [PHRASES] [NEG_TEXT...]}
neg_minutes=${2:-65}
IFS=',' read -r -a phrases <<< "${3:-hey computer,ok voice bus,hello jarvis,hey assistant}"
neg_text=("${@:4}")
if (( ${#neg_text[@]} == 0 )); then
  neg_text=(/usr/share/common-licenses/{GPL-3,Apache-2.0,MPL-2.0,LGPL-2.1,GFDL-1.3,Artistic,GPL-2,MPL-1.1})
fi

# VB_CORPUS_VOICES / _RATES / _PITCHES (space-separated) replace these for a held-out set.
read -r -a voices <<< "${VB_CORPUS_VOICES:-en-us en-us+f3 en-us+m7 en-gb+m3 en-gb-x-rp+f4 en-029+m2}"
read -r -a rates <<< "${VB_CORPUS_RATES:-130 165 200}"
read -r -a pitches <<< "${VB_CORPUS_PITCHES:-35 60}"
questions=(
  "what is the weather like today"
  "set a timer for ten minutes"
  "play some jazz in the kitchen"
  "how far is the moon from the earth"
  "remind me to call my sister tomorrow"
  "turn off the lights in the living room"
  "what time is it in tokyo"
  "tell me a short story about a dragon"
  "add milk and eggs to my shopping list"
  "how do you say thank you in french"
  "what is on my calendar this afternoon"
  "read me the latest news"
)
near_misses=(
  "hey commuter" "hey compute her" "a computer" "they computed it" "hey come pewter"
  "okay voice mail" "oh my voice is busy" "ok boys bus" "the voice of the bus"
  "hello charles" "hello jarred" "yellow jars" "hello service"
  "hey assist him" "hey sister" "the assistant manager" "hey you" "okay then"
)
snrs=(20 10 5 0)
rate=16000

mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
samples() { soxi -s "$1"; }

# espeak-ng (or flite for a voice "flite:NAME": rate as a duration stretch from
# 175 words/min, pitch 0…99 as ±2 semitones around the voice's own) → 16 kHz mono
# s16, silence trimmed at both ends.
speak() {  # voice rate pitch text out.wav
  if [[ $1 == flite:* ]]; then
    flite -voice "${1#flite:}" --setf duration_stretch="$(awk -v r="$2" 'BEGIN { print 175 / r }')" -t "$4" -o "$tmp/fl.wav"
    sox "$tmp/fl.wav" "$tmp/raw.wav" pitch $(( ($3 - 50) * 4 ))
  else
    espeak-ng -v "$1" -s "$2" -p "$3" -w "$tmp/raw.wav" "$4"
  fi
  sox "$tmp/raw.wav" -r $rate -c 1 -b 16 "$5" silence 1 0.01 0.3% reverse silence 1 0.01 0.3% reverse
}
sox -n -r $rate -c 1 -b 16 "$tmp/sil2.wav" trim 0 2.0
sox -n -r $rate -c 1 -b 16 "$tmp/gap.wav" trim 0 0.3
sil2=$(samples "$tmp/sil2.wav")
gap=$(samples "$tmp/gap.wav")

# Music-like interference: plucked notes of a pentatonic scale with a held
# chord under them, repeated to the length needed.
make_music() {  # seconds out.wav
  local notes=(220 247 277 330 370 440 494 554 659 740) parts=() i
  for i in $(seq 0 31); do
    local f=${notes[$(( (i * 7 + i / 3) % 10 ))]}
    sox -n -r $rate -c 1 -b 16 "$tmp/n$i.wav" synth 0.25 pluck "$f" fade 0 0.25 0.05
    parts+=("$tmp/n$i.wav")
  done
  sox "${parts[@]}" "$tmp/melody.wav"
  sox -n -r $rate -c 1 -b 16 "$tmp/chord.wav" synth 8 sine 110 sine 165 sine 220 vol 0.3
  sox -m "$tmp/melody.wav" "$tmp/chord.wav" "$tmp/bar.wav"
  local reps=$(( ${1%.*} / 8 + 1 ))
  sox "$tmp/bar.wav" "$tmp/music_long.wav" repeat $reps
  sox "$tmp/music_long.wav" "$2" trim 0 "$1"
}

# RMS level in dB of a file (sox stats).
rms_db() { sox "$1" -n stats 2>&1 | awk '/^RMS lev dB/ {print $4}'; }

# Mixes speech with noise so that (speech level) − (noise level) = snr dB;
# speech level is measured over speech only ($3). Halved to keep headroom.
mix() {  # clean.wav noise.wav speech_only.wav snr out.wav
  local s n g
  s=$(rms_db "$3"); n=$(rms_db "$2")
  g=$(awk -v s="$s" -v n="$n" -v snr="$4" 'BEGIN { printf "%.6f", 0.5 * 10 ^ ((s - snr - n) / 20) }')
  sox -m -v 0.5 "$1" -v "$g" "$2" -b 16 "$5"
}

make_noises() {  # seconds dir
  sox -n -r $rate -c 1 -b 16 "$2/pink.wav" synth "$1" pinknoise
  make_music "$1" "$2/music.wav"
}

manifest="$out/manifest.tsv"
printf '# kind\tphrase\tcondition\tsnr_db\tmix\tclean\tlabels\n' > "$manifest"

for phrase in "${phrases[@]}"; do
  slug=${phrase// /_}
  dir="$out/pos/$slug"
  mkdir -p "$dir"
  parts=() speech_parts=() labels=() pos=0 k=0
  for v in "${voices[@]}"; do
    for r in "${rates[@]}"; do
      for p in "${pitches[@]}"; do
        q=${questions[$(( k % ${#questions[@]} ))]}
        speak "$v" "$r" "$p" "$phrase" "$tmp/p$k.wav"
        speak "$v" "$r" "$p" "$q" "$tmp/q$k.wav"
        lp=$(samples "$tmp/p$k.wav"); lq=$(samples "$tmp/q$k.wav")
        labels+=("$((pos + sil2)) $((pos + sil2 + lp))")
        parts+=("$tmp/sil2.wav" "$tmp/p$k.wav" "$tmp/gap.wav" "$tmp/q$k.wav")
        speech_parts+=("$tmp/p$k.wav" "$tmp/q$k.wav")
        pos=$((pos + sil2 + lp + gap + lq))
        k=$((k + 1))
      done
    done
  done
  parts+=("$tmp/sil2.wav")
  sox "${parts[@]}" "$dir/clean.wav"
  sox "${speech_parts[@]}" "$tmp/speech_only.wav"
  printf '%s\n' "${labels[@]}" > "$dir/labels.tsv"
  secs=$(soxi -D "$dir/clean.wav")
  make_noises "$secs" "$tmp"
  printf 'pos\t%s\tclean\t99\tpos/%s/clean.wav\tpos/%s/clean.wav\tpos/%s/labels.tsv\n' \
    "$phrase" "$slug" "$slug" "$slug" >> "$manifest"
  for noise in pink music; do
    for snr in "${snrs[@]}"; do
      mix "$dir/clean.wav" "$tmp/$noise.wav" "$tmp/speech_only.wav" "$snr" "$dir/$noise$snr.wav"
      printf 'pos\t%s\t%s%s\t%s\tpos/%s/%s%s.wav\tpos/%s/clean.wav\tpos/%s/labels.tsv\n' \
        "$phrase" "$noise" "$snr" "$snr" "$slug" "$noise" "$snr" "$slug" "$slug" >> "$manifest"
    done
  done
  echo "pos '$phrase': $k renditions, ${secs%.*} s" >&2
done

# Negatives: NEG_TEXT (default the licences) read aloud, a voice/rate/pitch
# per chunk of ~400 words, until NEG_MINUTES.
mkdir -p "$out/neg"
cat "${neg_text[@]}" |
  tr -s '[:space:]' ' ' | tr -cd '[:alnum:] .,;:()?!-' > "$tmp/text.txt"
read -r -a words < "$tmp/text.txt" || true  # no final newline
neg_parts=() total=0 chunk=0 i=0
target=$((neg_minutes * 60 * rate))
while (( total < target && i < ${#words[@]} )); do
  text="${words[*]:i:400}"
  i=$((i + 400))
  v=${voices[$(( chunk % ${#voices[@]} ))]}
  r=${rates[$(( (chunk / 2) % ${#rates[@]} ))]}
  p=${pitches[$(( (chunk / 3) % ${#pitches[@]} ))]}
  speak "$v" "$r" "$p" "$text" "$tmp/neg$chunk.wav"
  neg_parts+=("$tmp/neg$chunk.wav" "$tmp/gap.wav")
  total=$((total + $(samples "$tmp/neg$chunk.wav")))
  chunk=$((chunk + 1))
done
neg_parts+=("$tmp/sil2.wav")
sox "${neg_parts[@]}" "$out/neg/speech.wav"
secs=$(soxi -D "$out/neg/speech.wav")
sox -n -r $rate -c 1 -b 16 "$tmp/pink.wav" synth "$secs" pinknoise
mix "$out/neg/speech.wav" "$tmp/pink.wav" "$out/neg/speech.wav" 10 "$out/neg/pink10.wav"
printf 'neg\t-\tclean\t99\tneg/speech.wav\tneg/speech.wav\t-\n' >> "$manifest"
printf 'neg\t-\tpink10\t10\tneg/pink10.wav\tneg/speech.wav\t-\n' >> "$manifest"

# Near misses: every one in every voice, 2 s apart; counted apart from the
# ordinary speech (they are meant to be hard).
near_parts=() k=0
for v in "${voices[@]}"; do
  for nm in "${near_misses[@]}"; do
    r=${rates[$(( k % ${#rates[@]} ))]}
    speak "$v" "$r" 50 "$nm" "$tmp/nm$k.wav"
    near_parts+=("$tmp/sil2.wav" "$tmp/nm$k.wav")
    k=$((k + 1))
  done
done
near_parts+=("$tmp/sil2.wav")
sox "${near_parts[@]}" "$out/neg/near.wav"
printf 'near\t-\tclean\t99\tneg/near.wav\tneg/near.wav\t-\n' >> "$manifest"
echo "neg: ${secs%.*} s of non-wake speech ($chunk chunks); $k near misses" >&2
