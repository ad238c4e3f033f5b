#!/usr/bin/env python3
"""Hub and satellites, measured (issue 16 item 5). Prints one JSON object.

  satellites_bench.py --bin BUILD/bin [--trials 40] [--spacing-s 4.5]
                      [--window-ms 200] [--dialog-turns 5] [--seed 1]
                      [--skip-dialog] [--out FILE] [--keep DIR]

Three `vb run` processes on this host, as a deployment runs them: the hub
(--role hub: broker, vb-control) and two satellites (--role satellite
--device kitchen|office: capture, afe, wakevad, playback on their own bus,
joined to the hub over tcp:// with CURVE). Each satellite reaches the hub
through tests/tools/link_shaper.py, a TCP relay that counts the link's bytes
and, for the shaped runs, EMULATES a Wi-Fi-like link in user space (each
chunk delayed 30 ± 20 ms, 2 % of chunks stalled 200 ms as a retransmission
would): this kernel has no sch_netem.

1. Arbitration: both microphones (WAV files, real time) carry the same
   espeak-ng wake phrase ("ok voice bus", voices and speeds varied), one
   copy `diff` dB quieter than the other (6 dB and 3 dB trials alternate;
   which room is closer alternates too), the far copy shifted by a random
   -30..+30 ms (so arrival order is no clue), each room with its own noise
   (kitchen pink, office white through a 3 kHz low-pass; each -45 dBFS RMS
   above 250 Hz, where speech is; speech at -22 dBFS RMS for the close copy). vb-wakevad spots the phrase on each satellite,
   vb-control at the hub decides. From the hub's bus (vb-sniff echo): each
   voice.wake (publisher's mono_ns) and each dialog.state whose arbitration
   changed (its mono_ns): the chosen device, the first wake → decision time.
   Link bytes per satellite while idle-and-waking come from the shaper.
2. Dialog: the hub adds vb-session, vb-decoder, vb-tools and vb-cozesim;
   the office asks `dialog-turns` questions (continuous mode); the response
   time (speech end → first reply sample at the office's speaker) comes from
   `vb-sniff trace --json`, over the plain link (counting relay only) and the
   shaped one; the link's bytes during the dialog are counted too.
"""
import argparse
import array
import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPER = os.path.join(HERE, "..", "..", "tests", "tools", "link_shaper.py")
RATE = 16000


def say(text, voice, speed, path):
    raw = path + ".raw.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", raw, text], check=True)
    subprocess.run(["sox", raw, "-r", str(RATE), "-c", "1", "-b", "16", path], check=True)
    os.unlink(raw)
    return read_wav(path)


def read_wav(path):
    w = wave.open(path)
    a = array.array("h", w.readframes(w.getnframes()))
    return [float(x) for x in a]


def rms(x):
    return math.sqrt(sum(v * v for v in x) / max(1, len(x)))


def speech_rms(x):  # RMS over the 10 ms blocks that carry speech (above -40 dB of the peak block)
    blocks = [x[i:i + 160] for i in range(0, len(x) - 159, 160)]
    ms = [sum(v * v for v in b) / 160 for b in blocks]
    top = max(ms)
    loud = [m for m in ms if m > top * 1e-4]
    return math.sqrt(sum(loud) / len(loud))


def noise(kind, seconds, seed, path):
    """`kind`: sox synth arguments. Returns the noise and its RMS in the speech band (above 250 Hz)."""
    subprocess.run(["sox", "-R", "-n", "-r", str(RATE), "-c", "1", "-b", "16", path, "synth", str(seconds)] + kind +
                   ["vol", "0.3"], check=True)
    band = path + ".band.wav"
    subprocess.run(["sox", path, band, "highpass", "250"], check=True)
    b = read_wav(band)
    os.unlink(band)
    x = read_wav(path)
    # sox -R is repeatable, not seeded: rotate by the seed so the rooms' noises are independent
    k = (seed * 7919 * 97) % len(x)
    return x[k:] + x[:k], rms(b)


def write_wav(path, x):
    a = array.array("h", (max(-32768, min(32767, int(round(v)))) for v in x))
    w = wave.open(path, "wb")
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(RATE)
    w.writeframes(a.tobytes())
    w.close()


