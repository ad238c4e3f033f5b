// Conformance of vb-cozesim with the official Coze Node SDK (@coze/api 1.3.9):
// the SDK is pointed at the simulator by its base URLs only, and every turn
// type of coze-protocol.md is driven through it, asserting events, their
// order and their fields. Run: node --test tests/node/coze_sim_sdk_test.js
// (VB_BIN_DIR = folder of vb-cozesim).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { CozeAPI } = require('@coze/api');
const { startSim, speak, silence, EventLog, sendPcm, openSdkChat, updateChat } = require('./coze_sim_lib');

const TOKEN = 'test-token';
const BOT = '7000000000000000001';
const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ID19 = /^\d{19}$/;

let sim, client, logDir;

test.before(async () => {
  logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cozesim-sdk-'));
  sim = await startSim(['--token', TOKEN, '--bot-id', BOT, '--log-dir', logDir, '--wait-models']);
  client = new CozeAPI({
    token: TOKEN,
    baseURL: `http://127.0.0.1:${sim.port}`,
    baseWsURL: `ws://127.0.0.1:${sim.port}`,
  });
});

test.after(async () => {
  if (sim) assert.equal(await sim.stop(), 0, 'vb-cozesim exits 0 on SIGTERM');
  fs.rmSync(logDir, { recursive: true, force: true });
});

// Opens an SDK socket; resolves once `chat.created` arrived.
const open = (query = {}) => openSdkChat(client, { bot_id: BOT, device_id: '1234567', ...query });
const update = updateChat;

function checkEnvelopes(events) {
  const logids = new Set();
  for (const e of events) {
    assert.match(e.id, UUID4, `event id of ${e.event_type}`);
    assert.equal(typeof e.detail.logid, 'string');
    logids.add(e.detail.logid);
    assert.match(e.detail.respond_at, /^\d{13}$/, 'respond_at is epoch ms as a string');
  }
  assert.equal(logids.size, 1, 'one logid per connection');
}

// The reply order of §5, for the events of one chat.
function checkReplyOrder(events, chatId) {
  const types = events.map((e) => e.event_type);
  const idx = (t, from = 0) => types.indexOf(t, from);
  const q = events.findIndex((e) => e.event_type === 'conversation.message.completed' && e.data.type === 'question');
  assert.ok(q >= 0, 'question echoed');
  assert.ok(q < idx('conversation.chat.created'), 'question before chat.created');
  assert.ok(idx('conversation.chat.created') < idx('conversation.chat.in_progress'));
  const answer = events.findIndex((e) => e.event_type === 'conversation.message.completed' && e.data.type === 'answer');
  const verbose = events.findIndex((e) => e.event_type === 'conversation.message.completed' && e.data.type === 'verbose');
  assert.ok(answer > idx('conversation.chat.in_progress') && verbose > answer, 'answer then verbose');
  const deltas = events.filter((e) => e.event_type === 'conversation.message.delta');
  assert.ok(deltas.length >= 2, 'text streams in fragments');
  assert.equal(deltas.map((d) => d.data.content).join(''), events[answer].data.content, 'deltas add up to the answer');
  assert.ok(types.lastIndexOf('conversation.message.delta') < answer);
  const audioDone = idx('conversation.audio.completed');
  assert.ok(audioDone > verbose, 'audio.completed after the text');
  assert.ok(types.lastIndexOf('conversation.audio.delta') < audioDone, 'no audio after audio.completed');
  assert.ok(idx('conversation.audio.sentence_start') < idx('conversation.audio.delta'), 'caption before audio');
  assert.equal(types[types.length - 1], 'conversation.chat.completed', 'chat.completed is last');
  const done = events[events.length - 1].data;
  assert.equal(done.id, chatId);
  assert.equal(done.status, 'completed');
  assert.ok(done.usage && done.usage.token_count > 0);
  for (const e of events.filter((x) => x.event_type === 'conversation.audio.delta' || x.event_type === 'conversation.message.delta')) {
    assert.equal(e.data.chat_id, chatId);
    assert.match(e.data.id, ID19);
    assert.match(e.data.conversation_id, ID19);
  }
  return events[answer].data.content;
}

function chatEvents(log, chatId, startIdx) {
  return log.events.slice(startIdx).filter((e) => (e.data && (e.data.chat_id === chatId || e.data.id === chatId)) ||
    ['conversation.audio.sentence_start'].includes(e.event_type));
}

