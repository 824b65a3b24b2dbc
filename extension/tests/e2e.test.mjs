// The extension in Debian's Chromium (playwright-core), in the same
// sessions as mpc-wallet CLI processes, through a real mpc-signal, all on
// loopback (scripts/test-extension.sh runs this in a loopback-only network
// namespace). The spec's "Simulation Run Example": cli1, cli2 and chrome1.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
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

function startServer(listen = '127.0.0.1:0') {
  return new Promise((resolve, reject) => {
    // Every test run gives the CLI ids fresh keys only if their dirs are
    // new; the dirs live for the whole run, so bindings never clash.
    // Every client here comes from 127.0.0.1, and each `peers` look-up
    // binds a new observer id: the per-address limit on new key bindings
    // (10 a minute by default) is for the internet, not for this test.
    const p = spawn(join(BIN, 'mpc-signal'), ['--listen', listen, '--new-bindings-per-ip-per-min', '0'], {
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

// CLI processes still running; a failed test's are killed after it, so
// they don't hold their peer ids into the next tests.
const running = new Set();

/**
 * Runs `mpc-wallet` in the background; resolves with {code, json, stderr}.
 * The promise also has `child` and `stderr()` (what it wrote so far).
 */
function cli(id, args, input, env = {}) {
  const p = spawn(join(BIN, 'mpc-wallet'), cliArgs(id, args), {
    env: { ...cliEnv, ...env },
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (input !== undefined) p.stdin.end(input);
  running.add(p);
  let out = '';
  let err = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { err += d; });
  const done = new Promise((resolve) => {
    p.on('close', (code) => {
      running.delete(p);
      let json = null;
      try { json = JSON.parse(out); } catch { /* not JSON */ }
      resolve({ code, json, out, stderr: err });
    });
  });
  done.child = p;
  done.stderr = () => err;
  return done;
}

function identity(id) {
  const r = spawnSync(join(BIN, 'mpc-wallet'), cliArgs(id, ['identity']), { env: cliEnv });
  return JSON.parse(String(r.stdout));
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
  try {
    await waitFor(`${ids} to register`, () => ids.every((i) => peersOnline().includes(i)));
  } catch (e) {
    // What the look-up itself said (a refused observer looks like nobody online).
    const r = spawnSync(join(BIN, 'mpc-wallet'),
      ['--server', url, '--keystore', join(WORK, 'observer'), '--json', 'peers'], { env: cliEnv });
    console.error('peers:', String(r.stdout), String(r.stderr));
    throw e;
  }
}

async function popupText(sel) {
  return (await popup.locator(sel).textContent()) ?? '';
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A request to the offscreen node, as the popup sends them. */
function toNode(msg) {
  return popup.evaluate((m) => chrome.runtime.sendMessage({ target: 'offscreen', ...m }).catch((e) => ({ error: String(e) })), msg);
}

/** Reloads the offscreen document: the node starts again from storage. */
async function restartNode() {
  await toNode({ op: 'restart' });
}

async function storageGet(key) {
  return popup.evaluate(async (k) => (await chrome.storage.local.get(k))[k], key);
}

/**
 * Clicks `button` as if `section` still showed the request `sessionId`: the
 * id is set and the button clicked in one task, so no render comes between
 * (the race of finding 11, made certain).
 */
async function clickAs(section, button, sessionId) {
  await popup.evaluate(([sec, btn, id]) => {
    document.querySelector(sec).dataset.sessionId = id;
    document.querySelector(btn).click();
  }, [section, button, sessionId]);
}

/** The identity's IndexedDB key: 'take' deletes it (keeping it in the popup), 'restore' puts it back. */
async function identityKeyEntry(op) {
  await popup.evaluate(async (op) => {
    const db = await new Promise((resolve, reject) => {
      const r = indexedDB.open('mpc-wallet', 1);
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    const tx = db.transaction('keys', 'readwrite');
    const keys = tx.objectStore('keys');
    if (op === 'take') {
      const get = keys.get('identity-wrap');
      get.onsuccess = () => { window.takenKey = get.result; keys.delete('identity-wrap'); };
    } else {
      keys.put(window.takenKey, 'identity-wrap');
    }
    await new Promise((resolve, reject) => { tx.oncomplete = resolve; tx.onerror = () => reject(tx.error); });
    db.close();
  }, op);
}

/** Saves the node's timeout in the popup and waits until the node runs with it. */
async function setNodeTimeout(secs) {
  await popup.fill('#timeout', String(secs));
  await popup.click('#save-settings');
  await waitFor(`the node to run with a ${secs} s timeout`, async () => {
    const s = await toNode({ op: 'state' });
    return s?.settings?.timeout_secs === secs && s.connection === 'registered';
  });
}

// A session id of a request that is over (set by the first test).
let endedSessionId = 'a-session-that-ended';

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
  // The popup fills the fields from the stored settings once its wasm is
  // loaded; filling them before that would be overwritten.
  await waitFor('the popup to load its settings', async () => (await popup.inputValue('#log-n')) !== '');
  await popup.fill('#server', url);
  await popup.fill('#peer-id', 'chrome1');
  await popup.fill('#log-n', '15');
  await popup.click('#save-settings');
  try {
    await waitFor('chrome1 to register', async () => (await popupText('#status')) === 'registered');
  } catch (e) {
    await popup.screenshot({ path: join(ARTIFACTS, 'popup-not-registered.png'), fullPage: true }).catch(() => {});
    console.error('status:', await popupText('#status'), 'error:', await popupText('#error'),
      'progress:', await popupText('#progress'));
    throw e;
  }
});

afterEach(() => {
  for (const p of running) p.kill('SIGKILL');
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
  const proposal = await popupText('#proposal-text');
  assert.match(proposal, /from cli1: 2-of-3 secp256k1/);
  // Every participant's key fingerprint, the same digits the CLI shows.
  for (const id of ['cli1', 'cli2']) {
    const fp = identity(id).fingerprint;
    assert.match(fp, /^[0-9a-f]{4}( [0-9a-f]{4}){7}$/);
    assert.ok(proposal.includes(`${id} [${fp}]`), `${id} [${fp}] in ${proposal}`);
  }
  assert.ok(proposal.includes(`chrome1 [${await popupText('#fingerprint')}]`), proposal);
  endedSessionId = await popup.getAttribute('#proposal', 'data-session-id');
  assert.ok(endedSessionId, 'the proposal shown carries its session id');
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
  // Both CLI nodes confirmed storing their shares (wallet_confirmed).
  await waitFor('the confirmation', async () =>
    /Confirmed: every participant stored its share/.test(await popupText('#wallet-status')));
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

test('the service worker restarts mid-session and the session still completes', async () => {
  const cli2 = cli('cli2', ['join', '--yes']);
  await waitRegistered(['cli2', 'chrome1']);
  const cli1 = cli('cli1', ['create', '--participants', 'cli1,cli2,chrome1', '--threshold', '2', '--curve', 'ed25519']);
  await popup.waitForSelector('#proposal:not([hidden])', { timeout: 30000 });
  const cdp = await ctx.newCDPSession(popup);
  let stops = 0;
  cdp.on('ServiceWorker.workerVersionUpdated', ({ versions }) => {
    if (versions.some((v) => v.runningStatus === 'stopped')) stops += 1;
  });
  await cdp.send('ServiceWorker.enable');
  const stopWorker = async () => {
    const seen = stops;
    await cdp.send('ServiceWorker.stopAllWorkers');
    await waitFor('the service worker to stop', () => stops > seen, 10000);
  };
  await stopWorker();
  await popup.fill('#passphrase-accept', PASS);
  await popup.click('#accept');
  await stopWorker(); // again, while the mesh and the DKG run
  const [r1, r2] = await Promise.all([cli1, cli2]);
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal(r2.code, 0, r2.stderr);
  // The share was stored through a restarted worker.
  await waitFor('the popup to show the ed25519 key', async () =>
    (await popupText('#group-key')) === r1.json.group_public_key);
  assert.equal(await popupText('#address'), r1.json.addresses.solana);
  await waitFor('the wallet in the list', async () =>
    (await popup.locator(`#wallets li[data-group-key="${r1.json.group_public_key}"]`).count()) === 1);
});

test('a declined proposal shows its reason in the popup', async () => {
  const decliner = cli('cli1', ['join'], 'n\n');
  const other = cli('cli2', ['join', '--yes']);
  await waitRegistered(['cli1', 'cli2']);
  await waitFor('the peer list', async () => (await popup.locator('#peers input').count()) >= 3);
  for (const id of ['cli1', 'cli2', 'chrome1']) await popup.check(`#peers input[value="${id}"]`);
  await popup.fill('#passphrase-create', PASS);
  await popup.click('#create');
  await waitFor('the decline in the popup', async () =>
    /cli1 declined: declined by user/.test(await popupText('#error')));
  const [d, o] = await Promise.all([decliner, other]);
  assert.notEqual(d.code, 0);
  assert.notEqual(o.code, 0);
  assert.match(o.stderr, /cli1 declined/);
  await popup.screenshot({ path: join(ARTIFACTS, 'popup-declined.png'), fullPage: true });
});

/** The request the node holds for a decision: 'proposal' or 'sign_request'. */
async function pending(kind) {
  return (await toNode({ op: 'state' }))[kind]?.proposal.session_id ?? null;
}

/** `sel`'s text, or '' if the popup has no such element. */
async function textIfAny(sel) {
  return (await popup.locator(sel).count()) ? popupText(sel) : '';
}

test('finding 11: an Accept or Decline click carrying a stale request id does nothing', async () => {
  const cli2 = cli('cli2', ['join', '--yes']);
  await waitRegistered(['cli2', 'chrome1']);
  const cli1 = cli('cli1', ['create', '--participants', 'cli1,cli2,chrome1', '--threshold', '2']);
  await popup.waitForSelector('#proposal:not([hidden])', { timeout: 30000 });
  const current = await pending('proposal');
  assert.ok(current && current !== endedSessionId, `${current} vs ${endedSessionId}`);
  await popup.fill('#passphrase-accept', PASS);
  for (const button of ['#accept', '#decline']) {
    await clickAs('#proposal', button, endedSessionId);
    await sleep(1500);
    // Nothing happened: the same proposal still waits, and cli1 heard nothing.
    assert.equal(await pending('proposal'), current, `the stale ${button} acted on the proposal`);
    assert.equal(cli1.child.exitCode, null, 'cli1 got an answer');
    assert.match(await textIfAny('#proposal-error'), /no longer the one waiting.*nothing was done/);
    await popup.evaluate(() => { document.getElementById('proposal-error').textContent = ''; });
  }
  // The popup shows the request that waits, with its id.
  assert.equal(await popup.isVisible('#proposal'), true);
  assert.equal(await popup.getAttribute('#proposal', 'data-session-id'), current);
  await clickAs('#proposal', '#accept', endedSessionId);
  await waitFor('the refusal', async () => /nothing was done/.test(await popupText('#proposal-error')));
  await popup.screenshot({ path: join(ARTIFACTS, 'popup-stale-click.png'), fullPage: true });
  // A click on the request shown acts on it.
  await popup.click('#decline');
  const [r1, r2] = await Promise.all([cli1, cli2]);
  assert.notEqual(r1.code, 0);
  assert.match(r1.stderr, /chrome1 declined/);
  assert.notEqual(r2.code, 0);
});

test('findings 4 and 18: Accept refuses an empty passphrase or a bad work factor before the key generation', async () => {
  const cli2 = cli('cli2', ['join', '--yes']);
  await waitRegistered(['cli2', 'chrome1']);
  const cli1 = cli('cli1', ['create', '--participants', 'cli1,cli2,chrome1', '--threshold', '2']);
  await popup.waitForSelector('#proposal:not([hidden])', { timeout: 30000 });
  const current = await pending('proposal');
  await popup.fill('#passphrase-accept', '');
  await popup.click('#accept');
  await sleep(1000);
  assert.equal(await pending('proposal'), current, 'accepted with an empty passphrase');
  assert.equal(cli1.child.exitCode, null, 'cli1 got an answer');
  assert.match(await textIfAny('#proposal-error'), /not accepted: a passphrase for the new share is needed/);
  await popup.screenshot({ path: join(ARTIFACTS, 'popup-empty-passphrase.png'), fullPage: true });
  // A work factor stored by an older version, which let any through.
  const settings = await storageGet('settings');
  await popup.evaluate((s) => chrome.storage.local.set({ settings: { ...s, scrypt_log_n: 9 } }), settings);
  await popup.fill('#passphrase-accept', PASS);
  await popup.click('#accept');
  await sleep(1000);
  await popup.evaluate((s) => chrome.storage.local.set({ settings: s }), settings);
  assert.equal(await pending('proposal'), current, 'accepted with work factor 9');
  assert.equal(cli1.child.exitCode, null, 'cli1 got an answer');
  assert.match(await textIfAny('#proposal-error'),
    /not accepted: the scrypt work factor \(log N\) must be a whole number from 15 to 22, not 9/);
  assert.equal(await popup.isVisible('#proposal'), true);
  await popup.click('#decline');
  const [r1] = await Promise.all([cli1, cli2]);
  assert.match(r1.stderr, /chrome1 declined/);

  // Create wallet too refuses before any proposal goes out.
  const cli3 = cli('cli2', ['join', '--yes']);
  await waitRegistered(['cli2']);
  await waitFor('cli2 in the peer list', async () => (await popup.locator('#peers input[value="cli2"]').count()) === 1);
  await popup.check('#peers input[value="cli2"]');
  await popup.fill('#passphrase-create', '');
  await popup.click('#create');
  await sleep(1500);
  assert.equal(cli3.child.exitCode, null, 'cli2 got a proposal');
  assert.match(await textIfAny('#create-error'), /not proposed: a passphrase for the new share is needed/);
  await popup.fill('#passphrase-create', PASS);
  cli3.child.kill();
  await cli3;
});

test('finding 18: the settings refuse a scrypt work factor outside 15 to 22', async () => {
  for (const bad of ['0', '9', '14', '23', '']) {
    await popup.fill('#log-n', bad);
    await popup.click('#save-settings');
    await sleep(300);
    assert.equal((await storageGet('settings')).scrypt_log_n, 15, `log N ${bad || '(empty)'} was saved`);
    await waitFor(`log N ${bad || '(empty)'} to be refused`, async () =>
      new RegExp(`not saved: the scrypt work factor \\(log N\\) must be a whole number from 15 to 22, not ${Number(bad)}$`)
        .test(await popupText('#settings-error')));
    await popup.evaluate(() => { document.getElementById('settings-error').textContent = ''; });
  }
  await popup.fill('#log-n', '15');
  await popup.click('#save-settings');
  await sleep(300);
  assert.equal(await popupText('#settings-error'), '');
  assert.equal(await popupText('#status'), 'registered');
});

test('cli1 and chrome1 sign 2-of-3: the popup shows the message, both get one signature', async () => {
  // The wallet of the first test: cli1, cli2, chrome1, secp256k1.
  const wallets = JSON.parse(spawnSync(join(BIN, 'mpc-wallet'),
    ['--keystore', join(WORK, 'cli1'), '--json', 'wallets'], { env: cliEnv }).stdout);
  const key = wallets.wallets.find((w) => w.curve === 'secp256k1' && w.participants.includes('chrome1')).group_public_key;
  const message = Buffer.from('hello from the browser').toString('hex');
  const signer = cli('cli1', ['sign', '--wallet', key, '--message-hex', message, '--signers', 'cli1,chrome1']);
  await popup.waitForSelector('#sign-request:not([hidden])', { timeout: 30000 });
  const shown = await popupText('#sign-text');
  assert.match(shown, new RegExp(message));
  assert.match(shown, /hello from the browser/);
  await popup.fill('#passphrase-sign', PASS);
  // Finding 11: an Approve carrying another request's id does nothing.
  const current = await pending('sign_request');
  await clickAs('#sign-request', '#approve', endedSessionId);
  await sleep(1500);
  assert.equal(await pending('sign_request'), current, 'the stale approval signed');
  assert.equal(signer.child.exitCode, null, 'cli1 got an answer');
  assert.match(await textIfAny('#sign-error'), /no longer the one waiting.*nothing was done/);
  assert.equal(await popup.isVisible('#sign-request'), true);
  assert.equal(await popup.getAttribute('#sign-request', 'data-session-id'), current);
  await popup.click('#approve');
  const r = await signer;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.group_public_key, key);
  assert.equal(r.json.signature.length, 128);
  await waitFor('the popup to show the signature', async () =>
    (await popupText('#signature')) === r.json.signature);
});

test('wallet files move both ways between the extension and the CLI', async () => {
  // Extension -> CLI: the exported file opens with its passphrase.
  await popup.click('#export');
  // The popup fetches the file from the worker: wait for it.
  const exported = await waitFor('the exported file', () => popup.inputValue('#export-text'));
  const info = JSON.parse(exported); // metadata is flattened into the file
  const file = join(WORK, 'from-extension.json');
  writeFileSync(file, exported);
  const imported = spawnSync(join(BIN, 'mpc-wallet'),
    ['--keystore', join(WORK, 'cli-import'), '--json', 'wallet', 'import', file], { env: cliEnv });
  assert.equal(imported.status, 0, String(imported.stderr));
  assert.equal(JSON.parse(imported.stdout).group_public_key, info.group_public_key);
  const wrong = spawnSync(join(BIN, 'mpc-wallet'),
    ['--keystore', join(WORK, 'cli-import2'), 'wallet', 'import', file],
    { env: { ...cliEnv, MPC_WALLET_PASSPHRASE: 'not it' } });
  assert.notEqual(wrong.status, 0);

  // CLI -> extension: a wallet only the CLI nodes made, imported in the popup.
  const joiner = cli('cli2', ['join', '--yes']);
  await waitRegistered(['cli2']);
  const made = await cli('cli1', ['create', '--participants', 'cli1,cli2', '--threshold', '2']);
  assert.equal(made.code, 0, made.stderr);
  assert.equal((await joiner).code, 0);
  const cliFile = spawnSync(join(BIN, 'mpc-wallet'),
    ['--keystore', join(WORK, 'cli1'), 'wallet', 'export', made.json.group_public_key], { env: cliEnv });
  await popup.fill('#import-text', String(cliFile.stdout));
  await popup.fill('#import-pass', 'not it');
  await popup.click('#import');
  await waitFor('the refusal', async () => /import failed/.test(await popupText('#import-error')));
  await popup.fill('#import-pass', PASS);
  await popup.click('#import');
  const row = popup.locator(`#wallets li[data-group-key="${made.json.group_public_key}"]`);
  await waitFor('the imported wallet in the list', async () => (await row.count()) === 1);
  assert.match(await row.textContent(), new RegExp(made.json.addresses.bitcoin_taproot));
});

test('chrome1 proposes signing from the popup; cli2 approves; one signature', async () => {
  const wallets = JSON.parse(spawnSync(join(BIN, 'mpc-wallet'),
    ['--keystore', join(WORK, 'cli2'), '--json', 'wallets'], { env: cliEnv }).stdout);
  const key = wallets.wallets.find((w) => w.curve === 'secp256k1' && w.participants.includes('chrome1')).group_public_key;
  const joiner = cli('cli2', ['join', '--approve-message', 'from the popup']);
  await waitRegistered(['cli2']);
  await waitFor('cli2 in the peer list', async () => (await popup.locator('#peers input[value="cli2"]').count()) === 1);
  await popup.check('#peers input[value="cli2"]');
  await popup.selectOption('#sign-wallet', key);
  await popup.fill('#sign-message', 'from the popup');
  await popup.fill('#passphrase-propose', PASS);
  await popup.click('#sign');
  const r = await joiner;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.message_hex, Buffer.from('from the popup').toString('hex'));
  await waitFor('the popup to show the signature', async () =>
    (await popupText('#signature')) === r.json.signature);
});

/**
 * A BIP174 PSBT, built by hand so the test needs no Bitcoin library:
 * inputs of `amounts` sat, each paying the wallet's P2TR output key
 * (its 33-byte group key without the prefix byte), 70,000 sat out to a
 * P2WPKH and the rest less a 1,000 sat fee back to the wallet.
 */
function psbtFor(groupKey, amounts) {
  const le = (n, bytes) => {
    const b = Buffer.alloc(bytes);
    if (bytes === 8) b.writeBigUInt64LE(BigInt(n)); else b.writeUInt32LE(n);
    return b;
  };
  const compact = (n) => (n < 0xfd ? Buffer.from([n]) : Buffer.from([0xfd, n & 0xff, n >> 8]));
  const wallet = Buffer.concat([Buffer.from([0x51, 0x20]), Buffer.from(groupKey.slice(2), 'hex')]);
  const outside = Buffer.concat([Buffer.from([0x00, 0x14]), Buffer.alloc(20, 7)]);
  const txOut = (sat, script) => Buffer.concat([le(sat, 8), compact(script.length), script]);
  const total = amounts.reduce((a, b) => a + b, 0);
  const tx = Buffer.concat([
    le(2, 4), compact(amounts.length),
    ...amounts.map((_, i) => Buffer.concat([Buffer.alloc(32, i + 1), le(i, 4), Buffer.from([0]), le(0xfffffffd, 4)])),
    compact(2), txOut(70_000, outside), txOut(total - 71_000, wallet), le(0, 4),
  ]);
  const pair = (key, value) => Buffer.concat([compact(key.length), key, compact(value.length), value]);
  return Buffer.concat([
    Buffer.from([0x70, 0x73, 0x62, 0x74, 0xff]),
    pair(Buffer.from([0]), tx), Buffer.from([0]),
    ...amounts.map((a) => Buffer.concat([pair(Buffer.from([1]), txOut(a, wallet)), Buffer.from([0])])),
    Buffer.from([0]), Buffer.from([0]),
  ]);
}

function chromeWallet(keystoreOf) {
  const wallets = JSON.parse(spawnSync(join(BIN, 'mpc-wallet'),
    ['--keystore', join(WORK, keystoreOf), '--json', 'wallets'], { env: cliEnv }).stdout);
  return wallets.wallets.find((w) => w.curve === 'secp256k1' && w.participants.includes('chrome1')).group_public_key;
}

test('issue 14: cli1 spends with a PSBT; the popup shows what the wasm core decoded; chrome1 co-signs', async () => {
  const key = chromeWallet('cli1');
  const psbt = psbtFor(key, [50_000, 40_000]).toString('base64');
  const signer = cli('cli1', ['sign-psbt', '--wallet', key, '--psbt', psbt, '--signers', 'cli1,chrome1']);
  await popup.waitForSelector('#sign-request:not([hidden])', { timeout: 30000 });
  const shown = await popupText('#sign-text');
  // The review is the core's own decoding, not the proposer's say-so.
  for (const needle of ['sign a transaction', '0.00070000 BTC', '0.00019000 BTC (change back to this wallet)',
    'fee 0.00001000 BTC', '(this wallet)']) {
    assert.ok(shown.includes(needle), `${needle} not shown:\n${shown}`);
  }
  assert.ok(!shown.includes(Buffer.from(psbt, 'base64').toString('hex')), 'the raw PSBT is shown instead');
  await popup.screenshot({ path: join(ARTIFACTS, 'popup-psbt-review.png'), fullPage: true });
  await popup.fill('#passphrase-sign', PASS);
  await popup.click('#approve');
  const r = await signer;
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.json.signed_inputs, [0, 1]);
  assert.match(r.json.tx_hex, /^02000000000102/); // version 2, segwit marker, two inputs
  await waitFor('the popup to show the same transaction', async () =>
    (await popupText('#transaction')) === r.json.tx_hex);
});

test('issue 14: chrome1 proposes a PSBT loaded from a file; cli2 approves exactly it', async () => {
  const key = chromeWallet('cli2');
  const file = join(WORK, 'popup.psbt');
  writeFileSync(file, psbtFor(key, [120_000]));
  const joiner = cli('cli2', ['join', '--approve-psbt', file]);
  await waitRegistered(['cli2']);
  await waitFor('cli2 in the peer list', async () => (await popup.locator('#peers input[value="cli2"]').count()) === 1);
  await popup.check('#peers input[value="cli2"]');
  await popup.selectOption('#sign-wallet', key);
  await popup.setInputFiles('#sign-psbt-file', file);
  await waitFor('the PSBT read from the file', async () => (await popup.inputValue('#sign-psbt')).startsWith('cHNidP8'));
  await popup.fill('#passphrase-propose', PASS);
  await popup.click('#sign');
  const r = await joiner;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.format, 'bitcoin_psbt');
  assert.deepEqual(r.json.transaction.signed_inputs, [0]);
  await waitFor('the popup to show the same transaction', async () =>
    (await popupText('#transaction')) === r.json.transaction.tx_hex);
  await popup.fill('#sign-psbt', '');
});

/**
 * A legacy Solana message, built by hand: `lamports` by System transfer
 * from `from` (32 bytes, the fee payer) to `to`, at `blockhash`. Accounts
 * as the SDK orders them: payer, writable `to`, the System program.
 */
function solanaTransfer(from, to, lamports, blockhash) {
  const data = Buffer.alloc(12);
  data.writeUInt32LE(2);
  data.writeBigUInt64LE(BigInt(lamports), 4);
  return Buffer.concat([
    Buffer.from([1, 0, 1, 3]), from, to, Buffer.alloc(32), blockhash,
    Buffer.from([1, 2, 2, 0, 1, data.length]), data,
  ]);
}

test('issue 14: an ed25519 wallet with chrome1; cli1 sends SOL, the popup shows the decoded transfer, chrome1 co-signs', async () => {
  const cli2 = cli('cli2', ['join', '--yes']);
  await waitRegistered(['cli2', 'chrome1']);
  const made = cli('cli1', ['create', '--participants', 'cli1,cli2,chrome1', '--threshold', '2', '--curve', 'ed25519']);
  await popup.waitForSelector('#proposal:not([hidden])', { timeout: 30000 });
  await popup.fill('#passphrase-accept', PASS);
  await popup.click('#accept');
  const [r1, r2] = await Promise.all([made, cli2]);
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal(r2.code, 0, r2.stderr);
  const key = r1.json.group_public_key;
  const to = '9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM';
  const signer = cli('cli1', ['solana-transfer', '--wallet', key, '--to', to, '--lamports', '250000000',
    '--blockhash', '4uQeVj5tqViQh7yWWGStvkEG1Zmhx6uasJtWCJziofM', '--signers', 'cli1,chrome1']);
  await popup.waitForSelector('#sign-request:not([hidden])', { timeout: 30000 });
  const shown = await popupText('#sign-text');
  for (const needle of ['Solana transaction (legacy)', `fee payer ${r1.json.addresses.solana} (this wallet)`,
    `transfer 0.250000000 SOL (250000000 lamports) from ${r1.json.addresses.solana} to ${to}`]) {
    assert.ok(shown.includes(needle), `${needle} not shown:\n${shown}`);
  }
  await popup.screenshot({ path: join(ARTIFACTS, 'popup-solana-review.png'), fullPage: true });
  await popup.fill('#passphrase-sign', PASS);
  await popup.click('#approve');
  const r = await signer;
  assert.equal(r.code, 0, r.stderr);
  const tx = Buffer.from(r.json.transaction, 'base64');
  assert.equal(tx[0], 1, 'one signature slot');
  await waitFor('the popup to show the same transaction', async () =>
    (await popupText('#transaction')) === r.json.transaction);
});

test('issue 14: chrome1 proposes a pasted Solana message; cli2 approves exactly it', async () => {
  const wallets = JSON.parse(spawnSync(join(BIN, 'mpc-wallet'),
    ['--keystore', join(WORK, 'cli2'), '--json', 'wallets'], { env: cliEnv }).stdout);
  const key = wallets.wallets.find((w) => w.curve === 'ed25519' && w.participants.includes('chrome1')).group_public_key;
  const message = solanaTransfer(Buffer.from(key, 'hex'), Buffer.alloc(32, 0x42), 5000, Buffer.alloc(32, 3))
    .toString('base64');
  const joiner = cli('cli2', ['join', '--approve-solana', message]);
  await waitRegistered(['cli2']);
  await waitFor('cli2 in the peer list', async () => (await popup.locator('#peers input[value="cli2"]').count()) === 1);
  await popup.check('#peers input[value="cli2"]');
  await popup.selectOption('#sign-wallet', key);
  await popup.fill('#sign-psbt', message);
  await popup.fill('#passphrase-propose', PASS);
  await popup.click('#sign');
  const r = await joiner;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.format, 'solana_transaction');
  const tx = Buffer.from(r.json.transaction.transaction, 'base64');
  assert.deepEqual(tx.subarray(65), Buffer.from(message, 'base64'));
  await waitFor('the popup to show the same transaction', async () =>
    (await popupText('#transaction')) === r.json.transaction.transaction);
  await popup.fill('#sign-psbt', '');
});

/** anvil (a real Ethereum node) on a loopback port; resolves with its URL. */
async function startAnvil() {
  const bin = process.env.MPC_TEST_ANVIL
    || join(process.env.HOME, '.cache/mpc-wallet/anvil/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil');
  const port = 20000 + Math.floor(Math.random() * 20000);
  const p = spawn(bin, ['--host', '127.0.0.1', '--port', String(port), '--silent'], { stdio: 'ignore' });
  running.add(p);
  const rpcUrl = `http://127.0.0.1:${port}`;
  await waitFor('anvil', async () => (await rpc(rpcUrl, 'eth_chainId', []).catch(() => null)) === '0x7a69');
  return [p, rpcUrl];
}

async function rpc(rpcUrl, method, params) {
  const r = await fetch(rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  const v = await r.json();
  if (v.error) throw new Error(`${method}: ${v.error.message}`);
  return v.result;
}

const ETH_TO = '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed';

function ethTransfer(nonce, wei) {
  return JSON.stringify({
    to: ETH_TO, value: `0x${BigInt(wei).toString(16)}`, chainId: '0x7a69', nonce: `0x${nonce.toString(16)}`,
    gas: '0x5208', maxFeePerGas: '0xb2d05e00', maxPriorityFeePerGas: '0x3b9aca00',
  });
}

test('issue 15: an Ethereum wallet with chrome1; cli1 sends ETH, the popup shows the decoded transfer, chrome1 co-signs, anvil accepts', async () => {
  const [anvil, rpcUrl] = await startAnvil();
  try {
    const cli2 = cli('cli2', ['join', '--yes']);
    await waitRegistered(['cli2', 'chrome1']);
    const made = cli('cli1', ['create', '--participants', 'cli1,cli2,chrome1', '--threshold', '2', '--chain', 'ethereum']);
    await popup.waitForSelector('#proposal:not([hidden])', { timeout: 30000 });
    assert.match(await popupText('#proposal-text'), /2-of-3 secp256k1-ecdsa/);
    await popup.fill('#passphrase-accept', PASS);
    await popup.click('#accept');
    const [r1, r2] = await Promise.all([made, cli2]);
    assert.equal(r1.code, 0, r1.stderr);
    assert.equal(r2.code, 0, r2.stderr);
    const key = r1.json.group_public_key;
    const address = r1.json.addresses.ethereum;
    assert.match(address, /^0x[0-9a-fA-F]{40}$/);
    await popup.waitForSelector('#result:not([hidden])', { timeout: 30000 });
    assert.equal(await popupText('#address'), address);
    await rpc(rpcUrl, 'anvil_setBalance', [address, '0x8ac7230489e80000']); // 10 ETH

    // cli1 proposes; chrome1 is shown the transfer its wasm core decoded.
    const signer = cli('cli1', ['sign-eth-tx', '--wallet', key, '--tx', ethTransfer(0, 10n ** 18n),
      '--rpc', rpcUrl, '--signers', 'cli1,chrome1']);
    await popup.waitForSelector('#sign-request:not([hidden])', { timeout: 30000 });
    const shown = await popupText('#sign-text');
    for (const needle of ['Ethereum transaction (EIP-1559) on chain id 31337', `to:        ${ETH_TO}`,
      'value:     1 ETH', 'gas limit 21000']) {
      assert.ok(shown.includes(needle), `${needle} not shown:\n${shown}`);
    }
    await popup.screenshot({ path: join(ARTIFACTS, 'popup-ethereum-review.png'), fullPage: true });
    await popup.fill('#passphrase-sign', PASS);
    await popup.click('#approve');
    const r = await signer;
    assert.equal(r.code, 0, r.stderr);
    const receipt = await waitFor('the receipt', () => rpc(rpcUrl, 'eth_getTransactionReceipt', [r.json.tx_hash]));
    assert.equal(receipt.status, '0x1');
    assert.equal(await rpc(rpcUrl, 'eth_getBalance', [ETH_TO, 'latest']), '0xde0b6b3a7640000');
    await waitFor('the popup to show the same transaction', async () =>
      (await popupText('#transaction')) === r.json.raw_tx);

    // chrome1 proposes a pasted transaction; cli2 approves exactly it.
    const tx = ethTransfer(1, 5n * 10n ** 17n);
    const joiner = cli('cli2', ['join', '--approve-eth-tx', tx]);
    await waitRegistered(['cli2']);
    await waitFor('cli2 in the peer list', async () => (await popup.locator('#peers input[value="cli2"]').count()) === 1);
    // Exactly the threshold: chrome1 itself (checked already) and cli2.
    for (const box of await popup.locator('#peers input:checked').all()) {
      if ((await box.getAttribute('value')) !== 'chrome1') await box.uncheck();
    }
    await popup.check('#peers input[value="cli2"]');
    await popup.selectOption('#sign-wallet', key);
    await popup.fill('#sign-psbt', tx);
    await popup.fill('#passphrase-propose', PASS);
    await popup.fill('#error', '').catch(() => {});
    await popup.click('#sign');
    const j = await Promise.race([joiner, waitFor('a popup error', async () => (await popupText('#error')) || null, 90000)
      .then((e) => ({ popupError: e }))]);
    assert.ok(!j.popupError, `the popup says: ${j.popupError}`);
    assert.equal(j.code, 0, j.stderr);
    assert.equal(j.json.format, 'ethereum_transaction');
    const hash = await rpc(rpcUrl, 'eth_sendRawTransaction', [j.json.transaction.raw_tx]);
    assert.equal(hash, j.json.transaction.tx_hash);
    assert.equal((await waitFor('the receipt', () => rpc(rpcUrl, 'eth_getTransactionReceipt', [hash]))).status, '0x1');
    await popup.fill('#sign-psbt', '');

    // The versioned DKLs23 share moves both ways. Extension -> CLI: the
    // CLI opens chrome1's share of this wallet with its passphrase.
    const files = await popup.evaluate(() => chrome.runtime.sendMessage({ target: 'sw', op: 'wallets' }));
    const mine = Object.values(files).find((f) => JSON.parse(f).group_public_key === key);
    const file = join(WORK, 'eth-from-extension.json');
    writeFileSync(file, mine);
    const imported = spawnSync(join(BIN, 'mpc-wallet'),
      ['--keystore', join(WORK, 'cli-import-eth'), '--json', 'wallet', 'import', file], { env: cliEnv });
    assert.equal(imported.status, 0, String(imported.stderr));
    assert.equal(JSON.parse(imported.stdout).addresses.ethereum, address);
    // CLI -> extension: an Ethereum wallet only CLI nodes made.
    const joiner2 = cli('cli2', ['join', '--yes']);
    await waitRegistered(['cli2']);
    const only = await cli('cli1', ['create', '--participants', 'cli1,cli2', '--threshold', '2', '--chain', 'ethereum']);
    assert.equal(only.code, 0, only.stderr);
    assert.equal((await joiner2).code, 0);
    const cliFile = spawnSync(join(BIN, 'mpc-wallet'),
      ['--keystore', join(WORK, 'cli1'), 'wallet', 'export', only.json.group_public_key], { env: cliEnv });
    await popup.fill('#import-text', String(cliFile.stdout));
    await popup.fill('#import-pass', PASS);
    await popup.click('#import');
    const row = popup.locator(`#wallets li[data-group-key="${only.json.group_public_key}"]`);
    await waitFor('the imported Ethereum wallet in the list', async () => (await row.count()) === 1);
    assert.match(await row.textContent(), new RegExp(only.json.addresses.ethereum));

    // chrome1 creates an Ethereum wallet from the popup.
    const joiner3 = cli('cli2', ['join', '--yes']);
    await waitRegistered(['cli2']);
    await waitFor('cli2 in the peer list', async () => (await popup.locator('#peers input[value="cli2"]').count()) === 1);
    for (const box of await popup.locator('#peers input:checked').all()) {
      if ((await box.getAttribute('value')) !== 'chrome1') await box.uncheck();
    }
    await popup.check('#peers input[value="cli2"]');
    await popup.fill('#threshold', '2');
    await popup.selectOption('#curve', 'secp256k1-ecdsa');
    await popup.fill('#passphrase-create', PASS);
    await popup.click('#create');
    const j3 = await joiner3;
    assert.equal(j3.code, 0, j3.stderr);
    assert.equal(j3.json.curve, 'secp256k1-ecdsa');
    await waitFor('the popup to show its address', async () =>
      (await popupText('#address')) === j3.json.addresses.ethereum);
  } finally {
    anvil.kill();
  }
});

test('finding 4: a participant that never confirms is named, and the popup says not to fund', async () => {
  await setNodeTimeout(10);
  // cli2 stores its share, then hangs instead of confirming it.
  const stalled = cli('cli2', ['join', '--yes', '--timeout-secs', '10'], undefined,
    { MPC_WALLET_TEST_STALL_BEFORE: 'wallet_created' });
  await waitRegistered(['cli2', 'chrome1']);
  const cli1 = cli('cli1', ['create', '--participants', 'cli1,cli2,chrome1', '--threshold', '2', '--timeout-secs', '10']);
  await popup.waitForSelector('#proposal:not([hidden])', { timeout: 30000 });
  await popup.fill('#passphrase-accept', PASS);
  await popup.click('#accept');
  await waitFor('cli2 to stall before wallet_created', () => /test hook: stalling/.test(stalled.stderr()), 60000);
  // chrome1 stored its share: pending until every participant confirms.
  await waitFor('the pending wallet', async () =>
    /Waiting for every participant.*Do not fund this address yet/.test(await popupText('#wallet-status')));
  const key = await popupText('#group-key');
  assert.equal(await popup.isDisabled('#copy'), true);
  stalled.child.kill('SIGKILL');
  const r1 = await cli1;
  assert.notEqual(r1.code, 0);
  assert.match(r1.stderr, /NOT confirmed: cli2 never confirmed/);
  await waitFor('the popup to say cli2 never confirmed', async () =>
    /NOT confirmed: cli2 never confirmed storing its share.*Do not fund this address\./
      .test(await popupText('#wallet-status')), 30000);
  const row = popup.locator(`#wallets li[data-group-key="${key}"]`);
  await waitFor('the wallet list to mark it', async () => /NOT confirmed: do not fund/.test(await row.textContent()));
  // The wallet's own file records it, as the CLI's does, so an exported
  // copy carries it.
  const stored = Object.values(await storageGet('wallets')).map((f) => JSON.parse(f))
    .find((f) => f.group_public_key === key);
  assert.deepEqual(stored.confirmation, { state: 'unconfirmed', missing: ['cli2'] });
  await popup.screenshot({ path: join(ARTIFACTS, 'popup-unconfirmed.png'), fullPage: true });
  await setNodeTimeout(60);
});

test('finding 15: a wallet file with an edited group key shows no address and is not imported', async () => {
  const files = Object.values(await storageGet('wallets')).map((f) => JSON.parse(f));
  const f = files.find((w) => w.curve === 'secp256k1');
  const other = files.find((w) => w.curve === f.curve && w.group_public_key !== f.group_public_key);
  // Its id made to match the edited key: only the key package tells.
  const tampered = JSON.stringify({ ...f, id: other.id, group_public_key: other.group_public_key });
  const setTampered = (t) => popup.evaluate(async (t) => {
    const { wallets } = await chrome.storage.local.get('wallets');
    if (t) wallets.tampered = t; else delete wallets.tampered;
    await chrome.storage.local.set({ wallets });
  }, t);
  await setTampered(tampered);
  await toNode({ op: 'refresh_wallets' });
  const row = popup.locator('#wallets li.error');
  await waitFor('the edited file listed as unreadable', async () => (await row.count()) === 1);
  const text = await row.textContent();
  assert.match(text, /unreadable: .*not consistent/);
  assert.doesNotMatch(text, /bc1p/);
  await popup.fill('#import-text', tampered);
  await popup.fill('#import-pass', PASS);
  await popup.click('#import');
  await waitFor('the refusal', async () => /import failed/.test(await popupText('#import-error')));
  await setTampered(null);
  await toNode({ op: 'refresh_wallets' });
  await waitFor('the list without it', async () => (await row.count()) === 0);
});

test('finding 14: a lost IndexedDB key is reported, and the identity is not replaced silently', async () => {
  const fp = await popupText('#fingerprint');
  const record = await storageGet('identity');
  await identityKeyEntry('take');
  await restartNode();
  await waitFor('the node to start again', async () => (await popupText('#status')) !== 'registered');
  await waitFor('chrome1 to go offline', () => !peersOnline().includes('chrome1'));
  await sleep(2000);
  // Nothing replaced it: the same record and fingerprint, and no node runs
  // under another key.
  assert.deepEqual(await storageGet('identity'), record, 'the identity was replaced');
  assert.equal(await popupText('#fingerprint'), fp);
  assert.ok(!peersOnline().includes('chrome1'));
  // The popup says so, and offers the way out.
  assert.equal(await popupText('#status'), 'identity unavailable');
  assert.equal(await popup.isVisible('#identity-problem'), true);
  assert.match(await popupText('#identity-error'), /missing from this extension's IndexedDB/);
  assert.equal(await popup.isVisible('#new-identity'), true);
  await popup.screenshot({ path: join(ARTIFACTS, 'popup-identity-lost.png'), fullPage: true });

  // With its key back, the same identity opens again.
  await identityKeyEntry('restore');
  await restartNode();
  await waitFor('chrome1 to register again', async () => (await popupText('#status')) === 'registered');
  assert.equal(await popupText('#fingerprint'), fp);
  assert.equal(await popup.isVisible('#identity-problem'), false);
  // chrome.storage holds the sealed record only, and the glue offers no seed.
  assert.deepEqual(Object.keys(record).sort(), ['ciphertext', 'iv', 'public_key', 'v']);
  const exported = await popup.evaluate(async () => Object.keys(await import('./wasm/mpc_wasm.js')));
  assert.ok(exported.includes('open_identity'), exported.join());
  for (const name of exported) assert.doesNotMatch(name, /seed|generate_identity|identity_info/);
});

test('finding 14: an identity sealed by the earlier version (the seed\'s hex) still opens, to its key', async () => {
  // An Ed25519 key made here, sealed the way the extension did before.
  const seed = randomBytes(32);
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  const publicKey = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }))
    .export({ format: 'der', type: 'spki' }).subarray(-32).toString('hex');
  const original = await storageGet('identity');
  const fp = await popupText('#fingerprint');
  await identityKeyEntry('take');
  const expected = await popup.evaluate(async ([seedHex, pk]) => {
    const wrap = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const ct = await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, wrap, new TextEncoder().encode(seedHex));
    const hex = (b) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');
    const db = await new Promise((resolve) => { const r = indexedDB.open('mpc-wallet', 1); r.onsuccess = () => resolve(r.result); });
    const tx = db.transaction('keys', 'readwrite');
    tx.objectStore('keys').put(wrap, 'identity-wrap');
    await new Promise((resolve) => { tx.oncomplete = resolve; });
    db.close();
    await chrome.storage.local.set({ identity: { iv: hex(iv), ciphertext: hex(ct), public_key: pk } });
    return (await import('./wasm/mpc_wasm.js')).fingerprint(pk);
  }, [seed.toString('hex'), publicKey]);
  await restartNode();
  await waitFor('the old record to open', async () => {
    const s = await toNode({ op: 'state' });
    return s?.identity?.ok === true && s.fingerprint === expected;
  });
  // Back to chrome1's own identity (the server holds its id for that key).
  await popup.evaluate((r) => chrome.storage.local.set({ identity: r }), original);
  await identityKeyEntry('restore');
  await restartNode();
  await waitFor('chrome1 to register again', async () => (await popupText('#status')) === 'registered');
  assert.equal(await popupText('#fingerprint'), fp);
});

test('the extension reconnects and re-registers when the server comes back', async () => {
  const addr = new URL(url).host;
  server.kill();
  await new Promise((r) => server.once('exit', r));
  await waitFor('the popup to see the server go', async () => (await popupText('#status')) !== 'registered');
  [server] = await startServer(addr);
  await waitFor('chrome1 to register again', async () => (await popupText('#status')) === 'registered');
  await waitRegistered(['chrome1']);
});

function ed25519WalletWithChrome(keystoreOf) {
  const wallets = JSON.parse(spawnSync(join(BIN, 'mpc-wallet'),
    ['--keystore', join(WORK, keystoreOf), '--json', 'wallets'], { env: cliEnv }).stdout);
  return wallets.wallets.find((w) => w.curve === 'ed25519' && w.participants.includes('chrome1')
    && w.participants.includes('cli2'));
}

/** cli1 signs `text` with `key` and chrome1, approved in the popup. */
async function signWithChrome(key, text) {
  const signer = cli('cli1', ['sign', '--wallet', key, '--message', text, '--signers', 'cli1,chrome1']);
  await popup.waitForSelector('#sign-request:not([hidden])', { timeout: 30000 });
  await popup.fill('#passphrase-sign', PASS);
  await popup.click('#approve');
  const r = await signer;
  assert.equal(r.code, 0, r.stderr);
  await waitFor('the popup to show the signature', async () => (await popupText('#signature')) === r.json.signature);
  return r.json;
}

async function chromeFileOf(key) {
  const files = await storageGet('wallets');
  return Object.values(files || {}).map((f) => JSON.parse(f)).find((f) => f.group_public_key === key);
}

test('issue 16: chrome1 takes part in a refresh from the popup; the new shares sign', async () => {
  const key = ed25519WalletWithChrome('cli1').group_public_key;
  const before = await chromeFileOf(key);
  const joiner = cli('cli2', ['join', '--approve-refresh', key]);
  await waitRegistered(['cli2']);
  const refresher = cli('cli1', ['refresh', '--wallet', key]);
  await popup.waitForSelector('#proposal:not([hidden])', { timeout: 30000 });
  assert.match(await popupText('#proposal-text'), /refresh proposal received from cli1: new shares of wallet/);
  await popup.fill('#passphrase-accept', PASS);
  await popup.click('#accept');
  const [r1, r2] = await Promise.all([refresher, joiner]);
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(r1.json.generation, before.generation ? before.generation + 1 : 1);
  // Promoted, then recorded as confirmed (as the CLI records it).
  await waitFor('the refreshed, confirmed share in storage', async () => {
    const f = await chromeFileOf(key);
    return f?.generation === r1.json.generation && f.confirmation?.state === 'confirmed';
  });
  const after = await chromeFileOf(key);
  assert.notEqual(after.secret.age, before.secret.age, 'a new share');
  assert.deepEqual(await storageGet('pending_wallets'), {});
  await signWithChrome(key, 'signed by refreshed shares');
});

test('issue 16: chrome1, reinstalled with a new key and no wallet, gets its share back from a repair', async () => {
  const wallet = ed25519WalletWithChrome('cli1');
  const key = wallet.group_public_key;
  // The reinstall: no wallet, and a new identity key.
  await popup.evaluate(async (k) => {
    const { wallets } = await chrome.storage.local.get('wallets');
    const kept = Object.fromEntries(Object.entries(wallets).filter(([, f]) => JSON.parse(f).group_public_key !== k));
    await chrome.storage.local.set({ wallets: kept });
  }, key);
  const old = await storageGet('identity');
  await identityKeyEntry('take');
  await restartNode();
  await waitFor('the popup to report the identity', () => popup.isVisible('#identity-problem'));
  await popup.click('#new-identity');
  await waitFor('a new identity', async () => (await storageGet('identity'))?.public_key !== old.public_key);
  const fresh = (await storageGet('identity')).public_key;
  // The server bound chrome1 to its old key: a new server (same address)
  // stands for the binding lapsing.
  const addr = new URL(url).host;
  server.kill();
  await new Promise((r) => server.once('exit', r));
  [server] = await startServer(addr);
  await waitFor('chrome1 to register with its new key', async () => (await popupText('#status')) === 'registered');
  // Each helper checks the new key out of band, then pins it.
  for (const id of ['cli1', 'cli2']) {
    const r = spawnSync(join(BIN, 'mpc-wallet'), cliArgs(id, ['trust', 'chrome1', fresh]), { env: cliEnv });
    assert.equal(r.status, 0, String(r.stderr));
  }
  const helper = cli('cli2', ['join', '--approve-repair', key]);
  await waitRegistered(['cli2', 'chrome1']);
  const proposer = cli('cli1', ['repair', '--wallet', key, '--for', 'chrome1', '--helpers', 'cli1,cli2']);
  await popup.waitForSelector('#proposal:not([hidden])', { timeout: 30000 });
  assert.match(await popupText('#proposal-text'), /repair proposal received from cli1: cli1, cli2 rebuild the share of chrome1/);
  await popup.fill('#passphrase-accept', PASS);
  await popup.click('#accept');
  const [r1, r2] = await Promise.all([proposer, helper]);
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(r1.json.repaired, 'chrome1');
  await waitFor('the rebuilt wallet in storage', async () => (await chromeFileOf(key))?.peer_id === 'chrome1');
  const row = popup.locator(`#wallets li[data-group-key="${key}"]`);
  await waitFor('the rebuilt wallet in the list', async () => (await row.count()) === 1);
  await signWithChrome(key, 'signed by a rebuilt share');
});

// Last: it gives chrome1 a new key, which the server's binding and the CLI
// nodes' pins then refuse.
test('finding 14: "Create a new identity" replaces an unopenable identity only when asked, keeping the old record', async () => {
  const refused = await toNode({ op: 'new_identity' });
  assert.match(refused.error, /identity opens: it is not replaced/);
  const fp = await popupText('#fingerprint');
  const record = await storageGet('identity');
  await identityKeyEntry('take');
  await restartNode();
  await waitFor('the popup to report the identity', () => popup.isVisible('#identity-problem'));
  assert.deepEqual(await storageGet('identity'), record);
  await popup.click('#new-identity');
  await waitFor('a new identity', async () => {
    const now = await popupText('#fingerprint');
    return now && now !== fp && !(await popup.isVisible('#identity-problem'));
  });
  const fresh = await storageGet('identity');
  assert.notEqual(fresh.public_key, record.public_key);
  assert.deepEqual((await storageGet('identity_replaced')).at(-1).record, record);
  await popup.screenshot({ path: join(ARTIFACTS, 'popup-new-identity.png'), fullPage: true });
});
