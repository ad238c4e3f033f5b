// One official-SDK client run against a TLS vb-cozesim, as a child process of
// coze_sim_tls_test.js: the CA it trusts is whatever NODE_EXTRA_CA_CERTS names
// when it starts (Node reads it only at start-up). Tries REST (conversation
// create, streamed /v3/chat) and the WebSocket (chat.created, a text turn to
// chat.completed) and prints one JSON line: {rest: {ok, text?, error?},
// ws: {ok, answer?, error?}}. Never waits more than 15 s for anything.
// usage: node coze_sim_tls_client.js https://HOST:PORT TOKEN BOT_ID
'use strict';
const { CozeAPI } = require('@coze/api');

const [base, token, bot] = process.argv.slice(2);
const wsBase = base.replace(/^https:/, 'wss:');
const client = new CozeAPI({ token, baseURL: base, baseWsURL: wsBase });

// The TLS reason of an error (Node puts it on the cause chain).
function reason(e) {
  const parts = [];
  for (let x = e, i = 0; x && i < 5; x = x.cause, i++) {
    if (x.code) parts.push(String(x.code));
    if (x.message) parts.push(x.message);
  }
  return parts.join(' | ') || String(e);
}

function withTimeout(p, ms, what) {
  let timer;
  return Promise.race([p, new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`timeout: ${what}`)), ms); })])
    .finally(() => clearTimeout(timer));
}

async function rest() {
  try {
    const conv = await withTimeout(client.conversations.create({ bot_id: bot }), 15000, 'conversation create');
    let text = '';
    const stream = client.chat.stream({ bot_id: bot, conversation_id: conv.id, additional_messages: [{ role: 'user', content: 'hello', content_type: 'text' }] });
    await withTimeout((async () => {
      for await (const ev of stream) if (ev.event === 'conversation.message.delta') text += ev.data.content;
    })(), 15000, 'chat stream');
    return { ok: true, conversation_id: conv.id, text };
  } catch (e) {
    return { ok: false, error: reason(e) };
  }
}

async function ws() {
  let sock;
  try {
    sock = await client.websockets.chat.create({ bot_id: bot }, { maxRetries: 0 });
  } catch (e) {
    return { ok: false, error: reason(e) };
  }
  // The TLS verdict also reaches the underlying socket's 'error' listeners.
  let tlsError = '';
  sock.rws.addEventListener('error', (ev) => { tlsError = tlsError || reason(ev.error || ev); });
  try {
    const result = await withTimeout(new Promise((resolve, reject) => {
      sock.onerror = (err) => reject(new Error(`${err.data.code} ${err.data.msg}`));
      sock.onclose = () => reject(new Error('closed'));
      sock.onmessage = (ev) => {
        if (ev.event_type === 'chat.created') {
          sock.send({ id: 'm', event_type: 'conversation.message.create', data: { role: 'user', content_type: 'text', content: 'hello' } });
        } else if (ev.event_type === 'conversation.message.completed' && ev.data.type === 'answer') {
          resolve({ ok: true, answer: ev.data.content });
        }
      };
    }), 15000, 'websocket turn');
    return result;
  } catch (e) {
    return { ok: false, error: [tlsError, reason(e)].filter(Boolean).join(' | ') };
  } finally {
    sock.onclose = null;
    sock.close();
  }
}

(async () => {
  const out = { rest: await rest(), ws: await ws() };
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(0);
})();