test('text turn: message.create → streamed reply with PCM audio of frame_size_ms', async () => {
  const s = await open();
  const upd = await update(s, {
    output_audio: { codec: 'pcm', pcm_config: { sample_rate: 16000, frame_size_ms: 40 } },
    event_subscriptions: [],
  });
  assert.equal(upd.data.output_audio.codec, 'pcm');
  assert.match(upd.data.chat_config.conversation_id, ID19);
  const start = s.log.events.length;
  s.send({ id: 't1', event_type: 'conversation.message.create', data: { role: 'user', content_type: 'text', content: 'hello' } });
  const created = await s.log.waitFor(s.log.type('conversation.chat.created'), 10000, 'chat.created');
  await s.log.waitFor(s.log.type('conversation.chat.completed'), 20000, 'chat.completed');
  const events = s.log.since(start);
  const answer = checkReplyOrder(events, created.data.id);
  assert.match(answer, /^Hello!/);
  const audio = events.filter((e) => e.event_type === 'conversation.audio.delta').map((e) => Buffer.from(e.data.content, 'base64'));
  assert.ok(audio.length > 10);
  for (const a of audio.slice(0, -1)) assert.equal(a.length, 16000 * 2 * 40 / 1000, 'one PCM delta = frame_size_ms');
  checkEnvelopes(s.log.events);
  s.ws.close();
});

test('server_vad voice turn: espeak-ng speech → speech events, transcript, spoken reply (opus)', async () => {
  const s = await open();
  const { pcm, rate } = speak('what time is it');
  await update(s, {
    input_audio: { format: 'pcm', codec: 'pcm', sample_rate: rate, channel: 1, bit_depth: 16 },
    output_audio: { codec: 'opus', opus_config: { sample_rate: 16000, frame_size_ms: 60, bitrate: 16000 } },
    turn_detection: { type: 'server_vad', prefix_padding_ms: 300, silence_duration_ms: 500 },
  });
  const start = s.log.events.length;
  sendPcm(s.send, Buffer.concat([silence(300, rate), pcm, silence(800, rate)]), rate);
  const started = await s.log.waitFor(s.log.type('input_audio_buffer.speech_started'), 10000, 'speech_started');
  const stopped = await s.log.waitFor(s.log.type('input_audio_buffer.speech_stopped'), 10000, 'speech_stopped');
  const transcript = await s.log.waitFor(s.log.type('conversation.audio_transcript.completed'), 15000, 'transcript');
  assert.equal(transcript.data.content, 'what time is it');
  const done = await s.log.waitFor(s.log.type('conversation.chat.completed'), 20000, 'chat.completed');
  const events = s.log.since(start);
  assert.ok(events.indexOf(started) < events.indexOf(stopped));
  assert.ok(events.indexOf(stopped) < events.indexOf(transcript));
  const q = events.find((e) => e.event_type === 'conversation.message.completed' && e.data.type === 'question');
  assert.equal(q.data.content, 'what time is it');
  assert.equal(q.data.role, 'user');
  const answer = checkReplyOrder(events.slice(events.indexOf(q)), done.data.id);
  assert.match(answer, /^It is \d\d:\d\d/);
  // Opus: each delta is one raw packet (TOC byte of a 60 ms SILK/hybrid/CELT frame, no Ogg).
  const pkts = events.filter((e) => e.event_type === 'conversation.audio.delta').map((e) => Buffer.from(e.data.content, 'base64'));
  assert.ok(pkts.length > 5);
  for (const p of pkts) assert.notEqual(p.subarray(0, 4).toString(), 'OggS');
  assert.ok(!events.some((e) => e.event_type === 'input_audio_buffer.completed'), 'no completed under server_vad');
  s.ws.close();
});

test('push-to-talk turn: cancel, append, complete → completed, transcript, reply', async () => {
  const s = await open();
  const { pcm, rate } = speak('what is the date today');
  await update(s, { input_audio: { format: 'pcm', codec: 'pcm', sample_rate: rate, channel: 1, bit_depth: 16 } });
  const start = s.log.events.length;
  s.send({ id: 'k1', event_type: 'conversation.chat.cancel' });
  sendPcm(s.send, pcm, rate, 100);
  s.send({ id: 'k2', event_type: 'input_audio_buffer.complete' });
  const completed = await s.log.waitFor(s.log.type('input_audio_buffer.completed'), 10000, 'completed');
  const transcript = await s.log.waitFor(s.log.type('conversation.audio_transcript.completed'), 15000, 'transcript');
  assert.equal(transcript.data.content, 'what is the date today');
  const done = await s.log.waitFor(s.log.type('conversation.chat.completed'), 20000, 'chat.completed');
  const events = s.log.since(start);
  assert.ok(events.indexOf(completed) < events.indexOf(transcript));
  assert.ok(!events.some((e) => e.event_type.startsWith('input_audio_buffer.speech_')), 'no VAD events in push-to-talk');
  const answer = checkReplyOrder(events.slice(events.indexOf(transcript) + 1), done.data.id);
  assert.match(answer, /^Today is /);
  s.ws.close();
});

