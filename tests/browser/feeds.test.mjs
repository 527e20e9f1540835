// Browser test of the "feed down" line and the supervisor's sources, in real
// headless Chromium against the real server binary: an `ami` source whose
// manager (a tiny one here, speaking just enough AMI over TCP) first hangs up
// at once, so the source fails; the board and the supervisor say so; then the
// manager answers, and the line clears live, without a reload.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
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

// The manager: while `up` is false it closes every connection at once;
// when up, it answers the banner, Login and QueueStatus, then holds the line.
let up = false;
const sockets = new Set();
const manager = createServer((socket) => {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => {});
  if (!up) { socket.destroy(); return; }
  socket.write('Asterisk Call Manager/5.0.0\r\n');
  let buffered = '';
  socket.on('data', (chunk) => {
    buffered += chunk;
    let end;
    while ((end = buffered.indexOf('\r\n\r\n')) >= 0) {
      const action = buffered.slice(0, end).toLowerCase();
      buffered = buffered.slice(end + 4);
      if (action.includes('action: login')) socket.write('Response: Success\r\n\r\n');
      else if (action.includes('action: queuestatus')) socket.write('Response: Success\r\n\r\nEvent: QueueStatusComplete\r\n\r\n');
    }
  });
});

let browser;
let server;
let site;

function startServer(dir) {
  const args = ['serve', '--listen', '127.0.0.1:0', '--config', join(dir, 'wallboard.toml')];
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
  await new Promise((ok) => manager.listen(0, '127.0.0.1', ok));
  site = mkdtempSync(join(tmpdir(), 'wallboard-feeds-'));
  writeFileSync(join(site, 'wallboard.toml'), `
[[source]]
kind = "ami"
name = "pbx-east"
host = "127.0.0.1"
port = ${manager.address().port}
username = "wallboard"
secret = "s3cret"

[[board]]
name = "sales"
title = "Sales line"
queues = ["sales"]
`);
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_ARGS });
  server = await startServer(site);
});

after(async () => {
  await browser?.close();
  if (server && server.child.exitCode === null) {
    await new Promise((ok) => { server.child.once('exit', ok); server.child.kill('SIGTERM'); });
  }
  for (const s of sockets) s.destroy();
  await new Promise((ok) => manager.close(ok));
  if (site) rmSync(site, { recursive: true, force: true });
});

async function sources() {
  return (await (await fetch(`${server.base}/api/sources`)).json()).sources;
}

test('the board says the feed is down, the supervisor lists it, and the line clears live', async () => {
  // The source fails at once: wait until the server says so.
  for (let i = 0; i < 200 && (await sources())[0].state !== 'failed'; i++) await new Promise((r) => setTimeout(r, 25));
  const [pbx] = await sources();
  assert.equal(pbx.state, 'failed');

  const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${server.base}/board/sales`);
  // Rendered on the server first, in site time, HH:MM.
  const line = page.locator('#feed-down');
  await line.waitFor({ state: 'visible' });
  assert.match(await line.textContent(), /^Feed down since \d\d:\d\d · pbx-east$/);
  // Discreet: in the header bar, small beside the board's figures.
  const box = await line.boundingBox();
  const tiles = await page.locator('#tiles').boundingBox();
  assert.ok(box.y + box.height <= tiles.y, 'the line sits above the tiles, not over them');
  assert.ok(box.height < 60 && box.height > 16, `readable but small: ${box.height}px`);

  const supervisor = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  supervisor.on('pageerror', (e) => errors.push(e.message));
  await supervisor.goto(`${server.base}/supervisor`);
  const row = supervisor.locator('#sources tr[data-source="pbx-east"]');
  await row.waitFor();
  assert.equal(await row.getAttribute('class'), 'down');
  const cells = await row.locator('th, td').allTextContents();
  assert.equal(cells[0], 'pbx-east');
  assert.equal(cells[1], 'ami');
  assert.match(cells[2], /Down · Failed/);
  assert.ok(cells[7].length > 0, 'the last error is shown');

  // The manager answers: the line clears, and the supervisor's row with it.
  up = true;
  await page.waitForFunction(() => document.getElementById('feed-down').hidden, null, { timeout: 15000 });
  await supervisor.waitForSelector('#sources tr[data-source="pbx-east"][data-state="connected"]:not(.down)', { timeout: 15000 });
  assert.equal((await sources())[0].state, 'connected');
  assert.deepEqual(errors, []);
  await page.close();
  await supervisor.close();
});
