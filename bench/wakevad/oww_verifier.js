#!/usr/bin/env node
// Trains wakevad-oww's verifier (openWakeWord's "custom verifier" idea: a small logistic
// model on the embeddings the wake model scored) on the dev corpus only, and writes every
// trace again with the verifier's probability as a 4th column, for oww_sweep.py:
//
//   oww_verifier.js --dev DIR[:OFFSET]... --dev-corpus DEV --test DIR[:OFFSET]... --test-corpus TEST --out OUT
//
// [--pool N] [--head [--hard W] [--pos-before S] [--lambda L]]   [--hidden H] (see HEAD below) [--dev-neg DIR[:OFFSET]...] [--dev2 DIR[:OFFSET]... --dev2-corpus DEV2]
// Traces: wakevad-oww's score_trace with score_trace_embeddings (bus_bench.py replays,
// wake_spot_threshold 0): end sample, score, Silero probability, the newest chunk's 96
// embedding values. The model sees the 16 embeddings the wake model scored, mean-pooled
// into 4 segments (384 values; --pool N: N segments), standardised. Examples: every chunk scoring ≥ 0.02 (and
// every 10th chunk with Silero ≥ 0.5) — positive when it lies on a labelled phrase (from
// its start to 1.2 s after its end), negative when it lies outside 0.5 s before to 2 s after any phrase
// (ordinary speech, near misses, the questions after the phrase), else unused.
// Dev's 4th column is out-of-fold (two folds: phrases by rendition parity, speech by
// halves), so choosing a threshold on dev does not see the model's own training data;
// test's comes from the model trained on all of dev, written to OUT/verifier.json
// (the actor's wake_verifier). OUT/dev and OUT/test hold the 4-column traces.
'use strict';
const fs = require('fs');
const path = require('path');

const RATE = 16000, EMB = 16, D = 96;
let POOL = 4;  // --pool: segments the 16 embeddings are mean-pooled into (1, 2, 4, 8 or 16)
// --head: the model is a detector of its own (the actor's wake_threshold 0): examples from EVERY
// chunk, not only where the wake model scored ≥ 0.02; positives only near the phrase's end
// (HEAD_POS before it to 1 s after), where the whole phrase is inside the window; the wake model's
// score (its log-odds) is one more feature; one round of hard negatives (those the first model
// gives ≥ 0.5) weighted HARD times.
let HEAD = false, HARD = 4, HEAD_POS = 0.2, LAMBDA = 1e-3, HIDDEN = 0;

function args() {
  const o = { dev: [], test: [] };
  let k = null;
  for (const a of process.argv.slice(2)) {
    if (a.startsWith('--')) { k = a.slice(2); if (k === 'help') { console.log(fs.readFileSync(__filename, 'utf8').split('\n').slice(1).filter((l, i, all) => all.slice(0, i + 1).every((m) => m.startsWith('//'))).join('\n')); process.exit(0); } }
    if (k === 'head') { HEAD = true; k = null; }
    if (a.startsWith('--')) continue;
    if (['dev', 'test', 'dev-neg', 'dev2'].includes(k)) (o[k] = o[k] || []).push(a); else if (k) o[k.replace('-corpus', 'Corpus')] = a;
  }
  for (const name of ['hard', 'lambda', 'pos-before']) {
    if (o[name] !== undefined && !(Number(o[name]) >= 0)) { console.error(`oww_verifier.js: --${name} must be a number ≥ 0, got ${o[name]}`); process.exit(2); }
  }
  if (o.hard !== undefined) HARD = Number(o.hard);
  if (o.hidden !== undefined) {
    HIDDEN = Number(o.hidden);
    if (!(Number.isInteger(HIDDEN) && HIDDEN >= 1 && HIDDEN <= 256)) { console.error('oww_verifier.js: --hidden must be 1…256'); process.exit(2); }
  }
  if (o.lambda !== undefined) LAMBDA = Number(o.lambda);
  if (o['pos-before'] !== undefined) HEAD_POS = Number(o['pos-before']);
  if (o.pool !== undefined) {
    POOL = Number(o.pool);
    if (![1, 2, 4, 8, 16].includes(POOL)) { console.error('oww_verifier.js: --pool must be 1, 2, 4, 8 or 16'); process.exit(2); }
  }
  for (const need of ['devCorpus', 'testCorpus', 'out']) if (!o[need] || !o.dev.length || !o.test.length) {
    console.error('usage: oww_verifier.js --dev DIR[:OFFSET]... --dev-corpus DEV --test DIR[:OFFSET]... --test-corpus TEST --out OUT');
    process.exit(2);
  }
  return o;
}

