#!/usr/bin/python3
"""actors/wakevad-oww's verifier (wake_verifier) through the bus: "hey jarvis, what time is it"
(espeak-ng) said twice. With a verifier that confirms (probability ≈ 0.99 ≥ 0.9) both phrases
wake; with one that refuses (≈ 0.01) none does, and the actor still hears speech (VAD events);
a malformed verifier file is a config error naming the file (exit 78) before any audio.

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


def verifier(path, bias):  # a logistic model that ignores its input: probability 1 / (1 + e^-bias)
    n = 4 * 96
    with open(path, "w") as f:
        json.dump({"pool": 4, "mean": [0] * n, "std": [1] * n, "w": [0] * n, "b": bias}, f)


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
        for name, bias in (("confirms", 5.0), ("refuses", -5.0)):
            vfile = os.path.join(d, name + ".json")
            verifier(vfile, bias)

            class O:
                broker = os.path.join(bindir, "vb-broker")
                section = "wakevad:\n  wake_verifier: %s\n  wake_verifier_threshold: 0.9\n" % vfile
                window_frames = 1500
                command = ["/usr/bin/node", MAIN]
            with open(os.path.join(d, "log"), "a") as log:
                runs[name] = bus_replay.replay(O, path, log)
        for name, want in (("confirms", 2), ("refuses", 0)):
            r = runs[name]
            check(r["exit"] == 0 and r["drops"] == 0, "%s: fed without drops, exit 0 on SIGTERM" % name)
            check(len(r["events"]["wake"]) == want, "%s: %d wake events (%d)" % (name, want, len(r["events"]["wake"])))
        check(sum(e["start"] for e in runs["refuses"]["events"]["vad"]) == 2, "refuses: speech still heard (two SPEECH_START)")
        bad, cfg = os.path.join(d, "bad.json"), os.path.join(d, "bad.yaml")
        with open(bad, "w") as f:
            f.write('{"pool": 3}')
        with open(cfg, "w") as f:
            f.write("wakevad:\n  wake_verifier: %s\n" % bad)
        p = subprocess.run(["/usr/bin/node", MAIN, "--config", cfg, "--name", "wakevad"], capture_output=True, text=True, timeout=30)
        check(p.returncode == 78 and "bad.yaml:2:" in p.stderr and "not a verifier" in p.stderr,
              "a malformed verifier: exit 78 with file:line (%d: %s)" % (p.returncode, p.stderr.strip()[-160:]))
    print("oww verifier: %s" % ("PASS" if not fails else "FAIL (%d)" % len(fails)))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
