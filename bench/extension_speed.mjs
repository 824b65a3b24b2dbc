// The extension's speed (issue 20): wallet creation with chrome1 (the wasm
// core in Chromium) as one participant and CLI nodes as the rest, next to
// the same wallet made by CLI nodes alone; then 2-of-3 signing, chrome1
// co-signing with cli1, next to cli2 doing it.
//
// Wallet creation is timed by a CLI joiner (`join --yes --json`,
// `elapsed_ms`): from the proposal's arrival until every participant
// reported `wallet_created`, so no decision time is in it. In the mixed
// runs chrome1 proposes from the popup; in the CLI runs cli1 does.
//
// Signing is timed from cli1's progress log: from its `mesh ready` (the
// channel to its co-signer open, the co-signer's decision made) to its
// "signature aggregated and verified", so the rounds alone.
//
// Run (see BENCHMARKS.md), from the repository root, after
// `cargo build --release -p mpc-signal -p mpc-node` and
// `scripts/build-extension.sh`:
//   unshare -n sh -c 'ip link set lo up && exec node bench/extension_speed.mjs'
// with NODE_PATH=extension/tests/node_modules.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(join(process.cwd(), 'extension/tests/package.json'));
const { chromium } = require('playwright-core');

const BIN = process.env.MPC_BIN_DIR || 'target/release';
const EXT = process.env.EXTENSION_DIR || 'build/extension';
const REPS = Number(process.env.REPS || 5);
// CURVE=secp256k1-ecdsa times Ethereum (DKLs23) wallets; SIZES=n:t,...
const CURVE = process.env.CURVE || 'secp256k1';
const SIZES = (process.env.SIZES || '3:2,10:7').split(',').map((s) => s.split(':').map(Number));
const LOG_N = '15'; // the extension's least work factor, for every node
const PASS = 'bench passphrase';
const WORK = mkdtempSync(join(tmpdir(), 'mpc-ext-bench-'));
const env = { ...process.env, MPC_WALLET_PASSPHRASE: PASS, MPC_WALLET_SCRYPT_LOG_N: LOG_N, RUST_LOG: 'warn' };

let url;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function startServer() {
  return new Promise((resolve, reject) => {
    const p = spawn(join(BIN, 'mpc-signal'), ['--listen', '127.0.0.1:0', '--new-bindings-per-ip-per-min', '0'],
      { env: { ...process.env, RUST_LOG: 'warn' }, stdio: ['ignore', 'pipe', 'inherit'] });
    p.stdout.once('data', (d) => {
      const m = String(d).match(/listening on (\S+)/);
      if (m) resolve([p, `ws://${m[1]}/ws`]); else reject(new Error(String(d)));
    });
  });
}

