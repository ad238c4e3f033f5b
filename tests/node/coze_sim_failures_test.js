// Failures vb-cozesim produces, as the official Coze SDK (@coze/api 1.3.9)
// sees them: `conversation.chat.failed` with `last_error` (from a script rule
// and from the `chat_failed` fault, before any answer and mid-reply with
// audio), `error` events of every code coze-protocol.md §7 lists (the
// `turn_error` fault), and REST chats that fail (SSE `conversation.chat.failed`,
// retrieve/createAndPoll with last_error, error envelopes the SDK throws).
// Run: node --test tests/node/coze_sim_failures_test.js (VB_BIN_DIR = folder of vb-cozesim).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { CozeAPI } = require('@coze/api');
const { startSim, speak, sendPcm, openSdkChat, updateChat, setFaults } = require('./coze_sim_lib');

const TOKEN = 'test-token';
const BOT = '7000000000000000001';
// Every error code of coze-protocol.md §7.
const SPEC_CODES = [4000, 4001, 4002, 4003, 4004, 4005, 4006, 4008, 4009, 4010, 4011, 4013, 4015, 4016,
  4100, 4101, 4102, 4104, 4105, 4200, 5000];

let sim, client, base;

test.before(async () => {
  sim = await startSim(['--token', TOKEN, '--bot-id', BOT, '--wait-models']);
  base = `http://127.0.0.1:${sim.port}`;
  client = new CozeAPI({ token: TOKEN, baseURL: base, baseWsURL: `ws://127.0.0.1:${sim.port}` });
});
test.after(async () => { if (sim) assert.equal(await sim.stop(), 0); });
test.afterEach(async () => { await setFaults(base, { reset: true }); });

const open = () => openSdkChat(client, { bot_id: BOT });
const say = (s, text) => s.send({ id: 't', event_type: 'conversation.message.create', data: { role: 'user', content_type: 'text', content: text } });
const isEnd = (e) => ['conversation.chat.completed', 'conversation.chat.failed', 'conversation.chat.canceled', 'error'].includes(e.event_type);

// Sends `text`; resolves with the events of that turn up to its end.
async function turn(s, text, timeoutMs = 20000) {
  const start = s.log.events.length;
  say(s, text);
  await s.log.waitFor((e) => s.log.events.indexOf(e) >= start && isEnd(e), timeoutMs, `end of turn "${text}"`);
  return s.log.since(start);
}

function checkFailed(ev, code) {
  assert.equal(ev.event_type, 'conversation.chat.failed');
  assert.equal(ev.data.status, 'failed');
  assert.equal(ev.data.last_error.code, code);
  assert.ok(ev.data.last_error.msg.length > 0, 'last_error.msg says what failed');
  assert.match(String(ev.data.failed_at), /^\d{10}$/);
  assert.match(ev.data.id, /^\d{19}$/);
}

test('a script rule fails the chat: chat.failed with last_error, then the session keeps serving', async () => {
  const s = await open();
  const events = await turn(s, 'Simulate a failure, please.');
  const types = events.map((e) => e.event_type);
  const failed = events[events.length - 1];
  checkFailed(failed, 4013);
  assert.equal(failed.data.last_error.msg, 'model error (scripted failure)');
  const created = events.find((e) => e.event_type === 'conversation.chat.created');
  assert.equal(failed.data.id, created.data.id, 'the chat that was created is the one that failed');
  assert.ok(types.indexOf('conversation.chat.in_progress') < types.indexOf('conversation.chat.failed'));
  assert.ok(!types.includes('conversation.chat.completed') && !types.includes('conversation.audio.delta'));
  const next = await turn(s, 'hello');
  assert.equal(next[next.length - 1].event_type, 'conversation.chat.completed', 'the next turn completes');
  // The failed chat is stored as failed: REST retrieve shows the same last_error.
  const chat = await client.chat.retrieve(failed.data.conversation_id, failed.data.id);
  assert.equal(chat.status, 'failed');
  assert.deepEqual(chat.last_error, failed.data.last_error);
  s.ws.close();
});

test('the scripted failure by voice (push-to-talk): transcript, then chat.failed', async () => {
  const s = await open();
  const { pcm, rate } = speak('simulate a failure');
  await updateChat(s, { input_audio: { format: 'pcm', codec: 'pcm', sample_rate: rate, channel: 1, bit_depth: 16 } });
  const start = s.log.events.length;
  sendPcm(s.send, pcm, rate, 100);
  s.send({ id: 'c', event_type: 'input_audio_buffer.complete' });
  const failed = await s.log.waitFor(s.log.type('conversation.chat.failed'), 20000, 'chat.failed');
  const transcript = s.log.since(start).find((e) => e.event_type === 'conversation.audio_transcript.completed');
  assert.equal(transcript.data.content, 'simulate a failure');
  checkFailed(failed, 4013);
  s.ws.close();
});

