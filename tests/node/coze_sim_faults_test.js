// vb-cozesim faults and pacing, seen from a plain `ws` client: drop after N
// events, drop at random, stall, refused handshakes, injected Coze error
// codes (WS and REST), slow audio, limit_config pacing versus the
// faster-than-real-time default, and speech_rate. Faults are set both by flag
// and at run time through POST /_sim/faults.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');
const { startSim, EventLog } = require('./coze_sim_lib');

const TOKEN = 'test-token';
let sim;

test.before(async () => { sim = await startSim(['--token', TOKEN]); });
test.after(async () => { if (sim) await sim.stop(); });

function connect(port = sim.port) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/chat?bot_id=7000000000000000001`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  const log = new EventLog();
  const closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
  const status = new Promise((resolve) => {
    ws.on('unexpected-response', (req, res) => resolve(res.statusCode));
    ws.on('open', () => resolve(101));
    ws.on('error', () => {});
  });
  ws.on('message', (m) => log.push(JSON.parse(m.toString())));
  // Sends queue until the socket is open ('open' listeners run in order).
  const send = (e) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(e));
    else ws.once('open', () => ws.send(JSON.stringify(e)));
  };
  return { ws, log, closed, status, send };
}

async function faults(body, port = sim.port) {
  const res = await fetch(`http://127.0.0.1:${port}/_sim/faults`, { method: 'POST', body: JSON.stringify(body) });
  assert.equal(res.status, 200);
  return res.json();
}

const say = (c, text) => c.send({ id: 'm', event_type: 'conversation.message.create', data: { role: 'user', content_type: 'text', content: text } });

test('drop after N events closes the connection after exactly N', async () => {
  await faults({ drop_after_events: 3, remaining: 1 });
  const c = connect();
  assert.equal(await c.status, 101);
  c.send({ event_type: 'chat.update', data: {} });
  say(c, 'hello');
  await c.closed;
  assert.equal(c.log.events.length, 3);
  const next = connect();  // remaining: 1 → the next connection is healthy
  say(next, 'hello');
  await next.log.waitFor(next.log.type('conversation.chat.completed'), 20000, 'healthy chat');
  next.ws.close();
});

test('drop at random (probability 1) and refused handshakes', async () => {
  await faults({ drop_probability: 1, remaining: 1 });
  const c = connect();
  await c.closed;
  assert.equal(c.log.events.length, 1);
  await faults({ refuse_handshake: 503, remaining: 1 });
  assert.equal(await connect().status, 503);
  const ok = connect();
  assert.equal(await ok.status, 101);
  ok.ws.close();
});

test('bad or missing token is refused with 401 in either form', async () => {
  const bad = new WebSocket(`ws://127.0.0.1:${sim.port}/v1/chat?bot_id=1&authorization=Bearer%20nope`);
  const none = new WebSocket(`ws://127.0.0.1:${sim.port}/v1/chat?bot_id=1`);
  const q = new WebSocket(`ws://127.0.0.1:${sim.port}/v1/chat?bot_id=1&authorization=Bearer%20${TOKEN}`);
  const code = (ws) => new Promise((resolve) => {
    ws.on('unexpected-response', (req, res) => resolve(res.statusCode));
    ws.on('open', () => { resolve(101); ws.close(); });
    ws.on('error', () => {});
  });
  assert.deepEqual(await Promise.all([code(bad), code(none), code(q)]), [401, 401, 101]);
});

test('stall keeps the socket open but sends nothing more', async () => {
  await faults({ stall_after_events: 2, remaining: 1 });
  const c = connect();
  c.send({ event_type: 'chat.update', data: {} });
  await c.log.waitFor(c.log.type('chat.updated'), 5000);
  say(c, 'hello');
  await assert.rejects(c.log.waitFor(c.log.type('conversation.chat.created'), 1500), /timed out/);
  assert.equal(c.log.events.length, 2);
  assert.equal(c.ws.readyState, WebSocket.OPEN);
  c.ws.close();
});

test('injected error codes answer turns and REST calls', async () => {
  for (const code of [4008, 4009, 5000]) {
    await faults({ error_code: code });
    const c = connect();
    say(c, 'hello');
    const e = await c.log.waitFor(c.log.type('error'), 5000);
    assert.equal(e.data.code, code);
    c.ws.close();
    const res = await fetch(`http://127.0.0.1:${sim.port}/v1/conversation/create`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}` }, body: '{}' });
    assert.equal((await res.json()).code, code);
  }
  await faults({ reset: true });
});

// Seconds of audio in the first `n` PCM deltas and the wall time they took.
async function audioRate(update, n, text = 'tell me a story') {
  const c = connect();
  c.send({ event_type: 'chat.update', data: update });
  await c.log.waitFor(c.log.type('chat.updated'), 5000);
  say(c, text);
  const first = await c.log.waitFor(c.log.type('conversation.audio.delta'), 20000, 'first audio');
  await c.log.waitFor(() => c.log.events.filter((e) => e.event_type === 'conversation.audio.delta').length >= n, 60000, `${n} deltas`);
  const deltas = c.log.events.filter((e) => e.event_type === 'conversation.audio.delta').slice(0, n);
  const rate = update.output_audio.pcm_config.sample_rate;
  const audioS = deltas.slice(1).reduce((s, e) => s + Buffer.from(e.data.content, 'base64').length / 2 / rate, 0);
  const wallS = (deltas[n - 1]._t - first._t) / 1000;
  c.ws.close();
  return { audioS, wallS };
}

test('pacing: limit_config is about real time, the default is faster', async () => {
  const pcm = (extra) => ({ output_audio: { codec: 'pcm', pcm_config: { sample_rate: 16000, frame_size_ms: 100, ...extra } } });
  const paced = await audioRate(pcm({ limit_config: { period: 1, max_frame_num: 10 } }), 21);
  assert.ok(paced.wallS >= 0.9 * paced.audioS && paced.wallS <= paced.audioS + 1.5, JSON.stringify(paced));
  const free = await audioRate(pcm({}), 21);
  assert.ok(free.wallS < free.audioS / 2, `faster than real time: ${JSON.stringify(free)}`);
  await faults({ slow_audio: 2, remaining: 1 });
  const slow = await audioRate(pcm({}), 11);
  assert.ok(slow.wallS >= 1.8 * slow.audioS, `slower than real time: ${JSON.stringify(slow)}`);
});

test('speech_rate shortens the spoken reply', async () => {
  const total = async (speech_rate) => {
    const c = connect();
    c.send({ event_type: 'chat.update', data: { output_audio: { codec: 'pcm', speech_rate, pcm_config: { sample_rate: 16000 } } } });
    say(c, 'hello');
    await c.log.waitFor(c.log.type('conversation.chat.completed'), 20000);
    c.ws.close();
    return c.log.events.filter((e) => e.event_type === 'conversation.audio.delta').reduce((s, e) => s + Buffer.from(e.data.content, 'base64').length, 0);
  };
  const normal = await total(0);
  const fast = await total(100);
  assert.ok(fast < 0.75 * normal, `${fast} vs ${normal}`);
});
