// Black-box tests of vb-gateway against shared/spec/gateway-protocol.md:
// a Node `ws` client, a real broker and gateway, and a fake session actor
// that speaks only bus messages (tests/integration/gateway).
'use strict';
const assert = require('assert/strict');
const { spawn } = require('child_process');
const fs = require('fs');
const http = require('http');
const path = require('path');
const { Stack, run, TOKEN } = require('./gateway_harness');

const stack = new Stack('protocol', {
  gateway: { ping_interval_ms: 250, idle_timeout_ms: 1500, turn_start_timeout_ms: 3000, max_frame_bytes: 4096 },
  fake: { ignore_interrupt: true },
});

const chat = (content, extra = {}) => Object.assign({ type: 'chat_message', content, agent_id: 'agent_001', user_id: 'user_001' }, extra);
const notPing = (m) => m.type !== 'ping';

// Waits for the stream_end of the turn that answered message `id`; returns
// every message of that turn in order.
async function turnOf(c, id, timeoutMs = 10000) {
  const start = await c.next('stream_start', (m) => m.reply_to === id, timeoutMs);
  await c.next('stream_end', (m) => m.turn_id === start.turn_id, timeoutMs);
  return c.messages.filter((m) => m.turn_id === start.turn_id || (m.type === 'tts_ready_chunk' && m.turn_id === start.turn_id));
}

// Runs vb-gateway on a config text; resolves with its exit code and output.
function gatewayExit(s, name, yaml, env = {}) {
  const cfg = path.join(s.dir, name);
  fs.writeFileSync(cfg, yaml);
  return new Promise((resolve, reject) => {
    const p = spawn(path.join(process.env.VB_BIN_DIR, 'vb-gateway'), ['--config', cfg],
      { env: Object.assign({}, process.env, { VB_GATEWAY_TOKENS: '' }, env) });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    const t = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`${name}: vb-gateway did not exit: ${out}`)); }, 10000);
    p.on('exit', (code) => { clearTimeout(t); resolve({ code, out }); });
  });
}

function get(port, p) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: p }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], body }));
    }).on('error', reject);
  });
}