// The corpus's files with their trace (the first folder that holds it) and labels.
function corpus(folders, root) {
  const out = [];
  for (const line of fs.readFileSync(path.join(root, 'manifest.tsv'), 'utf8').split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const [kind, , cond, , mix, , labels] = line.split('\t');
    const slug = mix.replace(/\.wav$/, '').split('/').join('_');
    for (const f of folders) {
      const [dir, off] = f.split(':');
      const name = fs.existsSync(dir) && fs.readdirSync(dir).find((n) => n.endsWith(slug + '.tsv'));
      if (!name) continue;
      const lab = kind === 'pos' ? fs.readFileSync(path.join(root, labels), 'utf8').trim().split('\n').map((l) => l.split(/\s+/).map(Number)) : [];
      out.push({ kind, cond, file: path.join(dir, name), name, offset: Number(off || 0), labels: lab });
      break;
    }
  }
  return out;
}

function load(f) {
  const lines = fs.readFileSync(f.file, 'utf8').split('\n').filter(Boolean);
  f.end = new Float64Array(lines.length); f.score = new Float32Array(lines.length); f.vad = new Float32Array(lines.length);
  f.emb = new Float32Array(lines.length * D); f.raw = lines.map((l) => l.split('\t', 3).join('\t'));
  lines.forEach((l, i) => {
    const c = l.split('\t');
    f.end[i] = Number(c[0]) - f.offset; f.score[i] = Number(c[1]); f.vad[i] = Number(c[2]);
    if (c.length >= 3 + D) for (let d = 0; d < D; d++) f.emb[i * D + d] = Number(c[3 + d]);
  });
}

// Pooled features of the window ending at chunk i (null before 16 chunks).
function features(f, i) {
  if (i < EMB - 1) return null;
  const x = new Float32Array(POOL * D + (HEAD ? 1 : 0)), per = EMB / POOL;
  if (HEAD) x[POOL * D] = logit(f.score[i]);
  for (let p = 0; p < POOL; p++) for (let j = 0; j < per; j++) {
    const row = (i - EMB + 1 + p * per + j) * D;
    for (let d = 0; d < D; d++) x[p * D + d] += f.emb[row + d] / per;
  }
  return x;
}

// The wake model's score as log-odds (the head's extra feature; the actor's Verifier does the same).
function logit(p) {
  const q = Math.min(Math.max(p, 1e-4), 1 - 1e-4);
  return Math.log(q / (1 - q));
}

// The fold of a chunk ending at e: that of the next phrase (rendition parity), else the
// half of the file it lies in.
function foldOf(f, e) {
  for (let k = 0; k < f.labels.length; k++) if (e < f.labels[k][1] + 2.5 * RATE) return k % 2;
  return e < f.end[f.end.length - 1] / 2 ? 0 : 1;
}

// --dev-neg DIR[:OFFSET]: every trace there is ordinary speech (no phrase), dev's too
// (e.g. trace-dev-extra); its 4th column (out-of-fold) goes to OUT/dev-neg.
function negatives(folders) {
  const out = [];
  for (const f of folders) {
    const [dir, off] = f.split(':');
    for (const name of fs.readdirSync(dir).filter((n) => n.endsWith('.tsv')).sort())
      out.push({ kind: 'neg', cond: /pink10/.test(name) ? 'pink10' : 'clean', file: path.join(dir, name), name, offset: Number(off || 0), labels: [] });
  }
  return out;
}

