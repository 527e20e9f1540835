// Browser tests of the agents' day on the supervisor page, in real headless
// Chromium driven by playwright-core against the server binary: the table
// shows what GET /api/supervisor says (a pause reason too), sorts by a
// clicked column and reverses on a second click, and its times tick. With
// WALLBOARD_SCREENSHOTS=1 it saves the README's picture (docs/agents-day.png).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.WALLBOARD_BIN
  || join(process.env.CARGO_TARGET_DIR || join(ROOT, 'target'), 'debug', 'wallboard');
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--no-first-run', '--disable-sync', '--disable-component-update'];

// A fixed-offset zone where it is about noon now, so today's start is hours
// behind whenever the test runs (Etc/GMT+N is N hours behind UTC).
const NOON_OFFSET = new Date().getUTCHours() - 12;
const NOON_ZONE = NOON_OFFSET >= 0 ? `Etc/GMT+${NOON_OFFSET}` : `Etc/GMT-${-NOON_OFFSET}`;

let browser;
let server;
let dir;

// Starts the server binary on a free port; resolves once it prints its address.
function startServer() {
  dir = mkdtempSync(join(tmpdir(), 'wallboard-agents-'));
  writeFileSync(join(dir, 'wallboard.toml'), `[site]\ntimezone = "${NOON_ZONE}"\n`);
  const args = ['serve', '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data'), '--config', join(dir, 'wallboard.toml')];
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

async function post(events) {
  const body = events.map((e) => JSON.stringify(e)).join('\n');
  const res = await fetch(`${server.base}/api/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
  assert.equal(res.status, 200, await res.text());
}

// Seconds before now (today in NOON_ZONE, which began at least 11 hours ago).
const ago = (secs) => new Date(Date.now() - secs * 1000).toISOString();
let ids = 0;
const ev = (e) => ({ id: `a${++ids}`, ...e });
const status = (agent, secs, s, extra = {}) => ev({ type: 'agent_status', agent, at: ago(secs), status: s, ...extra });

// A call answered by `agent` `secs` ago, talking `talk` seconds (still on it if null).
function answered(call, agent, secs, talk, before = []) {
  const out = [
    ev({ type: 'queued', call, at: ago(secs + 20), queue: 'sales' }),
    ...before.map(([who, kind, at]) => ev({ type: kind, call, at: ago(at), agent: who })),
    ev({ type: 'offered', call, at: ago(secs + 5), agent }),
    ev({ type: 'answered', call, at: ago(secs), agent }),
  ];
  if (talk !== null) out.push(ev({ type: 'ended', call, at: ago(secs - talk) }));
  return out;
}

// Amy answered one call and is at lunch; Ben let one ring out and is on a
// call; Cat took a long call and sent no status at all.
function day() {
  return [
    status('Amy Clarke', 3000, 'available'),
    ...answered('x1', 'Amy Clarke', 2000, 200),
    status('Amy Clarke', 200, 'away', { reason: 'Lunch' }),
    status('Ben Okafor', 2500, 'available'),
    ...answered('y1', 'Cat Singh', 1480, 480, [['Ben Okafor', 'offered', 1500], ['Ben Okafor', 'declined', 1490]]),
    ...answered('y2', 'Ben Okafor', 125, null),
    status('Ben Okafor', 125, 'busy'),
  ];
}

// A fuller day for the README's picture.
function fullerDay() {
  const people = [['Dev Patel', 'available'], ['Ella Novak', 'wrap_up'], ['Finn Murphy', 'away', 'Training'], ['Gita Rao', 'busy'], ['Hugo Laine', 'offline']];
  const out = [];
  people.forEach(([agent, s, reason], i) => {
    out.push(status(agent, 7200 - i * 300, 'available'));
    for (let k = 0; k < 3 + i; k++) out.push(...answered(`f${i}-${k}`, agent, 6000 - k * 900 - i * 60, 120 + 45 * ((i + k) % 5)));
    if (i % 2) out.push(ev({ type: 'offered', call: `f${i}-miss`, at: ago(2500 + i * 10), agent }), ev({ type: 'declined', call: `f${i}-miss`, at: ago(2480 + i * 10), agent }));
    if (s === 'busy') out.push(...answered(`f${i}-now`, agent, 95, null));
    out.push(status(agent, 400 - i * 50, s, reason ? { reason } : {}));
  });
  return out;
}

async function newPage() {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  await page.goto(`${server.base}/supervisor`);
  await page.waitForSelector('#agents-day tbody tr[data-agent="Cat Singh"]');
  return page;
}

const names = (page) => page.$$eval('#agents-day tbody tr[data-agent]', (rows) => rows.map((r) => r.dataset.agent));
const cells = (page, agent) => page.$eval(`#agents-day tr[data-agent="${agent}"]`, (r) => Array.from(r.children, (c) => c.textContent.trim()));

before(async () => {
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_ARGS });
  server = await startServer();
  await post(day());
});