test('cancel: conversation.chat.cancel stops a long reply (code 2), no late audio', async () => {
  const s = await open();
  // Paced at real time so the story is still speaking when we cancel.
  await update(s, { output_audio: { codec: 'pcm', pcm_config: { sample_rate: 24000, frame_size_ms: 100, limit_config: { period: 1, max_frame_num: 10 } } } });
  s.send({ id: 'c1', event_type: 'conversation.message.create', data: { role: 'user', content_type: 'text', content: 'tell me a story' } });
  const created = await s.log.waitFor(s.log.type('conversation.chat.created'), 10000, 'chat.created');
  await s.log.waitFor(s.log.type('conversation.audio.delta'), 10000, 'first audio');
  s.send({ id: 'c2', event_type: 'conversation.chat.cancel' });
  const canceled = await s.log.waitFor(s.log.type('conversation.chat.canceled'), 5000, 'canceled');
  assert.equal(canceled.data.code, 2);
  // A following turn completes; nothing of the cancelled chat arrives after `canceled`.
  s.send({ id: 'c3', event_type: 'conversation.message.create', data: { role: 'user', content_type: 'text', content: 'hello' } });
  const next = await s.log.waitFor((e) => e.event_type === 'conversation.chat.completed', 20000, 'next chat');
  assert.notEqual(next.data.id, created.data.id);
  const after = s.log.events.slice(s.log.events.indexOf(canceled) + 1);
  assert.ok(!after.some((e) => e.data && e.data.chat_id === created.data.id), 'no late events of the cancelled chat');
  assert.ok(!s.log.events.some((e) => e.event_type === 'conversation.chat.completed' && e.data.id === created.data.id));
  s.ws.close();
});

test('tool call: requires_action → submit_tool_outputs → reply resumes', async () => {
  const s = await open();
  await update(s, { event_subscriptions: ['chat.updated', 'conversation.chat.requires_action', 'conversation.message.delta', 'conversation.chat.completed', 'error'] });
  const start = s.log.events.length;
  s.send({ id: 'w1', event_type: 'conversation.message.create', data: { role: 'user', content_type: 'text', content: 'What is the weather in Paris?' } });
  const ra = await s.log.waitFor(s.log.type('conversation.chat.requires_action'), 10000, 'requires_action');
  assert.equal(ra.data.status, 'requires_action');
  const call = ra.data.required_action.submit_tool_outputs.tool_calls[0];
  assert.equal(ra.data.required_action.type, 'submit_tool_outputs');
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { location: 'paris' });
  s.send({ id: 'w2', event_type: 'conversation.chat.submit_tool_outputs', data: { chat_id: ra.data.id, tool_outputs: [{ tool_call_id: call.id, output: 'sunny, 21 degrees' }] } });
  const done = await s.log.waitFor(s.log.type('conversation.chat.completed'), 20000, 'chat.completed');
  assert.equal(done.data.id, ra.data.id);
  const text = s.log.since(start).filter((e) => e.event_type === 'conversation.message.delta').map((e) => e.data.content).join('');
  assert.equal(text, 'The weather in paris: sunny, 21 degrees.');
  // Strict subscriptions: nothing outside the list arrived after chat.updated.
  const allowed = new Set(['conversation.chat.requires_action', 'conversation.message.delta', 'conversation.chat.completed', 'error']);
  assert.ok(s.log.since(start).every((e) => allowed.has(e.event_type)), 'event_subscriptions filter strictly');
  s.ws.close();
});

