// voicebus actors in Node.js (npm: zeromq, protobufjs, yaml; sdk/node/package.json).
// The same duties as the C++ runtime and sdk/python (docs/wire.md): --config/--name/
// --print-default-config/--help, the config section validated with file:line errors
// (exit 78), a Header with per-topic seq on every message, frames checked and malformed
// ones counted per reason, seq gaps counted as drops, a heartbeat every bus.heartbeat_ms,
// SIGTERM → STOPPING heartbeat and exit 0. Topics are read from bus/topics.h and the
// payload types from proto/, so neither can drift.
'use strict';
const fs = require('fs');
const path = require('path');
const zmq = require('zeromq');
const protobuf = require('protobufjs');
const YAML = require('yaml');

const REPO = process.env.VB_SOURCE_DIR || path.resolve(__dirname, '..', '..');
const root = new protobuf.Root();
root.resolvePath = (_origin, target) => path.join(REPO, 'proto', target);
root.loadSync(fs.readdirSync(path.join(REPO, 'proto/vb/v1')).filter((f) => f.endsWith('.proto'))
  .map((f) => 'vb/v1/' + f));
const type = (name) => root.lookupType(name);
const Header = type('vb.v1.Header');
const Heartbeat = type('vb.v1.Heartbeat');
const STREAM = 0, CONTROL = 1;
const TOPICS = {};
for (const m of fs.readFileSync(path.join(REPO, 'bus/topics.h'), 'utf8')
  .matchAll(/Topic<v1::(\w+)>\s+k\w+\{"([\w.]+)",\s*Plane::k(Stream|Control)\}/g))
  TOPICS[m[2]] = { type: 'vb.v1.' + m[1], plane: m[3] === 'Stream' ? STREAM : CONTROL };

function endpoints(ep) {
  if (ep.startsWith('ipc://') || ep.startsWith('inproc://'))
    return ['stream', 'control'].map((p) => [`${ep}.${p}.in`, `${ep}.${p}.out`]);
  if (ep.startsWith('tcp://')) {
    const i = ep.lastIndexOf(':'), host = ep.slice(0, i), port = Number(ep.slice(i + 1));
    return [0, 1].map((p) => [`${host}:${port + 2 * p}`, `${host}:${port + 2 * p + 1}`]);
  }
  throw new Error(`bus.endpoint: '${ep}' must start with ipc://, tcp:// or inproc://`);
}

// One config section: key(name, default, doc) declares a key; errors name file:line:col.
class Section {
  constructor(name, node, file, lc) { Object.assign(this, { name, node, file, lc, declared: [], errors: [], doc: [] }); }
  where(key, n) {
    const at = n && n.range ? this.lc.linePos(n.range[0]) : { line: 0, col: 0 };
    return `${this.file}:${at.line}:${at.col}: ${this.name}.${key}`;
  }
  error(key, msg) {
    const pair = this.node && this.node.items ? this.node.items.find((p) => p.key.value === key) : null;
    this.errors.push(`${this.where(key, pair ? pair.value : this.node)}: ${msg}`);
  }
  key(key, def, doc, allowed) {
    this.declared.push(key);
    this.doc.push(`  # ${doc}\n  ${key}: ${JSON.stringify(def)}`);
    const pair = this.node && this.node.items ? this.node.items.find((p) => p.key.value === key) : null;
    if (!pair) return def;
    let v = pair.value && pair.value.toJSON ? pair.value.toJSON() : pair.value;
    if (typeof v === 'string') v = v.replace(/\$\{(\w+)(:-([^}]*))?\}/g, (_, n, __, d) => process.env[n] ?? d ?? '');
    const same = Array.isArray(def) ? Array.isArray(v) : typeof v === typeof def;
    if (!same) { this.error(key, `expected ${Array.isArray(def) ? 'list' : typeof def}, got ${JSON.stringify(v)}`); return def; }
    if (allowed && !allowed.includes(v)) { this.error(key, `must be one of ${allowed.join(', ')}`); return def; }
    return v;
  }
  finish() {
    if (this.node && this.node.items)
      for (const p of this.node.items) if (!this.declared.includes(p.key.value)) this.error(p.key.value, 'unknown key');
  }
}

