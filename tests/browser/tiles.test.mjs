// The page's tile rules (static/tiles.js, with live.js's clock and time of
// day) in real headless Chromium against tests/data/tile-cases.json, the same
// table `cargo test` holds board.rs and pages.rs to: the two cannot drift.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CASES = JSON.parse(readFileSync(join(ROOT, 'tests', 'data', 'tile-cases.json'), 'utf8'));

let browser;
after(async () => { await browser?.close(); });

/** A blank page with the scripts the board loads before board.js. */
async function pageWithTileScripts() {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run',
      '--disable-sync', '--disable-component-update'],
  });
  const page = await browser.newPage();
  for (const file of ['live.js', 'tiles.js']) await page.addScriptTag({ path: join(ROOT, 'static', file) });
  return page;
}

test('tiles.js formats, thresholds, grid and clock match the shared cases', { timeout: 60_000 }, async () => {
  const page = await pageWithTileScripts();
  const results = await page.evaluate((cases) => {
    const { number, show, state, columns } = window.WallboardTiles;
    const { pageClock } = window.WallboardLive;
    return {
      formats: cases.formats.map((c) => show(c.format, number(c.format, c.value, Date.parse(c.now)))),
      thresholds: cases.thresholds.map((c) => state(c, c.value === undefined ? null : c.value)),
      grid: cases.grid.cases.map((c) => columns(c.tiles, c.width, c.height, cases.grid.aspect)),
      timeOfDay: cases.time_of_day.map((c) => pageClock(c.timezone).timeOfDay(Date.parse(c.at))),
    };
  }, CASES);
  const check = (section, got, want) => got.forEach((g, i) => {
    assert.equal(g, want(section[i]), `${JSON.stringify(section[i])}`);
  });
  check(CASES.formats, results.formats, (c) => c.shown);
  check(CASES.thresholds, results.thresholds, (c) => c.state);
  check(CASES.grid.cases, results.grid, (c) => c.columns);
  check(CASES.time_of_day, results.timeOfDay, (c) => c.shown);
});
