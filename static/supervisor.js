// supervisor.js: fills the supervisor page from two live documents (live.js):
// the board on /ws (figures per definition, today and the rolling window, per
// queue) and the detail on /ws/supervisor (live calls, agents, callers to call
// back, calls per 15 minutes, the sources' state, a source that is down
// highlighted). Times in state tick every second from the
// server's clock. Caller numbers and names are user data: text nodes only.
(() => {
  'use strict';

  const { follow, pageClock, SILENT_MS } = window.WallboardLive;
  const { number, show } = window.WallboardTiles;
  const CALLBACK_BOXES = ['missed', 'abandoned', 'timed_out'];
  const HIDDEN_BOXES = (b) => b.startsWith('outbound_') || b === 'expired' || b === 'ignored';
  const STATE_WORDS = { queued: 'Waiting', ringing: 'Ringing', talking: 'Talking', in_ivr: 'In menu', other: 'Other' };
  const SOURCE_WORDS = { connected: 'Connected', connecting: 'Reconnecting', failed: 'Failed', standby: 'Standby' };
  const STATUS_WORDS = { available: 'Available', busy: 'Busy', wrap_up: 'Wrap-up', away: 'Away', offline: 'Offline' };
  const SVG = 'http://www.w3.org/2000/svg';

  const body = document.body;
  const timeZone = body.dataset.timezone || undefined;
  const $ = (id) => document.getElementById(id);
  const buttons = Array.from(document.querySelectorAll('#switcher [data-definition]'));

  let board = null;
  let detail = null;
  let chartBin = null;
  let definition = buttons.length ? buttons[0].dataset.definition : 'reachable';

  const pageTime = pageClock(timeZone);
  const { serverNow, timeOfDay } = pageTime;
  // Figures shown as the board's tiles show them (tiles.js).
  const since = (ts) => show('since', number('since', ts, serverNow()));
  const pct = (r) => show('percent', number('percent', r));
  const secs = (s) => show('secs', number('secs', s));
  const num = (n) => show('count', number('count', n));
  const words = (s) => String(s).replace(/[_-]/g, ' ').replace(/^./, (c) => c.toUpperCase());

  // h('td', {class: 'n'}, 'text', child...): an element with text children only.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  // A cell that ticks every second: it keeps its start time in data-since and
  // tick() rewrites only these cells' text.
  function ticking(tag, cls, ts) {
    return h(tag, { class: `${cls} tick`, 'data-since': ts || null }, since(ts));
  }

  // The ticking cells of each section, gathered when its rows are built.
  const tickers = { queues: [], calls: [], agents: [] };
  function gatherTickers(name, el) { tickers[name] = Array.from(el.querySelectorAll('[data-since]')); }

  // Rows are built only when their data changed: each section keeps its
  // rows by a key of the data they show, and reuses a row whose key is
  // unchanged (its ticking cell is kept current by tick()).
  const built = { queues: new Map(), calls: new Map(), agents: new Map(), callbacks: new Map(), sources: new Map() };
  function rowsOf(name, items, keyOf, build) {
    const before = built[name];
    const after = new Map();
    const rows = items.map((item, i) => {
      const key = keyOf(item, i);
      let row = before.get(key);
      if (!row || after.has(key)) row = build(item, i);
      after.set(key, row);
      return row;
    });
    built[name] = after;
    return rows;
  }

  // Puts the rows in place, touching the DOM only if they differ.
  function place(el, rows) {
    const now = el.children;
    if (now.length === rows.length && rows.every((r, i) => now[i] === r)) return;
    el.replaceChildren(...rows);
  }

  function fill(tbody, rows, emptyText, columns) {
    if (rows.length === 0) rows = [h('tr', {}, h('td', { colspan: columns, class: 'empty' }, emptyText))];
    place(tbody, rows);
  }

  // All definitions side by side: a column pair (today, window) per definition.
  function renderDefinitions() {
    const table = $('definitions');
    // In the switcher's order (the default first), not the JSON's.
    const order = buttons.map((b) => b.dataset.definition);
    const defs = Object.keys(board.definitions || {}).sort((a, b) => order.indexOf(a) - order.indexOf(b));
    const win = (board.window && board.window.definitions) || {};
    if (board.window) $('window-minutes').textContent = board.window.minutes;
    const boxes = ['answered', 'missed', 'abandoned'];
    for (const d of defs) {
      for (const b of Object.keys(board.definitions[d].boxes || {})) {
        if (!HIDDEN_BOXES(b) && !boxes.includes(b)) boxes.push(b);
      }
    }
    const head1 = h('tr', {}, h('th', { rowspan: 2 }, ''));
    const head2 = h('tr', {});
    for (const d of defs) {
      const cls = d === definition ? 'chosen' : null;
      head1.append(h('th', { colspan: 2, class: cls, scope: 'colgroup' }, d));
      head2.append(h('th', { class: `n ${cls || ''}` }, 'today'), h('th', { class: `n sub ${cls || ''}` }, `${board.window ? board.window.minutes : 60} min`));
    }
    table.tHead.replaceChildren(head1, head2);
    const rows = [];
    const row = (label, read, format) => {
      const tr = h('tr', {}, h('th', { scope: 'row' }, label));
      for (const d of defs) {
        const cls = d === definition ? 'chosen' : '';
        tr.append(h('td', { class: `n ${cls}` }, format(read(board.definitions[d]))),
          h('td', { class: `n sub ${cls}` }, format(read(win[d]))));
      }
      rows.push(tr);
    };
    row('Offered', (f) => f && f.offered, num);
    for (const b of boxes) {
      row(words(b), (f) => (f && f.boxes ? (b in f.boxes ? f.boxes[b] : null) : null), num);
    }
    row('Service level', (f) => f && f.service_level, pct);
    row('Abandon rate', (f) => f && f.abandon_rate, pct);
    row('Average answer', (f) => f && f.asa_secs, secs);
    row('Longest wait', (f) => f && f.longest_wait_secs, secs);
    table.tBodies[0].replaceChildren(...rows);
  }

  function renderQueues() {
    const keyOf = ([name, q]) => JSON.stringify([definition, name, q.live, (q.definitions || {})[definition]]);
    const rows = rowsOf('queues', Object.entries(board.queues || {}), keyOf, ([name, q]) => {
      const live = q.live || {};
      const f = (q.definitions || {})[definition] || {};
      const b = f.boxes || {};
      return h('tr', { class: live.queued ? 'busy' : null },
        h('th', { scope: 'row' }, name),
        h('td', { class: 'n' }, num(live.queued || 0)),
        ticking('td', 'n', live.oldest_queued_since),
        h('td', { class: 'n' }, num(f.offered)),
        h('td', { class: 'n' }, num(b.answered)),
        h('td', { class: 'n' }, num(b.missed)),
        h('td', { class: 'n' }, num(b.abandoned)),
        h('td', { class: 'n' }, pct(f.service_level)),
        h('td', { class: 'n' }, pct(f.abandon_rate)),
        h('td', { class: 'n' }, secs(f.asa_secs)),
        h('td', { class: 'n' }, secs(f.longest_wait_secs)));
    });
    const tbody = $('queues').tBodies[0];
    fill(tbody, rows, 'No queue has had a call today.', 11);
    gatherTickers('queues', tbody);
  }

  function renderCalls() {
    const calls = detail.live_calls || [];
    const total = detail.live_calls_total || 0;
    $('calls-count').textContent = total > calls.length ? `${calls.length} of ${total}` : `${total}`;
    const rows = rowsOf('calls', calls, (c) => JSON.stringify(c), (c) => h('tr', { 'data-call': c.call, 'data-state': c.state },
      h('td', {}, h('span', { class: `pill ${c.state}` }, STATE_WORDS[c.state] || c.state)),
      ticking('td', 'n', c.since),
      h('td', {}, c.queue || '–'),
      h('td', { class: 'caller' }, c.caller || 'unknown'),
      h('td', {}, c.agent || '–')));
    const tbody = $('calls').tBodies[0];
    fill(tbody, rows, 'No calls right now.', 5);
    gatherTickers('calls', tbody);
  }

  function renderAgents() {
    const agents = detail.agents || [];
    const available = agents.filter((a) => a.status === 'available').length;
    $('agents-count').textContent = agents.length ? `${available} of ${agents.length} available` : '';
    const cards = rowsOf('agents', agents, (a) => JSON.stringify(a), (a) => h('div', { class: `agent ${a.status}`, 'data-agent': a.name },
      h('span', { class: 'name' }, a.name),
      h('span', { class: 'status-word' }, (STATUS_WORDS[a.status] || a.status) + (a.reason ? ` · ${a.reason}` : '')),
      ticking('span', 'for', a.since),
      h('span', { class: 'on-call' }, a.call ? `${STATE_WORDS[a.call.state] || a.call.state} · ${a.call.call}` : '')));
    const el = $('agents');
    if (cards.length === 0) el.replaceChildren(h('p', { class: 'empty' }, 'No agent has reported a status.'));
    else place(el, cards);
    gatherTickers('agents', el);
  }

  // A time of day with its date when it is not today's (a source may be down for days).
  function when(ts) {
    if (!ts) return '–';
    const ms = Date.parse(ts);
    const day = (t) => new Date(t).toLocaleDateString('en-GB', { timeZone });
    return serverNow() - ms < 86400000 && day(ms) === day(serverNow()) ? timeOfDay(ms) : `${day(ms)} ${timeOfDay(ms)}`;
  }

  function renderSources() {
    const sources = detail.sources || [];
    const down = sources.filter((s) => s.down_since).length;
    $('sources-count').textContent = down ? `${down} down` : (sources.length ? 'all feeding' : '');
    const rows = rowsOf('sources', sources, (s) => JSON.stringify(s), (s) => h('tr', { 'data-source': s.name, 'data-state': s.state, class: s.down_since ? 'down' : null },
      h('th', { scope: 'row' }, s.name),
      h('td', {}, s.kind),
      h('td', {}, h('span', { class: `pill source-${s.state}` }, (s.down_since ? '▲ Down · ' : '') + (SOURCE_WORDS[s.state] || s.state) + (s.state === 'standby' && s.node ? ` · runs on ${s.node}` : ''))),
      h('td', {}, when(s.down_since || s.since)),
      h('td', {}, when(s.last_event_at)),
      h('td', { class: 'n' }, num(s.events)),
      h('td', { class: 'n' }, num(s.skipped)),
      h('td', { class: 'error' }, s.last_error || '')));
    fill($('sources').tBodies[0], rows, 'No source is configured.', 8);
  }

  function renderCallbacks() {
    const all = (detail.callbacks && detail.callbacks.calls) || [];
    const mine = all.filter((c) => CALLBACK_BOXES.includes((c.boxes || {})[definition]));
    const total = detail.callbacks ? detail.callbacks.total : 0;
    $('callbacks-count').textContent = `${mine.length} under ${definition}` + (total > all.length ? ` (list capped at ${all.length})` : '');
    const rows = rowsOf('callbacks', mine, (c) => JSON.stringify([definition, c]), (c) => h('tr', { 'data-call': c.call, class: c.answered_later ? 'done' : null },
      h('td', {}, timeOfDay(Date.parse(c.finished_at), false)),
      h('td', { class: 'caller' }, c.caller || 'withheld'),
      h('td', {}, c.queue || '–'),
      h('td', { class: 'n' }, secs(c.wait_secs)),
      h('td', {}, h('span', { class: `pill ${c.boxes[definition]}` }, words(c.boxes[definition]))),
      h('td', {}, words(c.outcome)),
      h('td', {}, c.answered_later ? '✓ answered later' : '')));
    fill($('callbacks').tBodies[0], rows, `No missed or abandoned calls today under ${definition}.`, 7);
  }

  function svg(tag, attrs, text) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    return el;
  }

  // Minutes past local midnight at ms, in the site's time zone (the day may
  // start at any time, e.g. 04:00 or 01:30, so bins are not midnight-based).
  let minuteFormat = null;
  const minutesAt = new Map();
  function localMinutes(ms) {
    if (minutesAt.has(ms)) return minutesAt.get(ms);
    if (minutesAt.size > 1000) minutesAt.clear();
    if (!minuteFormat) {
      const opts = { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
      try { minuteFormat = new Intl.DateTimeFormat('en-GB', { ...opts, timeZone }); } catch (_) { minuteFormat = new Intl.DateTimeFormat('en-GB', opts); }
    }
    const parts = minuteFormat.formatToParts(ms);
    const part = (type) => Number((parts.find((p) => p.type === type) || {}).value || 0);
    const minutes = (part('hour') % 24) * 60 + part('minute');
    minutesAt.set(ms, minutes);
    return minutes;
  }

  // The bin the server's clock is in, which the chart highlights.
  function currentBin(chart, bins) {
    const binMs = chart.bin_minutes * 60000;
    return Math.min(bins - 1, Math.max(0, Math.floor((serverNow() - Date.parse(chart.start)) / binMs)));
  }

  // Stacked bars, one per 15 minutes, from the first busy quarter (or 07:00)
  // to the current one.
  function renderChart() {
    const chart = detail.chart;
    const el = $('chart');
    const series = chart && chart.definitions && chart.definitions[definition];
    if (!series) { el.replaceChildren(h('p', { class: 'empty' }, 'No figures yet.')); return; }
    const names = ['answered', 'missed', 'abandoned'].filter((n) => series[n]);
    const bins = series[names[0]].length;
    const start = Date.parse(chart.start);
    const binMs = chart.bin_minutes * 60000;
    const totals = Array.from({ length: bins }, (_, i) => names.reduce((s, n) => s + series[n][i], 0));
    const current = currentBin(chart, bins);
    chartBin = current;
    let first = totals.findIndex((t) => t > 0);
    let lastBusy = -1;
    totals.forEach((t, i) => { if (t > 0) lastBusy = i; });
    const last = Math.max(current, lastBusy);
    const onHour = (bin) => localMinutes(start + bin * binMs) % 60 === 0;
    // The bin at 07:00 local, counted from the day's start (wherever it is).
    const seven = Math.round((((7 * 60 - localMinutes(start)) % 1440 + 1440) % 1440) / chart.bin_minutes);
    first = first < 0 ? Math.min(seven, current) : Math.min(first, seven, current);
    // Start on the hour (a bin within the hour before, if there is one).
    for (let back = 0; back * chart.bin_minutes < 60 && first - back >= 0; back++) {
      if (onHour(first - back)) { first -= back; break; }
    }
    const shown = Math.max(last - first + 1, 12);
    const max = Math.max(4, ...totals);
    const step = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000].find((s) => max / s <= 5) || 2000;
    const top = Math.ceil((max * 1.1) / step) * step;
    const W = 1000, H = 220, L = 36, B = 22, T = 6;
    const bw = (W - L) / shown;
    const y = (v) => T + (H - T - B) * (1 - v / top);
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `Calls per 15 minutes under ${definition}` });
    for (let v = 0; v <= top; v += step) {
      root.append(svg('line', { x1: L, x2: W, y1: y(v), y2: y(v), class: 'gridline' }));
      root.append(svg('text', { x: L - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, String(v)));
    }
    for (let i = 0; i < shown; i++) {
      const bin = first + i;
      if (bin >= bins) break;
      const x = L + i * bw;
      let acc = 0;
      for (const n of names) {
        const v = series[n][bin];
        if (v > 0) {
          const rect = svg('rect', { x: x + bw * 0.12, width: bw * 0.76, y: y(acc + v), height: y(acc) - y(acc + v), class: `bar ${n}` });
          rect.append(svg('title', {}, `${timeOfDay(start + bin * binMs, false)}: ${v} ${n}`));
          root.append(rect);
          acc += v;
        }
      }
      if (onHour(bin)) {
        root.append(svg('text', { x: x + 2, y: H - 6, class: 'axis' }, timeOfDay(start + bin * binMs, false)));
      }
      if (bin === current) root.append(svg('rect', { x, y: T, width: bw, height: H - T - B, class: 'now' }));
    }
    el.replaceChildren(root);
  }

  function render() {
    if (board) { renderDefinitions(); renderQueues(); }
    if (detail) { renderSources(); renderCalls(); renderAgents(); renderCallbacks(); renderChart(); }
  }

  // Which sections a patch touches: a section re-renders only if one of its
  // keys is in the patch; a snapshot (no patch) re-renders them all.
  const BOARD_SECTIONS = [
    [['definitions', 'window'], () => renderDefinitions()],
    [['queues'], () => renderQueues()],
  ];
  const DETAIL_SECTIONS = [
    [['live_calls', 'live_calls_total'], () => renderCalls()],
    [['agents'], () => renderAgents()],
    [['callbacks'], () => renderCallbacks()],
    [['chart'], () => renderChart()],
    [['sources'], () => renderSources()],
  ];
  function renderChanged(sections, patch) {
    const all = patch === undefined || patch === null || typeof patch !== 'object';
    for (const [keys, run] of sections) {
      if (all || keys.some((k) => k in patch)) run();
    }
  }

  // Only the ticking cells move every second; the rest re-renders on updates.
  function tick() {
    for (const list of Object.values(tickers)) {
      for (const el of list) {
        const text = since(el.dataset.since);
        if (el.textContent !== text) el.textContent = text;
      }
    }
    // The chart only changes with calls, but its "now" bar moves with the clock.
    const series = detail && detail.chart && detail.chart.definitions && detail.chart.definitions[definition];
    if (series && chartBin !== null) {
      const first = Object.values(series)[0];
      if (first && currentBin(detail.chart, first.length) !== chartBin) renderChart();
    }
    renderStatus();
  }

  function renderStatus() {
    pageTime.renderStatus([boardLive, detailLive], $('status'), $('clock'), body);
  }

  function choose(name) {
    definition = name;
    for (const b of buttons) b.setAttribute('aria-pressed', String(b.dataset.definition === name));
    if (history.replaceState) history.replaceState(null, '', `#${encodeURIComponent(name)}`);
    render();
  }
  for (const b of buttons) b.addEventListener('click', () => choose(b.dataset.definition));
  const fromHash = decodeURIComponent(location.hash.slice(1));
  if (buttons.some((b) => b.dataset.definition === fromHash)) choose(fromHash);

  const boardLive = follow('/ws', 'board', {
    silentMs: SILENT_MS,
    onStatus: () => renderStatus(),
    onDocument: (doc, _seq, patch) => {
      board = doc;
      pageTime.sync(board.now);
      renderChanged(BOARD_SECTIONS, patch);
    },
  });
  const detailLive = follow('/ws/supervisor', 'detail', {
    onStatus: () => renderStatus(),
    onDocument: (doc, _seq, patch) => {
      detail = doc;
      renderChanged(DETAIL_SECTIONS, patch);
      // Sections in scripts of their own (agents.js) follow this.
      document.dispatchEvent(new CustomEvent('wallboard:detail', { detail: patch }));
    },
  });

  window.wallboard = { board: () => board, detail: () => detail, definition: () => definition, serverNow };
  setInterval(tick, 1000);
  renderStatus();
})();
