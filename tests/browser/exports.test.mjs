// Browser test of the supervisor page's exports, in real headless Chromium
// against the real server binary with a store: the recorded journeys are
// posted, "Today's calls (CSV)" is clicked, and the downloaded file parses
// as RFC 4180 CSV whose outcome column matches `wallboard classify --calls`
// of the same events; the day picker offers the days kept and downloads too.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.WALLBOARD_BIN
  || join(process.env.CARGO_TARGET_DIR || join(ROOT, 'target'), 'debug', 'wallboard');
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--no-first-run', '--disable-sync', '--disable-component-update'];
const JOURNEYS = join(ROOT, 'tests', 'data', 'journeys.ndjson');
const DAY = '2026-11-20';

let browser;
let server;
let dir;

function startServer() {
  const args = ['serve', '--listen', '127.0.0.1:0', '--clock', 'feed', '--data-dir', join(dir, 'data')];
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

// RFC 4180: fields split on commas, quoted fields may hold commas, CRLF and
// doubled quotes. Written here, apart from the server's writer.
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i += 1; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(field); field = ''; }
    else if (c === '\r' && text[i + 1] === '\n') { row.push(field); rows.push(row); row = []; field = ''; i += 1; }
    else field += c;
  }
  if (field !== '' || row.length) { row.push(field); rows.push(row); }
  return rows;
}

// The downloaded file as { header, rows: [{column: value}] }.
async function readDownload(download) {
  const bytes = readFileSync(await download.path());
  const text = bytes.toString('utf8');
  assert.equal(text.charCodeAt(0), 0xfeff, 'a UTF-8 BOM for spreadsheets');
  const [header, ...rows] = parseCsv(text.slice(1));
  return { header, rows: rows.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]]))) };
}

function classifyCalls() {
  const out = spawnSync(BIN, ['classify', '--calls', JOURNEYS], { encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  return new Map(out.stdout.trim().split('\n').map((l) => JSON.parse(l)).map((c) => [c.call, c]));
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wallboard-exports-'));
  server = await startServer();
  const posted = await fetch(`${server.base}/api/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body: readFileSync(JOURNEYS, 'utf8'),
  });
  assert.equal(posted.status, 200, await posted.text());
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  server?.child.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("the link downloads today's calls as CSV, outcomes as classify gives them", async () => {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  await page.goto(`${server.base}/supervisor`);
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.click('#export-today'),
  ]);
  assert.equal(download.suggestedFilename(), `calls-${DAY}.csv`);
  const { header, rows } = await readDownload(download);
  for (const column of ['call', 'started_at', 'finished_at_utc', 'caller', 'outcome', 'wait_secs', 'box_reachable']) {
    assert.ok(header.includes(column), `${column} in ${header}`);
  }
  const expected = classifyCalls();
  assert.equal(rows.length, expected.size, 'one row per finished call');
  for (const row of rows) {
    const line = expected.get(row.call);
    assert.ok(line, `${row.call} is a finished call`);
    assert.equal(row.outcome, line.outcome, row.call);
    for (const [definition, box] of Object.entries(line.boxes)) {
      assert.equal(row[`box_${definition}`], box, `${row.call} in ${definition}`);
    }
  }
  await context.close();
});

test('the day picker offers the kept days and downloads the chosen one', async () => {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  await page.goto(`${server.base}/supervisor`);
  const day = page.locator('#export-day');
  await page.waitForFunction(() => document.getElementById('export-day').max !== '');
  assert.equal(await day.getAttribute('max'), DAY);
  assert.equal(await day.inputValue(), DAY, 'today chosen');
  assert.equal(await day.getAttribute('min'), '2026-08-22', '90 days kept before today');
  await page.selectOption('#export-format', 'json');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.click('#export-form button[type=submit]'),
  ]);
  assert.equal(download.suggestedFilename(), `calls-${DAY}.json`);
  const doc = JSON.parse(readFileSync(await download.path(), 'utf8'));
  assert.equal(doc.day, DAY);
  assert.equal(doc.calls.length, classifyCalls().size);
  await context.close();
});
