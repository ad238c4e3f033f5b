// The dashboard in headless Chromium (playwright-core, Debian's chromium):
// the page served by vb-gateway connects with a token from its URL, shows
// actor health and dialog state, a typed chat round trip, and a push-to-talk
// voice turn (state LISTENING, mic level and VAD while held, the interim
// transcript growing word by word, then the user's final transcript and the
// agent's reply after release); a reload shows the earlier turns (kept by the
// gateway) with their times; another client's question shows live with its
// asker, and after a reload among the remembered turns; the actor event log
// (STALE, restart) survives a reload; at phone width (390 px) nothing scrolls
// sideways. Saves screenshots in VB_TEST_DIR (the test's build directory).
'use strict';
const assert = require('assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');
const { Stack, run, TOKEN } = require('./gateway_harness');

const OUT = process.env.VB_TEST_DIR || os.tmpdir();
// The fake session's voice turns send interim transcripts first ("what",
// "what is", "what is the"), as a streaming recogniser does.
const stack = new Stack('dashboard', { fake: { token_interval_ms: 20, interim_transcripts: true } });
let browser, page, profile;
const clients = [];  // plain WebSocket clients of the tests, closed whatever happens
stack.onStop = async () => {
  for (const c of clients) c.close();
  if (browser) await browser.close();
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
};
const pageErrors = [];

async function text(sel) { return (await page.locator(sel).first().textContent()) || ''; }
async function waitText(sel, re, timeout = 10000) {
  await page.waitForFunction(([s, src]) => {
    const el = document.querySelector(s);
    return el && new RegExp(src).test(el.textContent);
  }, [sel, re.source], { timeout });
}

