// Every WebSocket event and REST object vb-cozesim sends in a full run of the
// official SDK (@coze/api 1.3.9) has every field the SDK's TypeScript types
// mark required. The required-field lists are derived from the SDK's .d.ts
// files when the test runs (coze_sim_sdk_types.js), not copied by hand; only
// the mapping of REST calls to their declared return types
// (Conversation, ChatV3Message, CreateChatData, ListMessageData,
// ConversationSession) follows the SDK's method signatures by name.
// Also: /v3/chat SSE is streamed as the reply is produced (time to first
// event and spread measured), and chat.updated is the full configuration.
// Run: node --test tests/node/coze_sim_types_test.js (VB_BIN_DIR = folder of vb-cozesim).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { CozeAPI } = require('@coze/api');
const types = require('./coze_sim_sdk_types');
const { startSim, speak, silence, sendPcm, openSdkChat, updateChat, setFaults } = require('./coze_sim_lib');

const TOKEN = 'test-token';
const BOT = '7000000000000000001';

let sim, client, base, decls, wsSchemas, sseSchemas;
const checked = new Map();  // what was validated: kind → count
const problems = [];        // "where: path missing"
const untyped = new Set();  // WS event types the SDK declares no interface for

function note(kind) { checked.set(kind, (checked.get(kind) || 0) + 1); }

function checkWs(e) {
  const cands = wsSchemas.get(e.event_type);
  if (!cands) { untyped.add(e.event_type); return; }
  // An event conforms when it satisfies one of the interfaces of its type.
  const results = cands.map((c) => ({ name: c.name, v: types.violations(e, c.schema) }));
  const ok = results.find((r) => r.v.length === 0);
  note(`ws ${e.event_type}`);
  if (!ok) problems.push(`ws ${e.event_type} (${results[0].name}): ${results[0].v.join(', ')}`);
}

function checkObj(kind, typeName, value) {
  note(`rest ${kind}`);
  const v = types.violations(value, types.schemaOf(decls, typeName));
  if (v.length) problems.push(`rest ${kind} (${typeName}): ${v.join(', ')}`);
}

function checkSse(ev) {
  if (!sseSchemas.has(ev.event)) { problems.push(`sse ${ev.event}: not an SDK stream event`); return; }
  note(`sse ${ev.event}`);
  const v = types.violations(ev.data, sseSchemas.get(ev.event));
  if (v.length) problems.push(`sse ${ev.event}: ${v.join(', ')}`);
}

test.before(async () => {
  decls = types.load();
  wsSchemas = types.wsEventSchemas(decls);
  sseSchemas = types.sseEventSchemas(decls);
  sim = await startSim(['--token', TOKEN, '--bot-id', BOT, '--wait-models']);
  base = `http://127.0.0.1:${sim.port}`;
  client = new CozeAPI({ token: TOKEN, baseURL: base, baseWsURL: `ws://127.0.0.1:${sim.port}` });
});
test.after(async () => { if (sim) assert.equal(await sim.stop(), 0); });

test('the checker derived from the .d.ts finds missing required fields (it can fail)', () => {
  assert.ok(wsSchemas.size >= 30, `WebSocket event interfaces found: ${wsSchemas.size}`);
  const msg = wsSchemas.get('conversation.message.delta')[0].schema;
  const ev = { id: 'x', event_type: 'conversation.message.delta', detail: { logid: 'l' },
    data: { id: '1', conversation_id: '2', bot_id: '3', chat_id: '4', role: 'assistant', content: 'a', content_type: 'text', type: 'answer' } };
  assert.deepEqual(types.violations(ev, msg), ['data.meta_data: missing']);
  const upd = wsSchemas.get('chat.updated')[0].schema;
  const v = types.violations({ id: 'x', event_type: 'chat.updated', detail: { logid: 'l' }, data: { chat_config: {}, input_audio: {}, output_audio: {} } }, upd);
  for (const k of ['chat_config.custom_variables', 'chat_config.extra_params', 'chat_config.parameters', 'output_audio.emotion_config', 'output_audio.pcm_config', 'output_audio.opus_config'])
    assert.ok(v.includes(`data.${k}: missing`), `${k} required by Required<…>: ${v}`);
  const sseMsg = sseSchemas.get('conversation.message.delta');
  assert.ok('reasoning_content' in sseMsg.fields && !sseMsg.fields.reasoning_content.optional);
});

