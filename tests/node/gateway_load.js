// Load: 50 concurrent authorized clients each receive every token of a
// streamed reply, in order, and 50 simultaneous chat_messages each get their
// own complete reply. Prints the figures as one JSON line.
'use strict';
const assert = require('assert/strict');
const { Stack, run } = require('./gateway_harness');

const CLIENTS = Number(process.env.VB_GW_CLIENTS || 50);
const WORDS = Number(process.env.VB_GW_WORDS || 2000);
const stack = new Stack('load', {
  gateway: { mirror_text_turns: true, max_clients: CLIENTS + 16 },
  fake: { token_interval_ms: 1 },
});
const figures = { clients: CLIENTS, words: WORDS };

run(stack, [
  [`${CLIENTS} clients each receive all ${WORDS} tokens of a reply, in order`, async (s) => {
    const clients = await Promise.all(Array.from({ length: CLIENTS }, () => s.authorized()));
    const t0 = Date.now();
    clients[0].send({ type: 'chat_message', id: 'big', content: `/long ${WORDS}`, agent_id: 'a', user_id: 'u' });
    const start = await clients[0].next('stream_start', (m) => m.reply_to === 'big', 15000);
    const ends = await Promise.all(clients.map((c) => c.next('stream_end', (m) => m.turn_id === start.turn_id, 60000)));
    figures.stream_ms = Date.now() - t0;
    const expected = Array.from({ length: WORDS }, (_, i) => `w${i + 1}` + ((i + 1) % 10 === 0 ? '. ' : ' '));
    for (const [i, c] of clients.entries()) {
      const chunks = c.of('stream_token', (m) => m.turn_id === start.turn_id).map((m) => m.chunk);
      assert.equal(chunks.length, WORDS, `client ${i} got ${chunks.length} tokens`);
      assert.deepEqual(chunks, expected, `client ${i}: tokens out of order or altered`);
      assert.equal(ends[i].content, expected.join(''));
      assert.equal(c.of('tts_ready_chunk', (m) => m.turn_id === start.turn_id).length, WORDS / 10);
    }
    // Gateway → client delivery: the gateway stamps each frame (wall clock,
    // ms) when it serialises it; the client stamps it on arrival.
    const lat = [];
    for (const c of clients)
      for (const m of c.of('stream_token', (x) => x.turn_id === start.turn_id)) lat.push((m.received_at - m.timestamp) * 1000);
    lat.sort((a, b) => a - b);
    figures.delivery_ms_p50 = Math.round(lat[Math.floor(lat.length * 0.5)]);
    figures.delivery_ms_p99 = Math.round(lat[Math.floor(lat.length * 0.99)]);
    figures.frames_delivered = CLIENTS * (WORDS + WORDS / 10 + 2);
    figures.frames_per_s = Math.round(figures.frames_delivered / (figures.stream_ms / 1000));
    clients.forEach((c) => c.close());
  }],

  [`${CLIENTS} simultaneous chat_messages each get their own reply`, async (s) => {
    const clients = await Promise.all(Array.from({ length: CLIENTS }, () => s.authorized()));
    const t0 = Date.now();
    clients.forEach((c, i) => c.send({ type: 'chat_message', id: `q${i}`, content: `question ${i}`, agent_id: 'a', user_id: `u${i}` }));
    await Promise.all(clients.map(async (c, i) => {
      const start = await c.next('stream_start', (m) => m.reply_to === `q${i}`, 60000);
      const end = await c.next('stream_end', (m) => m.turn_id === start.turn_id, 60000);
      assert.ok(end.content.startsWith(`You said: question ${i}. `), end.content);
      assert.equal(end.content, c.of('stream_token', (m) => m.turn_id === start.turn_id).map((m) => m.chunk).join(''));
    }));
    figures.fifty_chats_ms = Date.now() - t0;
    clients.forEach((c) => c.close());
    console.log(JSON.stringify({ bench: 'gateway_load', ...figures }));
  }],
]);