// Examples: {x, y, fold}.
function examples(files) {
  const ex = [];
  for (const f of files) {
    const n = f.end.length;
    for (let i = 0; i < n; i++) {
      if (!HEAD && !(f.score[i] >= 0.02 || (i % 10 === 0 && f.vad[i] >= 0.5))) continue;
      const e = f.end[i];
      let y = 0;
      for (const [s, t] of f.labels) {
        if (HEAD ? e >= t - HEAD_POS * RATE && e <= t + RATE : e >= s && e <= t + 1.2 * RATE) { y = 1; break; }
        if (e > s - 0.5 * RATE && e < t + 2 * RATE) { y = -1; break; }
      }
      if (y < 0) continue;
      const x = features(f, i);
      if (x) ex.push({ x, y, fold: foldOf(f, e) });
    }
  }
  return ex;
}

// L2-regularised logistic regression, classes weighted equally, Adam: full-batch for the
// verifier; for the head (10× the examples) mini-batches of 512 in a fixed shuffled order,
// then once more with the negatives the first model gave ≥ 0.5 weighted --hard times.
function train(ex) {
  const n = ex[0].x.length, mean = new Float64Array(n), std = new Float64Array(n);
  for (const e of ex) for (let k = 0; k < n; k++) mean[k] += e.x[k] / ex.length;
  for (const e of ex) for (let k = 0; k < n; k++) std[k] += (e.x[k] - mean[k]) ** 2 / ex.length;
  for (let k = 0; k < n; k++) std[k] = Math.sqrt(std[k]) || 1;
  const xs = ex.map((e) => Float32Array.from(e.x, (v, k) => (v - mean[k]) / std[k]));
  const npos = ex.filter((e) => e.y).length, nneg = ex.length - npos;
  const fit = (wt) => {
    const w = new Float64Array(n + 1), m = new Float64Array(n + 1), v = new Float64Array(n + 1);
    const batch = HEAD ? 512 : xs.length, steps = HEAD ? Math.ceil(xs.length / batch) * 12 : 400, lr = HEAD ? 0.01 : 0.05;
    let seed = 12345;
    const order = xs.map((_, j) => j);
    for (let j = order.length - 1; j > 0; j--) { seed = (seed * 1103515245 + 12345) % 2147483648; const r = seed % (j + 1); [order[j], order[r]] = [order[r], order[j]]; }
    const g = new Float64Array(n + 1);
    for (let it = 1; it <= steps; it++) {
      g.fill(0);
      const from = ((it - 1) * batch) % xs.length, scale = xs.length / Math.min(batch, xs.length - from);
      for (let q = from; q < Math.min(from + batch, xs.length); q++) {
        const j = order[q], x = xs[j];
        let z = w[n];
        for (let k = 0; k < n; k++) z += w[k] * x[k];
        const r = scale * wt[j] * (1 / (1 + Math.exp(-z)) - ex[j].y);
        for (let k = 0; k < n; k++) g[k] += r * x[k];
        g[n] += r;
      }
      for (let k = 0; k < n; k++) g[k] += LAMBDA * w[k];
      for (let k = 0; k <= n; k++) {
        m[k] = 0.9 * m[k] + 0.1 * g[k]; v[k] = 0.999 * v[k] + 0.001 * g[k] * g[k];
        w[k] -= lr * (m[k] / (1 - 0.9 ** it)) / (Math.sqrt(v[k] / (1 - 0.999 ** it)) + 1e-8);
      }
    }
    return w;
  };
  const balanced = (hardness) => {
    const raw = ex.map((e, j) => (e.y ? 1 : hardness[j]));
    const sp = raw.reduce((a, r, j) => a + (ex[j].y ? r : 0), 0), sn = raw.reduce((a, r, j) => a + (ex[j].y ? 0 : r), 0);
    return raw.map((r, j) => (ex[j].y ? 0.5 * r / sp : 0.5 * r / sn));
  };
  if (HIDDEN) return trainMlp(ex, xs, mean, std, balanced);
  let w = fit(balanced(ex.map(() => 1)));
  let hard = 0;
  if (HEAD && HARD !== 1) {
    const p = xs.map((x) => { let z = w[n]; for (let k = 0; k < n; k++) z += w[k] * x[k]; return 1 / (1 + Math.exp(-z)); });
    const hardness = ex.map((e, j) => (!e.y && p[j] >= 0.5 ? (hard++, HARD) : 1));
    w = fit(balanced(hardness));
  }
  const model = { pool: POOL, mean: Array.from(mean), std: Array.from(std), w: Array.from(w.subarray(0, n)), b: w[n], npos, nneg, hard };
  if (HEAD) model.score = true;
  return model;
}

