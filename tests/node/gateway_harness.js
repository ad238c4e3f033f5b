// Test harness for vb-gateway black-box tests: starts a private broker,
// vb-gateway and the fake session actor (tests/integration/gateway) on a
// unique ipc path and a free loopback port, and gives WebSocket clients that
// record every message and wait for the ones a test expects (no sleeps).
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const WebSocket = require('ws');

const BIN = process.env.VB_BIN_DIR || path.join(__dirname, '../../build/bin');
const TOKEN = 'test-token';

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// A WebSocket client that answers pings, keeps every message, and waits.
class Client {
  constructor(url, { autoPong = true } = {}) {
    this.url = url;
    this.messages = [];
    this.waiters = [];
    this.closed = false;
    this.autoPong = autoPong;
  }
  open() {
    return new Promise((resolve, reject) => {
      this.ws = new WebSocket(this.url);
      this.ws.once('open', () => resolve(this));
      this.ws.once('error', reject);
      this.ws.on('message', (data, isBinary) => {
        const msg = JSON.parse(data.toString());
        msg.received_at = Date.now() / 1000;  // for delivery-latency figures
        this.messages.push(msg);
        if (msg.type === 'ping' && this.autoPong) this.send({ type: 'pong' });
        this.check();
      });
      this.ws.on('close', (code, reason) => {
        this.closed = true;
        this.closeInfo = { code, reason: reason.toString() };
        this.check();
      });
    });
  }
  send(obj) { this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)); }
  sendRaw(data, opts) { this.ws.send(data, opts); }
  check() {
    this.waiters = this.waiters.filter((w) => {
      const r = w.test();
      if (r) { clearTimeout(w.timer); w.resolve(r); return false; }
      return true;
    });
  }
  // Resolves with pred's truthy result over this.messages (or on close).
  until(pred, what, timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
      const w = { test: () => pred(this.messages, this), resolve };
      const r = w.test();
      if (r) return resolve(r);
      w.timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got: ` +
          JSON.stringify(this.messages.filter((m) => m.type !== 'ping').slice(-8)).slice(0, 2000)));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }
  // The first message of `type` (after index `from`) matching `filter`.
  next(type, filter = () => true, timeoutMs = 10000, from = 0) {
    // Scans each message once (a waiter over thousands of tokens must not
    // rescan the whole history on every arrival).
    let pos = from;
    return this.until((ms) => {
      for (; pos < ms.length; ++pos) {
        const m = ms[pos];
        if (m.type === type && filter(m)) return m;
      }
      return undefined;
    }, type, timeoutMs);
  }
  of(type, filter = () => true) { return this.messages.filter((m) => m.type === type && filter(m)); }
  async authorize(token = TOKEN) {
    const from = this.messages.length;
    this.send({ type: 'authorize', token });
    return this.until((ms) => ms.slice(from).find((m) => m.type === 'authorize_success' || m.type === 'authorize_error'),
      'authorize answer');
  }
  close() { if (!this.closed) this.ws.close(); }
}

class Stack {
  constructor(name, { gateway = {}, fake = {}, avatars = true } = {}) {
    this.name = name;
    this.gatewayConf = gateway;
    this.fakeConf = fake;
    this.withAvatars = avatars;
    this.procs = [];
  }
  async start() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `vb-gw-${this.name}-`));
    this.port = await freePort();
    const bg = path.join(this.dir, 'backgrounds');
    const av = path.join(this.dir, 'avatars');
    fs.mkdirSync(bg);
    fs.mkdirSync(av);
    if (this.withAvatars) {
      fs.writeFileSync(path.join(bg, 'beach.jpg'), 'x');
      fs.writeFileSync(path.join(bg, 'room.png'), 'x');
      fs.writeFileSync(path.join(av, 'mao.yaml'), [
        'name: Mao', 'bot_id: "7400000000000000001"', 'voice: {voice_id: voice-mao, speech_rate: 20}',
        'persona_prompt: "You are Mao, a cheerful cat."',
        'model_info: {model_path: live2d/mao.model3.json, expressions: [smile], motions: [idle, wave]}', ''].join('\n'));
      fs.writeFileSync(path.join(av, 'shizuku.yml'), 'name: Shizuku\nbot_id: "7400000000000000002"\n');
    }
    const yaml = (obj) => Object.entries(obj).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`).join('\n');
    // The fake session stands for the voice dialog (TextInput); it serves no
    // chat.request, so chat_message goes into the dialog's one conversation
    // (per-client conversations are tested with the real vb-session:
    // gateway_conversations_e2e.js).
    const gw = Object.assign({ port: this.port, avatar_dir: av, backgrounds_dir: bg, generate_token: false,
      per_client_conversations: false }, this.gatewayConf);
    this.config = path.join(this.dir, 'voicebus.yaml');
    fs.writeFileSync(this.config, [
      'bus:', `  endpoint: ipc://${this.dir}/bus`, '  heartbeat_ms: 200',
      'gateway:', yaml(gw), 'fake_session:', yaml(Object.assign({ token_interval_ms: 3 }, this.fakeConf)), ''].join('\n'));
    const env = Object.assign({}, process.env, { VB_GATEWAY_TOKENS: `${TOKEN},second-token` });
    this.spawn('vb-broker', env);
    this.spawn('vb-gateway', env);
    this.spawn('vb-gw-fake-session', env);
    this.url = `ws://127.0.0.1:${this.port}/v1/chat/stream`;
    // The gateway is up when it accepts a connection.
    const deadline = Date.now() + 15000;
    for (;;) {
      try {
        this.probe = await new Client(this.url).open();
        break;
      } catch (e) {
        if (Date.now() > deadline) throw new Error('gateway did not start: ' + e.message);
        await new Promise((r) => setTimeout(r, 100));  // retry interval of a connect poll, not a synchronisation sleep
      }
    }
    // The bus is up when the gateway hears both its own heartbeat and the
    // fake session's (each went through the broker).
    await this.probe.authorize();
    this.probe.send({ type: 'dashboard_subscribe' });
    const seen = new Set();
    await this.probe.until((ms) => {
      for (const m of ms) {
        if (m.type === 'actor_health') seen.add(m.actor);
        if (m.type === 'dashboard_snapshot') for (const a of m.actors || []) seen.add(a.actor);
      }
      return seen.has('gateway') && seen.has('fake_session');
    }, 'heartbeats of gateway and fake_session', 15000);
    return this;
  }
  spawn(bin, env) {
    const p = spawn(path.join(BIN, bin), ['--config', this.config], { env, stdio: ['ignore', 'inherit', 'inherit'] });
    p.exited = new Promise((resolve) => p.on('exit', (code, sig) => resolve({ code, sig })));
    this.procs.push(p);
    return p;
  }
  async client(opts) {
    const c = await new Client(this.url, opts).open();
    return c;
  }
  async authorized(opts) {
    const c = await this.client(opts);
    const a = await c.authorize();
    if (a.type !== 'authorize_success') throw new Error('authorize failed');
    return c;
  }
  async stop() {
    if (this.onStop) await this.onStop().catch((e) => console.log(`cleanup: ${e}`));
    if (this.probe) this.probe.close();
    for (const p of this.procs.slice().reverse()) {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
      const r = await Promise.race([p.exited, new Promise((res) => setTimeout(() => res(null), 5000))]);
      if (r === null) p.kill('SIGKILL');
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// Runs named async tests in order; exits non-zero on the first failure.
async function run(stack, tests) {
  let failed = 0;
  try {
    await stack.start();
    for (const [name, fn] of tests) {
      const t0 = Date.now();
      try {
        await fn(stack);
        console.log(`ok   ${name} (${Date.now() - t0} ms)`);
      } catch (e) {
        failed++;
        console.log(`FAIL ${name}: ${e.stack || e}`);
      }
    }
  } catch (e) {
    failed++;
    console.log(`FAIL setup: ${e.stack || e}`);
  } finally {
    await stack.stop();
  }
  console.log(failed ? `${failed} failed` : 'all passed');
  process.exit(failed ? 1 : 0);
}

// Starts build/bin/<bin> with its output split into lines for `onLine`
// (echoed with VB_VERBOSE); `p.exited` resolves when it exits.
function spawnLines(bin, args, env, onLine, label = bin) {
  const p = spawn(path.join(BIN, bin), args, { env: Object.assign({}, process.env, env), stdio: ['ignore', 'pipe', 'pipe'] });
  // A binary that cannot be started is reported like an exit, so the test
  // fails and still stops the processes it did start.
  p.exited = new Promise((resolve) => {
    p.on('exit', resolve);
    p.on('error', (e) => {
      console.log(`cannot start ${bin}: ${e.message}`);
      resolve(null);
    });
  });
  let buf = '';
  const feed = (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (process.env.VB_VERBOSE) console.log(`[${label}] ${line}`);
      if (onLine) onLine(line);
    }
  };
  p.stdout.on('data', feed);
  p.stderr.on('data', feed);
  return p;
}

module.exports = { Client, Stack, run, TOKEN, freePort, spawnLines };
