#!/usr/bin/python3
"""Replays WAV files into a wakevad actor over the bus and records what it publishes.

  bus_replay.py --broker BUILD/bin/vb-broker [--afe BUILD/bin/vb-afe] [--section YAML] [--window-frames N]
                WAV... -- COMMAND...

For each WAV (16 kHz mono s16): starts a private broker and COMMAND --config F --name wakevad,
waits for its first heartbeat and its subscription to audio.clean, publishes the WAV as 20 ms
audio.clean frames (sample_index from 0) as fast as the actor takes them (at most
--window-frames ahead of the frames its heartbeat says it has processed, so nothing is dropped),
then 2 s of silence, waits until it has processed them all, and stops it with SIGTERM.
Any implementation of the kind is measured the same way: only the bus is used.
With --afe, the WAV goes the product's way instead: published as audio.mic into vb-afe (its
afe: section from --section, defaults otherwise: speex noise suppression and AGC), whose
audio.clean the actor hears. "{wav}" in --section becomes the file's name (e.g. pos_hey_jarvis_pink10),
for per-file outputs such as wakevad-oww's score_trace.

Prints one JSON object: per file, the voice.vad and voice.wake events (sample positions, with
the decision point: preroll_start_sample + len(preroll_pcm)/2 for SPEECH_START,
context_start_sample + len(context_pcm)/2 for a wake), the frames fed and processed, drops,
and the actor's CPU time (utime + stime from /proc) spent on them.
"""
import argparse, contextlib, json, os, shutil, signal, subprocess, sys, tempfile, time, wave
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sdk", "python"))
import voicebus as vb
import zmq

FRAME = 320
AudioFrame = vb.MESSAGES["vb.v1.AudioFrame"]
CLK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def spawn(stack, argv, log):
    """Starts argv; when the stack unwinds it is killed if still running, and reaped."""
    p = subprocess.Popen(argv, stderr=log, stdout=log)
    stack.callback(p.wait)
    stack.callback(lambda: p.poll() is None and p.kill())
    return p


