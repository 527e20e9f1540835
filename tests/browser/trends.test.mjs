// Browser test of the supervisor's trends, in real headless Chromium against
// the real server binary with a store and the feed clock: five weeks of
// generated calls posted (trends-data.mjs), then each figure's chart has a
// mark per day, the toggle switches between 7 and 28 days, the charts follow
// the definition chosen, and today's comparison with a usual Friday is said.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { batches, post } from './trends-data.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.WALLBOARD_BIN
  || join(process.env.CARGO_TARGET_DIR || join(ROOT, 'target'), 'debug', 'wallboard');
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--no-first-run', '--disable-sync', '--disable-component-update'];
const FIGURES = ['offered', 'answered', 'abandon_rate', 'service_level', 'asa_secs'];

let browser;
let server;
let dataDir;

function startServer(dir) {
  const args = ['serve', '--listen', '127.0.0.1:0', '--clock', 'feed', '--data-dir', dir];
  const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr.resume();
  return new Promise((ok, fail) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/board is at (http:\/\/[^/\s]+)\//);
      if (m) ok({ child, base: m[1] });
    });
    child.on('exit', (code) => fail(new Error(`server exited with ${code}: ${out}`)));
  });
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'wallboard-trends-'));
  server = await startServer(dataDir);
  await post(server.base, batches('2026-11-20', { until: '11:00' }));
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  if (server && server.child.exitCode === null) {
    await new Promise((ok) => { server.child.once('exit', ok); server.child.kill('SIGTERM'); });
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function trends(days) {
  const response = await fetch(`${server.base}/api/trends?days=${days}`);
  assert.equal(response.status, 200);
  return response.json();
}

// Each chart's marks: [figure, [data-day...], bars, points, empty days].
async function marks(page) {
  return page.$$eval('#trends figure.trend', (figures) => figures.map((f) => [
    f.dataset.figure,
    Array.from(f.querySelectorAll('.day')).map((m) => m.getAttribute('data-day')),
    f.querySelectorAll('.day.bar').length,
    f.querySelectorAll('.day.point').length,
    f.querySelectorAll('.day.none').length,
  ]));
}

async function waitForDays(page, n) {
  await page.waitForFunction((n) => {
    const charts = document.querySelectorAll('#trends figure.trend');
    return charts.length === 5 && Array.from(charts).every((c) => c.querySelectorAll('.day').length === n);
  }, n, { timeout: 15000 });
}

test('the trends chart a mark per day, switch 7/28 and say how today compares', async () => {
  const week = await trends(7);
  const month = await trends(28);
  const days = (t) => t.days.map((d) => d.day);
  // Sunday 15 November is closed: no calls, so no bar and no point.
  const open = (t) => t.days.filter((d) => d.calls > 0).length;
  assert.equal(week.days.length, 7);
  assert.equal(open(week), 6);
  assert.match(week.comparison.sentence, /^\d+ % busier than a usual Friday by 11:00$/);

  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${server.base}/supervisor`);
  await waitForDays(page, 7);
  let charts = await marks(page);
  assert.deepEqual(charts.map(([f]) => f), FIGURES);
  for (const [figure, shownDays, bars, points, none] of charts) {
    assert.deepEqual(shownDays, days(week), `${figure}: one mark per day, oldest first`);
    assert.equal(none, 1, `${figure}: the closed Sunday has no value`);
    assert.equal(figure === 'offered' || figure === 'answered' ? bars : points, 6, figure);
  }
  // A bar's height follows the day's offered calls: the tallest is the busiest day.
  const heights = await page.$$eval('#trends figure[data-figure="offered"] .day.bar', (bars) => bars.map((b) => Number(b.getAttribute('height'))));
  const offered = week.days.filter((d) => d.calls > 0).map((d) => d.definitions.reachable.offered);
  assert.equal(heights.indexOf(Math.max(...heights)), offered.indexOf(Math.max(...offered)));

  const sentence = page.locator('#trends-comparison');
  assert.ok(await sentence.isVisible());
  assert.equal(await sentence.textContent(), week.comparison.sentence);
  assert.equal(await page.locator('#trends-toggle [data-days="7"]').getAttribute('aria-pressed'), 'true');

  await page.click('#trends-toggle [data-days="28"]');
  await waitForDays(page, 28);
  assert.equal(await page.locator('#trends-toggle [data-days="28"]').getAttribute('aria-pressed'), 'true');
  assert.equal(await page.locator('#trends-toggle [data-days="7"]').getAttribute('aria-pressed'), 'false');
  charts = await marks(page);
  for (const [figure, shownDays, , , none] of charts) {
    assert.deepEqual(shownDays, days(month), figure);
    assert.equal(none, 4, `${figure}: four closed Sundays`);
  }
  assert.match(await page.locator('#trends-range').textContent(), /last 28 days, under reachable/);

  // The charts follow the definition switcher: acd counts queue abandons as abandoned.
  await page.click('#switcher [data-definition="acd"]');
  await page.waitForFunction(() => /under acd/.test(document.getElementById('trends-range').textContent));
  const label = await page.locator('#trends figure[data-figure="abandon_rate"] svg').getAttribute('aria-label');
  assert.match(label, /under acd/);

  await page.click('#trends-toggle [data-days="7"]');
  await waitForDays(page, 7);
  assert.deepEqual(errors, []);
  await page.close();
});