test('bad input keeps the connection serving; bad token and unknown bot are refused', async () => {
  const s = await open();
  s.ws.rws.send('{not json');
  s.send({ id: 'x', event_type: 'no.such.event' });
  s.send({ id: 'y', event_type: 'chat.update', data: { input_audio: { sample_rate: 'fast' } } });
  const errs = [];
  for (let i = 0; i < 3; i++) errs.push(await s.log.waitFor((e) => e.event_type === 'error' && !errs.includes(e), 5000, 'error'));
  assert.ok(errs.every((e) => typeof e.detail.origin_message === 'string' && e.data.code === 4000));
  assert.equal(errs[0].detail.origin_message, '{not json');
  s.send({ id: 'z', event_type: 'conversation.message.create', data: { role: 'user', content_type: 'text', content: 'hello' } });
  await s.log.waitFor(s.log.type('conversation.chat.completed'), 20000, 'chat after errors');
  s.ws.close();

  const bad = new CozeAPI({ token: 'wrong-token', baseURL: `http://127.0.0.1:${sim.port}`, baseWsURL: `ws://127.0.0.1:${sim.port}` });
  const ws = await bad.websockets.chat.create({ bot_id: BOT }, { maxRetries: 0 });
  const err = await new Promise((resolve) => { ws.onerror = (e) => resolve(e); });
  assert.equal(err.data.code, 401);
  ws.close();

  const other = await client.websockets.chat.create({ bot_id: '7999999999999999999' }, { maxRetries: 0 });
  const log = new EventLog();
  other.onmessage = (d) => log.push(d);
  const e = await log.waitFor(log.type('error'), 5000, 'unknown bot error');
  assert.equal(e.data.code, 4006);
  other.close();
});

test('REST: conversation create/retrieve, streamed /v3/chat, shared with WebSocket', async () => {
  const conv = await client.conversations.create({ bot_id: BOT, meta_data: { k: 'v' } });
  assert.match(conv.id, ID19);
  const got = await client.conversations.retrieve(conv.id);
  assert.equal(got.id, conv.id);
  assert.deepEqual(got.meta_data, { k: 'v' });
  const events = [];
  for await (const ev of client.chat.stream({ bot_id: BOT, conversation_id: conv.id, additional_messages: [{ role: 'user', content: 'hello', content_type: 'text' }] })) events.push(ev);
  const names = events.map((e) => e.event);
  assert.equal(names[0], 'conversation.chat.created');
  assert.equal(names[1], 'conversation.chat.in_progress');
  assert.equal(names[names.length - 1], 'done');
  assert.equal(names[names.length - 2], 'conversation.chat.completed');
  const text = events.filter((e) => e.event === 'conversation.message.delta').map((e) => e.data.content).join('');
  assert.match(text, /^Hello!/);
  // Non-streaming create + poll, as the SDK's createAndPoll does.
  const polled = await client.chat.createAndPoll({ bot_id: BOT, conversation_id: conv.id, additional_messages: [{ role: 'user', content: 'what did I say before?', content_type: 'text' }] });
  assert.equal(polled.chat.status, 'completed');
  const answer = polled.messages.find((m) => m.type === 'answer');
  assert.equal(answer.content, 'Before that you said: hello.');
  // The same conversation continues over the WebSocket: recall sees REST turns.
  const s = await open();
  await update(s, { chat_config: { conversation_id: conv.id }, event_subscriptions: ['chat.updated', 'conversation.message.completed', 'conversation.chat.completed'] });
  s.send({ id: 'r', event_type: 'conversation.message.create', data: { role: 'user', content_type: 'text', content: 'what did I say first?' } });
  await s.log.waitFor(s.log.type('conversation.chat.completed'), 20000, 'chat.completed');
  const ans = s.log.events.find((e) => e.event_type === 'conversation.message.completed' && e.data.type === 'answer');
  assert.equal(ans.data.content, 'First you said: hello.');
  assert.equal(ans.data.conversation_id, conv.id);
  s.ws.close();
  const list = await client.conversations.messages.list(conv.id, { order: 'asc' });
  const questions = list.data.filter((m) => m.type === 'question').map((m) => m.content);
  assert.deepEqual(questions, ['hello', 'what did I say before?', 'what did I say first?']);
});

test('received events are logged per connection, without the token', async () => {
  const files = fs.readdirSync(logDir).filter((f) => f.startsWith('conn-') && f.endsWith('.jsonl'));
  assert.ok(files.length >= 6, 'one log per connection');
  let sawAppend = false;
  for (const f of files) {
    const text = fs.readFileSync(path.join(logDir, f), 'utf8');
    assert.ok(!text.includes(TOKEN), 'the token is never logged');
    for (const line of text.split('\n').filter(Boolean)) {
      const j = JSON.parse(line);
      assert.ok(j.event || j.raw !== undefined);
      if (j.event && j.event.event_type === 'input_audio_buffer.append') sawAppend = true;
    }
  }
  assert.ok(sawAppend);
  // REST requests: one line each, without the token.
  const rest = fs.readFileSync(path.join(logDir, 'rest.jsonl'), 'utf8');
  assert.ok(!rest.includes(TOKEN), 'the token is never logged');
  const paths = rest.split('\n').filter(Boolean).map((l) => JSON.parse(l)).map((j) => `${j.method} ${j.path} ${j.status}`);
  assert.ok(paths.includes('POST /v1/conversation/create 200'), paths.join('; '));
});