run(stack, [
  ['nothing but authorize is accepted before authorization (401)', async (s) => {
    const c = await s.client();
    c.send(chat('hello'));
    c.send('{not json');
    c.send({ type: 'fetch_backgrounds' });
    await c.until((ms) => ms.filter((m) => m.type === 'error').length === 3, 'three errors');
    for (const e of c.of('error')) assert.equal(e.code, 401);
    assert.equal(c.of('stream_start').length, 0);
    const bad = await c.authorize('wrong-token');
    assert.equal(bad.type, 'authorize_error');
    assert.ok(bad.error);
    const ok = await c.authorize(TOKEN);
    assert.equal(ok.type, 'authorize_success');
    assert.match(ok.connection_id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const other = await s.authorized();
    assert.notEqual((await other.next('authorize_success')).connection_id, ok.connection_id);
    c.close(); other.close();
  }],

  ['chat_message streams tokens, tts chunks and a stream_end equal to the tokens', async (s) => {
    const c = await s.authorized();
    const bystander = await s.authorized();
    c.send(chat('hello there', { id: 'q1' }));
    const turn = await turnOf(c, 'q1');
    const types = turn.map((m) => m.type);
    assert.equal(types[0], 'stream_start');
    assert.equal(types[types.length - 1], 'stream_end');
    const start = turn[0], end = turn[turn.length - 1];
    assert.equal(start.session_id, 'conv-fake-1');
    assert.match(start.turn_id, /^chat-\d+$/);
    const tokens = turn.filter((m) => m.type === 'stream_token');
    assert.ok(tokens.length > 10, 'streamed in many tokens');
    assert.equal(end.content, tokens.map((t) => t.chunk).join(''));
    assert.equal(end.content, 'You said: hello there. Sure. Pi is about 3.14, e.g. in geometry. 你好，世界。再见！');
    assert.equal(end.session_id, 'conv-fake-1');
    const chunks = turn.filter((m) => m.type === 'tts_ready_chunk').map((m) => m.chunk);
    assert.deepEqual(chunks, ['You said:', 'hello there.', 'Sure.', 'Pi is about 3.14,', 'e.g. in geometry.', '你好，世界。', '再见！']);
    // Speakable units come while tokens are still streaming, not at the end.
    const firstChunk = types.indexOf('tts_ready_chunk');
    assert.ok(firstChunk < types.lastIndexOf('stream_token') - 10, 'first tts chunk long before the last token');
    // Not mirrored to a client that did not ask (mirror_text_turns: false).
    assert.equal(bystander.of('stream_start', (m) => m.turn_id === start.turn_id).length, 0);
    c.close(); bystander.close();
  }],

  ['voice turns are mirrored to every authorized client; push_to_talk reaches the bus', async (s) => {
    const a = await s.authorized();
    const b = await s.authorized();
    const unauth = await s.client();
    a.send({ type: 'push_to_talk', down: true });
    a.send({ type: 'push_to_talk', down: false });
    for (const c of [a, b]) {
      const start = await c.next('stream_start', (m) => m.input === 'voice');
      const end = await c.next('stream_end', (m) => m.turn_id === start.turn_id);
      const toks = c.of('stream_token', (m) => m.turn_id === start.turn_id).map((m) => m.chunk).join('');
      assert.equal(end.content, 'It is sunny today. 今天天气很好。');
      assert.equal(toks, end.content);
      assert.deepEqual(c.of('tts_ready_chunk', (m) => m.turn_id === start.turn_id).map((m) => m.chunk),
        ['It is sunny today.', '今天天气很好。']);
      assert.equal((await c.next('user_transcript')).text, 'what is the weather');
    }
    assert.equal(unauth.messages.filter(notPing).length, 0);
    a.close(); b.close(); unauth.close();
  }],

  ['tool_call, submit_tool_output and tool_result', async (s) => {
    const c = await s.authorized();
    c.send(chat('/tool', { id: 't1' }));
    const call = await c.next('tool_call');
    assert.equal(call.tool_name, 'get_weather');
    assert.deepEqual(JSON.parse(call.args), { city: 'Paris' });
    c.send({ type: 'submit_tool_output', call_id: call.call_id, output: { sky: 'sunny' } });
    const result = await c.next('tool_result');
    assert.deepEqual(JSON.parse(result.result), { sky: 'sunny' });
    const end = await c.next('stream_end', (m) => m.turn_id === call.turn_id);
    assert.equal(end.content, 'The weather in Paris is sunny.');
    c.close();
  }],

  ['interrupt_stream sends Interrupt(USER_REQUEST) and no token of that turn follows', async (s) => {
    const c = await s.authorized();
    c.send(chat('/long 300', { id: 'long' }));
    const start = await c.next('stream_start', (m) => m.reply_to === 'long');
    await c.next('stream_token', (m) => m.turn_id === start.turn_id);
    c.send({ type: 'interrupt_stream', turn_id: start.turn_id });
    const end = await c.next('stream_end', (m) => m.turn_id === start.turn_id);
    assert.equal(end.interrupted, true);
    const endIndex = c.messages.indexOf(end);
    const sent = c.of('stream_token', (m) => m.turn_id === start.turn_id);
    assert.equal(end.content, sent.filter((m) => c.messages.indexOf(m) < endIndex).map((m) => m.chunk).join(''));
    // The fake session ignores interrupts and keeps streaming; it answers the
    // next chat only after its 300 words, so this reply proves they are over.
    c.send(chat('/stats', { id: 'stats' }));
    const stats = await turnOf(c, 'stats', 15000);
    const content = stats[stats.length - 1].content;
    assert.match(content, new RegExp(`interrupts=1 last_interrupt_turn=${start.turn_id} reason=USER_REQUEST`));
    assert.equal(c.messages.slice(endIndex + 1).filter((m) => m.turn_id === start.turn_id).length, 0,
      'nothing of the interrupted turn after its stream_end');
    c.close();
  }],

  ['bad requests get error 400 and the connection and other clients keep working', async (s) => {
    const c = await s.authorized();
    const other = await s.authorized();
    const cases = [
      '{"type": "chat_message", "content": ',
      JSON.stringify({ type: 'no_such_type' }),
      JSON.stringify({ type: 'chat_message', content: 'x', user_id: 'u' }),
      JSON.stringify({ type: 'chat_message', content: 42, agent_id: 'a', user_id: 'u' }),
      JSON.stringify({ type: 'chat_message', content: 'x', agent_id: 'a', user_id: 'u', limit: 'ten' }),
      JSON.stringify(['an', 'array']),
      JSON.stringify({ type: 'switch_avatar_config' }),
      JSON.stringify({ type: 'chat_message', content: 'x'.repeat(10000), agent_id: 'a', user_id: 'u' }),
    ];
    for (const text of cases) c.send(text);
    c.sendRaw(Buffer.from([1, 2, 3]), { binary: true });
    await c.until((ms) => ms.filter((m) => m.type === 'error').length === cases.length + 1, 'one error per bad frame');
    const errors = c.of('error');
    for (const e of errors) assert.equal(e.code, 400, JSON.stringify(e));
    assert.match(errors[2].error, /agent_id/);
    assert.match(errors[7].error, /too large/);
    c.send({ type: 'fetch_backgrounds', id: 'after' });
    assert.deepEqual((await c.next('background_files')).files, ['beach.jpg', 'room.png']);
    other.send(chat('still fine?', { id: 'o1' }));
    const turn = await turnOf(other, 'o1');
    assert.match(turn[turn.length - 1].content, /^You said: still fine\?/);
    assert.equal(c.closed, false);
    c.close(); other.close();
  }],

  ['fetch_backgrounds, fetch_avatar_configs, switch_avatar_config → SessionConfig', async (s) => {
    const c = await s.authorized();
    const id = (await c.next('authorize_success')).connection_id;
    c.send({ type: 'fetch_avatar_configs' });
    assert.deepEqual((await c.next('avatar_config_files')).configs,
      [{ filename: 'mao.yaml', name: 'Mao' }, { filename: 'shizuku.yml', name: 'Shizuku' }]);
    c.send({ type: 'switch_avatar_config', file: 'mao.yaml' });
    assert.equal((await c.next('avatar_config_switched')).file, 'mao.yaml');
    const conf = await c.next('set_model_and_conf');
    assert.deepEqual(conf.model_info, { model_path: 'live2d/mao.model3.json', expressions: ['smile'], motions: ['idle', 'wave'] });
    assert.equal(conf.conf_name, 'Mao');
    assert.equal(conf.conf_uid, 'mao');
    assert.equal(conf.client_uid, id);
    assert.equal(conf.persona_prompt, 'You are Mao, a cheerful cat.');
    c.send({ type: 'switch_avatar_config', file: '../../etc/passwd', id: 'evil' });
    assert.equal((await c.next('error', (m) => m.reply_to === 'evil')).code, 400);
    c.send(chat('/stats', { id: 'st' }));
    const turn = await turnOf(c, 'st');
    assert.match(turn[turn.length - 1].content, /config=7400000000000000001\|voice-mao\|20\|You are Mao, a cheerful cat\./);
    c.close();
  }],

  ['failed turns and chats the session never starts', async (s) => {
    const c = await s.authorized();
    c.send(chat('/fail', { id: 'f' }));
    const start = await c.next('stream_start', (m) => m.reply_to === 'f');
    const end = await c.next('stream_end', (m) => m.turn_id === start.turn_id);
    assert.equal(end.outcome, 'failed');
    assert.equal(end.error, 'agent failed');
    c.send(chat('/silent', { id: 'quiet' }));
    const e = await c.next('error', (m) => m.reply_to === 'quiet', 8000);
    assert.equal(e.code, 500);
    c.close();
  }],

  ['server pings; a client that answers stays, a silent one is disconnected', async (s) => {
    const live = await s.authorized();
    const silent = await s.authorized({ autoPong: false });
    await silent.until((ms, c) => c.closed, 'silent client closed', 6000);
    // The live one has seen pings well past the 1.5 s timeout and is still open.
    await live.until((ms) => ms.filter((m) => m.type === 'ping').length >= 10, '10 pings', 8000);
    assert.equal(live.closed, false);
    live.send({ type: 'fetch_backgrounds' });
    await live.next('background_files');
    live.close();
  }],

  ['config errors exit 78 naming the key; a taken port is refused', async (s) => {
    const bus = `bus: {endpoint: "ipc://${s.dir}/other-bus"}\n`;
    let r = await gatewayExit(s, 'notoken.yaml', `${bus}gateway:\n  port: ${s.port + 1}\n  generate_token: false\n`);
    assert.equal(r.code, 78, r.out);
    assert.match(r.out, /token/);
    r = await gatewayExit(s, 'timeouts.yaml', `${bus}gateway:\n  ping_interval_ms: 2000\n  idle_timeout_ms: 1000\n`,
      { VB_GATEWAY_TOKENS: TOKEN });
    assert.equal(r.code, 78, r.out);
    assert.match(r.out, /timeouts\.yaml:\d+.*idle_timeout_ms/);
    r = await gatewayExit(s, 'typo.yaml', `${bus}gateway:\n  prot: 5500\n`, { VB_GATEWAY_TOKENS: TOKEN });
    assert.equal(r.code, 78, r.out);
    assert.match(r.out, /prot/);
    // The running gateway holds s.port: a second one cannot listen there.
    r = await gatewayExit(s, 'taken.yaml', `${bus}gateway:\n  port: ${s.port}\n`, { VB_GATEWAY_TOKENS: TOKEN });
    assert.notEqual(r.code, 0);
    assert.match(r.out, /cannot listen/);
  }],

  ['the dashboard and a 404 over HTTP on the same port', async (s) => {
    const page = await get(s.port, '/');
    assert.equal(page.status, 200);
    assert.match(page.type, /text\/html/);
    assert.match(page.body, /voicebus/i);
    const js = await get(s.port, '/dashboard.js');
    assert.equal(js.status, 200);
    assert.match(js.type, /javascript/);
    assert.equal((await get(s.port, '/no/such/file')).status, 404);
  }],
]);
