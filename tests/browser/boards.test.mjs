// Browser tests of the configurable boards and the supervisor page, in real
// headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core:
// thresholds, fit at TV sizes, the live lists, privacy of the public board's
// traffic, recovery after a server restart, and the README's screenshots.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.WALLBOARD_BIN
  || join(process.env.CARGO_TARGET_DIR || join(ROOT, 'target'), 'debug', 'wallboard');
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--no-first-run', '--disable-sync', '--disable-component-update'];
const CALLER = '+44 7700 900123';
const SIZES = [[1280, 720], [1920, 1080], [3840, 2160]];

const CONFIG = `
[[board]]
name = "sales"
title = "Sales line"
definition = "nhs"
queues = ["sales"]
tiles = ["queued", "longest_waiting", "answered", "missed", "abandoned", "service_level", "agents_available"]
thresholds = { queued = { warn = 1, alert = 2 }, longest_waiting = { warn = 600 } }

[[board]]
name = "everything"
title = "Every figure on one very crowded board, with a long title to test"
tiles = ["queued", "longest_waiting", "ringing", "talking", "in_ivr", "offered", "answered", "missed",
         "abandoned", "service_level", "abandon_rate", "asa", "longest_wait", "agents_available",
         "agents_busy", "agents_wrap_up", "agents_away"]
`;

let browser;
const servers = [];

// Starts the server binary on `listen`; resolves once it prints its address.
function startServer({ dir, listen = '127.0.0.1:0', demo = false }) {
  const args = ['serve', '--listen', listen, '--data-dir', join(dir, 'data'), '--config', join(dir, 'wallboard.toml')];
  if (demo) args.push('--demo');
  const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  servers.push(child);
  child.stderr.resume();
  return new Promise((ok, fail) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/board is at (http:\/\/[^/\s]+)\//);
      if (m) ok({ child, base: m[1], port: new URL(m[1]).port });
    });
    child.on('exit', (code) => fail(new Error(`server exited with ${code}: ${out}`)));
  });
}

function stopServer(server) {
  return new Promise((ok) => {
    if (server.child.exitCode !== null) return ok();
    server.child.once('exit', () => ok());
    server.child.kill('SIGTERM');
  });
}

function tempSite() {
  const dir = mkdtempSync(join(tmpdir(), 'wallboard-ui-'));
  writeFileSync(join(dir, 'wallboard.toml'), CONFIG);
  return dir;
}

