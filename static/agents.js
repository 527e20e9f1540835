// agents.js: the agents' day on the supervisor page, from the detail's
// `agents_day` (supervisor.js follows /ws/supervisor and says when it
// changes): per agent, today's calls, talk time and time in each status, its
// status now with its pause reason, and the call it is on. A click on a
// column header sorts by it, a second click reverses. The time in the current
// status, the call's time and the current status's total tick each second
// from the server's timestamps. Agent names are user data: text nodes only.
(() => {
  'use strict';

  const { clock } = window.WallboardLive;
  const page = window.wallboard;
  const STATUSES = ['available', 'busy', 'wrap_up', 'away', 'offline'];
  const STATUS_WORDS = { available: 'Available', busy: 'Busy', wrap_up: 'Wrap-up', away: 'Away', offline: 'Offline' };
  const STATE_WORDS = { ringing: 'Ringing', talking: 'Talking', queued: 'Ringing' };
  const table = document.getElementById('agents-day');
  if (!table || !page) return;
  const tbody = table.tBodies[0];
  const headers = Array.from(table.querySelectorAll('thead [data-sort]'));

  const elapsed = (ts, now) => (ts ? Math.max(0, (now - Date.parse(ts)) / 1000) : null);
  const duration = (secs) => (secs === null || secs === undefined ? '–' : clock(secs));
  // Seconds in a status today: its closed spans, plus the time since the
  // status being timed began when it is that one.
  const inStatus = (a, s, now) => ((a.status_secs || {})[s] || 0)
    + (a.timing && a.timing.status === s ? elapsed(a.timing.since, now) : 0);

  // What each column sorts by (numbers, or strings for the names).
  const SORTS = {
    name: (a) => a.name,
    status: (a) => (a.status ? STATUSES.indexOf(a.status) : STATUSES.length),
    for: (a, now) => elapsed(a.since, now) ?? -1,
    call: (a, now) => (a.call ? elapsed(a.call.since, now) : -1),
    offered: (a) => a.offered,
    answered: (a) => a.answered,
    declined: (a) => a.declined,
    talk: (a) => a.talk_secs,
    aht: (a) => a.aht_secs ?? -1,
    ...Object.fromEntries(STATUSES.map((s) => [`in_${s}`, (a, now) => inStatus(a, s, now)])),
  };

  let sort = { key: 'name', descending: false };
  let rows = new Map();

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
    return el;
  }

  // A cell whose text is `base` seconds plus the time since `since`, kept current by tick().
  function ticking(cls, since, base = 0) {
    return h('td', { class: `n ${cls}`, 'data-since': since || null, 'data-base': base }, '');
  }

  function build(a) {
    const status = a.status
      ? h('span', { class: `pill status-${a.status}` }, (STATUS_WORDS[a.status] || a.status) + (a.reason ? ` · ${a.reason}` : ''))
      : '–';
    const onCall = a.call
      ? h('span', { class: `pill ${a.call.state}` }, `${STATE_WORDS[a.call.state] || a.call.state} · ${a.call.call}`)
      : '';
    const tr = h('tr', { 'data-agent': a.name, class: a.status === 'offline' ? 'offline' : null },
      h('th', { scope: 'row' }, a.name),
      h('td', { class: 'agent-status' }, status),
      a.since ? ticking('for', a.since) : h('td', { class: 'n for' }, '–'),
      h('td', { class: 'on-call' }, onCall, a.call ? ' ' : null, a.call ? h('span', { class: 'call-time', 'data-since': a.call.since, 'data-base': 0 }, '') : null),
      h('td', { class: 'n' }, a.offered),
      h('td', { class: 'n' }, a.answered),
      h('td', { class: 'n' }, a.declined),
      h('td', { class: 'n' }, duration(a.talk_secs)),
      h('td', { class: 'n' }, duration(a.aht_secs)));
    for (const s of STATUSES) {
      const base = (a.status_secs || {})[s] || 0;
      const timed = a.timing && a.timing.status === s;
      tr.append(timed ? ticking(`in-status timed`, a.timing.since, base) : h('td', { class: 'n in-status' }, duration(base)));
    }
    return tr;
  }

  function render() {
    const detail = page.detail();
    const day = detail && detail.agents_day;
    if (!day) return;
    const now = page.serverNow();
    const agents = (day.agents || []).slice();
    const by = SORTS[sort.key] || SORTS.name;
    const sign = sort.descending ? -1 : 1;
    agents.sort((x, y) => {
      const a = by(x, now), b = by(y, now);
      const order = typeof a === 'string' ? a.localeCompare(b) : a - b;
      return sign * order || x.name.localeCompare(y.name);
    });
    // Rows are rebuilt only for agents whose data changed.
    const next = new Map();
    const built = agents.map((a) => {
      const key = JSON.stringify(a);
      const row = rows.get(key) || build(a);
      next.set(key, row);
      return row;
    });
    rows = next;
    if (built.length === 0) {
      built.push(h('tr', {}, h('td', { colspan: 14, class: 'empty' }, 'No agent has reported a status or taken a call today.')));
    }
    tbody.replaceChildren(...built);
    const shown = (day.agents || []).length;
    document.getElementById('agents-day-count').textContent = day.total > shown
      ? `${shown} of ${day.total} agents` : `${shown} agent${shown === 1 ? '' : 's'}`;
    for (const th of headers) {
      th.setAttribute('aria-sort', th.dataset.sort === sort.key ? (sort.descending ? 'descending' : 'ascending') : 'none');
    }
    tick();
  }

  function tick() {
    const now = page.serverNow();
    for (const el of tbody.querySelectorAll('[data-since]')) {
      const text = clock(Number(el.dataset.base) + elapsed(el.dataset.since, now));
      if (el.textContent !== text) el.textContent = text;
    }
  }

  for (const th of headers) {
    th.querySelector('button').addEventListener('click', () => {
      const key = th.dataset.sort;
      sort = { key, descending: sort.key === key ? !sort.descending : false };
      render();
    });
  }
  document.addEventListener('wallboard:detail', (e) => {
    const patch = e.detail;
    if (!patch || typeof patch !== 'object' || 'agents_day' in patch) render();
  });
  render();
  setInterval(tick, 1000);
})();