test('a full WebSocket run: every event has every field the SDK requires', async () => {
  const s = await openSdkChat(client, { bot_id: BOT, device_id: '1234567' });
  const turn = async (text) => {
    const n = s.log.events.length;
    s.send({ id: 't', event_type: 'conversation.message.create', data: { role: 'user', content_type: 'text', content: text } });
    return s.log.waitFor((e) => s.log.events.indexOf(e) >= n && ['conversation.chat.completed', 'conversation.chat.failed', 'conversation.chat.requires_action', 'error'].includes(e.event_type), 30000, `end of ${text}`);
  };
  const upd = await updateChat(s, {
    chat_config: { user_id: 'user-1', meta_data: { room: 'kitchen' }, custom_variables: { name: 'Ada' }, extra_params: { latitude: '48.85', longitude: '2.35' }, parameters: { mode: 'test' } },
    input_audio: { format: 'pcm', codec: 'pcm', sample_rate: 22050, channel: 1, bit_depth: 16 },
    output_audio: { codec: 'pcm', pcm_config: { sample_rate: 16000, frame_size_ms: 100 }, emotion_config: { emotion: 'happy', emotion_scale: 4 } },
  });
  // chat.updated is the full effective configuration, the request's values in it.
  const cc = upd.data.chat_config;
  assert.deepEqual([cc.user_id, cc.meta_data, cc.custom_variables, cc.extra_params, cc.parameters, cc.auto_save_history],
    ['user-1', { room: 'kitchen' }, { name: 'Ada' }, { latitude: '48.85', longitude: '2.35' }, { mode: 'test' }, true]);
  assert.match(cc.conversation_id, /^\d{19}$/);
  assert.deepEqual(upd.data.output_audio.pcm_config, { sample_rate: 16000, frame_size_ms: 100 });
  assert.deepEqual(upd.data.output_audio.opus_config, { sample_rate: 24000, bitrate: 48000, use_cbr: false, frame_size_ms: 10 });
  assert.deepEqual(upd.data.output_audio.emotion_config, { emotion: 'happy', emotion_scale: 4 });
  assert.equal(upd.data.input_audio.sample_rate, 22050);

  await turn('hello');
  // push-to-talk voice turn
  const { pcm, rate } = speak('what time is it');
  s.send({ id: 'k', event_type: 'conversation.chat.cancel' });
  sendPcm(s.send, pcm, rate, 100);
  s.send({ id: 'c', event_type: 'input_audio_buffer.complete' });
  await s.log.waitFor((e) => e.event_type === 'conversation.chat.completed' && s.log.events.filter((x) => x.event_type === 'conversation.chat.completed').length >= 2, 30000, 'voice turn');
  s.send({ id: 'a', event_type: 'input_audio_buffer.append', data: { delta: silence(100, rate).toString('base64') } });
  s.send({ id: 'x', event_type: 'input_audio_buffer.clear' });
  await s.log.waitFor(s.log.type('input_audio_buffer.cleared'), 5000, 'cleared');
  // tool call
  const ra = await turn('what is the weather in paris');
  assert.equal(ra.event_type, 'conversation.chat.requires_action');
  const call = ra.data.required_action.submit_tool_outputs.tool_calls[0];
  const n = s.log.events.length;
  s.send({ id: 'o', event_type: 'conversation.chat.submit_tool_outputs', data: { chat_id: ra.data.id, tool_outputs: [{ tool_call_id: call.id, output: 'sunny' }] } });
  await s.log.waitFor((e) => s.log.events.indexOf(e) >= n && e.event_type === 'conversation.chat.completed', 30000, 'tool reply');
  // failure, error, cancel, clear, generate_audio
  await turn('simulate a failure');
  await setFaults(base, { turn_error: 4009, turn_faults_remaining: 1 });
  await turn('hello');
  s.send({ id: 'b', event_type: 'no.such.event' });
  await s.log.waitFor((e) => e.event_type === 'error' && e.data.code === 4000, 5000, 'error 4000');
  s.send({ id: 's', event_type: 'conversation.message.create', data: { role: 'user', content_type: 'text', content: 'tell me a story' } });
  await s.log.waitFor(s.log.type('conversation.audio.delta'), 10000, 'story audio');
  s.send({ id: 'k2', event_type: 'conversation.chat.cancel' });
  await s.log.waitFor(s.log.type('conversation.chat.canceled'), 5000, 'canceled');
  s.send({ id: 'cl', event_type: 'conversation.clear' });
  await s.log.waitFor(s.log.type('conversation.cleared'), 5000, 'cleared');
  s.send({ id: 'g', event_type: 'input_text.generate_audio', data: { mode: 'text', text: 'An announcement.' } });
  await s.log.waitFor((e) => e.event_type === 'conversation.audio.completed' && e.data.chat_id === '0', 10000, 'generated audio');
  // a server_vad voice turn on a second socket (speech_started/stopped, transcript updates)
  const v = await openSdkChat(client, { bot_id: BOT });
  await updateChat(v, { input_audio: { format: 'pcm', codec: 'pcm', sample_rate: rate, channel: 1, bit_depth: 16 },
    output_audio: { codec: 'opus', opus_config: { sample_rate: 16000, frame_size_ms: 60 } }, turn_detection: { type: 'server_vad' } });
  sendPcm(v.send, Buffer.concat([silence(300, rate), pcm, silence(900, rate)]), rate);
  await v.log.waitFor(v.log.type('conversation.chat.completed'), 30000, 'server_vad turn');
  s.ws.close();
  v.ws.close();
  // Every event both sockets received, as the SDK handed them over.
  for (const e of [...s.log.events, ...v.log.events]) {
    assert.notEqual(e.event_type, '_socket_error', JSON.stringify(e.data));
    const { _t, ...event } = e;
    checkWs(event);
  }

  const seen = [...checked.keys()].filter((k) => k.startsWith('ws ')).map((k) => k.slice(3));
  for (const t of ['chat.created', 'chat.updated', 'conversation.chat.created', 'conversation.chat.in_progress', 'conversation.chat.completed',
    'conversation.chat.failed', 'conversation.chat.canceled', 'conversation.message.delta', 'conversation.message.completed',
    'conversation.audio.delta', 'conversation.audio.completed', 'conversation.audio.sentence_start', 'conversation.audio_transcript.update',
    'conversation.audio_transcript.completed', 'input_audio_buffer.completed', 'input_audio_buffer.cleared', 'input_audio_buffer.speech_started',
    'input_audio_buffer.speech_stopped', 'conversation.cleared', 'error'])
    assert.ok(seen.includes(t), `the run produced ${t}`);
  const total = [...checked.entries()].filter(([k]) => k.startsWith('ws ')).reduce((a, [, n]) => a + n, 0);
  console.log(`WebSocket events checked: ${total}, of ${seen.length} types; types the SDK does not declare: ${[...untyped].join(', ') || 'none'}`);
  assert.deepEqual(problems, []);
});

