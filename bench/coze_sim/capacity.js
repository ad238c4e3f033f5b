// Capacity of vb-cozesim: how many concurrent real-time voice sessions it
// sustains on this machine, and the time from end of user speech to the
// first audio delta. Each session behaves like the ESP32 client (server_vad
// 600/500 ms, opus 16 kHz 60 ms frames, limit_config {1 s, 18}) and streams
// its microphone in real time (20 ms chunks): silence, "what time is it"
// spoken by espeak-ng, then silence until the reply has been delivered.
// A session is sustained when its transcript is right, its reply completes,
// the first audio comes within 5 s of the end of speech, and audio never
// falls more than 300 ms behind real-time playback. Prints one JSON object.
//
//   NODE_PATH=tests/node/node_modules VB_BIN_DIR=build/bin \
//     node bench/coze_sim/capacity.js [--levels 1,2,4,8,12] [--recognizers 2]
'use strict';
const os = require('node:os');
const path = require('node:path');
const WebSocket = require('ws');
const { startSim, speak, silence } = require(path.join(__dirname, '..', '..', 'tests', 'node', 'coze_sim_lib'));

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const LEVELS = opt('--levels', '1,2,4,8,12').split(',').map(Number);
const RECOGNIZERS = opt('--recognizers', '2');
const PHRASE = 'what time is it';
const CHUNK_MS = 20;

function pct(a, p) { if (!a.length) return null; const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]; }

async function runLevel(port, n, speech) {
  const { pcm, rate } = speech;
  const chunk = Math.round(rate * CHUNK_MS / 1000) * 2;
  const sessions = [];
  for (let i = 0; i < n; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/chat?bot_id=7000000000000000001&device_id=${1000 + i}`, { headers: { Authorization: 'Bearer bench-token' } });
    const s = { ws, i, deltas: [], transcript: null, done: false, speechEnd: 0, firstAudio: 0, error: null };
    ws.on('message', (m) => {
      const e = JSON.parse(m.toString());
      const t = performance.now();
      if (e.event_type === 'conversation.audio.delta') { if (!s.firstAudio) s.firstAudio = t; s.deltas.push(t); }
      else if (e.event_type === 'conversation.audio_transcript.completed') s.transcript = e.data.content;
      else if (e.event_type === 'conversation.chat.completed') { s.done = true; s.doneAt = t; }
      else if (e.event_type === 'error') s.error = e.data;
    });
    await new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); });
    ws.send(JSON.stringify({ event_type: 'chat.update', data: {
      input_audio: { format: 'pcm', codec: 'pcm', sample_rate: rate, channel: 1, bit_depth: 16 },
      output_audio: { codec: 'opus', opus_config: { sample_rate: 16000, bitrate: 16000, frame_size_ms: 60, limit_config: { period: 1, max_frame_num: 18 } } },
      turn_detection: { type: 'server_vad', prefix_padding_ms: 600, silence_duration_ms: 500 },
      event_subscriptions: ['conversation.audio.delta', 'conversation.chat.completed', 'conversation.audio_transcript.completed', 'error'],
    } }));
    // Stagger: users do not all stop speaking in the same millisecond.
    const lead = silence(500 + Math.round(1000 * i / n), rate);
    s.stream = Buffer.concat([lead, pcm]);
    s.speechBytes = s.stream.length;
    s.pos = 0;
    sessions.push(s);
  }
  const tail = silence(CHUNK_MS, rate);
  const start = performance.now();
  let tick = 0;
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      tick++;
      // Real-time pacing against the clock, not the timer count.
      const due = Math.floor((performance.now() - start) / CHUNK_MS);
      for (const s of sessions) {
        while ((s.sent || 0) < due) {
          s.sent = (s.sent || 0) + 1;
          let data;
          if (s.pos < s.speechBytes) { data = s.stream.subarray(s.pos, s.pos + chunk); s.pos += chunk; if (s.pos >= s.speechBytes) s.speechEnd = performance.now(); }
          else data = tail;
          if (s.ws.readyState === WebSocket.OPEN) s.ws.send(JSON.stringify({ event_type: 'input_audio_buffer.append', data: { delta: data.toString('base64') } }));
        }
      }
      const elapsed = performance.now() - start;
      if (sessions.every((s) => s.done || s.error) || elapsed > 60000) { clearInterval(timer); resolve(); }
    }, CHUNK_MS / 2);
  });
  const results = sessions.map((s) => {
    const latency = s.firstAudio && s.speechEnd ? s.firstAudio - s.speechEnd : null;
    // Lateness against real-time playback from the first delta (60 ms each).
    let lateness = 0;
    s.deltas.forEach((t, k) => { lateness = Math.max(lateness, (t - s.deltas[0]) - k * 60); });
    const ok = s.transcript === PHRASE && s.done && latency !== null && latency < 5000 && lateness <= 300;
    return { ok, transcript: s.transcript, latency_ms: latency, lateness_ms: lateness, deltas: s.deltas.length, error: s.error };
  });
  for (const s of sessions) s.ws.close();
  const lat = results.map((r) => r.latency_ms).filter((x) => x !== null);
  return {
    sessions: n,
    sustained: results.every((r) => r.ok),
    sessions_ok: results.filter((r) => r.ok).length,
    transcripts_ok: results.filter((r) => r.transcript === PHRASE).length,
    end_of_speech_to_first_audio_ms: { p50: pct(lat, 50), p95: pct(lat, 95), max: lat.length ? Math.max(...lat) : null },
    note: 'latency includes the 500 ms silence_duration_ms the VAD must observe',
    max_playback_lateness_ms: Math.max(...results.map((r) => r.lateness_ms)),
    failures: results.filter((r) => !r.ok),
  };
}

(async () => {
  const sim = await startSim(['--token', 'bench-token', '--recognizers', RECOGNIZERS, '--wait-models']);
  const speech = speak(PHRASE);
  const out = { bench: 'coze_sim_capacity', machine: { cpus: os.cpus().length, model: os.cpus()[0].model, loadavg_start: os.loadavg() },
    config: { recognizers: Number(RECOGNIZERS), phrase: PHRASE, output: 'opus 16k 60ms limit {1,18}', turn_detection: 'server_vad 600/500' }, levels: [] };
  try {
    for (const n of LEVELS) out.levels.push(await runLevel(sim.port, n, speech));
  } finally {
    await sim.stop();
  }
  out.machine.loadavg_end = os.loadavg();
  const sustained = out.levels.filter((l) => l.sustained).map((l) => l.sessions);
  out.max_sustained_sessions = sustained.length ? Math.max(...sustained) : 0;
  console.log(JSON.stringify(out, null, 2));
})().catch((e) => { console.error(e); process.exit(1); });
