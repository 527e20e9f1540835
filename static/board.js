// board.js: keeps a server-rendered TV board live. It follows the board on
// /ws (live.js), re-renders each [data-box] tile from its data-path with its
// data-format, applies its levels (data-warn / data-alert / data-below) to
// data-state and shows the words the server gave for that state
// (data-cue-warn / data-cue-alert on the body), ticks "since" tiles and the
// clock every second from the server's clock, lays the grid out for the real
// screen, fits the numbers to their tiles, and says plainly when the figures
// are stale, or that a feed of its queues is down (the board's feeds_down,
// as pages.rs renders it first). The formatting and threshold rules are tiles.js's.
(() => {
  'use strict';

  const { follow, lookup, pageClock, SILENT_MS } = window.WallboardLive;
  const { number, show, state: stateOf, columns } = window.WallboardTiles;

  const body = document.body;
  const grid = document.getElementById('tiles');
  const tiles = Array.from(document.querySelectorAll('[data-box][data-path]'));
  // Read once: each tile's elements, path, format and thresholds.
  const level = (tile, attr) => (tile.hasAttribute(attr) ? Number(tile.getAttribute(attr)) : null);
  const cells = tiles.map((tile) => ({
    tile,
    path: tile.dataset.path,
    format: tile.dataset.format,
    valueEl: tile.querySelector('[data-value]'),
    cueEl: tile.querySelector('[data-cue]'),
    levels: { warn: level(tile, 'data-warn'), alert: level(tile, 'data-alert'), below: tile.hasAttribute('data-below') },
  }));
  // The words of each state and the tiles' aspect, as the server renders them.
  const cues = { ok: body.dataset.cueOk, warn: body.dataset.cueWarn, alert: body.dataset.cueAlert };
  const aspect = Number(grid.dataset.aspect);
  const values = cells.map((c) => c.valueEl);
  const statusEl = document.getElementById('status');
  const clockEl = document.getElementById('clock');
  const timeZone = body.dataset.timezone || undefined;
  const feedDownEl = document.getElementById('feed-down');
  let boardQueues = [];
  try { boardQueues = JSON.parse(body.dataset.queues || '[]'); } catch (_) { /* every queue */ }

  let board = null;
  let seq = Number(body.dataset.seq || 0);
  let lengths = '';

  const pageTime = pageClock(timeZone);
  const { serverNow } = pageTime;

  function render() {
    if (board) {
      for (const cell of cells) {
        const n = number(cell.format, lookup(board, cell.path), serverNow());
        const text = show(cell.format, n);
        if (cell.valueEl.textContent !== text) cell.valueEl.textContent = text;
        const state = stateOf(cell.levels, n);
        if (cell.tile.dataset.state !== state) {
          cell.tile.dataset.state = state;
          cell.cueEl.textContent = cues[state];
        }
      }
      body.dataset.seq = String(seq);
    }
    // A value of a new length may no longer fit: refit the font (not the grid).
    const now = values.map((el) => el.textContent.length).join(',');
    if (now !== lengths) { lengths = now; fit(); }
  }

  // Columns for the real screen (pages.rs chose them for a 16:9 first render).
  function layout() {
    const n = tiles.length;
    const best = columns(n, grid.clientWidth, grid.clientHeight, aspect);
    // Tiles of a short last row share its width, so no hole is left in the grid:
    // the grid gets lcm(cols, leftover) tracks, and each tile spans its share.
    const leftover = n % best;
    const gcd = (a, b) => (b ? gcd(b, a % b) : a);
    const tracks = leftover ? (best * leftover) / gcd(best, leftover) : best;
    grid.style.gridTemplateColumns = `repeat(${tracks}, minmax(0, 1fr))`;
    tiles.forEach((tile, i) => {
      const span = leftover && i >= n - leftover ? tracks / leftover : tracks / best;
      tile.style.gridColumn = `span ${span}`;
    });
    if (grid.dataset.cols !== String(best)) grid.dataset.cols = String(best);
  }

  function fits(el) {
    return el.scrollWidth <= el.clientWidth && el.scrollHeight <= el.clientHeight;
  }

  // The largest font size at which every number fits its tile, the same for
  // all tiles so the room reads them as one scale (binary search per tile).
  function fit() {
    let size = Infinity;
    for (const el of values) {
      let lo = 8, hi = Math.max(8, el.clientHeight * 1.2);
      while (hi - lo > 1) {
        const mid = (lo + hi) / 2;
        el.style.fontSize = `${mid}px`;
        if (fits(el)) lo = mid; else hi = mid;
      }
      size = Math.min(size, lo);
    }
    if (!Number.isFinite(size)) return;
    // Keep a margin so a wider digit next second does not overflow.
    const chosen = `${Math.floor(size * 0.92)}px`;
    for (const el of values) el.style.fontSize = chosen;
  }

  // "Feed down since 10:42 · pbx": the feeds down that serve this board's
  // queues (a feed that named no queue yet may serve any), the earliest
  // outage's time (pages.rs feed_down_line has the same rule).
  function renderFeedDown() {
    const concerns = (f) => boardQueues.length === 0 || !f.queues || f.queues.length === 0
      || boardQueues.some((q) => f.queues.includes(q));
    const down = Object.entries((board && board.feeds_down) || {}).filter(([, f]) => concerns(f))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    let text = '';
    if (down.length) {
      const since = Math.min(...down.map(([, f]) => Date.parse(f.since)));
      text = `Feed down since ${pageTime.timeOfDay(since, false)} · ${down.map(([name]) => name).join(', ')}`;
    }
    if (feedDownEl.textContent !== text) feedDownEl.textContent = text;
    feedDownEl.hidden = !text;
  }

  function renderStatus() {
    pageTime.renderStatus([live], statusEl, clockEl, body);
  }

  function onBoard(doc, docSeq) {
    board = doc;
    seq = docSeq;
    pageTime.sync(board.now);
    render();
    renderFeedDown();
    renderStatus();
  }

  const initialNow = body.dataset.now;
  if (initialNow) pageTime.sync(initialNow);
  const live = follow('/ws', 'board', { onDocument: onBoard, onStatus: renderStatus, silentMs: SILENT_MS });

  // Exposed for tests and integrations: the board as this page holds it.
  window.wallboard = { board: () => board, seq: () => seq, connected: () => live.connected() };

  // The grid's columns depend only on the screen's size.
  window.addEventListener('resize', () => { layout(); lengths = ''; render(); });
  setInterval(() => { render(); renderStatus(); }, 1000);
  layout();
  render();
  renderStatus();
})();
