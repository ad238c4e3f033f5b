#!/usr/bin/python3
"""Chooses wakevad-oww's detection settings on one corpus and reports them on another.

  oww_sweep.py --dev DIR[:OFFSET]... --dev-corpus DEV_CORPUS --test DIR[:OFFSET]... --test-corpus TEST_CORPUS
               [--dev-neg DIR[:OFFSET]...] [--dev2 DIR[:OFFSET]... --dev2-corpus DEV2] [--max-fa 0.5] [--max-fa-clean X] [--verifier 0,0.5,...] [--thresholds ...] [--all]

A trace folder holds the per-80 ms-chunk lines wakevad-oww writes with `score_trace` while
bus_bench.py replays a corpus through the bus (wake_spot_threshold 0, so every chunk is scored):
end sample, wake score, highest Silero probability in the chunk (OFFSET: samples of warm-up before
the file, bus_replay.py's --warmup-frames × 320; the first folder holding a file's trace is used,
so e.g. the AFE path's traces can come first and the direct path's fill in). Each variant — threshold,
patience (scores in a row), smoothing (moving mean), Silero gate (the actor's defaults: a window ≥ 0.5
within the last 0.6 s), verifier threshold (a 4th column in the traces: the probability oww_verifier.js's model
gives the window, out-of-fold on dev; a detection needs it ≥ the threshold, 0 = no verifier) — is applied to the traces as the actor applies it (refractory 2 s after the report,
reported ~300 ms after the detection) and scored like bus_bench.py. The variant chosen on the dev
corpus is the one with the best worst detection at 10 dB (pink, music) among those with at most
--max-fa false accepts per hour in noisy speech and --max-fa-clean (default the same) in clean speech (else the fewest); the same variant is then
reported on the test corpus, which took no part in choosing it (ties: see pick()). Chosen settings must then be
measured for real with bus_bench.py (the README's table comes from that, not from here). JSON.
"""
import argparse, glob, itertools, json, os

RATE = 16000
SPOT_S = 0.6  # wakevad-oww's wake_spot_ms: the wake model runs until this long after a Silero window ≥ the gate


def load(path, offset):
    out = []
    for line in open(path):
        f = line.split("\t")
        # a 4th column: the verifier's probability (oww_verifier.js); none: every detection confirmed
        out.append((int(f[0]) - offset, float(f[1]), float(f[2]), float(f[3]) if len(f) == 4 else 1.0))
    return [x for x in out if x[0] > 0]


def detect(tr, thr, patience, smooth, gate, vthr=0.0):
    recent, over, until, last_voice, dets = [], 0, -1, -10 ** 9, []
    for end, score, vad, ver in tr:
        if vad >= gate:
            last_voice = end
        if end - last_voice > SPOT_S * RATE:
            score, ver = 0.0, 0.0  # not scored: no window for the verifier either
        recent.append(score)
        if len(recent) > smooth:
            recent.pop(0)
        over = over + 1 if sum(recent) / len(recent) >= thr else 0
        if over >= patience and end >= until and ver >= vthr:
            dets.append(end)
            until = end + int(2.3 * RATE)
            over, recent = 0, []
    return dets


def hits(dets, labels):
    used, n = set(), 0
    for s, e in labels:
        for i, d in enumerate(dets):
            if i not in used and d >= s and d + int(0.3 * RATE) <= e + int(1.5 * RATE):
                used.add(i); n += 1
                break
    return n, len(dets) - len(used)


def corpus(folders, root):
    rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(root, "manifest.tsv")) if not l.startswith("#")]
    pos, neg = {}, {}
    for kind, phrase, cond, _snr, mix, _c, labels in rows:
        slug = os.path.splitext(mix)[0].replace("/", "_")
        found = [(f, int(off or 0)) for d, _, off in (x.partition(":") for x in folders)
                 for f in glob.glob(os.path.join(d, "*" + slug + ".tsv"))]
        if not found:
            continue
        tr = load(*found[0])
        if kind == "pos":
            pos.setdefault(cond, []).append((tr, [tuple(map(int, l.split())) for l in open(os.path.join(root, labels)) if l.strip()]))
        else:
            neg.setdefault("near" if kind == "near" else cond, []).append((tr, (tr[-1][0] if tr else 0) / RATE / 3600))
    return pos, neg


def more_neg(c, folders):
    """--dev-neg: every trace in these folders is ordinary speech (…pink10.tsv: in noise; …near.tsv: near misses), added to c's."""
    for d, _, off in (x.partition(":") for x in folders):
        for f in sorted(glob.glob(os.path.join(d, "*.tsv"))):
            tr = load(f, int(off or 0))
            name = os.path.basename(f)
            c[1].setdefault("near" if "near" in name else "pink10" if "pink10" in name else "clean", []).append(
                (tr, (tr[-1][0] if tr else 0) / RATE / 3600))
    return c


