// Helpers shared by the coze-sim tests and benchmark: start vb-cozesim on a
// free port (reading its `listening` line, no sleeps), speak text with the
// espeak-ng CLI, and collect a WebSocket's events with waits that time out.
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const path = require('node:path');
const readline = require('node:readline');

function simBinary() {
  const dir = process.env.VB_BIN_DIR || path.join(__dirname, '..', '..', 'build', 'bin');
  return path.join(dir, 'vb-cozesim');
}

// Starts the simulator; resolves {proc, port, stop()} once it listens.
function startSim(args = [], timeoutMs = 20000) {
  return new Promise((resolve, reject) => {
    const proc = spawn(simBinary(), ['--port', '0', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error('vb-cozesim did not start')); }, timeoutMs);
    proc.on('error', (e) => { clearTimeout(timer); reject(e); });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`vb-cozesim exited early (${code})`)); });
    const rl = readline.createInterface({ input: proc.stdout });
    rl.once('line', (line) => {
      clearTimeout(timer);
      const m = /^listening 127\.0\.0\.1:(\d+)$/.exec(line);
      if (!m) { proc.kill('SIGKILL'); reject(new Error(`unexpected first line: ${line}`)); return; }
      proc.removeAllListeners('exit');
      const stop = () => new Promise((res) => {
        if (proc.exitCode !== null) { res(proc.exitCode); return; }
        proc.once('exit', (code, sig) => res(code ?? sig));
        proc.kill('SIGTERM');
      });
      resolve({ proc, port: Number(m[1]), stop });
    });
  });
}

// Mono s16le PCM of `text` spoken by espeak-ng, at its native 22050 Hz.
function speak(text, voice = 'en-us') {
  const wav = execFileSync('espeak-ng', ['-v', voice, '--stdout', text], { maxBuffer: 64 << 20 });
  const pos = wav.indexOf('data');
  if (pos < 0) throw new Error('espeak-ng produced no WAV data');
  return { pcm: wav.subarray(pos + 8), rate: wav.readUInt32LE(24) };
}

function silence(ms, rate) { return Buffer.alloc(Math.round(rate * ms / 1000) * 2); }

// Collects events from anything with an onmessage(data) hook (SDK socket) or
// a 'message' event (ws). waitFor resolves with the first event (from `from`)
// matching pred, or rejects after timeoutMs.
class EventLog {
  constructor() { this.events = []; this.waiters = []; }
  push(e) {
    e._t = Date.now();
    this.events.push(e);
    for (const w of [...this.waiters]) {
      if (w.pred(e)) { this.waiters.splice(this.waiters.indexOf(w), 1); clearTimeout(w.timer); w.resolve(e); }
    }
  }
  waitFor(pred, timeoutMs = 15000, what = 'event') {
    const have = this.events.find(pred);
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`timed out waiting for ${what}; got: ${this.events.map((x) => x.event_type).join(',')}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }
  type(t) { return (e) => e.event_type === t; }
  since(i) { return this.events.slice(i); }
}

// Sends PCM as input_audio_buffer.append events of `chunkMs`.
function sendPcm(send, pcm, rate, chunkMs = 20) {
  const bytes = Math.round(rate * chunkMs / 1000) * 2;
  for (let i = 0; i < pcm.length; i += bytes) {
    send({ id: `a${i}`, event_type: 'input_audio_buffer.append', data: { delta: pcm.subarray(i, i + bytes).toString('base64') } });
  }
}

// Opens an official-SDK chat socket (client.websockets.chat.create) and
// resolves {ws, log, send} once `chat.created` arrived.
async function openSdkChat(client, query) {
  const ws = await client.websockets.chat.create(query, { maxRetries: 0 });
  const log = new EventLog();
  ws.onmessage = (data) => log.push(data);
  ws.onerror = (err) => log.push({ event_type: '_socket_error', data: err.data });
  await log.waitFor(log.type('chat.created'), 10000, 'chat.created');
  return { ws, log, send: (e) => ws.send(e) };
}

// Sends chat.update; resolves with the `chat.updated` that answers it.
function updateChat(s, data) {
  const n = s.log.events.length;
  s.send({ id: 'u' + n, event_type: 'chat.update', data });
  return s.log.waitFor((e) => e.event_type === 'chat.updated' && s.log.events.indexOf(e) >= n, 10000, 'chat.updated');
}

// Sets simulator faults at run time (POST /_sim/faults); resolves with the
// faults now in force. `base` is http(s)://host:port.
async function setFaults(base, body) {
  const res = await fetch(`${base}/_sim/faults`, { method: 'POST', body: JSON.stringify(body) });
  if (res.status !== 200) throw new Error(`faults ${JSON.stringify(body)}: ${res.status} ${await res.text()}`);
  return res.json();
}

module.exports = { startSim, speak, silence, EventLog, sendPcm, simBinary, openSdkChat, updateChat, setFaults };