async function post(base, events) {
  const body = events.map((e) => JSON.stringify(e)).join('\n');
  const res = await fetch(`${base}/api/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
  assert.equal(res.status, 200, await res.text());
}

const ago = (secs) => new Date(Date.now() - secs * 1000).toISOString();
let ids = 0;
const ev = (e) => ({ id: `t${++ids}`, ...e });

// A queued call waiting since `secs` ago.
function waiting(call, queue, secs, from = `+44 7700 9${String(ids).padStart(5, '0')}`) {
  return [
    ev({ type: 'call_started', call, at: ago(secs + 5), direction: 'inbound', channel: 'voice', from }),
    ev({ type: 'queued', call, at: ago(secs), queue }),
  ];
}

// A quiet morning's worth of finished calls, a few waiting, and agents.
function morning() {
  const agents = ['Amy Clarke', 'Ben Okafor', 'Chloe Singh', 'Dev Patel', 'Ella Novak', 'Finn Murphy', 'Gita Rao', 'Hugo Laine'];
  const statuses = ['available', 'busy', 'busy', 'wrap_up', 'away', 'available', 'busy', 'offline'];
  const queues = ['sales', 'support', 'billing'];
  const out = agents.map((agent, i) => ev({ type: 'agent_status', at: ago(3000 - i * 300), agent, status: statuses[i], queues: [queues[i % 3]] }));
  // Finished calls spread over the last 100 minutes (never before today's start).
  const span = Math.min(6000, Math.floor((Date.now() - new Date().setUTCHours(0, 0, 0, 0)) / 1000) - 300);
  let seed = 7;
  const rand = () => { seed = (seed * 16807) % 2147483647; return seed / 2147483647; };
  for (let k = 0; k < 48 && span > 0; k++) {
    const call = `m${k}`;
    const start = span - (k * span) / 48;
    const queue = queues[k % 3];
    const from = `+44 7700 9${String(100000 + k).slice(1)}`;
    out.push(ev({ type: 'call_started', call, at: ago(start), direction: 'inbound', channel: 'voice', from }));
    out.push(ev({ type: 'queued', call, at: ago(start - 4), queue }));
    const wait = 3 + Math.floor(rand() * 70);
    if (rand() < 0.72) {
      out.push(ev({ type: 'answered', call, at: ago(start - 4 - wait), agent: agents[k % agents.length] }));
      out.push(ev({ type: 'ended', call, at: ago(Math.max(1, start - 4 - wait - 90)) }));
    } else {
      out.push(ev({ type: 'ended', call, at: ago(start - 4 - wait) }));
    }
  }
  out.push(...waiting('w1', 'sales', 75), ...waiting('w2', 'support', 40), ...waiting('w3', 'sales', 12));
  out.push(ev({ type: 'call_started', call: 't1', at: ago(200), direction: 'inbound', channel: 'voice', from: CALLER }));
  out.push(ev({ type: 'queued', call: 't1', at: ago(195), queue: 'billing' }));
  out.push(ev({ type: 'answered', call: 't1', at: ago(180), agent: 'Ben Okafor' }));
  return out;
}

async function newPage(width = 1280, height = 720) {
  const page = await browser.newPage({ viewport: { width, height } });
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  return page;
}

// Reads every tile's shown value and state.
const readTiles = (page) => page.$$eval('[data-box]', (tiles) => tiles.map((t) => ({
  box: t.dataset.box, path: t.dataset.path, format: t.dataset.format, state: t.dataset.state,
  value: t.querySelector('[data-value]').textContent.trim(), cue: t.querySelector('[data-cue]').textContent.trim(),
})));

function expected(snapshot, tile) {
  const v = tile.path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), snapshot);
  if (v === undefined || v === null) return '–';
  if (tile.format === 'count') return String(v);
  if (tile.format === 'percent') return `${Math.round(v * 100)}%`;
  return null; // times tick; checked for shape only
}

let site;
let server;

before(async () => {
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_ARGS });
  site = tempSite();
  server = await startServer({ dir: site });
  await post(server.base, morning());
});

after(async () => {
  await browser?.close();
  await Promise.all(servers.map((s) => stopServer({ child: s })));
  if (site) rmSync(site, { recursive: true, force: true });
});

test('a configured board shows what /api/snapshot says, and posted events', async () => {
  const page = await newPage();
  await page.goto(`${server.base}/board/sales`);
  await page.waitForFunction(() => window.wallboard && window.wallboard.board());
  const snapshot = await (await fetch(`${server.base}/api/snapshot`)).json();
  const tiles = await readTiles(page);
  assert.deepEqual(tiles.map((t) => t.box), ['queued', 'longest_waiting', 'answered', 'missed', 'abandoned', 'service_level', 'agents_available']);
  for (const tile of tiles) {
    assert.ok(tile.path.startsWith('groups.sales.'), tile.path);
    const want = expected(snapshot, tile);
    if (want !== null) assert.equal(tile.value, want, tile.box);
    else assert.match(tile.value, /^(–|\d+:\d\d)$/);
  }
  assert.equal(await page.textContent('h1'), 'Sales line');
  const before = Number(tiles.find((t) => t.box === 'queued').value);
  await post(server.base, waiting('p1', 'sales', 1));
  await page.waitForFunction((n) => document.querySelector('[data-box="queued"] [data-value]').textContent === String(n), before + 1);
  await post(server.base, [ev({ type: 'ended', call: 'p1', at: ago(0) })]);
  await page.waitForFunction((n) => document.querySelector('[data-box="queued"] [data-value]').textContent === String(n), before);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('thresholds switch tile states, with words as well as colour', async () => {
  const dir = tempSite();
  const own = await startServer({ dir });
  const page = await newPage();
  await page.goto(`${own.base}/board/sales`);
  const state = () => page.$eval('[data-box="queued"]', (t) => ({ state: t.dataset.state, cue: t.querySelector('[data-cue]').textContent }));
  assert.deepEqual(await state(), { state: 'ok', cue: '' });
  await post(own.base, waiting('a', 'sales', 3));
  await page.waitForSelector('[data-box="queued"][data-state="warn"]');
  assert.match((await state()).cue, /Warning/);
  await post(own.base, waiting('b', 'sales', 2));
  await page.waitForSelector('[data-box="queued"][data-state="alert"]');
  assert.match((await state()).cue, /Alert/);
  // Server-rendered state matches the browser's rule before any script runs.
  const html = await (await fetch(`${own.base}/board/sales`)).text();
  assert.match(html, /data-box="queued"[^>]*data-state="alert"/);
  await post(own.base, [ev({ type: 'ended', call: 'a', at: ago(0) }), ev({ type: 'ended', call: 'b', at: ago(0) })]);
  await page.waitForSelector('[data-box="queued"][data-state="ok"]');
  await page.close();
  await stopServer(own);
  rmSync(dir, { recursive: true, force: true });
});

test('no overflow at 1280×720, 1920×1080 and 3840×2160', async () => {
  for (const path of ['/', '/board/sales', '/board/everything']) {
    for (const [width, height] of SIZES) {
      const page = await newPage(width, height);
      await page.goto(`${server.base}${path}`);
      await page.waitForFunction(() => window.wallboard && window.wallboard.board());
      await page.waitForTimeout(300);
      const m = await page.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth, scrollHeight: document.documentElement.scrollHeight,
        innerWidth, innerHeight,
        overflowing: [...document.querySelectorAll('[data-value], .label, .tile')]
          .filter((el) => el.scrollWidth > el.clientWidth || el.scrollHeight > el.clientHeight)
          .map((el) => `${el.closest('[data-box]')?.dataset.box}:${el.className}`),
        smallest: Math.min(...[...document.querySelectorAll('[data-value]')].map((el) => parseFloat(getComputedStyle(el).fontSize))),
      }));
      const at = `${path} at ${width}×${height}`;
      assert.ok(m.scrollWidth <= m.innerWidth, `${at}: page wider than the screen`);
      assert.ok(m.scrollHeight <= m.innerHeight, `${at}: page taller than the screen`);
      assert.deepEqual(m.overflowing, [], `${at}: overflowing`);
      // Legible from across the room: numbers at least a tenth of the screen height.
      assert.ok(m.smallest >= height / (path === '/board/everything' ? 20 : 10), `${at}: numbers only ${m.smallest}px`);
      await page.close();
    }
  }
});

test('the supervisor page lists live calls, agents and callers to call back', async () => {
  const page = await newPage(1280, 900);
  await page.goto(`${server.base}/supervisor`);
  await page.waitForSelector('#calls tr[data-state="talking"]');
  const calls = await page.$$eval('#calls tbody tr', (rows) => rows.map((r) => r.textContent));
  assert.ok(calls.some((r) => r.includes(CALLER) && r.includes('Ben Okafor')), calls.join('\n'));
  assert.ok(calls.some((r) => r.includes('Waiting') && r.includes('sales')));
  await page.waitForSelector('#callbacks tbody tr[data-call]');
  const missed = await page.$$eval('#callbacks tbody tr[data-call]', (rows) => rows.map((r) => r.textContent));
  assert.ok(missed.every((r) => /\+44 7700/.test(r)), missed.join('\n'));
  assert.ok(await page.$('.agent[data-agent="Amy Clarke"]'));
  assert.ok(await page.$('#chart svg rect.bar'));
  // Ticking: the time in state moves on its own.
  const first = await page.textContent('#calls tbody tr td:nth-child(2)');
  await page.waitForFunction((t) => document.querySelector('#calls tbody tr td:nth-child(2)').textContent !== t, first);
  // The switcher changes what counts as missed.
  await page.click('#switcher [data-definition="acd"]');
  assert.match(await page.textContent('#callbacks-count'), /under acd/);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test("the public board's traffic contains no caller number or agent name", async () => {
  const page = await newPage();
  const received = [];
  page.on('websocket', (ws) => ws.on('framereceived', (f) => received.push(String(f.payload))));
  const html = [];
  page.on('response', async (r) => { try { html.push(await r.text()); } catch (_) { /* no body */ } });
  await page.goto(`${server.base}/`);
  await page.waitForFunction(() => window.wallboard && window.wallboard.board());
  await post(server.base, waiting('priv', 'sales', 2, '+44 7700 900999'));
  await page.waitForTimeout(1500);
  await post(server.base, [ev({ type: 'answered', call: 'priv', at: ago(0), agent: 'Amy Clarke' })]);
  await page.waitForTimeout(1500);
  assert.ok(received.length > 2, 'frames were received');
  const bytes = received.join('\n') + html.join('\n');
  for (const secret of [CALLER, '+44 7700 900999', 'Amy Clarke', 'Ben Okafor']) {
    assert.ok(!bytes.includes(secret), `the public board received ${secret}`);
  }
  await page.close();
});

test('after the server stops the board says so, and recovers when it restarts', async () => {
  const dir = tempSite();
  let own = await startServer({ dir });
  await post(own.base, waiting('r1', 'sales', 30));
  const page = await newPage();
  await page.goto(`${own.base}/`);
  await page.waitForFunction(() => window.wallboard.connected());
  await stopServer(own);
  await page.waitForSelector('#status:not([hidden])', { timeout: 15000 });
  assert.match(await page.textContent('#status'), /Reconnecting… figures as of \d\d:\d\d:\d\d/);
  assert.ok(await page.$('body.stale'));
  own = await startServer({ dir, listen: `127.0.0.1:${own.port}` });
  await post(own.base, waiting('r2', 'sales', 5));
  await page.waitForSelector('#status[hidden]', { state: 'attached', timeout: 20000 });
  await page.waitForFunction(() => document.querySelector('[data-box="queued"] [data-value]').textContent === '2');
  assert.equal(await page.$('body.stale'), null);
  await page.close();
  await stopServer(own);
  rmSync(dir, { recursive: true, force: true });
});

test('screenshots of the TV board and the supervisor page', { timeout: 300_000 }, async () => {
  // The demo feed runs (--demo). Refreshing the README's pictures
  // (WALLBOARD_SCREENSHOTS=1) lets it run for a few minutes so every outcome
  // has occurred; otherwise a made-up morning is posted so the test is quick.
  const dir = tempSite();
  const own = await startServer({ dir, demo: true });
  if (process.env.WALLBOARD_SCREENSHOTS) {
    await new Promise((resolve) => setTimeout(resolve, 180_000));
  } else {
    await post(own.base, morning());
  }
  const out = process.env.WALLBOARD_SCREENSHOTS ? join(ROOT, 'docs') : join(dir, 'shots');
  mkdirSync(out, { recursive: true });
  const page = await newPage(1280, 720);
  await page.goto(`${own.base}/`);
  await page.waitForFunction(() => window.wallboard && window.wallboard.board());
  await page.waitForTimeout(500);
  await page.screenshot({ path: join(out, 'board.png') });
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(`${own.base}/supervisor`);
  await page.waitForSelector('#chart svg');
  await page.waitForTimeout(500);
  await page.screenshot({ path: join(out, 'supervisor.png'), fullPage: true });
  await page.close();
  await stopServer(own);
  rmSync(dir, { recursive: true, force: true });
});
