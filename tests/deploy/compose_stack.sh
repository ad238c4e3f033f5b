#!/usr/bin/env bash
# Deployment test (ctest label `deploy`): the Docker image and compose stack.
#
#   tests/deploy/compose_stack.sh BUILD_DIR
#
# With a private dockerd and the debootstrap'd base image: builds the image
# (docker/Dockerfile's runtime stage with this build's .deb; the whole
# multi-stage build, compiling inside, with VB_DOCKER_FULL_BUILD=1), brings docker/compose.yaml up without the satellite's microphone,
# times every actor's first heartbeat, starts vb-capture with a spoken WAV and
# sees that voice turn answered through the gateway, then a text turn; kills
# vb-session's container process (a crash: restart: always brings it back) and
# sees the next text turn answered; `compose down`. Everything it made goes
# with its dockerd, even when it fails. Prints the figures it measured.
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
. "$here/docker_env.sh"
build=$(cd "${1:?usage: compose_stack.sh BUILD_DIR}" && pwd)
vb_need dockerd docker docker-compose debootstrap node espeak-ng sox
[ -d "$src/tests/node/node_modules/ws" ] || { echo "SKIP: tests/node/node_modules missing (tools/bootstrap.sh)"; exit 77; }

work=$(mktemp -d "$build/deploy-compose.XXXXXX")
vb_on_exit rm -rf "$work"
vb_docker_start "$work/docker"
vb_base_image "$build/deploy-cache"

t0=$(date +%s)
if [ "${VB_DOCKER_FULL_BUILD:-0}" = 1 ]; then
  # The whole multi-stage build: compiles the product inside (~10 min on 2 cores).
  DOCKER_BUILDKIT=0 docker build -q --network host -f "$src/docker/Dockerfile" --build-arg BASE=voicebus-base:bookworm \
    -t voicebus:test "$src" > "$work/build.log" 2>&1 || { tail -40 "$work/build.log"; echo "FAIL: docker build"; exit 1; }
else
  # CI's budget: the Dockerfile's own runtime stage, fed this build's .deb
  # instead of its build stage's (the same package; the compile is what
  # VB_DOCKER_FULL_BUILD=1 adds).
  mkdir -p "$work/ctx/docker"
  (cd "$build" && cpack --config CPackConfig.cmake -B "$work/ctx" >/dev/null) || { echo "FAIL: cpack"; exit 1; }
  cp "$src/docker/vb-health" "$work/ctx/docker/"
  { echo 'ARG BASE=debian:bookworm'
    sed -n '/^FROM ${BASE} AS runtime/,$p' "$src/docker/Dockerfile" |
      sed 's|^COPY --from=build /out/voicebus_\*.deb /tmp/|COPY voicebus_*.deb /tmp/|'
  } > "$work/ctx/Dockerfile"
  grep -q '^COPY voicebus_\*.deb /tmp/' "$work/ctx/Dockerfile" || { echo "FAIL: docker/Dockerfile has no runtime stage to reuse"; exit 1; }
  DOCKER_BUILDKIT=0 docker build -q --network host -f "$work/ctx/Dockerfile" --build-arg BASE=voicebus-base:bookworm \
    -t voicebus:test "$work/ctx" > "$work/build.log" 2>&1 || { tail -40 "$work/build.log"; echo "FAIL: docker build"; exit 1; }
fi
echo "image build: $(( $(date +%s) - t0 )) s; voicebus:test $(docker image inspect -f '{{.Size}}' voicebus:test) bytes" \
     "(base $(docker image inspect -f '{{.Size}}' voicebus-base:bookworm))"

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
since() { awk -v a="$(date +%s.%N)" -v b="$1" 'BEGIN { printf "%.1f", a - b }'; }
export VB_IMAGE=voicebus:test VB_SIM_PORT=$(free_port) VB_GATEWAY_PORT=$(free_port) VB_AUDIO_DIR=$work/audio
mkdir -p "$VB_AUDIO_DIR"; chmod 0777 "$VB_AUDIO_DIR"
espeak-ng -v en-us -s 150 -w "$work/q.wav" "What time is it?"
sox "$work/q.wav" -r 16000 -c 1 "$VB_AUDIO_DIR/question.wav" pad 1 0
compose=(docker-compose -p vbdeploy$$ -f "$src/docker/compose.yaml")
vb_on_exit "${compose[*]} down -v --timeout 5 >/dev/null 2>&1"