class Bus {
  constructor(a) {
    this.a = a;
    this.seq = new Map(); this.last = new Map(); this.lost = new Map(); this.handlers = [];
    this.counters = { msgsIn: 0, msgsOut: 0, drops: 0, malformed: 0, errors: 0 };
    this.malformed = {};
    this.pub = []; this.sub = []; this.queue = [Promise.resolve(), Promise.resolve()];
    endpoints(a.endpoint).forEach(([ein, eout], plane) => {
      const hwm = plane === STREAM ? a.streamHwm : a.controlHwm;
      const p = new zmq.Publisher({ sendHighWaterMark: hwm, linger: 200 });
      const s = new zmq.Subscriber({ receiveHighWaterMark: hwm, linger: 0 });
      p.connect(ein); s.connect(eout);
      this.pub.push(p); this.sub.push(s);
    });
  }
  // A function that publishes a message of the topic's type on "<base>/<device>".
  advertise(base, device) {
    if (!TOPICS[base]) throw new Error(`unknown topic base '${base}' (bus/topics.h)`);
    const topic = `${base}/${device || this.a.device}`;
    return (fields, opts = {}) => this.publish(topic, fields, opts);
  }
  publish(topic, fields, { originNs = 0, turnId = '' } = {}) {
    const base = topic.split('/')[0], t = TOPICS[base];
    const seq = (this.seq.get(topic) || 0) + 1;
    this.seq.set(topic, seq);
    const h = Header.encode({ type: t.type, seq, monoNs: process.hrtime.bigint().toString(), originNs: String(originNs),
      source: this.a.name, device: topic.split('/')[1], turnId }).finish();
    const payload = type(t.type).encode(type(t.type).fromObject(fields)).finish();
    this.counters.msgsOut++;
    // zeromq's send is one at a time per socket: chain them.
    this.queue[t.plane] = this.queue[t.plane].then(() => this.pub[t.plane].send([topic, h, payload])).catch(() => {});
    return this.queue[t.plane];
  }
  // fn(message, header, topic); device '*' hears every device.
  subscribe(base, fn, device) {
    if (!TOPICS[base]) throw new Error(`unknown topic base '${base}' (bus/topics.h)`);
    const prefix = `${base}/${device === '*' ? '' : device || this.a.device}`;
    this.handlers.push({ base, prefix, fn });
    this.sub[TOPICS[base].plane].subscribe(prefix);
  }
  reject(why) { this.counters.malformed++; this.malformed[why] = (this.malformed[why] || 0) + 1; }
  handle(frames) {
    if (frames.length !== 3) return this.reject('frame_count');
    const topic = frames[0].toString();
    if (!topic.includes('/') || frames[0].length > 256) return this.reject('topic');
    const base = topic.split('/')[0];
    let h, msg;
    try { if (frames[1].length > 4096) throw new Error(); h = Header.decode(frames[1]); } catch { return this.reject('header'); }
    if (!TOPICS[base] || h.type !== TOPICS[base].type) return this.reject('type_mismatch');
    if (frames[2].length > this.a.maxMessageBytes) return this.reject('oversized');
    try { msg = type(h.type).decode(frames[2]); } catch { return this.reject('payload'); }
    this.counters.msgsIn++;
    const key = `${h.source}\u0000${topic}`, seq = Number(h.seq), last = this.last.get(key);
    if (last !== undefined && seq > last + 1) {
      this.counters.drops += seq - last - 1;
      this.lost.set(key, (this.lost.get(key) || 0) + seq - last - 1);
    }
    this.last.set(key, seq);
    for (const hd of this.handlers)
      if (hd.base === base && topic.startsWith(hd.prefix)) {
        try { hd.fn(msg, h, topic); } catch (e) { this.counters.errors++; console.error(`${this.a.name}: handler error on ${topic}: ${e}`); }
      }
  }
  async serve(sock) {
    try { for await (const frames of sock) this.handle(frames); } catch { /* closed */ }
  }
}

const usage = (kind) => `usage: ${process.argv[1]} --config FILE [--name NAME]\n       ${process.argv[1]} --print-default-config\n` +
  `A voicebus ${kind} actor (Node.js). Exit: 0 stopped, 64 bad command line, 78 config error.\n`;

