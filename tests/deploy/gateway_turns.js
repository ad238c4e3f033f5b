// A chat-stream client for the Docker test (tests/deploy/compose_stack.sh).
//
//   node gateway_turns.js URL TOKEN voice          prints "ready" once authorized, then waits for
//                                                  a voice turn (spoken at the device) to end
//   node gateway_turns.js URL TOKEN text QUESTION  asks QUESTION, waits for the reply
//
// Prints `heard: …` / `reply: …` and exits 0 when the turn ended with a
// non-empty reply, 1 otherwise (or after VB_TURN_TIMEOUT_MS, default 60000).
'use strict';
const path = require('path');
const WebSocket = require(path.join(__dirname, '../node/node_modules/ws'));

const [url, token, mode, question] = process.argv.slice(2);
const timeoutMs = Number(process.env.VB_TURN_TIMEOUT_MS || 60000);
if (!url || !token || !['voice', 'text'].includes(mode) || (mode === 'text' && !question)) {
  console.error('usage: gateway_turns.js URL TOKEN voice | text QUESTION');
  process.exit(64);
}
const fail = (why) => { console.log(`FAIL: ${why}`); process.exit(1); };
setTimeout(() => fail(`no ${mode} turn ended within ${timeoutMs} ms`), timeoutMs);

const ws = new WebSocket(url);
const voiceTurns = new Set();
ws.on('error', (e) => fail(`gateway: ${e.message}`));
ws.on('close', () => fail('the gateway closed the connection'));
ws.on('open', () => ws.send(JSON.stringify({ type: 'authorize', token })));
ws.on('message', (data) => {
  let m;
  try { m = JSON.parse(data.toString()); } catch (e) { return; }
  if (m.type === 'ping') ws.send(JSON.stringify({ type: 'pong' }));
  else if (m.type === 'authorize_error') fail('token refused');
  else if (m.type === 'authorize_success') {
    if (mode === 'voice') console.log('ready');
    else ws.send(JSON.stringify({ type: 'chat_message', content: question, agent_id: 'voicebus', user_id: 'deploy-test' }));
  } else if (m.type === 'user_transcript' && m.final) console.log(`heard: ${m.text}`);
  else if (m.type === 'stream_start' && m.input === 'voice') voiceTurns.add(m.turn_id);
  else if (m.type === 'error') fail(`gateway error ${m.code}: ${m.error}`);
  else if (m.type === 'stream_end' && (mode === 'text' || voiceTurns.has(m.turn_id))) {
    console.log(`reply: ${m.content}`);
    if (!m.content || (m.outcome && m.outcome !== 'completed')) fail(`turn ended ${m.outcome || 'empty'}`);
    ws.removeAllListeners('close');
    ws.close();
    process.exit(0);
  }
});
