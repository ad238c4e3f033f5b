#!/usr/bin/python3
"""actors/wakevad-oww's verifier (wake_verifier) through the bus: "hey jarvis, what time is it"
(espeak-ng) said twice. With a verifier that confirms (probability ≈ 0.99 ≥ 0.9) both phrases
wake; with one that refuses (≈ 0.01) none does, and the actor still hears speech (VAD events);
a head (`score: true`, the wake model's score one of its inputs) that gives back the score
decides alone at wake_threshold 0: both phrases wake, as the model does at 0.5 (and so does
the same through a hidden ReLU layer, `hidden: 1`); one that
refuses at wake_threshold 0 wakes on nothing though every chunk of speech is put to it;
a malformed verifier file (or a head missing the score's weight) is a config error naming the
file (exit 78) before any audio.

  oww_verifier.py BUILD/bin
"""
import array, json, os, subprocess, sys, tempfile, wave
here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.normpath(os.path.join(here, "..", "..", ".."))
sys.path.insert(0, os.path.join(repo, "bench", "wakevad"))
sys.path.insert(0, here)
import bus_replay
from checks import check, fails

MAIN = os.path.join(repo, "actors", "wakevad-oww", "main.js")


def say(text):  # espeak-ng, resampled to 16 kHz by sox (both from tools/bootstrap.sh)
    r = subprocess.run(["espeak-ng", "-v", "en-us", "--stdout", text], capture_output=True, check=True)
    r = subprocess.run(["sox", "-t", "wav", "-", "-r", "16000", "-c", "1", "-b", "16", "-t", "raw", "-", "vol", "0.5"],
                       input=r.stdout, capture_output=True, check=True)
    return array.array("h", r.stdout[:len(r.stdout) // 2 * 2])


def verifier(path, bias, score=None, hidden=False):
    """A logistic model that ignores the embeddings: probability 1 / (1 + e^-bias); with `score`
    (a head), the wake model's log-odds weighted by it too (score 1, bias 0: the model's score)."""
    n = 4 * 96
    v = {"pool": 4, "mean": [0] * n, "std": [1] * n, "w": [0] * n, "b": bias}
    if score is not None:
        v.update(score=True, mean=[0] * (n + 1), std=[1] * (n + 1), w=[0] * n + [score])
    if hidden:  # one ReLU that passes the score's log-odds on (+10 keeps it above 0): the same probability
        v.update(hidden=1, w1=[0] * n + [score], b1=[10.0], w=[1.0], b=bias - 10.0)
    with open(path, "w") as f:
        json.dump(v, f)


def main():
    bindir = sys.argv[1]
    silence, wake = array.array("h", bytes(2 * 32000)), say("hey jarvis, what time is it")
    pcm = array.array("h")
    for part in (silence, wake, silence, wake, silence):
        pcm.extend(part)
    with tempfile.TemporaryDirectory(prefix="vb-oww-ver-") as d:
        path = os.path.join(d, "in.wav")
        with wave.open(path, "wb") as w:
            w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000); w.writeframes(pcm.tobytes())
        runs = {}
        for name, bias, score, threshold in (("confirms", 5.0, None, 0.9), ("refuses", -5.0, None, 0.9),
                                             ("head-score", 0.0, 1.0, 0.5), ("head-refuses", -5.0, 0.0, 0.5),
                                             ("mlp-score", 0.0, 1.0, 0.5)):
            vfile = os.path.join(d, name + ".json")
            verifier(vfile, bias, score, name.startswith("mlp"))
            head = "  wake_threshold: 0\n" if score is not None else ""

            class O:
                broker = os.path.join(bindir, "vb-broker")
                section = "wakevad:\n  wake_verifier: %s\n  wake_verifier_threshold: %s\n%s" % (vfile, threshold, head)
                window_frames = 1500
                command = ["/usr/bin/node", MAIN]
            with open(os.path.join(d, "log"), "a") as log:
                runs[name] = bus_replay.replay(O, path, log)
        for name, want in (("confirms", 2), ("refuses", 0), ("head-score", 2), ("head-refuses", 0), ("mlp-score", 2)):
            r = runs[name]
            check(r["exit"] == 0 and r["drops"] == 0, "%s: fed without drops, exit 0 on SIGTERM" % name)
            check(len(r["events"]["wake"]) == want, "%s: %d wake events (%d)" % (name, want, len(r["events"]["wake"])))
        check(sum(e["start"] for e in runs["refuses"]["events"]["vad"]) == 2, "refuses: speech still heard (two SPEECH_START)")
        # the head decides where the model alone would not: every chunk of speech was put to it
        rejects = runs["head-refuses"].get("heartbeat", {}).get("verifier_rejects", 0)
        check(rejects >= 10, "head-refuses: every scored chunk of speech put to the head (%d refused)" % rejects)
        bad, cfg = os.path.join(d, "bad.json"), os.path.join(d, "bad.yaml")
        for what, text in (("a malformed verifier", '{"pool": 3}'), ("a head without the score's weight", "w"),
                           ("a hidden layer short of a weight", "w1")):
            if text in ("w", "w1"):
                verifier(bad, 0.0, 1.0, text == "w1")
                v = json.load(open(bad))
                v[text].pop()
                text = json.dumps(v)
            with open(bad, "w") as f:
                f.write(text)
            with open(cfg, "w") as f:
                f.write("wakevad:\n  wake_verifier: %s\n" % bad)
            p = subprocess.run(["/usr/bin/node", MAIN, "--config", cfg, "--name", "wakevad"], capture_output=True, text=True, timeout=30)
            check(p.returncode == 78 and "bad.yaml:2:" in p.stderr and "not a verifier" in p.stderr,
                  "%s: exit 78 with file:line (%d: %s)" % (what, p.returncode, p.stderr.strip()[-160:]))
        # wake_threshold 0 without a head would make every chunk of speech a detection
        with open(cfg, "w") as f:
            f.write("wakevad:\n  wake_threshold: 0\n")
        p = subprocess.run(["/usr/bin/node", MAIN, "--config", cfg, "--name", "wakevad"], capture_output=True, text=True, timeout=30)
        check(p.returncode == 78 and "bad.yaml:2:" in p.stderr and "wake_verifier head" in p.stderr,
              "wake_threshold 0 without a head: exit 78 with file:line (%d: %s)" % (p.returncode, p.stderr.strip()[-160:]))
    print("oww verifier: %s" % ("PASS" if not fails else "FAIL (%d)" % len(fails)))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