// Runs an actor: { kind, declare(section), configure(bus), onHeartbeat(hb), stop() }.
function run(actor, argv = process.argv.slice(2)) {
  const a = actor;
  let config = null, describe = false;
  a.name = a.kind;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '-h' || argv[i] === '--help') { process.stdout.write(usage(a.kind)); process.exit(0); }
    if (argv[i] === '--print-default-config') describe = true;
    else if ((argv[i] === '--config' || argv[i] === '--name') && i + 1 < argv.length && !argv[i + 1].startsWith('--')) {
      if (argv[i] === '--config') config = argv[++i]; else a.name = argv[++i];
    } else { process.stderr.write(`${a.kind}: unknown or incomplete argument '${argv[i]}'\n${usage(a.kind)}`); process.exit(64); }
  }
  if (describe) {
    const s = new Section(a.kind, null, '-', null);
    s.key('device', '', 'device this actor serves (one of devices.names; empty = the first)');
    s.key('command', [], 'the program the launcher runs for this actor');
    if (a.declare) a.declare(s);
    process.stdout.write(`# ${a.kind} (Node.js) — default configuration section\n${a.kind}:\n${s.doc.join('\n')}\n`);
    process.exit(0);
  }
  if (!config) { process.stderr.write(usage(a.kind)); process.exit(64); }
  let doc, lc = new YAML.LineCounter();
  try {
    doc = YAML.parseDocument(fs.readFileSync(config, 'utf8'), { lineCounter: lc, uniqueKeys: true });
    if (doc.errors.length) throw new Error(doc.errors[0].message);
  } catch (e) { process.stderr.write(`${a.name}: config error: ${config}: ${e.message}\n`); process.exit(78); }
  const node = (n) => (doc.contents && doc.contents.items ? (doc.contents.items.find((p) => p.key.value === n) || {}).value : null);
  const bus = new Section('bus', node('bus'), config, lc);
  const ep = bus.key('endpoint', '', '');
  a.endpoint = ep || (process.env.XDG_RUNTIME_DIR ? `ipc://${process.env.XDG_RUNTIME_DIR}/voicebus` : `ipc:///tmp/voicebus-${process.getuid()}`);
  a.streamHwm = bus.key('stream_hwm', 100, ''); a.controlHwm = bus.key('control_hwm', 100000, '');
  a.heartbeatMs = bus.key('heartbeat_ms', 1000, ''); a.maxMessageBytes = bus.key('max_message_bytes', 4 << 20, '');
  const insecure = bus.key('insecure', false, '');
  if (bus.node && bus.node.items && bus.node.items.some((p) => p.key.value === 'curve')) bus.error('curve', 'CURVE is not supported by the Node.js library yet');
  if (a.endpoint.startsWith('tcp://') && !insecure) bus.error('endpoint', 'tcp:// without CURVE needs bus.insecure: true');
  const dev = new Section('devices', node('devices'), config, lc);
  const names = dev.key('names', ['local'], '');
  const s = new Section(a.name, node(a.name), config, lc);
  a.device = s.key('device', '', '') || names[0] || 'local';
  s.key('command', [], '');
  if (a.declare) a.declare(s);
  s.finish();
  const errors = [...bus.errors, ...dev.errors, ...s.errors];
  if (errors.length) { process.stderr.write(`${a.name}: config error:\n${errors.join('\n')}\n`); process.exit(78); }

  const b = a.bus = new Bus(a);
  const hb = b.advertise('actor.heartbeat');
  const start = Date.now();
  const beat = (state) => {
    const m = { actor: a.name, kind: a.kind, state, pid: process.pid, uptimeMs: Date.now() - start,
      counters: { ...b.counters }, drops: [], extra: {} };
    for (const [k, lost] of [...b.lost].slice(0, 32)) { const [source, topic] = k.split('\u0000'); m.drops.push({ source, topic, lost }); }
    for (const [why, n] of Object.entries(b.malformed)) m.extra['malformed_' + why] = n;
    if (a.onHeartbeat) a.onHeartbeat(m);
    return hb(m);
  };
  if (a.configure) a.configure(b);
  b.sub.forEach((sock) => b.serve(sock));
  const timer = setInterval(() => beat(2), a.heartbeatMs)  // ACTIVE;
  beat(2);  // ACTIVE
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    clearInterval(timer);
    await beat(4);  // STOPPING
    if (a.stop) a.stop();
    for (const sock of [...b.sub, ...b.pub]) sock.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

module.exports = { run, TOPICS, type, Header, STREAM, CONTROL, endpoints };