def db_to_amp(db):
    return 32768.0 * 10 ** (db / 20)


def make_rooms(d, trials, spacing_s, lead_s, seed):
    """Both rooms' microphones; returns the trial plan."""
    rng = random.Random(seed)
    voices = [("en-us", 150), ("en", 140), ("en-us", 170), ("en-gb-x-rp", 150)]
    phrases = [say("OK voice bus.", v, s, os.path.join(d, f"phrase{i}.wav")) for i, (v, s) in enumerate(voices)]
    total = lead_s + spacing_s * trials + 3
    n = int(total * RATE)
    rooms = {}
    # Different noise per room, at the same level where speech is (above 250 Hz): a room whose noise is
    # rumble hears a voice better than one with hiss of the same broadband level, closer or not.
    for name, kind, s in (("kitchen", ["pinknoise"], 1), ("office", ["whitenoise", "lowpass", "3000"], 2)):
        x, band = noise(kind, total, seed * 10 + s, os.path.join(d, f"noise-{name}.wav"))
        x = x[:n]
        g = db_to_amp(-45) / band
        rooms[name] = [v * g for v in x]
    plan = []
    for t in range(trials):
        diff = 6 if t % 2 == 0 else 3
        near = "kitchen" if (t // 2) % 2 == 0 else "office"
        far = "office" if near == "kitchen" else "kitchen"
        p = phrases[t % len(phrases)]
        g = db_to_amp(-22) / speech_rms(p)
        at = int((lead_s + spacing_s * t) * RATE)
        shift = int(rng.uniform(-0.030, 0.030) * RATE)
        for room, gain, off in ((near, g, at), (far, g * 10 ** (-diff / 20), at + shift)):
            x = rooms[room]
            for i, v in enumerate(p):
                x[off + i] += v * gain
        plan.append({"trial": t, "diff_db": diff, "near": near, "at_s": at / RATE, "far_shift_ms": shift * 1000 / RATE})
    for name, x in rooms.items():
        write_wav(os.path.join(d, f"{name}-mic.wav"), x)
    return plan


def feed_together(paths, fifos):
    """Both microphones start together: each capture reads its WAV from a FIFO (vb-capture reads a file
    whole, then plays it in real time); both FIFOs get all but their last bytes, then both are closed at the
    same moment. Separately started captures are otherwise 10-200 ms apart, which no room would be."""
    import threading
    barrier = threading.Barrier(len(paths))
    errors = []

    def feed(path, fifo):
        try:
            with open(path, "rb") as f:
                data = f.read()
            with open(fifo, "wb") as w:  # blocks until the capture opens it
                w.write(data[:-4096])
                w.flush()
                barrier.wait(60)
                w.write(data[-4096:])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"{fifo}: {e}")
            barrier.abort()

    threads = [threading.Thread(target=feed, args=pf, daemon=True) for pf in zip(paths, fifos)]
    for t in threads:
        t.start()
    return threads, errors


def dialog_mic(d, turns, spacing_s, lead_s):
    q = say("What time is it?", "en-us", 150, os.path.join(d, "question.wav"))
    g = db_to_amp(-22) / speech_rms(q)
    x = [0.0] * int((lead_s + spacing_s * turns + 2) * RATE)
    for t in range(turns):
        at = int((lead_s + spacing_s * t) * RATE)
        for i, v in enumerate(q):
            x[at + i] += v * g
    write_wav(os.path.join(d, "office-dialog.wav"), x)


def keygen(binp, d, name):
    out = subprocess.run([os.path.join(binp, "vb"), "keygen", os.path.join(d, name + ".key")], check=True,
                         capture_output=True, text=True).stdout.strip()
    return out


def free_port():  # the first of 4 free consecutive ports (a tcp:// bus endpoint uses 4)
    import socket
    while True:
        base = random.randrange(20000, 60000)
        socks = []
        try:
            for i in range(4):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            pass
        finally:
            for s in socks:
                s.close()