// --hidden H: one hidden layer of H ReLUs instead (a small MLP, as openWakeWord's own heads are),
// mini-batch Adam (12 epochs, lr 0.003, L2 --lambda), then the same hard-negative round.
function trainMlp(ex, xs, mean, std, balanced) {
  const n = xs[0].length, H = HIDDEN, P = H * n + H + H + 1;  // w1 (H × n), b1, w, b
  const npos = ex.filter((e) => e.y).length, nneg = ex.length - npos;
  let seed = 777;
  const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
  const model = (th) => ({ pool: POOL, mean: Array.from(mean), std: Array.from(std), hidden: H, w1: Array.from(th.subarray(0, H * n)),
    b1: Array.from(th.subarray(H * n, H * n + H)), w: Array.from(th.subarray(H * n + H, H * n + 2 * H)), b: th[P - 1], npos, nneg });
  const fitMlp = (wt) => {
    const th = new Float64Array(P), m = new Float64Array(P), v = new Float64Array(P), g = new Float64Array(P), h = new Float64Array(H);
    for (let q = 0; q < H * n; q++) th[q] = (rnd() * 2 - 1) * Math.sqrt(3 / n);
    for (let a = 0; a < H; a++) th[H * n + H + a] = (rnd() * 2 - 1) * Math.sqrt(3 / H);
    const order = xs.map((_, j) => j);
    for (let j = order.length - 1; j > 0; j--) { const r = Math.floor(rnd() * (j + 1)); [order[j], order[r]] = [order[r], order[j]]; }
    const batch = 512, steps = Math.ceil(xs.length / batch) * 12, lr = 0.003;
    for (let it = 1; it <= steps; it++) {
      g.fill(0);
      const from = ((it - 1) * batch) % xs.length, to = Math.min(from + batch, xs.length), scale = xs.length / (to - from);
      for (let q = from; q < to; q++) {
        const j = order[q], x = xs[j];
        let z = th[P - 1];
        for (let a = 0; a < H; a++) {
          let u = th[H * n + a];
          for (let k = 0, row = a * n; k < n; k++) u += th[row + k] * x[k];
          h[a] = u > 0 ? u : 0; z += th[H * n + H + a] * h[a];
        }
        const r = scale * wt[j] * (1 / (1 + Math.exp(-z)) - ex[j].y);
        g[P - 1] += r;
        for (let a = 0; a < H; a++) {
          g[H * n + H + a] += r * h[a];
          if (h[a] <= 0) continue;
          const d = r * th[H * n + H + a];
          g[H * n + a] += d;
          for (let k = 0, row = a * n; k < n; k++) g[row + k] += d * x[k];
        }
      }
      for (let q = 0; q < P; q++) {
        g[q] += LAMBDA * th[q];
        m[q] = 0.9 * m[q] + 0.1 * g[q]; v[q] = 0.999 * v[q] + 0.001 * g[q] * g[q];
        th[q] -= lr * (m[q] / (1 - 0.9 ** it)) / (Math.sqrt(v[q] / (1 - 0.999 ** it)) + 1e-8);
      }
    }
    return th;
  };
  let th = fitMlp(balanced(ex.map(() => 1))), hard = 0;
  if (HARD !== 1) {
    const first = model(th);
    const hardness = ex.map((e, j) => (!e.y && prob(first, e.x) >= 0.5 ? (hard++, HARD) : 1));
    th = fitMlp(balanced(hardness));
  }
  return Object.assign(model(th), { hard, score: HEAD });
}

