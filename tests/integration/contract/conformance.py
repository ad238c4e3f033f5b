#!/usr/bin/python3
"""Conformance kit: runs an actor implementation against its kind's contract.

  conformance.py --broker BUILD/bin/vb-broker --kind KIND [--config-extra YAML] -- COMMAND...

Starts a private broker (ipc in a fresh folder) and COMMAND --config F --name KIND,
then checks: a first heartbeat within 10 s (Heartbeat payload, kind, pid); the
actor subscribes to its kind's inputs (`vb contract KIND --json`; for a kind whose
behaviour the kit checks, the inputs it feeds are required and a missing other one is a
warning: a partial replacement); fed inputs, it publishes the expected
outputs with the topic's payload type, Header.source/device set and seq
1, 2, 3… per topic; malformed frames (2 frames, bad header, wrong type, bad
payload) are counted in its heartbeat (counters.malformed ≥ 4) and it keeps
serving; SIGTERM ends it with exit 0 within 2 s. Prints one line per check;
exit 0 if all hold, 1 otherwise. Every process it starts is stopped.
"""
import argparse, json, os, shutil, socket, signal, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "sdk", "python"))
import voicebus as vb
import zmq

M = vb.MESSAGES
AudioFrame, VadEvent = M["vb.v1.AudioFrame"], M["vb.v1.VadEvent"]
DialogRequest, CommandAck = M["vb.v1.DialogRequest"], M["vb.v1.CommandAck"]
PlaybackEvent = M["vb.v1.PlaybackEvent"]


def tone(seconds, rate=16000, hz=440, amp=6000):
    import array, math
    return array.array("h", [int(amp * math.sin(2 * math.pi * hz * n / rate)) for n in range(int(seconds * rate))])