CONFIG = """
bus:
  endpoint: ${{VB_HUB_ENDPOINT:-tcp://127.0.0.1:{port}}}
  satellite_endpoint: ipc://${{VB_RUN_DIR}}/sat-{{device}}
  curve:
    server_key_file: {d}/server.key
    server_public_key: "{server}"
    client_key_file: {d}/hub.key
    allowed_clients: ["{hub}", "{kitchen}", "{office}"]
x-room: &room {{satellite: true}}
devices:
  actors: [capture, afe, wakevad, playback]
  list:
    kitchen:
      <<: *room
      client_key_file: {d}/kitchen.key
      capture: {{wav: {{path: "{kitchen_mic}"}}}}
      playback: {{wav: {{path: "${{VB_RUN_DIR}}/kitchen-reply.wav"}}}}
    office:
      <<: *room
      client_key_file: {d}/office.key
      capture: {{wav: {{path: "{office_mic}"}}}}
      playback: {{wav: {{path: "${{VB_RUN_DIR}}/office-reply.wav"}}}}
launcher:
  actors: {hub_actors}
  simulator: {sim}
  simulator_args: [--token-file, "{d}/sim-token", --bot-id, "7000000000000000001", --log-dir, "${{VB_RUN_DIR}}/sim"]
  log_dir: ${{VB_RUN_DIR}}/logs
capture: {{source: wav, wav: {{realtime: true, at_end: silence}}}}
afe: {{backend: speex}}
playback: {{sink: wav, rate: 16000, wav: {{realtime: true}}}}
{x}session:
  bot_id: "7000000000000000001"
  api_base: http://127.0.0.1:${{VB_SIM_PORT}}
  ws_base: ws://127.0.0.1:${{VB_SIM_PORT}}
  token_file: {d}/sim-token
  state_dir: ${{VB_RUN_DIR}}/state
  mode: {mode}
{x}decoder: {{output_rate: 16000}}
{x}tools: {{timeout_ms: 8000}}
control:
  mode: {mode}
  arbitration: {{window_ms: {window}}}
  barge_in: {{client_vad: false}}
  hearing: {{deaf_after_ms: 0}}
"""


