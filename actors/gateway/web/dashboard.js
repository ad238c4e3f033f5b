// voicebus dashboard: speaks the gateway's WebSocket protocol (same port,
// /v1/chat/stream) plus its dashboard extensions. The token comes from the
// page URL (?token=…, then removed from the address bar) or the token box,
// and is kept in sessionStorage for reloads of this tab only.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  if (params.has('token')) {
    sessionStorage.setItem('vb-token', params.get('token'));
    params.delete('token');
    history.replaceState(null, '', location.pathname + (params.toString() ? '?' + params : ''));
  }
  let token = sessionStorage.getItem('vb-token') || '';
  let ws = null;
  let backoff = 500;
  const turns = new Map();  // turn_id → transcript <li>

  function setStatus(text, on) {
    $('conn-status').textContent = text;
    $('conn-status').className = 'badge ' + (on ? 'on' : 'off');
  }
  function send(obj) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj));
  }
  function addLine(cls, text, meta) {
    const li = document.createElement('li');
    li.className = cls;
    li.textContent = text;
    if (meta) {
      const m = document.createElement('span');
      m.className = 'meta';
      m.textContent = meta;
      li.appendChild(m);
    }
    $('transcript').appendChild(li);
    $('transcript').scrollTop = $('transcript').scrollHeight;
    return li;
  }
  function agentLine(turnId, input) {
    let li = turns.get(turnId);
    if (!li) {
      li = addLine('agent streaming', '');
      li.dataset.turn = turnId;
      li.dataset.input = input || '';
      li.dataset.text = '';
      turns.set(turnId, li);
      if (turns.size > 200) turns.delete(turns.keys().next().value);
    }
    return li;
  }
  function fmtTime(ms) {
    return typeof ms === 'number' ? new Date(ms).toLocaleTimeString([], { hour12: false }) : '';
  }
  // A meta line with a timestamp (<time> so tests and people can read it).
  function setMeta(li, text, ms) {
    let m = li.querySelector('.meta');
    if (!m) { m = document.createElement('span'); m.className = 'meta'; li.appendChild(m); }
    m.textContent = text;
    if (typeof ms === 'number') {
      const t = document.createElement('time');
      t.className = 'when';
      t.dateTime = new Date(ms).toISOString();
      t.textContent = ' · ' + fmtTime(ms);
      m.appendChild(t);
    }
  }
  // A line plot of [x, y, colour] points on a canvas; its data-points says how many.
  function plot(canvas, points, yMin, yMax) {
    const ctx = canvas.getContext('2d');
    const w = canvas.width, h = canvas.height;
    ctx.clearRect(0, 0, w, h);
    canvas.dataset.points = String(points.length);
    if (!points.length) return;
    const x0 = points[0][0], x1 = points[points.length - 1][0];
    const X = (x) => (x1 > x0 ? (x - x0) / (x1 - x0) : 1) * (w - 6) + 3;
    const Y = (y) => h - 3 - (Math.max(yMin, Math.min(yMax, y)) - yMin) / (yMax - yMin || 1) * (h - 6);
    for (const colour of new Set(points.map((p) => p[2]))) {
      const mine = points.filter((p) => p[2] === colour);
      ctx.strokeStyle = ctx.fillStyle = colour;
      ctx.beginPath();
      mine.forEach((p, i) => (i ? ctx.lineTo(X(p[0]), Y(p[1])) : ctx.moveTo(X(p[0]), Y(p[1]))));
      ctx.stroke();
      for (const p of mine) ctx.fillRect(X(p[0]) - 2, Y(p[1]) - 2, 4, 4);
    }
  }
  const levels = [];  // [time ms, rms dBFS], the last 30 s at 10 Hz
  function noteLevel(db) {
    levels.push([Date.now(), db, '#1f9d55']);
    if (levels.length > 300) levels.shift();
    plot($('level-history'), levels, -60, 0);
  }
  // First-token latency percentiles, and a plot over time, over the remembered and live turns.
  const firstToken = { text: [], voice: [] };
  const latencyPoints = [];  // [ended ms, first token ms, colour]
  function notePercentiles(turn) {
    if (typeof turn.first_token_ms !== 'number') return;
    const a = firstToken[turn.input === 'voice' ? 'voice' : 'text'];
    a.push(turn.first_token_ms);
    if (a.length > 200) a.shift();
    latencyPoints.push([turn.ended_ms || Date.now(), turn.first_token_ms, turn.input === 'voice' ? '#1f9d55' : '#2f6fde']);
    if (latencyPoints.length > 200) latencyPoints.shift();
    plot($('latency-plot'), latencyPoints, 0, Math.max(100, ...latencyPoints.map((p) => p[1])));
    const body = $('latency-pct').tBodies[0];
    body.textContent = '';
    for (const [k, v] of Object.entries(firstToken)) {
      if (!v.length) continue;
      const sorted = [...v].sort((x, y) => x - y);
      const pct = (p) => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)];  // nearest rank
      const tr = body.insertRow();
      tr.dataset.key = k;
      [k, fmtMs(pct(0.5)), fmtMs(pct(0.9)), fmtMs(sorted[sorted.length - 1]), String(v.length)]
        .forEach((c) => { tr.insertCell().textContent = c; });
    }
  }
  // A remembered turn (dashboard_history): question, tool calls in order, answer, with times.
  // A turn's waterfall: a bar per stage, widths in proportion to their durations.
  function waterfall(li, st) {
    if (!st || typeof st.started !== 'number') return;
    const marks = [['asked', 'waiting'], ['started', 'thinking'], ['first_token', 'answering'], ['ended', '']]
      .filter(([k]) => typeof st[k] === 'number');
    const total = Math.max(1, st[marks[marks.length - 1][0]] - st[marks[0][0]]);
    const bar = document.createElement('div');
    bar.className = 'waterfall';
    for (let i = 0; i + 1 < marks.length; i++) {
      const ms = st[marks[i + 1][0]] - st[marks[i][0]];
      const seg = document.createElement('span');
      seg.className = 'stage ' + marks[i][1];
      seg.style.width = (100 * Math.max(0, ms) / total).toFixed(1) + '%';
      seg.title = `${marks[i][1]} ${ms} ms`;
      seg.dataset.ms = String(ms);
      bar.appendChild(seg);
    }
    li.appendChild(bar);
  }
  function showPastTurn(t) {
    if (t.question) {
      const u = addLine('user ' + (t.input === 'voice' ? 'voice' : 'text') + ' past', t.question);
      u.dataset.asker = t.asker || '';
      setMeta(u, t.input === 'voice' ? 'said' : 'typed · ' + (t.asker || ''), t.started_ms);
    }
    for (const c of t.tools || []) {
      const li = addLine('tool past', `${c.name}(${c.args || ''})` + (c.result !== undefined ? ' → ' + c.result : ''));
      setMeta(li, 'tool call');
    }
    const a = addLine('agent done past', t.answer || '');
    a.dataset.turn = t.turn_id;
    a.dataset.input = t.input;
    if (t.outcome === 'interrupted') a.classList.add('interrupted');
    setMeta(a, t.input + ' · ' + t.outcome + (t.error ? ' · ' + t.error : '') +
      (typeof t.first_token_ms === 'number' ? ' · first token ' + fmtMs(t.first_token_ms) : ''), t.ended_ms);
    waterfall(a, t.stages);
    notePercentiles(t);
  }
  function showEvent(e) {
    const li = document.createElement('li');
    li.className = e.event;
    const w = document.createElement('time');
    w.className = 'when';
    w.dateTime = new Date(e.at_ms).toISOString();
    w.textContent = fmtTime(e.at_ms);
    li.append(w, `${e.actor} ${e.event}` + (e.detail ? ': ' + e.detail : ''));
    $('events').appendChild(li);
    while ($('events').children.length > 100) $('events').firstChild.remove();
    $('events').scrollTop = $('events').scrollHeight;
  }
  function fmtMs(v) { return typeof v === 'number' ? v.toFixed(0) + ' ms' : '—'; }
  function fmtUptime(ms) {
    const s = Math.floor(ms / 1000);
    return s < 120 ? s + ' s' : s < 7200 ? Math.floor(s / 60) + ' min' : Math.floor(s / 3600) + ' h';
  }

  const latency = {};
  const latencyNames = {
    text_turn_start_ms: 'chat → turn start', text_first_token_ms: 'chat → first token',
    voice_first_token_ms: 'speech end → first token', flush_ms: 'interrupt → silence',
  };
  function showLatency(figures) {
    Object.assign(latency, figures || {});
    const body = $('latency').tBodies[0];
    body.textContent = '';
    for (const [k, v] of Object.entries(latency)) {
      const tr = body.insertRow();
      tr.dataset.key = k;
      tr.insertCell().textContent = latencyNames[k] || k;
      tr.insertCell().textContent = fmtMs(v);
    }
  }

  let sessionSeen = false;
  function showState(s) {
    if (!s || !s.state) return;
    if (!sessionSeen) $('session-status').textContent = s.session_connected ? 'connected' : 'offline';
    $('dialog-state').textContent = s.state;
    $('dialog-state').className = 'state ' + s.state;
    $('dialog-mode').textContent = s.mode || '—';
    if (s.conversation_id) $('conversation-id').textContent = s.conversation_id;
    $('dialog-reason').textContent = s.reason || '—';
  }
  function showSession(m) {
    if (!m || m.connected === undefined) return;
    sessionSeen = true;
    $('session-status').textContent = (m.connected ? 'connected' : 'offline') + (m.service ? ' · ' + m.service : '') +
      (m.reconnects ? ' · ' + m.reconnects + ' reconnects' : '');
    if (m.conversation_id) $('conversation-id').textContent = m.conversation_id;
  }
  // No level for a second (no audio on the bus): the meter falls to empty.
  let levelTimer = null;
  function showLevel(m) {
    if (typeof m.rms_db !== 'number') return;
    clearTimeout(levelTimer);
    levelTimer = setTimeout(() => {
      $('mic-level-bar').style.width = '0%';
      $('mic-level-db').textContent = 'no audio';
    }, 1000);
    const pct = Math.max(0, Math.min(100, (m.rms_db + 60) / 60 * 100));
    $('mic-level-bar').style.width = pct.toFixed(0) + '%';
    $('mic-level-db').textContent = m.rms_db.toFixed(1) + ' dBFS (peak ' + m.peak_db.toFixed(1) + ')';
    noteLevel(m.rms_db);
  }
  function showVad(speech) { $('vad-indicator').classList.toggle('active', !!speech); }
  let wakeTimer = null;
  function showWake(m) {
    $('wake-indicator').classList.add('active');
    $('wake-phrase').textContent = m.phrase || '';
    clearTimeout(wakeTimer);
    wakeTimer = setTimeout(() => $('wake-indicator').classList.remove('active'), 2000);
  }
  function showActor(a) {
    const body = $('actors').tBodies[0];
    let tr = body.querySelector(`tr[data-actor="${CSS.escape(a.actor)}"]`);
    if (!tr) {
      tr = body.insertRow();
      tr.dataset.actor = a.actor;
      for (let i = 0; i < 12; i++) tr.insertCell();
    }
    const cells = [a.actor, a.kind, a.state + (a.detail ? ' (' + a.detail + ')' : ''), a.pid, fmtUptime(a.uptime_ms || 0),
      a.restarts, a.cpu_percent, ((a.rss_kb || 0) / 1024).toFixed(1), `${a.msgs_in}/${a.msgs_out}`, a.drops, a.errors,
      a.handler_p99_us];
    cells.forEach((v, i) => { tr.cells[i].textContent = v === undefined ? '—' : String(v); });
    tr.cells[2].className = 'state-' + a.state;
  }

  // A tool call, answerable from the page until its result arrives.
  function toolCall(m) {
    const li = addLine('tool', `${m.tool_name}(${m.args})`, 'tool call');
    const form = document.createElement('form');
    form.className = 'tool-answer';
    form.dataset.call = m.call_id || '';
    const input = document.createElement('input');
    input.placeholder = 'answer this call';
    const button = document.createElement('button');
    button.type = 'submit';
    button.textContent = 'Answer';
    form.append(input, button);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (!input.value.trim()) return;
      send({ type: 'submit_tool_output', call_id: m.call_id, turn_id: m.turn_id, output: input.value.trim() });
      button.disabled = true;
    });
    li.appendChild(form);
  }
  function onMessage(m) {
    switch (m.type) {
      case 'ping': send({ type: 'pong' }); break;
      case 'authorize_success':
        setStatus('connected', true);
        backoff = 500;
        $('token-form').hidden = true;
        send({ type: 'dashboard_subscribe' });
        break;
      case 'authorize_error':
        setStatus('bad token', false);
        sessionStorage.removeItem('vb-token');
        token = '';
        $('token-form').hidden = false;
        break;
      case 'dashboard_snapshot':
        showState(m.dialog_state);
        (m.actors || []).forEach(showActor);
        showLevel(m.mic_level || {});
        showVad(m.speech);
        showLatency(Object.assign({}, m.latency, m.playback && m.playback.flush_ms !== undefined ? { flush_ms: m.playback.flush_ms } : {}));
        if (m.conversation_id) $('conversation-id').textContent = m.conversation_id;
        showSession(m.session_status);
        $('events').textContent = '';
        (m.events || []).forEach(showEvent);
        break;
      case 'dashboard_history':
        // What was said before this page opened (or was reloaded): it replaces what the page showed.
        $('transcript').textContent = '';
        turns.clear();
        firstToken.text.length = firstToken.voice.length = latencyPoints.length = 0;
        (m.turns || []).forEach(showPastTurn);
        break;
      case 'turn_record': {
        const t = m.turn || {};
        const li = turns.get(t.turn_id);
        if (li) {
          setMeta(li, t.input + ' · ' + t.outcome + (t.error ? ' · ' + t.error : '') +
            (typeof t.first_token_ms === 'number' ? ' · first token ' + fmtMs(t.first_token_ms) : ''), t.ended_ms);
          waterfall(li, t.stages);
        }
        notePercentiles(t);
        break;
      }
      case 'actor_event': showEvent(m); break;
      case 'dialog_state': showState(m); break;
      case 'session_status': showSession(m); break;
      case 'mic_level': showLevel(m); break;
      case 'vad': showVad(m.speech); break;
      case 'user_speech': showVad(m.started); break;
      case 'wake': showWake(m); break;
      case 'actor_health': showActor(m); break;
      case 'latency': showLatency(m.figures); break;
      case 'playback': if (m.flush_ms !== undefined) showLatency({ flush_ms: m.flush_ms }); break;
      case 'user_transcript':
        // Interim transcripts show live under the conversation; the final one joins it.
        $('interim').textContent = m.final ? '' : m.text;
        if (m.final) addLine('user voice', m.text, 'said');
        break;
      case 'chat_question': {
        // Another client's (or another dashboard's) question, as it is asked.
        const u = addLine('user text', m.question || '');
        u.dataset.asker = m.asker || '';
        setMeta(u, 'typed · ' + (m.asker || ''), m.at_ms);
        break;
      }
      case 'stream_start': agentLine(m.turn_id, m.input); break;
      case 'stream_token': {
        const li = agentLine(m.turn_id);
        li.dataset.text += m.chunk;
        li.textContent = li.dataset.text;
        break;
      }
      case 'tool_call': toolCall(m); break;
      case 'tool_result': {
        const form = document.querySelector(`form.tool-answer[data-call="${CSS.escape(m.call_id || '')}"]`);
        if (form) form.remove();  // answered (by this page, a tool or another client)
        addLine('tool', m.result, 'tool result');
        break;
      }
      case 'stream_end': {
        const li = agentLine(m.turn_id);
        li.classList.remove('streaming');
        li.classList.add('done');
        if (m.interrupted) li.classList.add('interrupted');
        li.textContent = m.content;
        const meta = document.createElement('span');
        meta.className = 'meta';
        meta.textContent = (li.dataset.input || 'agent') + ' · ' + (m.outcome || '') + (m.error ? ' · ' + m.error : '');
        li.appendChild(meta);
        break;
      }
      case 'error': addLine('tool', `error ${m.code}: ${m.error}`); break;
      case 'new_conversation_started':
        addLine('tool', 'new conversation', m.device ? 'the device and this page start afresh' : 'this page starts afresh');
        break;
      default: break;  // types this page does not show
    }
  }

  function connect() {
    if (!token) {
      setStatus('token needed', false);
      $('token-form').hidden = false;
      return;
    }
    setStatus('connecting…', false);
    ws = new WebSocket(`ws://${location.host}/v1/chat/stream`);
    ws.onopen = () => send({ type: 'authorize', token });
    ws.onmessage = (ev) => { try { onMessage(JSON.parse(ev.data)); } catch (e) { console.error(e); } };
    ws.onclose = () => {
      setStatus('disconnected', false);
      ws = null;
      if (token) setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 8000);
    };
  }

  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    token = $('token-input').value.trim();
    sessionStorage.setItem('vb-token', token);
    connect();
  });
  let chatId = 0;
  $('chat-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = $('chat-input').value.trim();
    if (!text) return;
    addLine('user text', text, 'typed');
    send({ type: 'chat_message', id: 'dash-' + (++chatId), content: text, agent_id: 'dashboard', user_id: 'dashboard' });
    $('chat-input').value = '';
  });
  let held = false;
  function ptt(down) {
    if (down === held) return;
    held = down;
    $('ptt').classList.toggle('held', down);
    send({ type: 'push_to_talk', down });
  }
  $('ptt').addEventListener('pointerdown', (e) => { e.preventDefault(); ptt(true); });
  for (const ev of ['pointerup', 'pointerleave', 'pointercancel']) $('ptt').addEventListener(ev, () => ptt(false));
  $('interrupt').addEventListener('click', () => send({ type: 'interrupt_stream' }));
  $('new-conversation').addEventListener('click', () => {
    send({ type: 'new_conversation', device: true, user_id: 'dashboard' });
  });
  connect();
})();