def replay(o, wav, log):
    with wave.open(wav) as w:
        if w.getframerate() != 16000 or w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise SystemExit("%s: not 16 kHz mono s16" % wav)
        pcm = w.readframes(w.getnframes())
    pcm += b"\0\0" * 32000  # 2 s of silence: anything held until the phrase has ended comes out
    nframes = len(pcm) // (2 * FRAME)
    d = tempfile.mkdtemp(prefix="vb-replay-")
    ep = "ipc://%s/bus" % d
    cfg = os.path.join(d, "c.yaml")
    with open(cfg, "w") as f:
        slug = "_".join(os.path.splitext(os.path.relpath(wav, os.path.dirname(os.path.dirname(os.path.dirname(wav)))))[0].split(os.sep))
        f.write("bus:\n  endpoint: %s\n  heartbeat_ms: 100\n  stream_hwm: %d\n%s\n"
                % (ep, o.window_frames * 2 + 1000, o.section.replace("{wav}", slug)))
    events = {"vad": [], "wake": []}
    with contextlib.ExitStack() as stack:  # undone in reverse: actor, broker, sockets, folder
        stack.callback(shutil.rmtree, d, True)
        ctx = zmq.Context()
        stack.callback(ctx.destroy, 0)
        spawn(stack, [o.broker, "--config", cfg], log)
        (sin, sout), (cin, cout) = vb._endpoints(ep)
        pub = ctx.socket(zmq.XPUB); pub.setsockopt(zmq.LINGER, 0); pub.setsockopt(zmq.SNDHWM, 0); pub.connect(sin)
        sub = ctx.socket(zmq.SUB); sub.setsockopt(zmq.LINGER, 0); sub.connect(cout)
        for t in ("actor.heartbeat/", "voice.vad/", "voice.wake/"):
            sub.setsockopt(zmq.SUBSCRIBE, t.encode())
        actor = spawn(stack, o.command + ["--config", cfg, "--name", "wakevad"], log)
        afe = getattr(o, "afe", None)
        if afe:
            spawn(stack, [afe, "--config", cfg, "--name", "afe"], log)
        topic = b"audio.mic/local" if afe else b"audio.clean/local"
        st_subs = {b"audio.clean/"} | ({b"audio.mic/"} if afe else set())
        poller = zmq.Poller()
        poller.register(pub, zmq.POLLIN); poller.register(sub, zmq.POLLIN)
        st = {"subs": set(), "hb": None}

        def pump(timeout_ms):
            for sock, _ in poller.poll(timeout_ms):
                if sock is pub:
                    m = pub.recv()
                    for t in st_subs:
                        if m[:1] == b"\x01" and m[1:].startswith(t):
                            st["subs"].add(t)
                    continue
                fr = sub.recv_multipart()
                h = vb.Header(); h.ParseFromString(fr[1])
                base = fr[0].decode().split("/")[0]
                msg = vb.MESSAGES[h.type](); msg.ParseFromString(fr[2])
                if base == "actor.heartbeat":
                    st["hb"] = msg
                elif base == "voice.vad":
                    events["vad"].append({"start": msg.kind == 1, "sample": msg.sample_index, "p": msg.probability,
                                          "decided": msg.preroll_start_sample + len(msg.preroll_pcm) // 2
                                          if msg.kind == 1 else msg.sample_index})
                else:
                    events["wake"].append({"start": msg.start_sample, "end": msg.end_sample, "score": msg.score,
                                           "reported": msg.context_start_sample + len(msg.context_pcm) // 2})

        def wait(cond, seconds, what):
            end = time.monotonic() + seconds
            while not cond():
                if time.monotonic() > end or actor.poll() is not None:
                    raise SystemExit("%s: %s (actor %s)" % (wav, what, actor.poll()))
                pump(50)

        processed = lambda: st["hb"].extra.get("frames", 0) if st["hb"] else 0
        wait(lambda: st["hb"] is not None and st["subs"] == st_subs, 30, "no heartbeat or no audio.clean/audio.mic subscription")
        seq = 0

        def send(i, frame_pcm):
            h = vb.Header(type="vb.v1.AudioFrame", seq=seq, mono_ns=time.monotonic_ns(), origin_ns=time.monotonic_ns(),
                          source="replay", device="local")
            m = AudioFrame(sample_rate=16000, channels=1, pcm=frame_pcm, sample_index=i * FRAME)
            pub.send_multipart([topic, h.SerializeToString(), m.SerializeToString()])
        # Warm-up: silence until the actor has processed some, so what it loads on start (models,
        # runtimes) is not counted as the file's CPU; the file follows contiguously, and every
        # sample position reported is shifted back by the warm-up.
        warm = getattr(o, "warmup_frames", 50)
        base_frames = processed()
        for i in range(warm):
            seq += 1
            send(i, b"\0\0" * FRAME)
        wait(lambda: processed() - base_frames >= warm, 120, "the actor did not process the warm-up")
        base_frames, cpu0, t0 = processed(), cpu_s(actor.pid), time.monotonic()
        for i in range(nframes):
            wait(lambda: i - (processed() - base_frames) < o.window_frames, 120, "the actor stopped processing")
            seq += 1
            send(warm + i, pcm[i * 2 * FRAME:(i + 1) * 2 * FRAME])
            if i % 50 == 0:
                pump(0)
        wait(lambda: processed() - base_frames >= nframes, 300, "not all frames processed")
        cpu, wall = cpu_s(actor.pid) - cpu0, time.monotonic() - t0
        hb = st["hb"]
        t_stop = time.monotonic()
        actor.send_signal(signal.SIGTERM)
        rc = actor.wait(timeout=10)
        off = warm * FRAME
        for e in events["vad"]:
            e["sample"] -= off; e["decided"] -= off
        for e in events["wake"]:
            e["start"] -= off; e["end"] -= off; e["reported"] -= off
        return {"wav": wav, "frames": nframes, "processed": processed() - base_frames,
                "frames_in": hb.extra.get("frames_in", 0) - warm, "warmup_frames": warm, "drops": hb.counters.drops,
                "cpu_s": cpu, "wall_s": wall, "audio_s": nframes * FRAME / 16000,
                "cpu_pct_of_core_realtime": 100.0 * cpu / (nframes * 0.02),
                "ns_per_frame": 1e9 * cpu / nframes, "exit": rc, "stop_s": time.monotonic() - t_stop,
                "heartbeat": dict(hb.extra), "events": events}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--broker", required=True)
    ap.add_argument("--afe", help="vb-afe binary: the WAV goes in as audio.mic through it (the product's path)")
    ap.add_argument("--section", default="", help="YAML appended to the config (e.g. the wakevad: section)")
    ap.add_argument("--window-frames", type=int, default=1500, help="frames published ahead of the actor (30 s)")
    ap.add_argument("--warmup-frames", type=int, default=50, help="silent frames before the file, not measured (1 s)")
    ap.add_argument("--log", default="/dev/null", help="where the broker's and actor's output go")
    ap.add_argument("args", nargs="+", help="WAV... -- COMMAND...")
    o = ap.parse_args()
    if "--" in o.args:
        i = o.args.index("--")
        wavs, o.command = o.args[:i], o.args[i + 1:]
    elif "--" in sys.argv:
        i = sys.argv.index("--")
        o.command = sys.argv[i + 1:]
        wavs = [a for a in o.args if a not in o.command]
    else:
        ap.error("give WAV... -- COMMAND...")
    if not wavs or not o.command:
        ap.error("give WAV... -- COMMAND...")
    with open(o.log, "a") as log:
        print(json.dumps({"command": o.command, "files": [replay(o, w, log) for w in wavs]}))


if __name__ == "__main__":
    main()
