#!/usr/bin/python3
"""Measures a wakevad implementation through the bus on the labelled corpus (make_corpus.sh).

  bus_bench.py --broker BUILD/bin/vb-broker --corpus DIR --phrase "hey jarvis" --name NAME
               [--section YAML] [--conditions clean,pink10,music10] [--neg clean,pink10] [--near]
               -- COMMAND...
  bus_bench.py --table A.json B.json...      a Markdown table of results

Every file is replayed into the actor over the bus (bus_replay.py): the same for any
implementation (vb-wakevad, actors/wakevad-oww, …). The actor's events are compared with the
labels, by the rules of vb-wakevad-eval: a wake event is a hit when it ends after the phrase
began and is reported within 1.5 s of the phrase's end (latency = report point − phrase end);
every other wake event is a false accept (per hour over the non-wake speech). VAD onset: the
first SPEECH_START of each labelled phrase (its backdated start no more than 300 ms before the
phrase), decision point − phrase start. CPU: the actor's utime + stime over all frames it was
fed, per 20 ms frame and as % of one core at real time. JSON on stdout.
"""
import argparse, json, os, statistics, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bus_replay


def stats(v):
    if not v:
        return None
    v = sorted(v)
    return {"n": len(v), "median": round(statistics.median(v), 1), "p90": round(v[int(0.9 * (len(v) - 1))], 1),
            "max": round(v[-1], 1)}


def score_pos(r, labels):
    wakes, vads = r["events"]["wake"], [e for e in r["events"]["vad"] if e["start"]]
    used, lat, onset = set(), [], []
    hits = 0
    for s, e in labels:
        for i, w in enumerate(wakes):
            if i in used or w["end"] < s or w["reported"] > e + 24000:
                continue
            used.add(i); hits += 1
            lat.append((w["reported"] - e) / 16)
            break
        for v in vads:
            if v["sample"] + 300 * 16 >= s and v["sample"] < e:
                onset.append((v["decided"] - s) / 16)
                break
    return {"phrases": len(labels), "detected": hits, "detection_pct": round(100.0 * hits / len(labels), 1),
            "false_accepts_in_positives": len(wakes) - len(used), "latency_after_phrase_end_ms": stats(lat),
            "vad_onset_ms": stats(onset), "vad_onsets_found": len(onset)}


def bench(o):
    rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(o.corpus, "manifest.tsv")) if not l.startswith("#")]
    jobs = []
    for kind, phrase, cond, _snr, mix, _clean, labels in rows:
        if kind == "pos" and phrase == o.phrase and cond in o.conditions.split(","):
            jobs.append(("pos", cond, mix, labels))
        elif kind == "neg" and cond in o.neg.split(","):
            jobs.append(("neg", cond, mix, None))
        elif kind == "near" and o.near:
            jobs.append(("near", cond, mix, None))
    if not jobs:
        raise SystemExit("nothing to measure in %s for phrase '%s'" % (o.corpus, o.phrase))
    out = {"name": o.name, "command": o.command, "phrase": o.phrase, "section": o.section, "pos": {}, "neg": {}}
    cpu = frames = drops = 0
    with open(o.log, "a") as log:
        for kind, cond, mix, labels in jobs:
            print("bus_bench %s: %s %s" % (o.name, kind, mix), file=sys.stderr, flush=True)
            r = bus_replay.replay(o, os.path.join(o.corpus, mix), log)
            cpu += r["cpu_s"]; frames += r["frames"]; drops += r["drops"] + (r["frames"] - r["frames_in"])
            if kind == "pos":
                lab = [tuple(map(int, l.split())) for l in open(os.path.join(o.corpus, labels)) if l.strip()]
                out["pos"][cond] = score_pos(r, lab)
            else:
                hours = (r["audio_s"] - 2) / 3600
                fa = len(r["events"]["wake"])
                key = "near" if kind == "near" else cond
                out["neg"][key] = {"hours": round(hours, 3), "false_accepts": fa,
                                   "false_accepts_per_hour": round(fa / hours, 2),
                                   "at_s": [round(w["end"] / 16000, 2) for w in r["events"]["wake"]]}
    out["cpu"] = {"frames": frames, "ns_per_frame": round(1e9 * cpu / frames),
                  "pct_of_one_core": round(100.0 * cpu / (frames * 0.02), 2)}
    out["drops"] = drops
    return out


def get(d, *keys):
    for k in keys:
        d = (d or {}).get(k)
    return d


def table(files):
    res = [json.load(open(f)) for f in files]
    order = ["clean", "pink20", "pink10", "pink5", "pink0", "music20", "music10", "music5", "music0"]
    conds = sorted({c for r in res for c in r["pos"]}, key=lambda c: order.index(c) if c in order else len(order))
    head = ["", *[r["name"] for r in res]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    row = lambda name, f: lines.append("| " + name + " | " + " | ".join(f(r) for r in res) + " |")
    for c in conds:
        row("detection, %s" % c, lambda r: "%s %% (%s/%s)" % (get(r, "pos", c, "detection_pct"), get(r, "pos", c, "detected"),
                                                            get(r, "pos", c, "phrases")) if c in r["pos"] else "–")
    for c in ("clean", "pink10", "near"):
        row("false accepts/h, %s" % c if c != "near" else "near misses accepted",
            lambda r: ("%s (%d in %.2f h)" % (r["neg"][c]["false_accepts_per_hour"], r["neg"][c]["false_accepts"],
                                              r["neg"][c]["hours"]) if c != "near" else str(r["neg"][c]["false_accepts"]))
            if c in r["neg"] else "–")
    row("latency after phrase end, median (p90), clean", lambda r: "%s (%s) ms" % (
        get(r, "pos", "clean", "latency_after_phrase_end_ms", "median"), get(r, "pos", "clean", "latency_after_phrase_end_ms", "p90")))
    row("VAD onset, median (p90), clean", lambda r: "%s (%s) ms" % (
        get(r, "pos", "clean", "vad_onset_ms", "median"), get(r, "pos", "clean", "vad_onset_ms", "p90")))
    row("CPU per 20 ms frame", lambda r: "%.2f ms = %.1f %% of a core" % (r["cpu"]["ns_per_frame"] / 1e6, r["cpu"]["pct_of_one_core"]))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--table", nargs="+")
    ap.add_argument("--broker")
    ap.add_argument("--corpus")
    ap.add_argument("--phrase", default="hey jarvis")
    ap.add_argument("--name", default="actor")
    ap.add_argument("--section", default="")
    ap.add_argument("--conditions", default="clean,pink10,music10")
    ap.add_argument("--neg", default="clean,pink10")
    ap.add_argument("--near", action="store_true")
    ap.add_argument("--afe", help="vb-afe binary: the corpus goes in as audio.mic through it (bus_replay.py)")
    ap.add_argument("--window-frames", type=int, default=1500)
    ap.add_argument("--warmup-frames", type=int, default=50, help="silence before each file, its CPU not counted")
    ap.add_argument("--log", default="/dev/null")
    ap.add_argument("command", nargs="*")
    o = ap.parse_args()
    if o.table:
        print(table(o.table))
        return
    if not (o.broker and o.corpus and o.command):
        ap.error("--broker, --corpus and -- COMMAND are needed")
    print(json.dumps(bench(o), indent=1))


if __name__ == "__main__":
    main()