test('chat_failed fault on an open socket, mid-reply: first sentence spoken, then chat.failed; used up after one turn', async () => {
  const s = await open();
  await updateChat(s, { output_audio: { codec: 'pcm', pcm_config: { sample_rate: 16000, frame_size_ms: 100 } } });
  const f = await setFaults(base, { chat_failed: 5000, chat_failed_after: 1, turn_faults_remaining: 1 });
  assert.equal(f.chat_failed, 5000);
  const events = await turn(s, 'tell me a story');
  const failed = events[events.length - 1];
  checkFailed(failed, 5000);
  assert.equal(failed.data.last_error.msg, 'internal error (injected fault)');
  const text = events.filter((e) => e.event_type === 'conversation.message.delta').map((e) => e.data.content).join('');
  assert.equal(text.trim(), 'Once upon a time, in a small village by the sea, there lived an old lighthouse keeper named Tom.');
  const audio = events.filter((e) => e.event_type === 'conversation.audio.delta');
  assert.ok(audio.length >= 10, `the first sentence is spoken (${audio.length} deltas)`);
  assert.ok(!events.some((e) => e.event_type === 'conversation.message.completed' && e.data.type === 'answer'), 'no completed answer');
  assert.ok(!events.some((e) => e.event_type === 'conversation.chat.completed'));
  // turn_faults_remaining 1: the fault is gone, the next turn completes.
  assert.equal((await setFaults(base, {})).chat_failed, 0);
  const next = await turn(s, 'hello');
  assert.equal(next[next.length - 1].event_type, 'conversation.chat.completed');
  s.ws.close();
});

test('turn_error: an error event of every code the spec lists reaches the SDK; the socket keeps serving', async () => {
  const s = await open();
  for (const code of SPEC_CODES) {
    await setFaults(base, { turn_error: code, turn_faults_remaining: 1 });
    const events = await turn(s, 'hello', 5000);
    const err = events[events.length - 1];
    assert.equal(err.event_type, 'error', `code ${code}`);
    assert.equal(err.data.code, code);
    assert.match(err.data.msg, /\(injected fault\)$/);
    assert.ok(err.data.msg.length > '(injected fault)'.length + 3, `code ${code} has a message: ${err.data.msg}`);
    assert.equal(typeof err.detail.logid, 'string');
    assert.ok(!events.some((e) => e.event_type === 'conversation.chat.created'), 'an error answers the turn before any chat');
  }
  const next = await turn(s, 'hello');
  assert.equal(next[next.length - 1].event_type, 'conversation.chat.completed');
  s.ws.close();
});

test('REST: a failing /v3/chat streams conversation.chat.failed then done; retrieve and createAndPoll show last_error', async () => {
  const events = [];
  for await (const ev of client.chat.stream({ bot_id: BOT, additional_messages: [{ role: 'user', content: 'simulate a failure', content_type: 'text' }] })) events.push(ev);
  const names = events.map((e) => e.event);
  assert.deepEqual(names, ['conversation.chat.created', 'conversation.chat.in_progress', 'conversation.chat.failed', 'done']);
  const failed = events[2].data;
  assert.equal(failed.status, 'failed');
  assert.deepEqual(failed.last_error, { code: 4013, msg: 'model error (scripted failure)' });
  assert.ok(failed.failed_at > 0);
  assert.deepEqual(events[0].data.last_error, { code: 0, msg: '' }, 'last_error on every chat object, as seed 003');
  const got = await client.chat.retrieve(failed.conversation_id, failed.id);
  assert.equal(got.status, 'failed');
  assert.deepEqual(got.last_error, failed.last_error);

  await setFaults(base, { chat_failed: 4009, turn_faults_remaining: 1 });
  const polled = await client.chat.createAndPoll({ bot_id: BOT, additional_messages: [{ role: 'user', content: 'hello', content_type: 'text' }] });
  assert.equal(polled.chat.status, 'failed');
  assert.equal(polled.chat.last_error.code, 4009);
  // Mid-reply over SSE: the first sentence as deltas, then failed.
  await setFaults(base, { chat_failed: 5000, chat_failed_after: 1, turn_faults_remaining: 1 });
  const mid = [];
  for await (const ev of client.chat.stream({ bot_id: BOT, additional_messages: [{ role: 'user', content: 'hello', content_type: 'text' }] })) mid.push(ev);
  assert.equal(mid.filter((e) => e.event === 'conversation.message.delta').map((e) => e.data.content).join(''), 'Hello!');
  assert.equal(mid[mid.length - 2].event, 'conversation.chat.failed');
  assert.equal(mid[mid.length - 2].data.last_error.code, 5000);
});

test('REST: turn_error answers /v3/chat with an error envelope the SDK throws, for every spec code', async () => {
  for (const code of SPEC_CODES) {
    await setFaults(base, { turn_error: code, turn_faults_remaining: 1 });
    await assert.rejects(client.chat.create({ bot_id: BOT, additional_messages: [{ role: 'user', content: 'hello', content_type: 'text' }] }),
      (e) => { assert.equal(e.code, code); assert.ok(e.msg.length > 0); return true; }, `code ${code}`);
  }
  const ok = await client.chat.create({ bot_id: BOT, additional_messages: [{ role: 'user', content: 'hello', content_type: 'text' }] });
  assert.equal(ok.status, 'in_progress', 'the fault was used up');
});

test('bad fault values are refused with a reason', async () => {
  const res = await fetch(`${base}/_sim/faults`, { method: 'POST', body: JSON.stringify({ chat_failed_after: -1 }) });
  assert.equal(res.status, 400);
  assert.match((await res.json()).error, /chat_failed_after/);
});