hub=(broker cozesim control session decoder tools gateway playback afe wakevad)
actors=(control session decoder tools gateway playback afe wakevad capture)
t0=$(date +%s.%N)
"${compose[@]}" up -d "${hub[@]}" > "$work/up.log" 2>&1 || { cat "$work/up.log"; echo "FAIL: compose up"; exit 1; }
beating() {  # every actor named has a heartbeat on the bus (they beat every second)
  local out; out=$("${compose[@]}" exec -T broker vb status --config /etc/voicebus/voicebus.yaml --duration 1.5 2>/dev/null) || return 1
  for a in "$@"; do awk -v n="$a" '$1 == n { f = 1 } END { exit !f }' <<<"$out" || return 1; done
}
# (compose up -d returns once every dependency was healthy: the actors after the broker.)
vb_wait 120 beating "${hub[@]:2}" || { "${compose[@]}" ps; "${compose[@]}" logs --tail 20; echo "FAIL: not every actor heartbeats"; exit 1; }
echo "compose up → first heartbeat of all $(( ${#hub[@]} - 2 )) hub actors (+ broker, simulator healthy): $(since $t0) s"

token=$("${compose[@]}" exec -T gateway cat /run/voicebus/gateway-token | grep -v '^#' | head -1)
url=ws://127.0.0.1:$VB_GATEWAY_PORT/v1/chat/stream
turn() { node "$here/gateway_turns.js" "$url" "$token" "$@"; }

# A spoken turn: the satellite's microphone (vb-capture, a WAV) joins the running stack.
turn voice > "$work/voice.log" 2>&1 & voice=$!
vb_wait 20 grep -q ready "$work/voice.log" || { cat "$work/voice.log"; echo "FAIL: gateway client"; exit 1; }
t1=$(date +%s.%N)
"${compose[@]}" up -d capture >> "$work/up.log" 2>&1
wait $voice || { cat "$work/voice.log"; "${compose[@]}" logs --tail 30 capture session; echo "FAIL: spoken turn"; exit 1; }
cat "$work/voice.log"
echo "spoken turn answered $(since $t1) s after capture started"
vb_wait 30 beating "${actors[@]}" || { echo "FAIL: capture does not heartbeat"; exit 1; }

turn text "What's the weather in Paris?" || { "${compose[@]}" logs --tail 30 session gateway; echo "FAIL: text turn"; exit 1; }

# A crash of one actor's container: the dialog goes on.
cid=$("${compose[@]}" ps -q session)
before=$(docker inspect -f '{{.RestartCount}}' "$cid")
kill -9 "$(docker inspect -f '{{.State.Pid}}' "$cid")"
t2=$(date +%s.%N)
restarted() { [ "$(docker inspect -f '{{.RestartCount}} {{.State.Running}}' "$cid")" = "$((before + 1)) true" ]; }
vb_wait 30 restarted || { docker inspect -f '{{json .State}}' "$cid"; echo "FAIL: session's container was not restarted"; exit 1; }
vb_wait 30 beating session || { echo "FAIL: the restarted session does not heartbeat"; exit 1; }
echo "session container killed → back and heartbeating: $(since $t2) s"
turn text "Tell me a joke" || { "${compose[@]}" logs --tail 30 session gateway; echo "FAIL: text turn after the kill"; exit 1; }

t3=$(date +%s.%N)
"${compose[@]}" down -v --timeout 5 > "$work/down.log" 2>&1 || { cat "$work/down.log"; echo "FAIL: compose down"; exit 1; }
[ -z "$(docker ps -aq)" ] || { docker ps -a; echo "FAIL: containers left after down"; exit 1; }
echo "compose down: $(since $t3) s"
echo PASS
