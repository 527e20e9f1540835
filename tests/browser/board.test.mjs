// The wallboard page in real headless Chromium against the real server binary:
// it shows the snapshot's figures, follows new events live, says so when the
// server goes away, and recovers by itself when it comes back on the same port.
//
// Needs the debug binary (`cargo build`) and /usr/bin/chromium. Run with
// `node --test tests/browser/`. WALLBOARD_BIN or CARGO_TARGET_DIR locate the binary.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const targetDir = path.resolve(root, process.env.CARGO_TARGET_DIR ?? 'target');
const binary = process.env.WALLBOARD_BIN ?? path.join(targetDir, 'debug', 'wallboard');
const screenshots = path.join(root, 'target', 'screenshots');
const journeys = readFileSync(path.join(root, 'tests', 'data', 'journeys.ndjson'), 'utf8');
const finishedCalls = new Set(
  journeys.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l))
    .filter((e) => e.type === 'ended').map((e) => e.call),
).size;

const WAIT_MS = 10_000;

/** A fresh store for one test (kept across its restarts). */
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'wallboard-browser-'));

/** Starts `wallboard serve` on `listen`; resolves once it prints its address. */
async function startServer(listen) {
  const child = spawn(binary, ['serve', '--listen', listen, '--clock', 'feed', '--data-dir', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const addr = await new Promise((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => reject(new Error(`no address printed; stderr:\n${stderr}`)), WAIT_MS);
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      const found = stdout.match(/the board is at http:\/\/([^/\s]+)\//);
      if (found) { clearTimeout(timer); resolve(found[1]); }
    });
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`exited ${code}:\n${stderr}`)); });
  });
  return { child, addr, base: `http://${addr}`, stderr: () => stderr };
}

/** Stops the server with SIGTERM (SIGKILL if it lingers); resolves to its exit. */
async function stopServer(server) {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  const exited = once(server.child, 'exit');
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 5_000);
  const [code, signal] = await exited;
  clearTimeout(timer);
  return { code, signal };
}

