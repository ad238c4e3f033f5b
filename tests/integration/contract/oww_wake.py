#!/usr/bin/python3
"""actors/wakevad-oww through the bus: "hey jarvis, what time is it" (espeak-ng) said twice
with 2 s of silence around, then a sentence without the phrase. Expects exactly two wake
events, each placed on its phrase (start within 0.3 s of where the speech began, end before
the question's end, reported within 1.5 s of the phrase), a score in (0.5, 1], context audio
reaching back before the phrase; and one SPEECH_START/SPEECH_END pair per utterance.

  oww_wake.py BUILD/bin
"""
import array, json, os, subprocess, sys, tempfile, wave
here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.normpath(os.path.join(here, "..", "..", ".."))
sys.path.insert(0, os.path.join(repo, "bench", "wakevad"))
import bus_replay


def say(text):  # espeak-ng, resampled to 16 kHz by sox (both from tools/bootstrap.sh)
    r = subprocess.run(["espeak-ng", "-v", "en-us", "--stdout", text], capture_output=True, check=True)
    r = subprocess.run(["sox", "-t", "wav", "-", "-r", "16000", "-c", "1", "-b", "16", "-t", "raw", "-", "vol", "0.5"],
                       input=r.stdout, capture_output=True, check=True)
    return array.array("h", r.stdout[:len(r.stdout) // 2 * 2])


def main():
    bindir = sys.argv[1]
    silence = array.array("h", bytes(2 * 32000))
    wake, other = say("hey jarvis, what time is it"), say("the weather is nice and the garden is green")
    pcm, starts = array.array("h"), []
    for part in (silence, wake, silence, wake, silence, other, silence):
        if part is wake:
            starts.append(len(pcm))
        pcm.extend(part)
    with tempfile.TemporaryDirectory(prefix="vb-oww-") as d:
        path = os.path.join(d, "in.wav")
        with wave.open(path, "wb") as w:
            w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000); w.writeframes(pcm.tobytes())

        class O:
            broker = os.path.join(bindir, "vb-broker")
            section = ""
            window_frames = 1500
            command = ["/usr/bin/node", os.path.join(repo, "actors", "wakevad-oww", "main.js")]
        with open(os.path.join(d, "log"), "w") as log:
            r = bus_replay.replay(O, path, log)
    ev = r["events"]
    print(json.dumps({"starts": starts, "wake": ev["wake"], "vad": ev["vad"], "drops": r["drops"], "exit": r["exit"]}))
    fails = []
    check = lambda ok, what: print("%s  %s" % ("ok  " if ok else "FAIL", what)) or (ok or fails.append(what))
    check(r["exit"] == 0 and r["drops"] == 0, "fed without drops, exit 0 on SIGTERM")
    check(len(ev["wake"]) == 2, "two wake events (%d)" % len(ev["wake"]))
    for s, w in zip(starts, ev["wake"]):
        check(abs(w["start"] - s) <= 4800 and s < w["end"] < s + len(wake) and w["reported"] <= w["end"] + 24000
              and 0.5 < w["score"] <= 1,
              "wake at %d: start %d, end %d, reported %d, score %.2f" % (s, w["start"], w["end"], w["reported"], w["score"]))
    kinds = [e["start"] for e in ev["vad"]]
    check(kinds == [True, False] * 3, "three SPEECH_START/SPEECH_END pairs (%s)" % kinds)
    print("oww wake: %s" % ("PASS" if not fails else "FAIL (%d)" % len(fails)))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