def evaluate(c, v):
    pos, neg = c
    r = {}
    for cond, parts in pos.items():
        n, m = sum(hits(detect(tr, *v), lab)[0] for tr, lab in parts), sum(len(lab) for _, lab in parts)
        r["det_" + cond] = round(100.0 * n / m, 1)
    for cond, parts in neg.items():
        fa, hours = sum(len(detect(tr, *v)) for tr, _ in parts), sum(h for _, h in parts)
        r["fa_" + cond] = fa if cond == "near" else round(fa / hours, 2)
    return r


def pick(res, max_fa, max_fa_clean):
    """The variant with the best worst detection at 10 dB among those within the false accepts
    allowed on dev (else among the ten with the fewest); ties go to fewer false accepts, better
    clean detection, then the more cautious variant (higher verifier threshold, higher threshold),
    since a short dev corpus cannot tell 0 false accepts/h from 0.5."""
    worst = lambda r: min(r.get("det_pink10", 0), r.get("det_music10", 0))
    clean = max_fa if max_fa_clean is None else max_fa_clean
    ok = [x for x in res if x[1].get("fa_pink10", 99) <= max_fa and x[1].get("fa_clean", 0) <= clean]
    pool = ok or sorted(res, key=lambda x: x[1].get("fa_pink10", 99))[:10]
    best = max(pool, key=lambda x: (worst(x[1]), -x[1].get("fa_pink10", 99) - x[1].get("fa_clean", 0), x[1].get("det_clean", 0),
                                    x[0][4], x[0][0], x[0][1], x[0][2]))
    return best, bool(ok)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dev", required=True, nargs="+"); ap.add_argument("--dev-corpus", required=True)
    ap.add_argument("--test", required=True, nargs="+"); ap.add_argument("--test-corpus", required=True)
    ap.add_argument("--dev2", nargs="+", help="DIR[:OFFSET]: traces of a second dev corpus (--dev2-corpus)")
    ap.add_argument("--dev2-corpus")
    ap.add_argument("--dev-neg", nargs="+", default=[], help="DIR[:OFFSET]: more of dev's ordinary speech (every trace there; …pink10.tsv in noise)")
    ap.add_argument("--max-fa", default="0.5", help="false accepts/h allowed in noisy speech (pink10); a comma list: one pick each")
    ap.add_argument("--max-fa-clean", type=float, help="… and in clean speech, where traced (default: the same)")
    ap.add_argument("--verifier", default="0,0.3,0.5,0.7,0.9",
                    help="verifier thresholds tried (0: no verifier; needs oww_verifier.js's 4-column traces); "
                         "each rule picks once without the verifier and once with it")
    ap.add_argument("--thresholds", default="0.02,0.03,0.05,0.1,0.15,0.2,0.3,0.4,0.5,0.6",
                    help="wake_threshold values tried (0 with a verifier trained with oww_verifier.js --head: the head alone decides)")
    ap.add_argument("--all", action="store_true", help="print every variant's dev figures")
    o = ap.parse_args()
    dev = more_neg(corpus(o.dev, o.dev_corpus), o.dev_neg)
    if o.dev2:  # a second dev corpus: its phrases and speech count with dev's
        for k, parts in zip((0, 1), corpus(o.dev2, o.dev2_corpus)):
            for cond, p in parts.items():
                dev[k].setdefault(cond, []).extend(p)
    test = corpus(o.test, o.test_corpus)
    variants = list(itertools.product([float(x) for x in o.thresholds.split(",")], [1, 2, 3], [1, 2, 3], [0.5],
                                      [float(x) for x in o.verifier.split(",")]))
    # threshold 0: the head alone decides, patience and smoothing of the wake model's score mean nothing
    variants = [v for v in variants if v[0] > 0 or (v[1] == 1 and v[2] == 1 and v[4] > 0)]
    res = [(v, evaluate(dev, v)) for v in variants]
    out = {"variants_tried": len(variants), "picks": []}
    for max_fa in (float(x) for x in o.max_fa.split(",")):
        for ver in (False, True):
            sub = [x for x in res if (x[0][4] > 0) == ver]
            if not sub:
                continue
            best, met = pick(sub, max_fa, o.max_fa_clean)
            v = best[0]
            out["picks"].append({"max_fa": max_fa, "verifier": ver, "chosen": {
                "wake_threshold": v[0], "wake_patience": v[1], "wake_smoothing": v[2], "wake_spot_threshold": v[3],
                "wake_verifier_threshold": v[4]}, "met_max_fa_on_dev": met, "dev": best[1], "test": evaluate(test, v)})
    if o.all:
        out["variants"] = [{"v": x[0], **x[1]} for x in res]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