after(async () => {
  await browser?.close();
  if (server && server.child.exitCode === null) {
    await new Promise((ok) => { server.child.once('exit', ok); server.child.kill('SIGTERM'); });
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("the agents' table shows each agent's day, a pause reason too", async () => {
  const page = await newPage();
  const api = await (await fetch(`${server.base}/api/supervisor`)).json();
  const byName = Object.fromEntries(api.agents_day.agents.map((a) => [a.name, a]));
  assert.deepEqual(await names(page), ['Amy Clarke', 'Ben Okafor', 'Cat Singh']);
  for (const name of Object.keys(byName)) {
    const [, , , , offered, answered, declined] = await cells(page, name);
    const a = byName[name];
    assert.deepEqual([offered, answered, declined], [a.offered, a.answered, a.declined].map(String), name);
  }
  const amy = await cells(page, 'Amy Clarke');
  assert.equal(amy[1], 'Away · Lunch');
  assert.equal(amy[7], '3:20', 'talk time, answer to end');
  assert.equal(amy[8], '3:20', 'average handle time');
  const ben = await cells(page, 'Ben Okafor');
  assert.deepEqual(ben.slice(4, 7), ['2', '1', '1'], 'rung twice, one declined, one answered');
  assert.match(ben[3], /^Talking · y2 \d+:\d\d$/);
  const cat = await cells(page, 'Cat Singh');
  assert.equal(cat[1], '–', 'no status reported');
  assert.equal(cat[7], '8:00');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a click on a column sorts by it, a second reverses it', async () => {
  const page = await newPage();
  const header = (key) => `#agents-day th[data-sort="${key}"]`;
  await page.click(`${header('talk')} button`);
  assert.deepEqual(await names(page), ['Ben Okafor', 'Amy Clarke', 'Cat Singh'], 'least talk first');
  assert.equal(await page.getAttribute(header('talk'), 'aria-sort'), 'ascending');
  await page.click(`${header('talk')} button`);
  assert.deepEqual(await names(page), ['Cat Singh', 'Amy Clarke', 'Ben Okafor']);
  assert.equal(await page.getAttribute(header('talk'), 'aria-sort'), 'descending');
  assert.equal(await page.getAttribute(header('name'), 'aria-sort'), 'none');
  await page.click(`${header('declined')} button`);
  await page.click(`${header('declined')} button`);
  assert.equal((await names(page))[0], 'Ben Okafor', 'most declined first');
  // A new event keeps the chosen order.
  await post([ev({ type: 'declined', call: 'z1', at: ago(30), agent: 'Cat Singh' })]);
  await page.waitForFunction(() => document.querySelector('#agents-day tr[data-agent="Cat Singh"]').children[6].textContent === '1');
  assert.equal(await page.getAttribute(header('declined'), 'aria-sort'), 'descending');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('the status, the call and the current status total tick each second', async () => {
  const page = await newPage();
  const read = () => page.$eval('#agents-day tr[data-agent="Ben Okafor"]', (r) => ({
    for: r.children[2].textContent,
    call: r.querySelector('.call-time').textContent,
    busy: r.children[10].textContent,
  }));
  const first = await read();
  assert.match(first.for, /^\d+:\d\d$/, 'busy for a couple of minutes');
  await page.waitForFunction((t) => document.querySelector('#agents-day tr[data-agent="Ben Okafor"] .call-time').textContent !== t, first.call);
  const later = await read();
  assert.notEqual(later.for, first.for);
  assert.notEqual(later.busy, first.busy, 'time in the status being timed grows');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test("screenshot of the agents' day", async () => {
  await post(fullerDay());
  const page = await newPage();
  await page.waitForSelector('#agents-day tbody tr[data-agent="Hugo Laine"]');
  await page.click('#agents-day th[data-sort="answered"] button');
  await page.click('#agents-day th[data-sort="answered"] button');
  await page.waitForTimeout(300);
  const path = process.env.WALLBOARD_SCREENSHOTS ? join(ROOT, 'docs', 'agents-day.png') : join(dir, 'agents-day.png');
  await page.locator('#agents-day-panel').screenshot({ path });
  assert.deepEqual(page.errors, []);
  await page.close();
});