async function postEvents(server, ndjson) {
  const response = await fetch(`${server.base}/api/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body: ndjson,
  });
  const reply = await response.json();
  assert.equal(response.status, 200, JSON.stringify(reply));
  return reply;
}

async function snapshot(server) {
  const response = await fetch(`${server.base}/api/snapshot`);
  assert.equal(response.status, 200);
  return response.json();
}

/** Polls the snapshot until `done(snapshot)`; the board publishes within ~20 ms. */
async function snapshotWhen(server, done) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const board = await snapshot(server);
    if (done(board)) return board;
    if (Date.now() > deadline) throw new Error(`snapshot never settled: ${JSON.stringify(board)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sum = (counts) => Object.values(counts ?? {}).reduce((a, b) => a + b, 0);
const lookup = (obj, p) => p.split('.').reduce((v, k) => (v == null ? undefined : v[k]), obj);

function clock(secs) {
  const total = Math.max(0, Math.round(secs));
  const h = Math.floor(total / 3600), m = Math.floor(total / 60) % 60, s = total % 60;
  const ss = String(s).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** A figure as its tile must show it (`since` is checked apart: it ticks). */
function shown(format, value) {
  if (value === undefined || value === null) return '–';
  switch (format) {
    case 'count': return String(value);
    case 'percent': return `${Math.round(value * 100)}%`;
    case 'secs': return clock(value);
    default: throw new Error(`format ${format}`);
  }
}

/** [{box, path, format, text}] of every tile on the page. */
async function tiles(page) {
  return page.$$eval('[data-box]', (sections) => sections.map((s) => ({
    box: s.dataset.box,
    path: s.dataset.path,
    format: s.dataset.format,
    text: s.querySelector('[data-value]')?.textContent.trim(),
  })));
}

async function assertTilesShow(page, board) {
  const all = await tiles(page);
  assert.ok(all.length >= 8, `tiles: ${JSON.stringify(all)}`);
  for (const tile of all) {
    const value = lookup(board, tile.path);
    if (tile.format === 'since') {
      // Ticks from the board's now on the page's own clock: at least the
      // board's figure, and not more than a few seconds past it.
      if (value == null) { assert.equal(tile.text, '–', tile.box); continue; }
      const [m, s] = tile.text.split(':').map(Number);
      const least = Math.round((Date.parse(board.now) - Date.parse(value)) / 1000);
      const secs = m * 60 + s;
      assert.ok(secs >= least && secs <= least + 15, `${tile.box}: ${tile.text} vs ${least}s`);
      continue;
    }
    assert.equal(tile.text, shown(tile.format, value), `tile ${tile.box} (${tile.path})`);
  }
}

let browser;
const servers = [];
after(async () => {
  await browser?.close();
  for (const server of servers) await stopServer(server);
});

test('the board shows live figures, survives a server restart and recovers', { timeout: 120_000 }, async () => {
  let server = await startServer('127.0.0.1:0');
  servers.push(server);
  await postEvents(server, journeys);
  const waiting = '{"id":"b1","call":"waiting-1","at":"2026-11-20T11:40:00Z","type":"queued","queue":"results"}';
  await postEvents(server, waiting);
  let board = await snapshotWhen(server, (b) => sum(b.outcomes) === finishedCalls && b.live.queued === 1);

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run',
      '--disable-sync', '--disable-component-update'],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));

  // Rendered by the server, then taken over by the script at the same seq.
  await page.goto(`${server.base}/`);
  await page.waitForFunction((seq) => window.wallboard?.seq() === seq, board.seq, { timeout: WAIT_MS });
  assert.equal(await page.isHidden('#status'), true, 'no status while connected');
  await assertTilesShow(page, board);
  const queuedTile = '[data-box="queued"] [data-value]';
  assert.equal(await page.textContent(queuedTile), '1');

  // A new event shows up by itself.
  await postEvents(server, '{"id":"b2","call":"waiting-2","at":"2026-11-20T11:41:50Z","type":"queued","queue":"results"}');
  await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === '2', queuedTile, { timeout: WAIT_MS });
  board = await snapshotWhen(server, (b) => b.live.queued === 2);
  await page.waitForFunction((seq) => window.wallboard.seq() === seq, board.seq, { timeout: WAIT_MS });
  assert.deepEqual(await page.evaluate(() => window.wallboard.board()), board, 'page board == snapshot');
  await assertTilesShow(page, board);

  // The server goes away: the page says so.
  const port = server.addr.split(':').pop();
  const exit = await stopServer(server);
  assert.deepEqual(exit, { code: 0, signal: null }, `SIGTERM stops the server cleanly:\n${server.stderr()}`);
  const lostAt = Date.now();
  await page.waitForFunction(() => {
    const status = document.getElementById('status');
    return status && !status.hidden && status.textContent.startsWith('Reconnecting');
  }, null, { timeout: WAIT_MS });
  console.log(`status shown ${Date.now() - lostAt} ms after the server stopped`);
  assert.equal(await page.textContent(queuedTile), '2', 'the last figures stay up');
  mkdirSync(screenshots, { recursive: true });
  await page.screenshot({ path: path.join(screenshots, 'board-disconnected.png') });

  // It comes back on the same port, its store rebuilding the board: the page recovers alone.
  server = await startServer(`127.0.0.1:${port}`);
  servers.push(server);
  board = await snapshot(server);
  assert.equal(sum(board.outcomes), finishedCalls, 'the store brings the figures back');
  assert.equal(board.live.queued, 2, 'and the calls still waiting');
  const again = await postEvents(server, journeys);
  assert.equal(again.accepted, 0, 'what was stored is not taken twice');
  board = await snapshotWhen(server, (b) => sum(b.outcomes) === finishedCalls);
  await page.waitForFunction((seq) => window.wallboard.connected() && window.wallboard.seq() === seq,
    board.seq, { timeout: 30_000 });
  await page.waitForFunction(() => document.getElementById('status').hidden, null, { timeout: WAIT_MS });
  console.log(`recovered ${Date.now() - lostAt} ms after the server stopped`);
  assert.equal(await page.textContent(queuedTile), '2', 'the waiting calls survived the restart');
  assert.deepEqual(await page.evaluate(() => window.wallboard.board()), board, 'page board == new snapshot');
  await assertTilesShow(page, board);

  await page.screenshot({ path: path.join(screenshots, 'board.png') });
  assert.deepEqual(pageErrors, [], 'no script errors');
});