run(stack, [
  ['the page loads from the gateway and connects with the token from its URL', async (s) => {
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'vb-gw-chromium-'));
    // A fresh profile directory (--user-data-dir) per run.
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: process.env.VB_CHROMIUM || '/usr/bin/chromium',
      headless: true,
      viewport: { width: 1200, height: 900 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = browser.pages()[0] || await browser.newPage();
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    // Nothing but the gateway may be fetched: the page works offline.
    const foreign = [];
    page.on('request', (r) => { if (!r.url().startsWith(`http://127.0.0.1:${s.port}/`) && !r.url().startsWith(`ws://127.0.0.1:${s.port}/`)) foreign.push(r.url()); });
    await page.goto(`http://127.0.0.1:${s.port}/?token=${TOKEN}`);
    await waitText('#conn-status', /^connected$/);
    assert.equal(new URL(page.url()).search, '', 'token removed from the address bar');
    await page.waitForSelector('#actors tr[data-actor="fake_session"]', { timeout: 10000 });
    await page.waitForSelector('#actors tr[data-actor="gateway"]', { timeout: 10000 });
    assert.match(await text('#actors tr[data-actor="gateway"] td:nth-child(3)'), /ACTIVE/);
    await waitText('#dialog-state', /^IDLE$/);
    await waitText('#session-status', /^connected · fake/);
    assert.equal(await text('#conversation-id'), 'conv-fake-1');
    assert.deepEqual(foreign, []);
  }],

  ['a typed chat round trip appears on screen', async () => {
    await page.fill('#chat-input', 'hello from the browser');
    await page.click('#chat-send');
    await page.waitForSelector('#transcript li.user', { timeout: 5000 });
    assert.equal((await text('#transcript li.user')).replace(/typed$/, ''), 'hello from the browser');
    // Tokens stream in (the reply is visible before it is complete).
    await page.waitForSelector('#transcript li.agent.streaming', { timeout: 10000 });
    await page.waitForSelector('#transcript li.agent.done', { timeout: 15000 });
    assert.match(await text('#transcript li.agent.done'), /^You said: hello from the browser\. Sure\. Pi is about 3\.14/);
    // The page's own question is shown once (the gateway tells only the other dashboards).
    assert.equal(await page.locator('#transcript li.user').count(), 1);
    await page.waitForSelector('#latency tr[data-key="text_first_token_ms"]', { timeout: 5000 });
  }],

  ['push-to-talk: held → LISTENING with mic level, VAD and the interim transcript growing; released → final transcript and reply', async () => {
    // Every text #interim shows, in order (a poll could miss one shown for a single frame).
    await page.evaluate(() => {
      window.interimsSeen = [];
      new MutationObserver((records) => {
        for (const r of records) for (const n of r.addedNodes) window.interimsSeen.push(n.textContent);
      }).observe(document.querySelector('#interim'), { childList: true, characterData: true, subtree: true });
    });
    const ptt = page.locator('#ptt');
    const box = await ptt.boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await waitText('#dialog-state', /^LISTENING$/);
    await page.waitForSelector('#vad-indicator.active', { timeout: 5000 });
    // The fake front end sends a tone while the key is held: about -15 dBFS.
    await page.waitForFunction(() => parseFloat(document.querySelector('#mic-level-bar').style.width) > 50, null, { timeout: 5000 });
    // The level history plots what the meter showed (10 levels a second while audio flows).
    await page.waitForFunction(() => Number(document.querySelector('#level-history').dataset.points) >= 3, null, { timeout: 5000 });
    // While the key is held the recogniser's first words are already on screen, not yet in the conversation.
    await waitText('#interim', /^what( is)?( the)?$/);
    assert.equal(await page.locator('#transcript li.user.voice').count(), 0);
    await page.screenshot({ path: path.join(OUT, 'gateway_dashboard_ptt_held.png') });
    await page.mouse.up();
    await page.waitForSelector('#transcript li.user.voice', { timeout: 10000 });
    assert.match(await text('#transcript li.user.voice'), /^what is the weather/);
    // The interim text grew word by word, then gave way to the final question.
    assert.deepEqual(await page.evaluate(() => window.interimsSeen.filter((t) => t !== '')), ['what', 'what is', 'what is the']);
    assert.equal(await text('#interim'), '');
    await page.waitForFunction(() => [...document.querySelectorAll('#transcript li.agent.done')]
      .some((li) => li.dataset.input === 'voice' && li.textContent.startsWith('It is sunny today.')), null, { timeout: 15000 });
    assert.equal(await page.locator('#vad-indicator.active').count(), 0);
    await waitText('#dialog-state', /^IDLE$/);
    await page.waitForSelector('#latency tr[data-key="voice_first_token_ms"]', { timeout: 5000 });
    const shot = path.join(OUT, 'gateway_dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(fs.statSync(shot).size > 10000, 'screenshot written');
    console.log(`screenshot: ${shot}`);
  }],

  ['a reload shows the earlier turns, with their times, questions and first-token percentiles', async () => {
    await page.reload();
    await waitText('#conn-status', /^connected$/);
    await page.waitForFunction(() => document.querySelectorAll('#transcript li.agent.past').length >= 2, null, { timeout: 10000 });
    const past = await page.$$eval('#transcript li.past', (lis) => lis.map((li) => ({
      cls: li.className, text: li.firstChild ? li.firstChild.textContent : '', input: li.dataset.input || '',
      meta: (li.querySelector('.meta') || {}).textContent || '', when: (li.querySelector('time') || {}).dateTime || '' })));
    const typed = past.find((l) => l.cls.includes('user text'));
    assert.ok(typed, 'the typed question is back: ' + JSON.stringify(past));
    assert.equal(typed.text, 'hello from the browser');
    assert.match(typed.meta, /typed · dashboard · \d\d:\d\d:\d\d/);
    const age = Date.now() - Date.parse(typed.when);
    assert.ok(age >= 0 && age < 120000, 'a real timestamp: ' + typed.when);
    const said = past.find((l) => l.cls.includes('user voice'));
    assert.equal(said.text, 'what is the weather');
    const answers = past.filter((l) => l.cls.includes('agent'));
    assert.match(answers.find((l) => l.input === 'text').text, /^You said: hello from the browser\./);
    const voice = answers.find((l) => l.input === 'voice');
    assert.match(voice.text, /^It is sunny today\./);
    assert.match(voice.meta, /voice · completed · first token \d+ ms · \d\d:\d\d:\d\d/);
    await page.waitForSelector('#latency-pct tr[data-key="text"]', { timeout: 5000 });
    await page.waitForSelector('#latency-pct tr[data-key="voice"]', { timeout: 5000 });
    // Each remembered turn has its waterfall: waiting → thinking → answering, the stages' ms adding up.
    const stages = await page.$$eval('#transcript li.agent.past', (lis) => lis.map((li) =>
      [...li.querySelectorAll('.waterfall .stage')].map((x) => [x.className, Number(x.dataset.ms)])));
    assert.equal(stages.length, 2);
    for (const st of stages) {
      assert.deepEqual(st.map((x) => x[0]), ['stage waiting', 'stage thinking', 'stage answering'], JSON.stringify(stages));
      assert.ok(st.every((x) => x[1] >= 0 && x[1] < 10000), JSON.stringify(stages));
    }
    // Both remembered turns are points of the latency plot.
    assert.equal(await page.$eval('#latency-plot', (c) => c.dataset.points), '2');
    await page.screenshot({ path: path.join(OUT, 'gateway_dashboard_reloaded.png'), fullPage: true });
  }],

  ['a tool call is answered from the page; the reply goes on and the history keeps the call in order', async () => {
    await page.fill('#chat-input', '/tool');
    await page.click('#chat-send');
    const form = page.locator('form.tool-answer[data-call="call-1"]');
    await form.waitFor({ timeout: 10000 });
    assert.match(await text('#transcript li.tool'), /get_weather\(\{"city":"Paris"\}\)/);
    await form.locator('input').fill('sunny, 21 C');
    await form.locator('button').click();
    await page.waitForFunction(() => [...document.querySelectorAll('#transcript li.agent.done')]
      .some((li) => li.textContent.startsWith('The weather in Paris is sunny.')), null, { timeout: 10000 });
    assert.equal(await page.locator('form.tool-answer').count(), 0, 'the answered call has no form left');
    await page.reload();
    await waitText('#conn-status', /^connected$/);
    await page.waitForFunction(() => [...document.querySelectorAll('#transcript li.tool.past')]
      .some((li) => li.textContent.startsWith('get_weather({"city":"Paris"}) → sunny, 21 C')), null, { timeout: 10000 });
  }],

  ['"New conversation" asks the gateway for a fresh one, the device\'s too', async () => {
    await page.click('#new-conversation');
    await waitText('#transcript li:last-child', /new conversation.*device/);
  }],

  ['another client\'s question shows live with who asked, and after a reload among the remembered turns', async (s) => {
    const phone = await s.authorized();
    clients.push(phone);
    const question = 'what time is it in Tokyo';
    phone.send({ type: 'chat_message', id: 'q1', content: question, agent_id: 'agent', user_id: 'phone-alice' });
    // Live: the question with its asker, then the reply under it as it streams.
    await page.waitForFunction((q) => [...document.querySelectorAll('#transcript li.user.text:not(.past)')]
      .some((li) => li.firstChild.textContent === q), question, { timeout: 10000 });
    const asked = page.locator('#transcript li.user.text:not(.past)', { hasText: question });
    assert.match(await asked.locator('.meta').textContent(), /^typed · phone-alice · \d\d:\d\d:\d\d$/);
    const start = await phone.next('stream_start', (m) => m.reply_to === 'q1', 10000);
    const end = await phone.next('stream_end', (m) => m.turn_id === start.turn_id, 15000);
    assert.equal(end.outcome, 'completed');
    const reply = `You said: ${question}.`;
    await page.waitForFunction((r) => [...document.querySelectorAll('#transcript li.agent.done')]
      .some((li) => li.textContent.startsWith(r)), reply, { timeout: 10000 });
    const order = await page.$$eval('#transcript li', (lis, [q, r]) => [
      lis.findIndex((li) => li.classList.contains('user') && li.firstChild.textContent === q),
      lis.findIndex((li) => li.classList.contains('agent') && li.textContent.startsWith(r))], [question, reply]);
    assert.ok(order[0] >= 0 && order[0] < order[1], 'the question comes before its reply: ' + order);
    // Only dashboards are told of questions; the asker is not told its own.
    assert.deepEqual(phone.of('chat_question'), []);
    await page.screenshot({ path: path.join(OUT, 'gateway_dashboard_other_client.png'), fullPage: true });
    phone.close();
    // Remembered by the gateway: back after a reload, with its asker and its answer.
    await page.reload();
    await waitText('#conn-status', /^connected$/);
    await page.waitForFunction((q) => [...document.querySelectorAll('#transcript li.user.text.past')]
      .some((li) => li.firstChild.textContent === q), question, { timeout: 10000 });
    const past = page.locator('#transcript li.user.text.past', { hasText: question });
    assert.equal(await past.getAttribute('data-asker'), 'phone-alice');
    assert.match(await past.locator('.meta').textContent(), /^typed · phone-alice · \d\d:\d\d:\d\d$/);
    assert.equal(await page.locator('#transcript li.agent.past', { hasText: reply }).count(), 1);
  }],

  ['wake indicator lights on voice.wake', async () => {
    await page.fill('#chat-input', '/wake');
    await page.click('#chat-send');
    await page.waitForSelector('#wake-indicator.active', { timeout: 5000 });
    assert.equal(await text('#wake-phrase'), 'hey voicebus');
  }],

  ['a killed actor goes STALE; its restart is counted', async (s) => {
    const old = s.procs[2];
    const row = '#actors tr[data-actor="fake_session"]';
    const pid = await text(`${row} td:nth-child(4)`);
    old.kill('SIGKILL');
    await old.exited;
    await waitText(`${row} td:nth-child(3)`, /^STALE/);
    s.spawn('vb-gw-fake-session', Object.assign({}, process.env, { VB_GATEWAY_TOKENS: TOKEN }));
    await waitText(`${row} td:nth-child(3)`, /^ACTIVE/);
    await waitText(`${row} td:nth-child(6)`, /^1$/);
    assert.notEqual(await text(`${row} td:nth-child(4)`), pid);
    // The event log tells the story, and keeps it across a reload.
    // (On a loaded machine other actors may go stale for a moment too: the log is searched, not its first line.)
    const logged = (cls, re, timeout) => page.waitForFunction(([c, src]) => [...document.querySelectorAll(`#events li.${c}`)]
      .some((li) => new RegExp(src).test(li.textContent)), [cls, re.source], { timeout });
    await logged('stale', /^\d\d:\d\d:\d\dfake_session stale/, 5000);
    await logged('restarted', /^\d\d:\d\d:\d\dfake_session restarted: pid \d+ → \d+/, 5000);
    await page.reload();
    await waitText('#conn-status', /^connected$/);
    await logged('restarted', /^\d\d:\d\d:\d\dfake_session restarted: pid \d+ → \d+/, 10000);
    await logged('stale', /^\d\d:\d\d:\d\dfake_session stale/, 5000);
    await page.screenshot({ path: path.join(OUT, 'gateway_dashboard_restart.png'), fullPage: true });
    assert.deepEqual(pageErrors, []);
  }],

  ['at phone width (390 px) the page fits: no sideways scrolling', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForFunction(() => window.innerWidth === 390, null, { timeout: 5000 });
    const { scrollWidth, innerWidth } = await page.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth }));
    const shot = path.join(OUT, 'gateway_dashboard_phone.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`screenshot: ${shot}`);
    assert.ok(scrollWidth <= innerWidth, `page ${scrollWidth} px wide in a ${innerWidth} px window`);
    // Still usable: the chat box and the transcript are on screen and as wide as the card.
    const box = await page.locator('#chat-input').boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= 390, 'chat input inside the screen');
    assert.deepEqual(pageErrors, []);
  }],
]);
