// tiles.js: how a tile shows its figure, the browser's half of board.rs and
// pages.rs (formats, thresholds, grid columns). The server sends each tile's
// path, format and levels, and the words of each state, as data; what must run
// here (numbers ticking, the real screen's grid) is checked against the same
// table of cases as the Rust (tests/data/tile-cases.json), so the two cannot drift.
(() => {
  'use strict';

  const { clock } = window.WallboardLive;

  // The value as a number thresholds compare (a ratio, seconds or a count),
  // given the server's now in ms; null when there is none.
  function number(format, value, nowMs) {
    if (format === 'since') {
      if (typeof value !== 'string') return null;
      const since = Date.parse(value);
      return Number.isNaN(since) ? null : Math.max(0, (nowMs - since) / 1000);
    }
    return typeof value === 'number' ? value : null;
  }

  // The number as shown; '–' when there is none.
  function show(format, n) {
    if (n === null) return '–';
    switch (format) {
      case 'count': return String(Math.round(n));
      case 'percent': return `${Math.round(n * 100)}%`;
      case 'secs':
      case 'since': return clock(n);
      default: return String(n);
    }
  }

  // 'ok', 'warn' or 'alert' of n against { warn, alert, below } (levels or null).
  function state(levels, n) {
    if (n === null) return 'ok';
    const reached = (level) => level !== null && (levels.below ? n < level : n >= level);
    if (reached(levels.alert)) return 'alert';
    if (reached(levels.warn)) return 'warn';
    return 'ok';
  }

  // Columns for n tiles in a width × height grid: the layout whose tiles
  // hold the largest rectangle of the given aspect (width ÷ height).
  function columns(n, width, height, aspect) {
    let best = 1, bestSide = 0;
    for (let cols = 1; cols <= n; cols++) {
      const rows = Math.ceil(n / cols);
      const side = Math.min(width / cols / aspect, height / rows);
      if (side > bestSide) { best = cols; bestSide = side; }
    }
    return best;
  }

  window.WallboardTiles = { number, show, state, columns };
})();