function cli(id, args, extraEnv = {}) {
  const p = spawn(join(BIN, 'mpc-wallet'),
    ['--server', url, '--peer-id', id, '--keystore', join(WORK, id), '--json', ...args],
    { env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { err += d; });
  return new Promise((resolve) => p.on('close', (code) => {
    let json = null;
    try { json = JSON.parse(out); } catch { /* not JSON */ }
    resolve({ code, json, err });
  }));
}

function online() {
  const r = spawnSync(join(BIN, 'mpc-wallet'), ['--server', url, '--keystore', join(WORK, 'observer'), '--json', 'peers'], { env });
  try { return JSON.parse(String(r.stdout)).peers; } catch { return []; }
}

async function waitFor(what, f, ms = 30000) {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const ids = (n) => Array.from({ length: n }, (_, i) => `cli${i + 1}`);

/** A CLI joiner's elapsed_ms for a t-of-n wallet made by CLI nodes only. */
async function cliOnly(n, t) {
  const all = ids(n);
  const joiners = all.slice(1).map((id) => cli(id, ['join', '--yes']));
  await waitFor('joiners', () => all.slice(1).every((i) => online().includes(i)));
  const creator = cli(all[0], ['create', '--participants', all.join(','), '--threshold', String(t), '--curve', CURVE]);
  const rs = await Promise.all([creator, ...joiners]);
  for (const r of rs) if (r.code !== 0) throw new Error(r.err);
  lastKey.cli = rs[0].json.group_public_key;
  return rs[1].json.elapsed_ms;
}

// The group key of the last wallet of each kind, for the signing runs.
const lastKey = {};

/** The same, chrome1 proposing from the popup in place of cli1. */
async function withChrome(popup, n, t) {
  const others = ids(n - 1);
  const joiners = others.map((id) => cli(id, ['join', '--yes']));
  await waitFor('joiners', () => others.every((i) => online().includes(i)));
  await waitFor('the peer list', async () => (await popup.locator('#peers input').count()) >= n);
  for (const id of [...others, 'chrome1']) await popup.check(`#peers input[value="${id}"]`);
  await popup.fill('#threshold', String(t));
  await popup.selectOption('#curve', CURVE);
  await popup.fill('#passphrase-create', PASS);
  await popup.click('#create');
  const rs = await Promise.all(joiners);
  for (const r of rs) if (r.code !== 0) throw new Error(r.err);
  lastKey.chrome = rs[0].json.group_public_key;
  return rs[0].json.elapsed_ms;
}

const PROGRESS = { RUST_LOG: 'warn,mpc_wallet::progress=info', NO_COLOR: '1' };

/** Milliseconds from cli1's `mesh ready` to its verified signature. */
function rounds(stderr) {
  const at = (re) => {
    const line = stderr.replace(/\x1b\[[0-9;]*m/g, '').split('\n').find((l) => re.test(l));
    if (!line) throw new Error(`no ${re} in:\n${stderr}`);
    return Date.parse(line.split(/\s/)[0]) + Number(line.match(/\.\d{3}(\d{3})/)[1]) / 1000;
  };
  return at(/signature aggregated and verified/) - at(/mesh ready 1\/1/);
}

/** cli1 signs with `cosigner` (a CLI joiner, or chrome1 through the popup). */
async function signWith(popup, cosigner, key, message) {
  const joiner = cosigner === 'chrome1' ? null : cli(cosigner, ['join', '--approve-message', message]);
  if (joiner) await waitFor(cosigner, () => online().includes(cosigner));
  const signer = cli('cli1', ['sign', '--wallet', key, '--message', message, '--signers', `cli1,${cosigner}`], PROGRESS);
  if (!joiner) {
    await popup.waitForSelector('#sign-request:not([hidden])', { timeout: 30000 });
    await popup.fill('#passphrase-sign', PASS);
    await popup.click('#approve');
  }
  const [r, j] = await Promise.all([signer, joiner]);
  if (r.code !== 0) throw new Error(r.err);
  if (j && j.code !== 0) throw new Error(j.err);
  return rounds(r.err);
}

async function main() {
  let server;
  [server, url] = await startServer();
  const ctx = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'mpc-bench-profile-')), {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--disable-gpu', '--no-first-run', '--allow-loopback-in-peer-connection',
      '--disable-features=WebRtcHideLocalIpsWithMdns',
      `--disable-extensions-except=${EXT}`, `--load-extension=${EXT}`],
  });
  const worker = ctx.serviceWorkers()[0] ?? await ctx.waitForEvent('serviceworker');
  const popup = await ctx.newPage();
  await popup.goto(`chrome-extension://${new URL(worker.url()).host}/popup.html`);
  await waitFor('settings', async () => (await popup.inputValue('#log-n')) !== '');
  await popup.fill('#server', url);
  await popup.fill('#peer-id', 'chrome1');
  await popup.fill('#log-n', LOG_N);
  await popup.click('#save-settings');
  await waitFor('chrome1 to register', async () => (await popup.locator('#status').textContent()) === 'registered');

  const rows = [];
  for (const [n, t] of SIZES) {
    const c = [];
    const x = [];
    for (let i = 0; i < REPS; i += 1) {
      c.push(await cliOnly(n, t));
      x.push(await withChrome(popup, n, t));
    }
    rows.push({ wallet: `${t}-of-${n}`, cli_ms: c, chrome_ms: x });
  }
  if (SIZES.some(([n, t]) => n === 3 && t === 2)) {
    // The last 2-of-3 wallets of each kind (the loop above ends on them
    // only if 3:2 is last; so make them again).
    await cliOnly(3, 2);
    await withChrome(popup, 3, 2);
    const c = [];
    const x = [];
    for (let i = 0; i < REPS; i += 1) {
      c.push(await signWith(popup, 'cli2', lastKey.cli, `bench ${i}`));
      x.push(await signWith(popup, 'chrome1', lastKey.chrome, `bench ${i}`));
    }
    rows.push({ wallet: '2-of-3 signing, rounds', cli_ms: c, chrome_ms: x });
  }
  console.log(JSON.stringify({ curve: CURVE, log_n: LOG_N, reps: REPS, rows }, null, 1));
  for (const r of rows) {
    const [c, x] = [median(r.cli_ms), median(r.chrome_ms)];
    console.log(`${r.wallet}: CLI only ${c.toFixed(1)} ms, with chrome1 ${x.toFixed(1)} ms (${(x / c).toFixed(2)}x)`);
  }
  await ctx.close();
  server.kill();
}

main().catch((e) => { console.error(e); process.exit(1); });
