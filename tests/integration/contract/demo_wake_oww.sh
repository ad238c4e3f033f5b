#!/usr/bin/env bash
# The Node.js openWakeWord actor as the drop-in it claims to be: the demo pipeline (config/demo.yaml:
# simulator, WAV microphone and speaker) in wake-word mode with
# `wakevad: {command: [/usr/bin/node, actors/wakevad-oww/main.js]}` under `vb run`. The microphone
# says "Hey Jarvis. What time is it?" after 8 s of silence (so the actor's start-up under load does
# not matter): vb-control must log the wake word and then a played reply, within 60 s.
#   demo_wake_oww.sh BUILD/bin SOURCE_DIR
set -euo pipefail
bindir=$1 src=$2
d=$(mktemp -d /tmp/vb-oww-demo-XXXXXX)
pid=
cleanup() { [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null && wait "$pid" || true; rm -rf "$d"; }
trap cleanup EXIT
sed -e "s#^wakevad:#wakevad:\n  command: [/usr/bin/node, $src/actors/wakevad-oww/main.js]#" \
    -e '/^  wake:$/d' -e '/^    enabled: true$/d' -e 's#^  mode: continuous#  mode: wake_word#' \
    "$src/config/demo.yaml" > "$d/demo.yaml"
grep -q "mode: wake_word" "$d/demo.yaml" && grep -q "wakevad-oww/main.js" "$d/demo.yaml"
espeak-ng -v en-us -w "$d/q.wav" "Hey Jarvis. What time is it?"
sox -n -r 22050 -c 1 -b 16 "$d/lead.wav" trim 0 8
sox "$d/lead.wav" "$d/q.wav" "$d/question.wav"
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
VB_RUN_DIR=$d VB_GATEWAY_PORT=$port "$bindir/vb" run "$d/demo.yaml" --quiet > "$d/vb.txt" 2>&1 &
pid=$!
log=$d/logs/control.log
deadline=$((SECONDS + 60))
until grep -q "STATE_IDLE (reply played)" "$log" 2>/dev/null; do
  if (( SECONDS > deadline )) || ! kill -0 "$pid" 2>/dev/null; then
    echo "FAIL: no reply played within 60 s"; cat "$d/vb.txt"; tail -n 20 "$d"/logs/control.log "$d"/logs/wakevad.log || true
    exit 1
  fi
  sleep 0.2  # polling the log for the condition, deadline above
done
grep "wake word 'hey jarvis'" "$log" || { echo "FAIL: vb-control heard no wake word"; exit 1; }
grep "reply played" "$log"
echo "demo wake oww: PASS"
