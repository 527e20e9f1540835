// live.js: follows one live JSON document over a WebSocket (the board on /ws,
// the supervisor's detail on /ws/supervisor): a snapshot, then JSON Merge
// Patch deltas folded in seq order. It reconnects by itself with backoff and
// takes a fresh snapshot after a drop, a server restart, a silent socket
// (the board is republished every second, so silence means a dead link) or a
// tab that slept. Shared by board.js and supervisor.js.
(() => {
  'use strict';

  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 10000;
  // A drop shorter than this is not worth alarming the room.
  const STALE_AFTER_MS = 3000;
  // The board is republished every second: silence this long means a dead link.
  const SILENT_MS = 5000;

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

  // Seconds as m:ss or h:mm:ss.
  function clock(secs) {
    const total = Math.max(0, Math.round(secs));
    const h = Math.floor(total / 3600), m = Math.floor(total / 60) % 60, s = total % 60;
    const ss = String(s).padStart(2, '0');
    return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
  }

  // follow('/ws', 'board', { onDocument(doc, seq, patch), onStatus(), silentMs })
  // onDocument gets the merge patch just applied, or undefined after a
  // snapshot (when everything may have changed).
  function follow(path, key, options) {
    const silentMs = options.silentMs || 0;
    let doc = null;
    let seq = 0;
    let socket = null;
    let connected = false;
    let lostAt = null;
    let lastMessageAt = 0;
    let backoffMs = BACKOFF_MIN_MS;
    let retry = null;

    function status() { if (options.onStatus) options.onStatus(); }

    function dropped() {
      if (socket) {
        socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
        try { socket.close(); } catch (_) { /* already closed */ }
        socket = null;
      }
      if (connected || lostAt === null) lostAt = Date.now();
      connected = false;
      status();
      const delay = backoffMs * (0.75 + Math.random() * 0.5);
      backoffMs = Math.min(backoffMs * 2, BACKOFF_MAX_MS);
      clearTimeout(retry);
      retry = setTimeout(connect, delay);
    }

    function onMessage(event) {
      lastMessageAt = Date.now();
      const msg = JSON.parse(event.data);
      let patch;
      if (msg.type === 'snapshot') {
        doc = msg[key];
        seq = msg.seq;
      } else if (msg.type === 'delta') {
        if (!doc || msg.seq !== seq + 1) {
          // A gap: start over from a fresh snapshot.
          dropped();
          return;
        }
        patch = msg.patch;
        doc = applyPatch(doc, patch);
        seq = msg.seq;
        // Published documents carry their seq; patches do not repeat it.
        doc.seq = seq;
      } else {
        return;
      }
      if (!connected || lostAt !== null) {
        connected = true;
        lostAt = null;
        status();
      }
      backoffMs = BACKOFF_MIN_MS;
      options.onDocument(doc, seq, patch);
    }

    function connect() {
      clearTimeout(retry);
      retry = null;
      if (socket) return;
      const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
      socket = new WebSocket(`${scheme}${location.host}${path}`);
      lastMessageAt = Date.now();
      socket.onmessage = onMessage;
      socket.onclose = dropped;
      socket.onerror = dropped;
    }

    // A sleeping tab or a dead link that never closed: check every second.
    setInterval(() => {
      if (socket && silentMs && Date.now() - lastMessageAt > silentMs) dropped();
    }, 1000);
    const wake = () => {
      if (document.visibilityState === 'visible' && !socket) {
        backoffMs = BACKOFF_MIN_MS;
        connect();
      }
    };
    document.addEventListener('visibilitychange', wake);
    window.addEventListener('online', wake);
    window.addEventListener('pageshow', wake);

    connect();
    return {
      doc: () => doc,
      seq: () => seq,
      connected: () => connected,
      lostAt: () => lostAt,
    };
  }

  // The server's clock as the page knows it (from the board's `now`), times
  // of day in the site's time zone, and the "Reconnecting…" status line.
  // pageClock(timeZone) -> { serverNow(), sync(nowIso), timeOfDay(ms, seconds),
  //   renderStatus(lives, statusEl, clockEl, body) }
  function pageClock(timeZone) {
    let offsetMs = 0;
    let figuresAt = null;
    const serverNow = () => Date.now() + offsetMs;

    function timeOfDay(ms, seconds = true) {
      const opts = { timeZone, hour: '2-digit', minute: '2-digit' };
      if (seconds) opts.second = '2-digit';
      try { return new Date(ms).toLocaleTimeString('en-GB', opts); } catch (_) { return new Date(ms).toLocaleTimeString('en-GB'); }
    }

    // A board arrived: its `now` sets the clock, and its figures are as of then.
    function sync(nowIso) {
      if (nowIso) offsetMs = Date.parse(nowIso) - Date.now();
      figuresAt = serverNow();
    }

    // Stale when any followed document has been lost for STALE_AFTER_MS.
    function renderStatus(lives, statusEl, clockEl, body) {
      const lost = lives.map((l) => (!l.connected() && l.lostAt() !== null ? l.lostAt() : null)).filter((t) => t !== null);
      const stale = lost.length > 0 && Date.now() - Math.min(...lost) > STALE_AFTER_MS;
      body.classList.toggle('stale', stale);
      statusEl.hidden = !stale;
      if (stale) statusEl.textContent = `Reconnecting…${figuresAt ? ` figures as of ${timeOfDay(figuresAt)}` : ''}`;
      const text = timeOfDay(serverNow());
      if (clockEl.textContent !== text) clockEl.textContent = text;
    }

    return { serverNow, sync, timeOfDay, renderStatus };
  }

  window.WallboardLive = { follow, applyPatch, lookup, clock, pageClock, STALE_AFTER_MS, SILENT_MS };
})();
