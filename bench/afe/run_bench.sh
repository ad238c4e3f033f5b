#!/usr/bin/env bash
# Runs vb-afe-bench on speech made now with espeak-ng and sox (no audio is
# committed): a far-end talker (the assistant) and a different near-end
# talker (the user). Prints the JSON; also writes it to OUT if given.
#
#   bench/afe/run_bench.sh BUILD_DIR [OUT.json] [extra vb-afe-bench args…]
set -euo pipefail
build=${1:?usage: run_bench.sh BUILD_DIR [OUT.json] [args…]}
out=${2:-}
shift $(( $# >= 2 ? 2 : 1 ))
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

say() {  # say VOICE OUT.wav TEXT…
  local voice=$1 wav=$2
  shift 2
  espeak-ng -v "$voice" -s 155 -w "$tmp/raw.wav" "$*"
  sox -q "$tmp/raw.wav" -r 16000 -c 1 -b 16 "$wav"
}
say en-us "$tmp/far.wav" \
  "Here is the weather for today. Expect sunshine in the morning with a light breeze from the west." \
  "Clouds will build up in the afternoon, and there is a chance of showers after six o'clock." \
  "Temperatures stay mild, around eighteen degrees, dropping to nine overnight." \
  "Tomorrow looks brighter, so it is a good day for a walk in the park or a bicycle ride." \
  "Would you like me to set a reminder, play some music, or read the latest news headlines?"
say en-gb+f3 "$tmp/near.wav" \
  "Stop, stop. I asked about the train times, not the weather." \
  "Can you tell me when the next train to the city centre leaves, please?" \
  "And remind me to buy milk on the way home."

args=(--far "$tmp/far.wav" --near "$tmp/near.wav")
[ -n "$out" ] && args+=(--out "$out")
exec "$build/bin/vb-afe-bench" "${args[@]}" "$@"