test('a full REST run: every object has every field the SDK requires', async () => {
  const conv = await client.conversations.create({ bot_id: BOT, meta_data: { k: 'v' }, messages: [{ role: 'user', content: 'hi', content_type: 'text' }] });
  checkObj('conversations.create', 'Conversation', conv);
  checkObj('conversations.retrieve', 'Conversation', await client.conversations.retrieve(conv.id));
  const msg = await client.conversations.messages.create(conv.id, { role: 'user', content: 'good morning', content_type: 'text' });
  checkObj('messages.create', 'ChatV3Message', msg);
  assert.equal(typeof msg.updated_at, 'string', 'updated_at is a string, as seed 003 shows it');
  assert.equal(msg.updated_at, String(msg.created_at));
  assert.equal(msg.reasoning_content, '');
  for await (const ev of client.chat.stream({ bot_id: BOT, conversation_id: conv.id, additional_messages: [{ role: 'user', content: 'what is the weather in rome', content_type: 'text' }] })) {
    checkSse(ev);
    if (ev.event === 'conversation.chat.requires_action') {
      const call = ev.data.required_action.submit_tool_outputs.tool_calls[0];
      for await (const ev2 of client.chat.submitToolOutputs({ conversation_id: conv.id, chat_id: ev.data.id, stream: true, tool_outputs: [{ tool_call_id: call.id, output: 'rain' }] })) checkSse(ev2);
    }
  }
  const polled = await client.chat.createAndPoll({ bot_id: BOT, conversation_id: conv.id, additional_messages: [{ role: 'user', content: 'hello', content_type: 'text' }] });
  checkObj('chat.createAndPoll chat', 'CreateChatData', polled.chat);
  checkObj('chat.messages.list', 'ChatV3Message[]', polled.messages);
  assert.ok(polled.chat.usage && polled.chat.last_error, 'chats carry usage and last_error');
  checkObj('chat.retrieve', 'CreateChatData', await client.chat.retrieve(conv.id, polled.chat.id));
  for await (const ev of client.chat.stream({ bot_id: BOT, conversation_id: conv.id, additional_messages: [{ role: 'user', content: 'simulate a failure', content_type: 'text' }] })) checkSse(ev);
  const created = await client.chat.create({ bot_id: BOT, conversation_id: conv.id, additional_messages: [{ role: 'user', content: 'what is the weather in tokyo', content_type: 'text' }] });
  checkObj('chat.create', 'CreateChatData', created);
  checkObj('chat.cancel', 'CreateChatData', await client.chat.cancel(conv.id, created.id));
  const list = await client.conversations.messages.list(conv.id, { order: 'asc' });
  checkObj('messages.list', 'ListMessageData', list);
  assert.ok(list.data.length >= 8);
  checkObj('conversations.clear', 'ConversationSession', await client.conversations.clear(conv.id));
  const total = [...checked.entries()].filter(([k]) => !k.startsWith('ws ')).reduce((a, [, n]) => a + n, 0);
  console.log(`REST objects and SSE events checked: ${total}`);
  assert.deepEqual(problems, []);
});