class Run:
    """One hub and two satellites, each satellite behind its own relay."""

    def __init__(self, a, d, tag, config, shaped):
        self.a, self.d, self.tag, self.procs = a, d, tag, []
        self.cfg = os.path.join(d, f"{tag}.yaml")
        with open(self.cfg, "w") as f:
            f.write(config)
        self.port = int(config.split("tcp://127.0.0.1:")[1].split("}")[0])
        self.stats = {}
        shaping = [] if shaped else ["--delay-ms", "0", "--jitter-ms", "0", "--loss", "0"]
        self.relay = {}
        for i, dev in enumerate(("kitchen", "office")):
            p = free_port()
            self.stats[dev] = os.path.join(d, f"{tag}-link-{dev}.json")
            out = open(os.path.join(d, f"{tag}-shaper-{dev}.out"), "w")
            self.procs.append(subprocess.Popen([sys.executable, SHAPER, "--listen", f"127.0.0.1:{p}", "--to",
                                                f"127.0.0.1:{self.port}", "--ports", "4", "--seed", str(a.seed * 100 + i),
                                                "--stats", self.stats[dev]] + shaping, stdout=out, stderr=out))
            self.relay[dev] = p
        self.vb(["--role", "hub"], "hub", {})
        self.wait_port(self.port)
        self.sniffers = []

    def vb(self, args, name, env):
        rd = os.path.join(self.d, f"{self.tag}-{name}")
        os.makedirs(rd, exist_ok=True)
        e = dict(os.environ, VB_RUN_DIR=rd, **env)
        out = open(rd + ".out", "w")
        self.procs.append(subprocess.Popen([os.path.join(self.a.bin, "vb"), "run", "--quiet"] + args + [self.cfg],
                                           env=e, stdout=out, stderr=out, start_new_session=True))

    def wait_port(self, port, deadline_s=30):
        import socket
        end = time.time() + deadline_s
        while time.time() < end:
            if self.procs[-1].poll() is not None:
                raise RuntimeError(f"the hub ended: see {self.d}/{self.tag}-hub.out")
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nothing listens on {port} after {deadline_s} s")

    def sniff(self, cmd):
        out = open(os.path.join(self.d, f"{self.tag}-sniff-{len(self.sniffers)}.jsonl"), "w")
        p = subprocess.Popen([os.path.join(self.a.bin, "vb-sniff")] + cmd + ["--config", self.cfg, "--json"],
                             env=dict(os.environ, VB_RUN_DIR=os.path.join(self.d, f"{self.tag}-hub")),
                             stdout=out, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        self.sniffers.append(out.name)
        return out.name

    def satellites(self):
        for dev in ("kitchen", "office"):
            self.vb(["--role", "satellite", "--device", dev], dev,
                    {"VB_HUB_ENDPOINT": f"tcp://127.0.0.1:{self.relay[dev]}"})

    def link(self):
        r = {}
        for dev, path in self.stats.items():
            try:
                with open(path) as f:
                    r[dev] = json.load(f)
            except (OSError, ValueError):
                r[dev] = {}
        return r

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def read_jsonl(path):
    r = []
    with open(path) as f:
        for line in f:
            try:
                r.append(json.loads(line))
            except ValueError:
                pass
    return r


def pct(v, p):
    if not v:
        return None
    v = sorted(v)
    return round(v[min(len(v) - 1, int(p / 100 * len(v)))], 1)


def arbitration(a, d, plan, shaped):
    tag = "arb-shaped" if shaped else "arb-plain"
    port = free_port()
    cfg = CONFIG.format(port=port, d=d, server=a.keys["server"], hub=a.keys["hub"], kitchen=a.keys["kitchen"],
                        office=a.keys["office"], kitchen_mic=os.path.join(d, f"{tag}-kitchen-mic.fifo"),
                        office_mic=os.path.join(d, f"{tag}-office-mic.fifo"), hub_actors="[control]", sim="false", x="x-",
                        mode="wake_word", window=a.window_ms)
    run = Run(a, d, tag, cfg, shaped)
    try:
        wakes = run.sniff(["echo", "voice.wake"])
        states = run.sniff(["echo", "dialog.state"])
        fifos = [os.path.join(d, f"{tag}-{room}-mic.fifo") for room in ("kitchen", "office")]
        for f in fifos:
            os.mkfifo(f)
        feeders, errors = feed_together([os.path.join(d, f"{room}-mic.wav") for room in ("kitchen", "office")], fifos)
        run.satellites()
        for t in feeders:
            t.join(60)
        if errors or any(t.is_alive() for t in feeders):
            raise RuntimeError(f"the microphones were not fed: {errors}")
        t0 = time.time()
        end = t0 + a.lead_s + a.spacing_s * len(plan) + 2
        b0 = None
        while time.time() < end:
            time.sleep(0.5)
            if b0 is None and time.time() > t0 + a.lead_s - 1:
                b0 = (time.time(), run.link())  # bytes once both joined, before the first phrase
        b1 = (time.time(), run.link())
    finally:
        run.stop()
    W = [m for m in read_jsonl(wakes) if "voice.wake" in m.get("topic", "voice.wake")]
    S = read_jsonl(states)
    # Wakes: (mono_ns, device); decisions: dialog.state whose arbitration text changed.
    wk = sorted((int(m["header"]["mono_ns"]), m["header"]["device"]) for m in W)
    dec, last = [], None
    for m in S:
        arb = m["payload"].get("arbitration", "")
        if arb and arb != last:
            dec.append((int(m["header"]["mono_ns"]), m["payload"].get("device", ""), arb))
        last = arb or last
    # Trials in order: the k-th decision answers the k-th group of wakes.
    results, used = [], 0
    groups = []
    for ns, dev in wk:
        if groups and ns - groups[-1][0][0] < 1.5e9:
            groups[-1].append((ns, dev))
        else:
            groups.append([(ns, dev)])
    for g in groups:
        first = g[0][0]
        ds = [x for x in dec if first <= x[0] < first + 1.5e9]
        results.append({"wakes": [{"device": dv, "at_ms": round((ns - first) / 1e6, 1)} for ns, dv in g],
                        "decisions": len(ds),
                        "chosen": ds[0][1] if ds else None, "decision_ms": round((ds[0][0] - first) / 1e6, 1) if ds else None,
                        "why": ds[0][2] if ds else None})
    # Match the groups to the plan by time order (the first group is trial 0, …): the wav's trial k is at
    # lead + k*spacing from the capture start; groups keep that order.
    out = {"trials": len(plan), "wake_groups": len(groups)}
    per = {6: [], 3: []}
    if groups:
        g0 = groups[0][0][0]
        base = g0 / 1e9 - plan[0]["at_s"]
        for r, g in zip(results, groups):
            k = round((g[0][0] / 1e9 - base - plan[0]["at_s"]) / a.spacing_s)
            if 0 <= k < len(plan):
                r["trial"] = k
                r["near"] = plan[k]["near"]
                r["diff_db"] = plan[k]["diff_db"]
                per[plan[k]["diff_db"]].append(r)
    for diff, rs in per.items():
        trials = [p for p in plan if p["diff_db"] == diff]
        both = [r for r in rs if len({w["device"] for w in r["wakes"]}) == 2]
        right = [r for r in rs if r["chosen"] == r["near"]]
        first_arrived_near = [r for r in both if r["wakes"][0]["device"] == r["near"]]
        out[f"{diff}dB"] = {
            "trials": len(trials), "heard": len(rs), "heard_by_both": len(both),
            "closer_chosen": len(right), "closer_chosen_rate": round(len(right) / len(trials), 3) if trials else None,
            "closer_chosen_rate_of_heard_by_both": round(sum(r["chosen"] == r["near"] for r in both) / len(both), 3)
            if both else None,
            "closer_arrived_first": len(first_arrived_near),
            "decided_twice": sum(r["decisions"] > 1 for r in rs),
            "wrong": [{k: r.get(k) for k in ("trial", "near", "chosen", "why", "wakes")} for r in rs
                      if r["chosen"] != r["near"]],
        }
    ms = [r["decision_ms"] for r in results if r["decision_ms"] is not None]
    both_ms = [r["decision_ms"] for r in results if r["decision_ms"] is not None and len(r["wakes"]) >= 2]
    gap = [r["wakes"][1]["at_ms"] for r in results if len(r["wakes"]) >= 2]
    out["first_wake_to_decision_ms"] = {"count": len(ms), "p50": pct(ms, 50), "p95": pct(ms, 95), "max": pct(ms, 100),
                                        "heard_by_both_p50": pct(both_ms, 50)}
    out["second_wake_after_first_ms"] = {"p50": pct(gap, 50), "p95": pct(gap, 95), "max": pct(gap, 100)}
    if b0:
        secs = b1[0] - b0[0]
        out["link_bytes_per_s_idle_and_waking"] = {
            dev: {"up": round((b1[1][dev].get("bytes_up", 0) - b0[1][dev].get("bytes_up", 0)) / secs),
                  "down": round((b1[1][dev].get("bytes_down", 0) - b0[1][dev].get("bytes_down", 0)) / secs)}
            for dev in ("kitchen", "office")}
        out["link_bytes_up_per_trial"] = {
            dev: round((b1[1][dev].get("bytes_up", 0) - b0[1][dev].get("bytes_up", 0)) / len(plan)) for dev in ("kitchen", "office")}
        out["link"] = {dev: {k: b1[1][dev].get(k) for k in ("stalls", "chunks_up", "chunks_down", "connections")}
                       for dev in ("kitchen", "office")}
    return out


def dialog(a, d, shaped, trace=True):
    """The office's dialog; with trace, its response times (vb-sniff trace subscribes to every topic, pulling
    all of the satellite's streams over the link: the link's bytes count only in a run without it)."""
    tag = ("dialog-shaped" if shaped else "dialog-plain") + ("" if trace else "-untraced")
    port = free_port()
    silence = os.path.join(d, "silence.wav")
    write_wav(silence, [0.0] * RATE)
    cfg = CONFIG.format(port=port, d=d, server=a.keys["server"], hub=a.keys["hub"], kitchen=a.keys["kitchen"],
                        office=a.keys["office"], kitchen_mic=silence, office_mic=os.path.join(d, "office-dialog.wav"),
                        hub_actors="[control, session, decoder, tools]", sim="true", x="", mode="continuous",
                        window=min(a.window_ms, 60))
    run = Run(a, d, tag, cfg, shaped)
    try:
        trace = run.sniff(["trace"]) if trace else None
        run.satellites()
        t0 = time.time()
        end = t0 + a.dialog_lead_s + a.dialog_spacing_s * a.dialog_turns + 4
        b0 = None
        while time.time() < end:
            time.sleep(0.5)
            if b0 is None and time.time() > t0 + a.dialog_lead_s - 1:
                b0 = (time.time(), run.link())
        b1 = (time.time(), run.link())
    finally:
        run.stop()
    turns = read_jsonl(trace) if trace else []
    resp = [t["response_ms"] for t in turns if isinstance(t.get("response_ms"), (int, float))]
    secs = b1[0] - b0[0] if b0 else 1
    r = {"turns_asked": a.dialog_turns, "turns_traced": len(turns), "turns_answered": len(resp),
         "response_ms": {"p50": pct(resp, 50), "mean": round(statistics.mean(resp), 1) if resp else None,
                         "max": pct(resp, 100), "all": resp}}
    if trace:
        return r
    with open(os.path.join(d, f"{tag}-hub", "logs", "control.log")) as f:
        r["replies_played"] = sum("(reply played)" in line for line in f)
    return {"turns_asked": a.dialog_turns, "replies_played": r["replies_played"],
            "office_link_bytes_per_s": {k: round((b1[1]["office"].get("bytes_" + k, 0) -
                                                  (b0[1]["office"].get("bytes_" + k, 0) if b0 else 0)) / secs)
                                        for k in ("up", "down")},
            "office_link_stalls": b1[1]["office"].get("stalls")}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--bin", required=True)
    p.add_argument("--trials", type=int, default=80, help="trials in all: half at 6 dB, half at 3 dB")
    p.add_argument("--spacing-s", type=float, default=4.5)
    p.add_argument("--lead-s", type=float, default=10)
    p.add_argument("--window-ms", type=int, default=200)
    p.add_argument("--dialog-turns", type=int, default=5)
    p.add_argument("--dialog-spacing-s", type=float, default=12)
    p.add_argument("--dialog-lead-s", type=float, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--link", choices=["shaped", "plain"], default="shaped", help="the arbitration runs' link")
    p.add_argument("--skip-dialog", action="store_true")
    p.add_argument("--skip-arbitration", action="store_true")
    p.add_argument("--out", default="")
    p.add_argument("--keep", default="", help="keep the run's files (logs, WAVs, bus captures) in DIR")
    a = p.parse_args()
    d = a.keep or tempfile.mkdtemp(prefix="vb-satbench.")
    os.makedirs(d, exist_ok=True)
    a.keys = {k: keygen(a.bin, d, k) for k in ("server", "hub", "kitchen", "office")}
    with open(os.path.join(d, "sim-token"), "w") as f:
        f.write(os.urandom(16).hex())
    result = {"bench": "satellites", "link": "loopback TCP through tests/tools/link_shaper.py per satellite; shaped = "
              "EMULATED Wi-Fi-like link in user space (30 ms ± 20 ms per chunk, 2 % of chunks stalled 200 ms; no "
              "sch_netem in this kernel), plain = counting relay only", "curve": True,
              "opus_on_link": "not offered: satellites send audio.clean as 16 kHz s16le PCM frames",
              "window_ms": a.window_ms, "seed": a.seed}
    try:
        if not a.skip_arbitration:
            plan = make_rooms(d, a.trials, a.spacing_s, a.lead_s, a.seed)
            result["arbitration"] = arbitration(a, d, plan, a.link == "shaped")
            result["arbitration"]["link"] = a.link
        if not a.skip_dialog:
            dialog_mic(d, a.dialog_turns, a.dialog_spacing_s, a.dialog_lead_s)
            plain = dialog(a, d, False)
            shaped = dialog(a, d, True)
            result["dialog"] = {"plain": plain, "shaped": shaped, "link_bytes_shaped_untraced": dialog(a, d, True, False)}
            if plain["response_ms"]["p50"] is not None and shaped["response_ms"]["p50"] is not None:
                result["dialog"]["added_latency_ms_p50"] = round(shaped["response_ms"]["p50"] - plain["response_ms"]["p50"], 1)
    finally:
        if not a.keep:
            subprocess.run(["rm", "-rf", d])
    s = json.dumps(result, indent=1)
    print(s)
    if a.out:
        with open(a.out, "w") as f:
            f.write(s + "\n")


if __name__ == "__main__":
    main()