def speech_then_silence(send):
    """wakevad: 0.6 s of quiet noise, an utterance, 1.5 s quiet: one SPEECH_START, then one SPEECH_END.
    The utterance is real speech from espeak-ng ("hey jarvis, what time is it") when it is installed
    (tools/bootstrap.sh installs it), so a trained VAD (Silero) hears speech too; else 1 s of loud
    syllables (a 200 Hz buzz, 4 Hz envelope), which only an energy VAD takes for speech."""
    import array, math, random
    rnd = random.Random(7)
    speech = None
    if shutil.which("espeak-ng"):
        r = subprocess.run(["espeak-ng", "-v", "en-us", "--stdout", "hey jarvis, what time is it"], capture_output=True)
        if r.returncode == 0 and len(r.stdout) > 44:
            raw = array.array("h", r.stdout[44:len(r.stdout) - (len(r.stdout) - 44) % 2])  # 22050 Hz mono s16le
            speech = array.array("h", [int(raw[int(n * 22050 / 16000)] * 0.5) for n in range(int(len(raw) * 16000 / 22050) - 1)])
    if speech is None:
        speech = array.array("h", [int((0.55 + 0.45 * math.sin(2 * math.pi * 4 * n / 16000)) * 9000
                                       * math.sin(2 * math.pi * 200 * n / 16000)) for n in range(16000)])
    quiet = lambda n: [rnd.randint(-30, 30) for _ in range(n)]
    pcm = array.array("h", quiet(9600)); pcm.extend(speech); pcm.extend(quiet(24000 + (-len(pcm) - len(speech)) % 320))
    for i in range(len(pcm) // 320):
        send("audio.clean", AudioFrame(sample_rate=16000, channels=1, pcm=pcm[i * 320:(i + 1) * 320].tobytes(),
                                       sample_index=i * 320))


def mic_speech(send):
    """afe: 2 s of a tone with quiet noise as audio.mic (16 kHz mono, 20 ms frames)."""
    pcm = tone(2.0)
    for i in range(len(pcm) // 320):
        send("audio.mic", AudioFrame(sample_rate=16000, channels=1, pcm=pcm[i * 320:(i + 1) * 320].tobytes(),
                                     sample_index=i * 320, reference_channel=-1, play_ns=time.monotonic_ns()))


def reply_audio(send):
    """playback: a turn of 1 s of audio.out (16 kHz, 20 ms frames), its last frame end_of_turn."""
    pcm = tone(1.0)
    n = len(pcm) // 320
    for i in range(n):
        send("audio.out", AudioFrame(sample_rate=16000, channels=1, pcm=pcm[i * 320:(i + 1) * 320].tobytes(),
                                     sample_index=i * 320, end_of_turn=i == n - 1), turn="conf-turn")


def reply_packets(send):
    """decoder: a turn of 1 s of session.audio as 20 ms PCM packets, the last one end_of_turn_audio."""
    pcm = tone(1.0)
    n = len(pcm) // 320
    for i in range(n):
        send("session.audio", M["vb.v1.EncodedAudio"](codec=1, sample_rate=16000, channels=1, duration_us=20000,
                                                      data=pcm[i * 320:(i + 1) * 320].tobytes(), packet_index=i,
                                                      end_of_turn_audio=i == n - 1), turn="conf-turn")


def set_mode(send):
    """control: on dialog.request, set_mode (wake word) and an interrupt, each with a command_id: both acked,
    and the interrupt handed on as vb-control's order on dialog.order."""
    send("dialog.request", DialogRequest(set_mode=M["vb.v1.SetMode"](mode=2), command_id="conf-mode"))
    send("dialog.request", DialogRequest(interrupt=M["vb.v1.Interrupt"](reason=4, turn_id="conf-turn"),
                                         command_id="conf-stop"))


def text_input(send):
    """session: a text turn with a command_id: acked (taken or refused: no agent is reachable here)."""
    send("dialog.request", DialogRequest(text_input=M["vb.v1.TextInput"](text="hello", request_id="conf-req"),
                                         command_id="conf-text"))


def offer_tool(send):
    """tools: a provider offers a tool: it appears in tool.catalog."""
    spec = M["vb.v1.ToolSpec"](name="conf_tool", description="conformance", parameters_json='{"type":"object"}')
    send("tool.offer", M["vb.v1.ToolOffer"](provider="conformance", tools=[spec], ttl_ms=5000))


def invoke_gone_client(send):
    """gateway: a tool call for a client that is not connected: answered at once with an error."""
    send("tool.invoke", M["vb.v1.ToolInvocation"](call_id="conf-call", turn_id="t", name="conf_tool",
                                                  arguments_json="{}", provider="gateway:nobody"))


def contiguous(ms, rate):
    """Audio frames at `rate` whose sample_index runs on without gaps or overlaps."""
    if not ms or any(m.sample_rate != rate or not m.pcm for m in ms):
        return False
    return all(b.sample_index == a.sample_index + len(a.pcm) // (2 * a.channels) for a, b in zip(ms, ms[1:]))


def samples(ms):
    return sum(len(m.pcm) // (2 * max(1, m.channels)) for m in ms)


def acked(cid):
    return lambda ms: any(m.command_id == cid and m.result != 0 for m in ms)


# Kinds whose behaviour the kit also checks: kind -> (inputs fed, feeder, [(output base, predicate over
# its messages, what a user depends on)]). Every kind gets the generic checks, its inputs taken from
# `vb contract KIND --json`.
BEHAVIOUR = {
    "wakevad": (["audio.clean"], speech_then_silence,
                [("voice.vad", lambda ms: [m.kind for m in ms][:2] == [VadEvent.SPEECH_START, VadEvent.SPEECH_END],
                  "speech then silence: SPEECH_START then SPEECH_END")]),
    "afe": (["audio.mic"], mic_speech,
            [("audio.clean", lambda ms: contiguous(ms, 16000) and samples(ms) >= 0.9 * 32000,
              "2 s of audio.mic: ≥ 1.8 s of audio.clean at 16 kHz, sample_index contiguous")]),
    "capture": ([], lambda send: None,
                [("audio.mic", lambda ms: contiguous(ms, 16000) and samples(ms) >= 16000,
                  "a 1 s WAV source: ≥ 1 s of audio.mic at 16 kHz, sample_index contiguous")]),
    "playback": (["audio.out"], reply_audio,
                 # (an UNDERRUN between them is allowed: the kit may feed slower than real time on a busy machine)
                 [("playback.event", lambda ms: [m.kind for m in ms if m.turn_id == "conf-turn"
                                                 and m.kind != PlaybackEvent.UNDERRUN][:2]
                   == [PlaybackEvent.STARTED, PlaybackEvent.DRAINED], "a 1 s turn of audio.out: STARTED then DRAINED"),
                  ("audio.ref", lambda ms: samples(ms) >= 16000, "≥ 1 s of audio.ref (what the speaker played)")]),
    "decoder": (["session.audio"], reply_packets,
                [("audio.out", lambda ms: contiguous(ms, 16000) and samples(ms) >= 16000 and ms[-1].end_of_turn,
                  "1 s of PCM packets: ≥ 1 s of audio.out at 16 kHz, contiguous, the last frame end_of_turn")]),
    "control": (["dialog.request"], set_mode,
                [("dialog.ack", acked("conf-mode"), "set_mode with a command_id: answered on dialog.ack"),
                 ("dialog.ack", acked("conf-stop"), "interrupt with a command_id: answered on dialog.ack"),
                 ("dialog.order", lambda ms: any(m.HasField("interrupt") and m.interrupt.turn_id == "conf-turn"
                                                 for m in ms), "the interrupt asked for is ordered on dialog.order"),
                 ("dialog.state", lambda ms: len(ms) > 0, "dialog.state published")]),
    "session": (["dialog.request"], text_input,
                [("dialog.ack", acked("conf-text"), "text_input with a command_id: answered on dialog.ack")]),
    "tools": (["tool.offer"], offer_tool,
              [("tool.catalog", lambda ms: any(e.spec.name == "conf_tool" and e.provider == "conformance"
                                               for m in ms for e in m.tools), "an offered tool appears in tool.catalog")]),
    "gateway": (["tool.invoke"], invoke_gone_client,
                [("tool.answer", lambda ms: any(m.call_id == "conf-call" and m.error for m in ms),
                  "a call for a client that left: tool.answer with an error at once")]),
}

# Topics a kind must never publish on: kind -> [(base, why)].
NEVER = {
    "control": [("dialog.request", "requests are what the others ask of vb-control; its orders go on dialog.order")],
}

# What a kind needs in its section to start at all on a machine without a sound card or Coze
# (%(d)s = the kit's scratch folder, %(port)d = a free port nobody listens on).
SECTIONS = {
    "capture": "capture:\n  source: wav\n  wav:\n    path: %(d)s/in.wav\n",
    "playback": "playback:\n  sink: wav\n  wav:\n    path: %(d)s/out.wav\n",
    "session": "session:\n  bot_id: '1'\n  api_base: http://127.0.0.1:%(port)d\n  ws_base: ws://127.0.0.1:%(port)d\n"
               "  token_file: %(d)s/token\n  state_dir: %(d)s/state\n",
    "gateway": "gateway:\n  port: %(port)d\n  token_file: %(d)s/gateway-token\n",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_wav(path, seconds):
    import wave
    with wave.open(path, "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
        w.writeframes(b"\0\0" * int(16000 * seconds))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", required=True)
    ap.add_argument("--kind", required=True)
    ap.add_argument("--config-extra", default="")
    ap.add_argument("command", nargs="+")
    o = ap.parse_args()
    vb_bin = os.path.join(os.path.dirname(os.path.abspath(o.broker)), "vb")
    r = subprocess.run([vb_bin, "contract", o.kind, "--json"], capture_output=True, text=True)
    if r.returncode != 0:
        print("FAIL  no contract for kind '%s': %s" % (o.kind, r.stderr.strip()))
        return 1
    contract = json.loads(r.stdout)
    inputs = sorted({t["topic"] for t in contract["in"]} - {"actor.heartbeat"}) or []
    fed, feed, outputs = BEHAVIOUR.get(o.kind, (inputs, lambda send: None, []))
    if o.kind not in BEHAVIOUR:
        print("warn  the kit has no behaviour checks for kind %s: only the generic ones run" % o.kind)
    d = tempfile.mkdtemp(prefix="vb-conf-")
    ep = "ipc://%s/bus" % d
    cfg = os.path.join(d, "c.yaml")
    write_wav(os.path.join(d, "in.wav"), 1.0)
    with open(os.path.join(d, "token"), "w") as f:
        f.write("conformance\n")
    with open(cfg, "w") as f:
        f.write("bus:\n  endpoint: %s\n  heartbeat_ms: 200\n%s%s\n"
                % (ep, SECTIONS.get(o.kind, "") % {"d": d, "port": free_port()}, o.config_extra))
    procs, fails = [], []

    def check(ok, what):
        print("%s  %s" % ("ok  " if ok else "FAIL", what), flush=True)
        if not ok:
            fails.append(what)
        return ok

    ctx = zmq.Context()
    try:
        procs.append(subprocess.Popen([o.broker, "--config", cfg]))
        eps = vb._endpoints(ep)
        pubs, subs = [], []
        for ein, eout in eps:
            p = ctx.socket(zmq.XPUB); p.setsockopt(zmq.LINGER, 0); p.connect(ein); pubs.append(p)
            s = ctx.socket(zmq.SUB); s.setsockopt(zmq.LINGER, 0); s.connect(eout); subs.append(s)
            s.setsockopt(zmq.SUBSCRIBE, b"")
        actor = subprocess.Popen(o.command + ["--config", cfg, "--name", o.kind])
        procs.append(actor)
        seen_subs, got, beats, seqs, bad_seq = set(), {}, [], {}, []
        poller = zmq.Poller()
        for s in subs + pubs:
            poller.register(s, zmq.POLLIN)

        def pump(until, deadline_s):
            end = time.monotonic() + deadline_s
            while time.monotonic() < end and not until():
                for sock, _ in poller.poll(50):
                    if sock in pubs:
                        m = sock.recv()
                        if m[:1] == b"\x01":
                            seen_subs.add(m[1:].decode(errors="replace"))
                        continue
                    fr = sock.recv_multipart()
                    if len(fr) != 3:
                        continue
                    h = vb.Header()
                    try:
                        h.ParseFromString(fr[1])
                    except Exception:
                        continue  # our own malformed frames
                    if h.source != o.kind or h.type not in vb.MESSAGES:
                        continue
                    topic = fr[0].decode(); base = topic.split("/")[0]
                    msg = vb.MESSAGES[h.type](); msg.ParseFromString(fr[2])
                    if base == "actor.heartbeat":
                        beats.append(msg)
                    else:
                        got.setdefault(base, []).append((h, msg))
                        # The kit may join after the first messages: the first one seen sets the base.
                        if h.seq < 1 or (topic in seqs and h.seq != seqs[topic] + 1) or h.type != vb.TOPICS[base][0]:
                            bad_seq.append((topic, h.seq, h.type))
                        seqs[topic] = h.seq
            return until()

        check(pump(lambda: beats, 10), "first heartbeat within 10 s")
        if beats:
            b = beats[-1]
            check(b.kind and b.pid == actor.pid and b.actor == o.kind, "heartbeat names actor, kind and pid (%s, %s)" % (b.kind, b.pid))
        for base in inputs:
            ok = pump(lambda: any(s.startswith(base + "/") for s in seen_subs), 5 if base in fed else 2)
            if base in fed:
                check(ok, "subscribes to %s" % base)
            elif not ok:  # a partial replacement: said, not failed
                print("warn  does not subscribe to %s (vb-%s does): that part of the kind is not served" % (base, o.kind))
        seq = {}

        def send(base, msg, frames=None, turn=""):
            topic = base + "/local"
            seq[topic] = seq.get(topic, 0) + 1
            h = vb.Header(type=msg.DESCRIPTOR.full_name, seq=seq[topic], mono_ns=time.monotonic_ns(),
                          source="conformance", device="local", turn_id=turn)
            pubs[vb.TOPICS[base][1]].send_multipart(frames or [topic.encode(), h.SerializeToString(), msg.SerializeToString()])
            pump(lambda: False, 0.005)

        feed(send)
        for base, pred, what in outputs:
            check(pump(lambda: pred([m for _, m in got.get(base, [])]), 10),
                  "%s: %s (%d messages)" % (base, what, len(got.get(base, []))))
            hs = [h for h, _ in got.get(base, [])]
            check(bool(hs) and all(h.device == "local" and h.type == vb.TOPICS[base][0] for h in hs),
                  "%s: payload type %s, Header.device set" % (base, vb.TOPICS[base][0]))
        check(not bad_seq, "seq +1 per message and topic, types match the topic table %s" % (bad_seq[:3] or ""))
        for base, what in NEVER.get(o.kind, []):
            check(not got.get(base), "publishes nothing on %s: %s (%d messages)" % (base, what, len(got.get(base, []))))
        # Malformed frames on one of its inputs (a kind without inputs cannot be fed any).
        if not inputs:
            print("skip  malformed frames: kind %s subscribes to nothing" % o.kind)
        else:
            base = (fed or inputs)[0]
            t = (base + "/local").encode()
            good = vb.Header(type=vb.TOPICS[base][0], seq=1, source="rogue", device="local").SerializeToString()
            plane = vb.TOPICS[base][1]
            for frames in ([t, good], [t, b"\xff\xff\xff", b""],
                           [t, vb.Header(type="vb.v1.Heartbeat", source="rogue").SerializeToString(), b""],
                           [t, good, b"\xff\xff\xff\xff"]):
                pubs[plane].send_multipart(frames)
            n0 = len(beats)
            check(pump(lambda: len(beats) > n0 and beats[-1].counters.malformed >= 4, 5),
                  "4 malformed frames on %s counted in the heartbeat (counters.malformed = %d)"
                  % (base, beats[-1].counters.malformed if beats else -1))
        n1 = len(beats)
        check(actor.poll() is None and pump(lambda: len(beats) > n1 + 2, 5), "alive and heartbeating")
        t0 = time.monotonic()
        actor.send_signal(signal.SIGTERM)
        try:
            rc = actor.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            rc = None
        check(rc == 0, "SIGTERM: exit 0 within 2 s (%s after %.2f s)" % (rc, time.monotonic() - t0))
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.kill()
            p.wait()
        ctx.destroy(linger=0)
        shutil.rmtree(d, ignore_errors=True)
    print("conformance %s: %s" % (o.kind, "PASS" if not fails else "FAIL (%d)" % len(fails)))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
