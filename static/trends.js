// trends.js: the supervisor page's trends: the last 7 or 28 days from
// GET /api/trends, one small SVG chart per figure (a bar or a point a day,
// under the definition the page's switcher chose), today so far beside each,
// and the sentence comparing today with a usual weekday. Refetched every
// minute, since today and the comparison move with the clock.
(() => {
  'use strict';

  const SVG = 'http://www.w3.org/2000/svg';
  const REFRESH_MS = 60000;
  const tiles = window.WallboardTiles;
  const shown = (kind, v) => (tiles ? tiles.show(kind, tiles.number(kind, v)) : (v === null || v === undefined ? '–' : String(v)));
  const count = (v) => shown('count', v);
  const pct = (v) => shown('percent', v);
  const secs = (v) => shown('secs', v);

  // The figures charted: counts as bars, ratios and times as a line of points.
  const FIGURES = [
    { key: 'offered', label: 'Offered', bars: true, read: (f) => f.offered, format: count },
    { key: 'answered', label: 'Answered', bars: true, read: (f) => (f.boxes ? f.boxes.answered : null), format: count },
    { key: 'abandon_rate', label: 'Abandon rate', read: (f) => f.abandon_rate, format: pct, ratio: true },
    { key: 'service_level', label: 'Service level', read: (f) => f.service_level, format: pct, ratio: true },
    { key: 'asa_secs', label: 'Average answer', read: (f) => f.asa_secs, format: secs },
  ];

  const $ = (id) => document.getElementById(id);
  const panel = $('trends');
  if (!panel) return;
  const toggles = Array.from(document.querySelectorAll('#trends-toggle [data-days]'));

  let days = 7;
  let data = null;
  let asked = 0;

  const definition = () => (window.wallboard && window.wallboard.definition ? window.wallboard.definition() : 'reachable');

  function svg(tag, attrs, text) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) el.setAttribute(k, v);
    for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return el;
  }

  // "Fri 13 Nov" for a site day "2026-11-13" (a date, so no time zone shift).
  function dayLabel(day, withMonth) {
    const [y, m, d] = day.split('-').map(Number);
    const opts = withMonth ? { weekday: 'short', day: 'numeric', month: 'short' } : { weekday: 'short' };
    return new Date(Date.UTC(y, m - 1, d)).toLocaleDateString('en-GB', { ...opts, timeZone: 'UTC' });
  }

  // A round top for the y axis, above the largest value, whose half is round too.
  function niceTop(max, ratio) {
    if (!(max > 0)) return ratio ? 1 : 4;
    const power = 10 ** Math.floor(Math.log10(max));
    const top = [1, 2, 3, 4, 5, 6, 8, 10].map((s) => s * power).find((t) => t >= max * 1.05) || 10 * power;
    return ratio ? (max > 0.5 ? 1 : Math.min(top, 1)) : top;
  }

  // One chart: a bar or point per day, a dash where the day has no value.
  function chart(figure, series) {
    const values = series.map((d) => {
      const f = (d.definitions || {})[definition()];
      const v = f ? figure.read(f) : null;
      return d.calls > 0 && v !== undefined && v !== null ? v : null;
    });
    const W = 320, H = 130, L = 40, R = 6, T = 8, B = 20;
    const n = series.length;
    const top = niceTop(Math.max(0, ...values.filter((v) => v !== null)), figure.ratio);
    const step = (W - L - R) / n;
    const y = (v) => T + (H - T - B) * (1 - v / top);
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${figure.label} per day, last ${n} days, under ${definition()}` });
    for (const v of [0, top / 2, top]) {
      root.append(svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'gridline' }));
      // A count's half-way line is labelled only when it is a whole number.
      if (!figure.bars || Number.isInteger(v)) {
        root.append(svg('text', { x: L - 5, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, figure.format(v)));
      }
    }
    const points = [];
    series.forEach((d, i) => {
      const x = L + i * step;
      const v = values[i];
      const title = svg('title', {}, `${dayLabel(d.day, true)}: ${v === null ? 'no calls' : figure.format(v)}`);
      let mark;
      if (v === null) {
        mark = svg('rect', { x: x + step * 0.2, width: step * 0.6, y: y(0) - 2, height: 2, class: 'day none' });
      } else if (figure.bars) {
        mark = svg('rect', { x: x + step * 0.15, width: step * 0.7, y: y(v), height: Math.max(y(0) - y(v), 0.5), class: 'day bar' });
      } else {
        mark = svg('circle', { cx: x + step / 2, cy: y(v), r: n > 10 ? 2.5 : 3.5, class: 'day point' });
        points.push(`${x + step / 2},${y(v)}`);
      }
      if (v === null && points.length) { root.prepend(line(points.splice(0))); }
      mark.setAttribute('data-day', d.day);
      mark.append(title);
      root.append(mark);
      // Every day labelled on a week; on four weeks, each Monday.
      const [yy, mm, dd] = d.day.split('-').map(Number);
      const monday = new Date(Date.UTC(yy, mm - 1, dd)).getUTCDay() === 1;
      if (n <= 7 || monday) {
        root.append(svg('text', { x: x + step / 2, y: H - 5, class: 'axis', 'text-anchor': 'middle' }, n <= 7 ? dayLabel(d.day, false) : `${dd}/${mm}`));
      }
    });
    if (points.length) root.prepend(line(points));
    return root;
  }

  function line(points) {
    return svg('polyline', { points: points.join(' '), class: 'line' });
  }

  function render() {
    if (!data) return;
    const sentence = $('trends-comparison');
    const c = data.comparison;
    if (c && c.sentence) {
      sentence.textContent = c.sentence;
      sentence.className = `comparison ${c.change > 0.005 ? 'busier' : c.change < -0.005 ? 'quieter' : 'usual'}`;
      sentence.title = `Offered calls today so far: ${c.today}; a usual ${c.weekday} by ${c.at}: ${Math.round(c.usual * 10) / 10}, over ${c.weeks} week${c.weeks === 1 ? '' : 's'}`;
      sentence.hidden = false;
    } else {
      sentence.hidden = true;
    }
    $('trends-range').textContent = `the last ${data.span_days} days, under ${definition()}`;
    if (!data.days || !data.days.length) {
      panel.replaceChildren(h('p', { class: 'empty' }, 'No figures yet.'));
      return;
    }
    const today = data.today && (data.today.definitions || {})[definition()];
    panel.replaceChildren(...FIGURES.map((figure) => h('figure', { class: 'trend', 'data-figure': figure.key },
      h('figcaption', {}, h('span', { class: 'name' }, figure.label),
        h('span', { class: 'today' }, `today ${today ? figure.format(figure.read(today)) : '–'}`)),
      chart(figure, data.days))));
  }

  async function load() {
    const mine = ++asked;
    try {
      const response = await fetch(`/api/trends?days=${days}`, { headers: { accept: 'application/json' } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const body = await response.json();
      if (mine !== asked) return; // A newer request (a toggle) answers instead.
      data = body;
      render();
    } catch (e) {
      if (mine !== asked) return;
      data = null;
      panel.replaceChildren(h('p', { class: 'empty' }, `Trends are unavailable (${e.message}).`));
    }
  }

  function choose(n) {
    days = n;
    for (const b of toggles) b.setAttribute('aria-pressed', String(Number(b.dataset.days) === n));
    load();
  }
  for (const b of toggles) b.addEventListener('click', () => choose(Number(b.dataset.days)));
  // The page's definition switcher: charts follow the definition chosen.
  for (const b of document.querySelectorAll('#switcher [data-definition]')) b.addEventListener('click', () => render());

  window.wallboardTrends = { data: () => data, days: () => days };
  load();
  setInterval(load, REFRESH_MS);
})();
