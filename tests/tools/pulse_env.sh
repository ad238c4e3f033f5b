#!/usr/bin/env bash
# A private PulseAudio sound server with one null sink, for tests that need
# real ALSA without a sound card. Clients use ALSA device `pulse` (package
# libasound2-plugins); the sink's monitor is a microphone that hears the
# speaker, so playback → capture loops run on any machine.
#
# Interface (DIR is a directory the test owns, e.g. from mktemp -d):
#
#   eval "$(tests/tools/pulse_env.sh start DIR)"
#       Starts the server with its runtime, home and log under DIR, waits until
#       it answers, and prints the exports for its clients:
#         PULSE_SERVER=unix:DIR/pulse/native  (libpulse, hence ALSA `pulse`)
#         PULSE_RUNTIME_PATH, XDG_RUNTIME_DIR (the same server for pactl/parec)
#         PULSE_SINK=vb_null                  (the speaker)
#         PULSE_SOURCE=vb_null.monitor        (the microphone hearing the speaker)
#         VB_PULSE_DIR=DIR, VB_PULSE_PID=<pid>
#       Exits non-zero (with the server log on stderr) if it does not answer
#       within 10 s.
#   tests/tools/pulse_env.sh stop DIR
#       Kills the server of DIR by the PID in DIR/pulse/pid (never by name) and
#       waits until it is gone. Safe to call when it is not running.
#   tests/tools/pulse_env.sh env DIR      prints the exports without starting
#   tests/tools/pulse_env.sh status DIR   exit 0 if the server of DIR answers
#
# Stopping and starting again with the same DIR gives the same socket path:
# that is how tests simulate a sound server that vanishes and comes back.
#
# Knobs (environment): VB_PULSE_RATE (null sink rate, default 48000),
# VB_PULSE_CHANNELS (default 2).
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop|env|status DIR" >&2
  exit 2
fi
mkdir -p "$dir/pulse"
dir=$(cd "$dir" && pwd)
rt=$dir/pulse
pidfile=$rt/pid
rate=${VB_PULSE_RATE:-48000}
channels=${VB_PULSE_CHANNELS:-2}

exports() {
  cat <<EOT
export PULSE_SERVER=unix:$rt/native
export PULSE_RUNTIME_PATH=$rt
export XDG_RUNTIME_DIR=$dir
export PULSE_SINK=vb_null
export PULSE_SOURCE=vb_null.monitor
export VB_PULSE_DIR=$dir
EOT
  if [ -f "$pidfile" ]; then echo "export VB_PULSE_PID=$(tr -dc 0-9 <"$pidfile")"; fi
}

answers() {
  PULSE_SERVER=unix:$rt/native timeout 2 pactl info >/dev/null 2>&1
}

running_pid() {
  [ -f "$pidfile" ] || return 1
  local pid
  pid=$(tr -dc 0-9 <"$pidfile")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

case "$cmd" in
  start)
    if ! running_pid >/dev/null; then
      rm -f "$pidfile" "$rt/native"
      # --system=false: we run as root in CI; -n: no default.pa (nothing but
      # what we load); anonymous auth: clients need no cookie in their HOME;
      # real-time threads where allowed (root in CI), so a busy machine does
      # not starve the sound server into underruns.
      XDG_RUNTIME_DIR=$dir PULSE_RUNTIME_PATH=$rt HOME=$dir \
        pulseaudio -D --system=false --exit-idle-time=-1 --disallow-exit -n --high-priority=yes --realtime=yes \
        --use-pid-file=yes --log-target="file:$dir/pulse.log" \
        --load="module-null-sink sink_name=vb_null rate=$rate channels=$channels" \
        --load="module-native-protocol-unix auth-anonymous=1" \
        </dev/null >/dev/null 2>&1 || true
    fi
    # Readiness: poll the server itself (bounded), not a fixed sleep.
    for _ in $(seq 1 100); do
      if answers; then break; fi
      sleep 0.1
    done
    if ! answers; then
      echo "pulse_env: server in $dir did not start" >&2
      cat "$dir/pulse.log" >&2 2>/dev/null || true
      exit 1
    fi
    # The main thread too: it carries every client's stream to the sink's
    # thread, and --high-priority only nices it. Starved on a loaded 2-core
    # machine it let even `aplay -D pulse` (FIFO, 20 ms buffer) underrun 5-12
    # times in 8 s; real-time, 0 (PulseAudio's real-time threads use RR 5).
    if pid=$(running_pid); then chrt -r -p 5 "$pid" >/dev/null 2>&1 || true; fi
    PULSE_SERVER=unix:$rt/native pactl set-default-sink vb_null >/dev/null 2>&1 || true
    PULSE_SERVER=unix:$rt/native pactl set-default-source vb_null.monitor >/dev/null 2>&1 || true
    exports
    ;;
  stop)
    if pid=$(running_pid); then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    ;;
  env)
    exports
    ;;
  status)
    answers
    ;;
  *)
    echo "usage: $0 start|stop|env|status DIR" >&2
    exit 2
    ;;
esac