// Reads a streamed /v3/chat with raw http: when each SSE event arrived.
function timedStream(body) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const ms = () => Number(process.hrtime.bigint() - t0) / 1e6;
    const req = http.request(`${base}/v3/chat`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' } }, (res) => {
      const events = [];
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          events.push({ event: /^event:(.*)$/m.exec(block)[1], t: ms() });
        }
      });
      res.on('end', () => resolve(events));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

test('v3 SSE is streamed as the reply is produced: first event at once, deltas paced', async () => {
  const events = await timedStream({ bot_id: BOT, stream: true, additional_messages: [{ role: 'user', content: 'tell me a story', content_type: 'text' }] });
  const deltas = events.filter((e) => e.event === 'conversation.message.delta');
  const first = events[0];
  const done = events[events.length - 1];
  console.log(`SSE: first event (${first.event}) after ${first.t.toFixed(1)} ms, first delta ${deltas[0].t.toFixed(1)} ms, ` +
    `${deltas.length} deltas over ${(deltas[deltas.length - 1].t - deltas[0].t).toFixed(0)} ms, done at ${done.t.toFixed(0)} ms`);
  assert.equal(first.event, 'conversation.chat.created');
  assert.equal(done.event, 'done');
  assert.ok(deltas.length >= 40);
  // Produced over (n-1) × 60 ms; arrivals spread over at least half of it
  // (a loaded client may read two at once, never earlier than sent).
  const spread = deltas[deltas.length - 1].t - deltas[0].t;
  assert.ok(spread >= 0.5 * (deltas.length - 1) * 60, `deltas spread over ${spread} ms`);
  assert.ok(first.t < deltas[0].t && deltas[0].t - first.t >= 200, 'chat.created arrives before the first delta is produced');
});
