// board.js: keeps a server-rendered board live. It takes a snapshot from /ws,
// folds every JSON Merge Patch delta into it, re-renders each [data-box] tile
// from its data-path, and reconnects with backoff (fresh snapshot) after a drop.
(() => {
  'use strict';

  const STALE_AFTER_MS = 3000;
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 10000;

  const tiles = Array.from(document.querySelectorAll('[data-box][data-path]'));
  const statusEl = document.getElementById('status');
  const clockEl = document.getElementById('clock');

  let board = null;
  let seq = 0;
  let clockOffsetMs = 0;
  let backoffMs = BACKOFF_MIN_MS;
  let connected = false;
  let lostAt = null;
  let lastBoardAt = null;

  // RFC 7396 merge patch.
  function applyPatch(target, patch) {
    if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
    if (target === null || typeof target !== 'object' || Array.isArray(target)) target = {};
    for (const [key, value] of Object.entries(patch)) {
      if (value === null) delete target[key];
      else target[key] = applyPatch(target[key], value);
    }
    return target;
  }

  function lookup(obj, path) {
    return path.split('.').reduce((v, k) => (v == null ? undefined : v[k]), obj);
  }

  function serverNow() {
    return Date.now() + clockOffsetMs;
  }

  function clock(secs) {
    const total = Math.max(0, Math.round(secs));
    const h = Math.floor(total / 3600), m = Math.floor(total / 60) % 60, s = total % 60;
    const ss = String(s).padStart(2, '0');
    return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
  }

  function show(format, value) {
    if (value === undefined || value === null) return '–';
    switch (format) {
      case 'count': return String(value);
      case 'percent': return `${Math.round(value * 100)}%`;
      case 'secs': return clock(value);
      case 'since': return clock((serverNow() - Date.parse(value)) / 1000);
      default: return String(value);
    }
  }

  function render() {
    if (!board) return;
    for (const tile of tiles) {
      const el = tile.querySelector('[data-value]');
      const text = show(tile.dataset.format, lookup(board, tile.dataset.path));
      if (el && el.textContent !== text) el.textContent = text;
    }
    document.body.dataset.seq = String(seq);
  }

  function timeOfDay(ms) {
    return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  function renderStatus() {
    const stale = !connected && lostAt !== null && Date.now() - lostAt > STALE_AFTER_MS;
    document.body.classList.toggle('stale', stale);
    if (statusEl) {
      statusEl.hidden = !stale;
      if (stale) {
        const asOf = lastBoardAt ? ` figures as of ${timeOfDay(lastBoardAt)}` : '';
        statusEl.textContent = `Reconnecting…${asOf}`;
      }
    }
    if (clockEl) clockEl.textContent = timeOfDay(serverNow());
  }

  function onMessage(event) {
    const msg = JSON.parse(event.data);
    if (msg.type === 'snapshot') {
      board = msg.board;
      seq = msg.seq;
    } else if (msg.type === 'delta') {
      if (!board || msg.seq !== seq + 1) {
        // A gap: drop the socket and start over from a fresh snapshot.
        this.close();
        return;
      }
      board = applyPatch(board, msg.patch);
      seq = msg.seq;
      board.seq = seq;
    } else {
      return;
    }
    if (board.now) clockOffsetMs = Date.parse(board.now) - Date.now();
    lastBoardAt = serverNow();
    backoffMs = BACKOFF_MIN_MS;
    render();
  }

  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    const socket = new WebSocket(`${scheme}${location.host}/ws`);
    socket.onopen = () => { connected = true; lostAt = null; renderStatus(); };
    socket.onmessage = onMessage;
    socket.onclose = () => {
      if (connected || lostAt === null) lostAt = Date.now();
      connected = false;
      renderStatus();
      const delay = backoffMs * (0.75 + Math.random() * 0.5);
      backoffMs = Math.min(backoffMs * 2, BACKOFF_MAX_MS);
      setTimeout(connect, delay);
    };
  }

  // Exposed for tests and integrations: the board as this page holds it.
  window.wallboard = { board: () => board, seq: () => seq, connected: () => connected };

  const initialNow = document.body.dataset.now;
  if (initialNow) clockOffsetMs = Date.parse(initialNow) - Date.now();
  setInterval(() => { render(); renderStatus(); }, 1000);
  renderStatus();
  connect();
})();