// The same arithmetic as the actor's Verifier (main.js), on the pooled features.
function prob(model, x) {
  if (model.hidden) {
    const n = x.length, xs = Float64Array.from(x, (v, k) => (v - model.mean[k]) / model.std[k]);
    let z = model.b;
    for (let a = 0; a < model.hidden; a++) {
      let u = model.b1[a];
      for (let k = 0; k < n; k++) u += model.w1[a * n + k] * xs[k];
      if (u > 0) z += model.w[a] * u;
    }
    return 1 / (1 + Math.exp(-z));
  }
  let z = model.b;
  for (let k = 0; k < x.length; k++) z += model.w[k] * ((x[k] - model.mean[k]) / model.std[k]);
  return 1 / (1 + Math.exp(-z));
}

// Writes f's trace with the verifier's probability (of `pick(i)`'s model) as a 4th column.
function rewrite(f, dir, pick) {
  fs.mkdirSync(dir, { recursive: true });
  const lines = f.raw.map((l, i) => {
    const x = features(f, i), model = pick(i);
    return `${l}\t${x && model ? prob(model, x).toFixed(4) : '0'}`;
  });
  fs.writeFileSync(path.join(dir, f.name), lines.join('\n') + '\n');
}

function main() {
  const o = args();
  // --dev2 DIR[:OFFSET]... --dev2-corpus ROOT: a second dev corpus (more renditions in dev's voices)
  const dev2 = o.dev2 ? corpus(o.dev2, o.dev2Corpus) : [];
  dev2.forEach((f) => { f.out = 'dev2'; });  // its 4th column goes to OUT/dev2
  const dev = corpus(o.dev, o.devCorpus).concat(dev2), test = corpus(o.test, o.testCorpus), devNeg = negatives(o['dev-neg'] || []);
  dev.forEach(load); test.forEach(load); devNeg.forEach(load);
  const ex = examples(dev.concat(devNeg));
  const all = train(ex);
  const folds = [0, 1].map((k) => train(ex.filter((e) => e.fold !== k)));  // folds[k]: trained without fold k
  fs.mkdirSync(o.out, { recursive: true });
  const saved = { pool: all.pool, mean: all.mean, std: all.std, w: all.w, b: all.b };
  if (all.hidden) Object.assign(saved, { hidden: all.hidden, w1: all.w1, b1: all.b1 });
  if (all.score) saved.score = true;  // the last weight is the wake model's log-odds (the actor's wake_threshold 0: a detector)
  fs.writeFileSync(path.join(o.out, 'verifier.json'), JSON.stringify(saved));
  for (const f of dev) rewrite(f, path.join(o.out, f.out || 'dev'), (i) => folds[foldOf(f, f.end[i])]);
  for (const f of devNeg) rewrite(f, path.join(o.out, 'dev-neg'), (i) => folds[foldOf(f, f.end[i])]);
  for (const f of test) rewrite(f, path.join(o.out, 'test'), () => all);
  // training accuracy on its own examples, for the log only
  const acc = (model, set) => set.filter((e) => (prob(model, e.x) >= 0.5) === !!e.y).length / Math.max(1, set.length);
  console.log(JSON.stringify({ examples: ex.length, positives: all.npos, negatives: all.nneg, head: HEAD, hard_negatives: all.hard,
    train_accuracy: +acc(all, ex).toFixed(4),
    out_of_fold_accuracy: +((acc(folds[0], ex.filter((e) => e.fold === 0)) + acc(folds[1], ex.filter((e) => e.fold === 1))) / 2).toFixed(4),
    dev_files: dev.map((f) => f.name), dev_neg_files: devNeg.map((f) => f.file), test_files: test.map((f) => f.name) }, null, 1));
}

main();
