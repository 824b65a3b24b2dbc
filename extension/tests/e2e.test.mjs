// The extension in Debian's Chromium (playwright-core), in the same
// sessions as mpc-wallet CLI processes, through a real mpc-signal, all on
// loopback (scripts/test-extension.sh runs this in a loopback-only network
// namespace). The spec's "Simulation Run Example": cli1, cli2 and chrome1.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BIN = process.env.MPC_BIN_DIR;
const EXT = process.env.EXTENSION_DIR;
const ARTIFACTS = process.env.ARTIFACTS_DIR || tmpdir();
const PASS = 'e2e passphrase';
const WORK = mkdtempSync(join(tmpdir(), 'mpc-ext-'));

let server;
let url;
let ctx;
let popup;

function startServer() {
  return new Promise((resolve, reject) => {
    // Every test run gives the CLI ids fresh keys only if their dirs are
    // new; the dirs live for the whole run, so bindings never clash.
    const p = spawn(join(BIN, 'mpc-signal'), ['--listen', '127.0.0.1:0'], {
      env: { ...process.env, RUST_LOG: 'warn' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    p.stdout.once('data', (d) => {
      const m = String(d).match(/listening on (\S+)/);
      if (!m) reject(new Error(`unexpected first line: ${d}`));
      else resolve([p, `ws://${m[1]}/ws`]);
    });
    p.once('error', reject);
  });
}

function cliArgs(id, args) {
  return ['--server', url, '--peer-id', id, '--keystore', join(WORK, id), '--json', ...args];
}

const cliEnv = { ...process.env, MPC_WALLET_PASSPHRASE: PASS, MPC_WALLET_SCRYPT_LOG_N: '12', RUST_LOG: 'warn' };

/** Runs `mpc-wallet` in the background; resolves with {code, json, stderr}. */
function cli(id, args, input) {
  const p = spawn(join(BIN, 'mpc-wallet'), cliArgs(id, args), {
    env: cliEnv,
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (input !== undefined) p.stdin.end(input);
  let out = '';
  let err = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { err += d; });
  const done = new Promise((resolve) => {
    p.on('close', (code) => {
      let json = null;
      try { json = JSON.parse(out); } catch { /* not JSON */ }
      resolve({ code, json, out, stderr: err });
    });
  });
  done.child = p;
  return done;
}

function peersOnline() {
  const r = spawnSync(join(BIN, 'mpc-wallet'),
    ['--server', url, '--keystore', join(WORK, 'observer'), '--json', 'peers'], { env: cliEnv });
  try { return JSON.parse(String(r.stdout)).peers; } catch { return []; }
}

async function waitFor(what, f, ms = 30000) {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function waitRegistered(ids) {
  await waitFor(`${ids} to register`, () => ids.every((i) => peersOnline().includes(i)));
}

async function popupText(sel) {
  return (await popup.locator(sel).textContent()) ?? '';
}

before(async () => {
  [server, url] = await startServer();
  const profile = mkdtempSync(join(tmpdir(), 'mpc-ext-profile-'));
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--disable-gpu', '--disable-quic', '--disable-sync', '--no-first-run',
      '--disable-background-networking', '--disable-component-update',
      '--allow-loopback-in-peer-connection',
      '--disable-features=WebRtcHideLocalIpsWithMdns',
      `--disable-extensions-except=${EXT}`, `--load-extension=${EXT}`,
    ],
  });
  const worker = ctx.serviceWorkers()[0] ?? await ctx.waitForEvent('serviceworker');
  const extId = new URL(worker.url()).host;
  popup = await ctx.newPage();
  popup.on('console', (m) => { if (m.type() === 'error') console.error('popup:', m.text()); });
  await popup.goto(`chrome-extension://${extId}/popup.html`);
  await popup.fill('#server', url);
  await popup.fill('#peer-id', 'chrome1');
  await popup.fill('#log-n', '12');
  await popup.click('#save-settings');
  await waitFor('chrome1 to register', async () => (await popupText('#status')) === 'registered');
});

after(async () => {
  await popup?.screenshot({ path: join(ARTIFACTS, 'popup-final.png'), fullPage: true }).catch(() => {});
  await ctx?.close();
  server?.kill();
});

test('cli1 proposes, chrome1 accepts in the popup: one 2-of-3 key everywhere', async () => {
  const cli2 = cli('cli2', ['join', '--yes']);
  await waitRegistered(['cli2', 'chrome1']);
  const cli1 = cli('cli1', ['create', '--participants', 'cli1,cli2,chrome1', '--threshold', '2']);
  await popup.waitForSelector('#proposal:not([hidden])', { timeout: 30000 });
  assert.match(await popupText('#proposal-text'), /from cli1: 2-of-3 secp256k1/);
  await popup.fill('#passphrase-accept', PASS);
  await popup.click('#accept');
  const [r1, r2] = await Promise.all([cli1, cli2]);
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal(r2.code, 0, r2.stderr);
  const key = r1.json.group_public_key;
  assert.equal(r2.json.group_public_key, key);
  await popup.waitForSelector('#result:not([hidden])', { timeout: 30000 });
  assert.equal(await popupText('#group-key'), key);
  assert.equal(await popupText('#address'), r1.json.addresses.bitcoin_taproot);
  await popup.screenshot({ path: join(ARTIFACTS, 'popup-cli1-initiator.png'), fullPage: true });
});

test('chrome1 proposes from the popup wizard: one 2-of-3 key everywhere', async () => {
  const joiners = ['cli1', 'cli2'].map((id) => cli(id, ['join', '--yes']));
  await waitRegistered(['cli1', 'cli2']);
  await waitFor('the peer list', async () => (await popup.locator('#peers input').count()) >= 3);
  for (const id of ['cli1', 'cli2', 'chrome1']) {
    await popup.check(`#peers input[value="${id}"]`);
  }
  await popup.fill('#threshold', '2');
  await popup.selectOption('#curve', 'secp256k1');
  await popup.fill('#passphrase-create', PASS);
  const before = await popupText('#group-key');
  await popup.click('#create');
  const results = await Promise.all(joiners);
  for (const r of results) assert.equal(r.code, 0, r.stderr);
  const key = results[0].json.group_public_key;
  assert.equal(results[1].json.group_public_key, key);
  await waitFor('the popup to show the new key', async () => {
    const k = await popupText('#group-key');
    return k && k !== before ? k : null;
  });
  assert.equal(await popupText('#group-key'), key);
  await popup.screenshot({ path: join(ARTIFACTS, 'popup-chrome1-initiator.png'), fullPage: true });
});
