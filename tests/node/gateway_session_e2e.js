// vb-gateway with the real vb-session against vb-cozesim (the local Coze
// simulator): a chat_message becomes a real Coze text turn whose reply
// streams back as stream_start … stream_end (session_id = the conversation
// id), a Coze tool call round-trips through tool_call / submit_tool_output /
// tool_result, and interrupt_stream cancels a running chat.
'use strict';
const assert = require('assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { Client, TOKEN, freePort, spawnLines } = require('./gateway_harness');

const COZE_TOKEN = 'sim-token-for-tests';
const procs = [];

function start(bin, args, env, onLine) {
  const p = spawnLines(bin, args, env, onLine);
  procs.push(p);
  return p;
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vb-gw-e2e-'));
  let failed = 0;
  const test = async (name, fn) => {
    const t0 = Date.now();
    try { await fn(); console.log(`ok   ${name} (${Date.now() - t0} ms)`); } catch (e) { failed++; console.log(`FAIL ${name}: ${e.stack || e}`); }
  };
  try {
    fs.mkdirSync(path.join(dir, 'simlog'));
    const simPort = await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('vb-cozesim did not start')), 30000);
      start('vb-cozesim', ['--port', '0', '--token', COZE_TOKEN, '--log-dir', path.join(dir, 'simlog')], {}, (line) => {
        const m = /listening 127\.0\.0\.1:(\d+)/.exec(line);
        if (m) { clearTimeout(t); resolve(Number(m[1])); }
      });
    });
    const port = await freePort();
    const config = path.join(dir, 'vb.yaml');
    fs.writeFileSync(config, [
      'bus:', `  endpoint: ipc://${dir}/bus`, '  heartbeat_ms: 300',
      'session:', '  bot_id: "7379462189365198898"', `  api_base: http://127.0.0.1:${simPort}`,
      `  ws_base: ws://127.0.0.1:${simPort}`, `  state_dir: ${dir}/state`,
      'gateway:', `  port: ${port}`, '  generate_token: false', '  level_source: none', ''].join('\n'));
    start('vb-broker', ['--config', config]);
    start('vb-session', ['--config', config], { COZE_API_TOKEN: COZE_TOKEN });
    start('vb-gateway', ['--config', config], { VB_GATEWAY_TOKENS: TOKEN });
    const url = `ws://127.0.0.1:${port}/v1/chat/stream`;
    let c;
    for (const deadline = Date.now() + 20000; ;) {
      try { c = await new Client(url).open(); break; } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 100));  // connect poll interval
      }
    }
    assert.equal((await c.authorize()).type, 'authorize_success');
    c.send({ type: 'dashboard_subscribe' });
    // The session republishes its status every heartbeat: connected to the simulator.
    const status = await c.next('session_status', (m) => m.connected && m.conversation_id, 30000);
    const chat = (content, id) => c.send({ type: 'chat_message', id, content, agent_id: 'a', user_id: 'u' });

    await test('a chat_message is a Coze text turn streamed back', async () => {
      chat('Hello, who are you?', 'hello');
      const start = await c.next('stream_start', (m) => m.reply_to === 'hello', 30000);
      // Its own conversation (per-client conversations), not the voice dialog's.
      assert.ok(start.session_id);
      assert.notEqual(start.session_id, status.conversation_id);
      assert.equal(start.input, 'text');
      const end = await c.next('stream_end', (m) => m.turn_id === start.turn_id, 30000);
      const tokens = c.of('stream_token', (m) => m.turn_id === start.turn_id);
      assert.ok(tokens.length >= 2, `streamed (${tokens.length} tokens)`);
      assert.ok(end.content.length > 0);
      assert.equal(end.content, tokens.map((t) => t.chunk).join(''));
      assert.equal(end.outcome, 'completed');
      assert.ok(c.of('tts_ready_chunk', (m) => m.turn_id === start.turn_id).length >= 1);
      console.log(`     reply: ${JSON.stringify(end.content)}`);
    });

    await test('a Coze tool call: tool_call → submit_tool_output → tool_result → reply', async () => {
      chat('what is the weather in paris', 'weather');
      const start = await c.next('stream_start', (m) => m.reply_to === 'weather', 30000);
      const call = await c.next('tool_call', (m) => m.turn_id === start.turn_id, 30000);
      assert.equal(call.tool_name, 'get_weather');
      c.send({ type: 'submit_tool_output', turn_id: start.turn_id, call_id: call.call_id, output: 'sunny and 21 degrees' });
      const result = await c.next('tool_result', (m) => m.turn_id === start.turn_id, 30000);
      assert.equal(result.result, 'sunny and 21 degrees');
      const end = await c.next('stream_end', (m) => m.turn_id === start.turn_id, 30000);
      assert.equal(end.outcome, 'completed');
      console.log(`     reply: ${JSON.stringify(end.content)}`);
    });

    await test('interrupt_stream cancels the running chat; the next chat works', async () => {
      chat('Tell me a long story about a dragon and a knight.', 'story');
      const start = await c.next('stream_start', (m) => m.reply_to === 'story', 30000);
      c.send({ type: 'interrupt_stream', turn_id: start.turn_id });
      const end = await c.next('stream_end', (m) => m.turn_id === start.turn_id, 10000);
      assert.equal(end.interrupted, true);
      const at = c.messages.indexOf(end);
      chat('Hello again', 'again');
      const s2 = await c.next('stream_start', (m) => m.reply_to === 'again', 30000);
      await c.next('stream_end', (m) => m.turn_id === s2.turn_id, 30000);
      assert.equal(c.messages.slice(at + 1).filter((m) => m.turn_id === start.turn_id).length, 0);
    });
    c.close();
  } catch (e) {
    failed++;
    console.log(`FAIL setup: ${e.stack || e}`);
  } finally {
    for (const p of procs.slice().reverse()) {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
      const r = await Promise.race([p.exited, new Promise((res) => setTimeout(() => res('timeout'), 5000))]);
      if (r === 'timeout') p.kill('SIGKILL');
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(failed ? `${failed} failed` : 'all passed');
  process.exit(failed ? 1 : 0);
}
main();
