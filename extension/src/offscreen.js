// The node runtime: the signaling WebSocket, one RTCPeerConnection per
// peer, and the wasm core. Like the CLI's tokio driver, it decides
// nothing: socket, channel and timer activity become core events, and the
// core's actions are carried out in order. The one exception: a finished
// wallet is sealed and stored before anything else in its batch (such as
// wallet_created) goes out.
//
// The identity key's seed never reaches this file: the wasm opens the
// sealed record with the WebCrypto key and hands back an opaque handle.

import init, {
  WasmNode, check_seal_params, create_identity, fingerprint, open_identity, wallet_info, with_confirmation,
} from './wasm/mpc_wasm.js';

// A message wakes a stopped service worker, but one sent while it is
// stopping can be lost (no reply, or no receiver). Reads are retried;
// writes are not, so nothing is written twice.
const SW_READS = new Set(['ensure', 'get_settings', 'get_identity', 'get_known_peers', 'wallets']);
async function sw(op, extra = {}) {
  const tries = SW_READS.has(op) ? 5 : 1;
  for (let i = 1; ; i += 1) {
    try {
      const r = await chrome.runtime.sendMessage({ target: 'sw', op, ...extra });
      if (r !== undefined || i >= tries) return r;
    } catch (e) {
      if (i >= tries) throw e;
    }
    await new Promise((done) => setTimeout(done, 200 * i));
  }
}

const state = {
  connection: 'starting',
  settings_loaded: false,
  settings: null, // the settings this run uses
  peer_id: '',
  server: '',
  fingerprint: '',
  // {ok: true}, or {ok: false, error}: the stored identity cannot be
  // opened, and nothing replaces it unless the user asks (new_identity).
  identity: null,
  peers: [],
  progress: [],
  proposal: null, // needs_decision awaiting the user
  sign_request: null, // needs_sign_decision awaiting the user
  session: null,
  // The finished wallet, with `confirmation`: 'pending' until every other
  // participant confirmed storing its share, then 'confirmed' or
  // 'unconfirmed' (with `missing`, `reason`).
  result: null,
  signature: null,
  error: null,
  wallets: [],
};

let node = null;
let identity = null; // the wasm's Identity handle: no seed on this side
let ws = null;
let settings = null;
// How the share of the key generation this node accepted or proposed is
// sealed: {passphrase, log_n}, checked before the accept or proposal.
let sessionSeal = null;
const pcs = new Map(); // peer -> { pc, dc, remoteSet, candidates: [] }
const t0 = performance.now();

function publish() {
  chrome.runtime.sendMessage({ target: 'popup', type: 'state', state }).catch(() => {});
}

function note(text) {
  state.progress.push(text);
  if (state.progress.length > 200) state.progress.shift();
  publish();
}

// ---- identity: the seed is sealed (AES-GCM) under a non-extractable key
// that stays in this origin's IndexedDB; the wasm seals and opens it, and
// this side holds only the sealed record and the key's handle ----

function idb() {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open('mpc-wallet', 1);
    r.onupgradeneeded = () => r.result.createObjectStore('keys');
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

async function idbGet(key) {
  const db = await idb();
  return new Promise((resolve, reject) => {
    const r = db.transaction('keys').objectStore('keys').get(key);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

async function idbPut(key, value) {
  const db = await idb();
  return new Promise((resolve, reject) => {
    const tx = db.transaction('keys', 'readwrite');
    tx.objectStore('keys').put(value, key);
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
  });
}

/** The stored identity can't be opened; shown to the user, never papered over. */
class IdentityUnavailable extends Error {}

/**
 * Opens the stored identity. A new one is made only on a first start
 * (nothing stored at all): a lost or unreadable identity is reported
 * (finding 14), and replaced only by the user's explicit new_identity.
 */
async function loadIdentity() {
  const wrap = await idbGet('identity-wrap');
  const stored = await sw('get_identity');
  if (!stored && !wrap) {
    const wallets = await sw('wallets');
    const pinned = await sw('get_known_peers');
    if (Object.keys(wallets || {}).length === 0 && !pinned) return createIdentity(false);
    throw new IdentityUnavailable('This extension holds wallets or pinned peers, but its identity key is gone '
      + 'from its storage.');
  }
  if (!stored) throw new IdentityUnavailable('The identity key\'s sealed record is missing from chrome.storage.');
  if (!wrap) {
    throw new IdentityUnavailable('The browser key that opens your identity is missing from this extension\'s '
      + 'IndexedDB, so the identity cannot be opened.');
  }
  try {
    return await open_identity(wrap, JSON.stringify(stored));
  } catch (e) {
    throw new IdentityUnavailable(`Your identity cannot be opened: ${e.message || e}.`);
  }
}

/** A new identity, sealed in the wasm under a new non-extractable key. */
async function createIdentity(replacing) {
  const wrap = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
  const fresh = await create_identity(wrap);
  if (replacing) {
    // The old key, if any, stays: the old record might still open with it.
    const old = await idbGet('identity-wrap');
    if (old) await idbPut(`identity-wrap-replaced-${Date.now()}`, old);
  }
  await idbPut('identity-wrap', wrap);
  const r = await sw('set_identity', { identity: JSON.parse(fresh.sealed_record()), replace: replacing });
  if (r?.error) throw new Error(r.error);
  return fresh;
}

function fingerprintOf(publicKey) {
  try { return fingerprint(publicKey); } catch { return ''; }
}

// ---- the event queue: one event at a time, actions carried out in order ----

let queue = Promise.resolve();

function enqueue(event) {
  queue = queue.then(() => step(event)).catch((e) => {
    console.error('step failed', e);
    state.error = String(e);
    publish();
  });
  return queue;
}

async function step(event) {
  if (!node) return;
  let actions;
  if (event.type === 'sign_decision') {
    actions = JSON.parse(node.sign_decision(event.session_id, event.file, event.passphrase, event.reason));
  } else if (event.type === 'refresh_decision') {
    actions = JSON.parse(node.refresh_decision(event.session_id, event.file, event.passphrase, event.reason));
  } else if (event.type === 'repair_decision') {
    actions = JSON.parse(node.repair_decision(event.session_id, event.accept, event.reason));
  } else {
    actions = JSON.parse(node.handle(JSON.stringify(event)));
  }
  await carryOut(actions);
}

async function carryOut(actions) {
  // Stored before anything of the batch is sent: it tells the others.
  const finished = actions.findIndex((a) => a.type === 'finished');
  if (finished >= 0) {
    await store(actions[finished]);
  }
  const refreshed = actions.findIndex((a) => a.type === 'refreshed');
  if (refreshed >= 0) {
    await storePending();
  }
  for (const a of actions) {
    try {
      await act(a);
    } catch (e) {
      console.warn('action failed', a.type, e);
    }
  }
  // A session is over: its peers (CLI processes, often) go away, and a
  // channel to a vanished peer can look open for many seconds. Retire
  // this session's channels: the core stops counting on them now (the
  // next session connects afresh), and they close once the last messages
  // are out. A new wallet's session ends with its confirmation, not when
  // it finished: the others' wallet_created still come on these channels.
  const over = ['wallet_confirmed', 'wallet_unconfirmed', 'signed', 'aborted', 'refresh_confirmed', 'refresh_unconfirmed'];
  if (actions.some((a) => over.includes(a.type))) {
    retireAll();
  }
}

async function store(w) {
  // Checked before the accept or proposal; the wasm checks them again.
  const seal = sessionSeal;
  if (!seal) throw new Error('no passphrase to encrypt the share');
  const file = node.seal_finished(seal.passphrase, seal.log_n, Math.floor(Date.now() / 1000));
  const info = JSON.parse(wallet_info(file, 'mainnet'));
  const r = await sw('put_wallet', { id: info.id, file });
  if (r?.error) throw new Error(r.error);
  sessionSeal = null;
  // The file says 'pending': not to be funded until every participant
  // confirmed storing its share.
  state.result = { ...w, id: info.id, addresses: info.addresses, confirmation: info.confirmation };
  await refreshWallets();
}

// A refresh's new share, sealed under the passphrase that opened the
// current one, and kept pending beside it (in storage: a restart of this
// document loses nothing).
async function storePending() {
  const seal = sessionSeal;
  if (!seal) throw new Error('no passphrase to encrypt the new share');
  const file = node.seal_finished(seal.passphrase, seal.log_n, Math.floor(Date.now() / 1000));
  const info = JSON.parse(wallet_info(file, 'mainnet'));
  const r = await sw('put_pending', { id: info.id, file });
  if (r?.error) throw new Error(r.error);
  sessionSeal = null;
}

// Every participant stored its new share: it replaces the current one.
async function promote(a) {
  const found = await findWallet(a.group_public_key);
  const r = found ? await sw('promote', { id: found.id, generation: a.generation }) : { error: 'no such wallet' };
  if (r?.error) {
    note(`refresh of ${a.group_public_key} confirmed, but: ${r.error}`);
    return;
  }
  // As the CLI records it: every participant confirmed.
  await confirmation({ group_public_key: a.group_public_key }, true);
  state.refreshed = { group_public_key: a.group_public_key, generation: a.generation };
  await refreshWallets();
  note(`wallet ${a.group_public_key} refreshed: generation ${a.generation}, the old share erased`);
}

/**
 * A wallet_confirmed or wallet_unconfirmed: recorded in the wallet's file
 * (as the CLI records it, so an exported file carries it) and shown.
 */
async function confirmation(a, confirmed) {
  const missing = confirmed ? [] : (a.missing || []);
  const found = await findWallet(a.group_public_key);
  if (found) {
    const updated = with_confirmation(found.file, missing);
    const r = await sw('put_wallet', { id: found.id, file: updated, replace: true });
    if (r?.error) note(`could not record the confirmation: ${r.error}`);
  }
  const status = confirmed
    ? { confirmation: 'confirmed' }
    : { confirmation: 'unconfirmed', missing, reason: a.reason || '' };
  if (state.result?.group_public_key === a.group_public_key) state.result = { ...state.result, ...status };
  // The wallet list first, so the popup shows the result and the list alike.
  await refreshWallets();
  note(confirmed
    ? `wallet ${a.group_public_key}: every participant confirmed storing its share`
    : `wallet ${a.group_public_key} NOT confirmed: ${missing.join(', ')} never confirmed storing `
      + `a share (${a.reason}). Do not fund this address.`);
}

async function act(a) {
  switch (a.type) {
    case 'send_signal':
      if (ws?.readyState === WebSocket.OPEN) ws.send(a.text);
      break;
    case 'send_peer': {
      const p = pcs.get(a.to);
      if (p?.dc?.readyState === 'open') p.dc.send(a.text);
      else enqueue({ type: 'channel_closed', peer: a.to });
      break;
    }
    case 'connect':
      connectPeer(a.peer, a.offerer);
      break;
    case 'webrtc_signal':
      await applySignal(a.from, a.signal);
      break;
    case 'pin_key':
      note(`pinned ${a.peer}'s identity key on first use: fingerprint ${a.fingerprint}`);
      await sw('set_known_peers', { text: node.known_peers() });
      break;
    case 'progress':
      await onProgress(a);
      break;
    case 'finished':
      note(`wallet created: ${a.group_public_key} (waiting for every participant to confirm it stored its share)`);
      break;
    case 'wallet_confirmed':
      await confirmation(a, true);
      break;
    case 'wallet_unconfirmed':
      await confirmation(a, false);
      break;
    case 'refreshed':
      note(`new share of ${a.group_public_key} stored as pending (generation ${a.generation})`);
      break;
    case 'refresh_confirmed':
      await promote(a);
      break;
    case 'refresh_unconfirmed':
      state.error = `the refresh of ${a.group_public_key} is not confirmed by ${(a.missing || []).join(', ')} `
        + `(${a.reason}): this extension keeps signing with its current share`;
      note(state.error);
      break;
    case 'signed':
      state.signature = a;
      state.sign_request = null;
      note(`signature ${a.signature}`);
      break;
    case 'aborted':
      state.error = `session ${a.session_id} aborted: ${a.reason}`;
      state.proposal = null;
      state.sign_request = null;
      sessionSeal = null;
      note(state.error);
      break;
    case 'rejected':
      console.debug('rejected', a.from, a.reason);
      break;
  }
}

// Every participant's key fingerprint in a proposal, new ones marked.
function participantKeys(p) {
  const keys = p.proposal?.keys || {};
  const fresh = new Set((p.new_keys || []).map((k) => k.peer));
  return Object.entries(keys).map(([peer, key]) => {
    let fp;
    try { fp = fingerprint(key); } catch { fp = 'invalid key'; }
    return { peer, fingerprint: fp, new: fresh.has(peer) };
  });
}

async function onProgress(p) {
  switch (p.event) {
    case 'registered':
      state.connection = 'registered';
      // Presence push for the peer list (the core gets every frame too).
      // The list comes in pages; watchPeers asks for the next ones.
      state.peers = [];
      listedAfter = '';
      ws.send(JSON.stringify({ type: 'list_peers', watch: true }));
      break;
    case 'needs_decision':
      state.error = null; // an earlier session's; this one starts afresh
      state.proposal = { from: p.from, proposal: p.proposal, new_keys: p.new_keys, keys: participantKeys(p), text: p.text };
      break;
    case 'needs_refresh_decision':
    case 'needs_repair_decision':
      state.error = null;
      // Shown and answered like a key generation proposal: Accept with
      // the passphrase (of the current share, or of the share rebuilt).
      state.proposal = {
        kind: p.event === 'needs_refresh_decision' ? 'refresh' : 'repair',
        from: p.from, proposal: p.proposal, new_keys: p.new_keys, keys: participantKeys(p), text: p.text,
      };
      break;
    case 'needs_sign_decision':
      state.error = null;
      state.sign_request = { from: p.from, proposal: p.proposal, new_keys: p.new_keys, keys: participantKeys(p), text: p.text };
      break;
    case 'peers':
      return; // the watch list below keeps the peer list
    default:
      break;
  }
  note(p.text);
}

// ---- WebRTC ----

function connectPeer(peer, offerer) {
  if (pcs.has(peer)) forget(peer);
  const pc = new RTCPeerConnection({ iceServers: [] });
  const entry = { pc, dc: null, remoteSet: false, candidates: [], localReady: false, localCandidates: [] };
  pcs.set(peer, entry);
  pc.onicecandidate = (e) => {
    if (!e.candidate || !e.candidate.candidate) return;
    const signal = {
      type: 'ice-candidate',
      candidate: e.candidate.candidate,
      sdpMid: e.candidate.sdpMid,
      sdpMLineIndex: e.candidate.sdpMLineIndex,
    };
    // Candidates follow our offer or answer.
    if (entry.localReady) enqueue({ type: 'local_signal', to: peer, signal });
    else entry.localCandidates.push(signal);
  };
  pc.ondatachannel = (e) => setupChannel(peer, e.channel);
  pc.onconnectionstatechange = () => {
    if (['failed', 'closed'].includes(pc.connectionState)) closed(peer, entry);
  };
  if (offerer) {
    setupChannel(peer, pc.createDataChannel('mpc', { ordered: true }));
    (async () => {
      await pc.setLocalDescription(await pc.createOffer());
      await enqueue({ type: 'local_signal', to: peer, signal: { type: 'offer', sdp: pc.localDescription.sdp } });
      flushLocal(peer);
    })().catch((e) => console.warn('offer failed', e));
  }
}

function flushLocal(peer) {
  const entry = pcs.get(peer);
  if (!entry) return;
  entry.localReady = true;
  for (const signal of entry.localCandidates.splice(0)) enqueue({ type: 'local_signal', to: peer, signal });
}

function setupChannel(peer, dc) {
  const entry = pcs.get(peer);
  entry.dc = dc;
  // Events of a connection that was replaced or closed are ignored.
  const current = () => pcs.get(peer) === entry;
  dc.onopen = () => { if (current()) enqueue({ type: 'channel_open', peer }); };
  dc.onmessage = (e) => { if (current()) enqueue({ type: 'peer', from: peer, text: e.data }); };
  dc.onclose = () => closed(peer, entry);
}

/** `entry`'s channel is gone: tell the core, once, if it is current. */
function closed(peer, entry) {
  if (pcs.get(peer) !== entry) return;
  forget(peer);
  enqueue({ type: 'channel_closed', peer });
}

function forget(peer) {
  const entry = pcs.get(peer);
  pcs.delete(peer);
  try { entry?.pc.close(); } catch { /* already closed */ }
}

async function applySignal(from, signal) {
  if (!pcs.has(from)) connectPeer(from, false);
  const entry = pcs.get(from);
  const { pc } = entry;
  if (signal.type === 'offer' || signal.type === 'answer') {
    await pc.setRemoteDescription({ type: signal.type, sdp: signal.sdp });
    entry.remoteSet = true;
    for (const c of entry.candidates.splice(0)) await pc.addIceCandidate(c).catch(() => {});
    if (signal.type === 'offer') {
      await pc.setLocalDescription(await pc.createAnswer());
      await enqueue({ type: 'local_signal', to: from, signal: { type: 'answer', sdp: pc.localDescription.sdp } });
      flushLocal(from);
    }
  } else if (signal.type === 'ice-candidate') {
    const c = { candidate: signal.candidate, sdpMid: signal.sdpMid ?? '0', sdpMLineIndex: signal.sdpMLineIndex ?? 0 };
    if (entry.remoteSet) await pc.addIceCandidate(c).catch(() => {});
    else entry.candidates.push(c);
  }
}

function retireAll() {
  const ending = [...pcs.entries()];
  for (const [peer] of ending) enqueue({ type: 'channel_closed', peer });
  setTimeout(() => {
    // Only this session's connections: a newer one to the same peer stays.
    for (const [peer, entry] of ending) if (pcs.get(peer) === entry) forget(peer);
  }, 1000);
}

// ---- signaling ----

function connect() {
  state.connection = 'connecting';
  publish();
  const socket = new WebSocket(settings.server);
  ws = socket;
  // A connection attempt that hangs is abandoned (onclose retries).
  setTimeout(() => { if (socket.readyState === WebSocket.CONNECTING) socket.close(); }, 5000);
  ws.onopen = () => {
    state.connection = 'connected';
    publish();
    enqueue({ type: 'register' });
  };
  ws.onmessage = (e) => {
    watchPeers(e.data);
    enqueue({ type: 'server', text: e.data });
  };
  ws.onclose = () => {
    state.connection = 'disconnected';
    publish();
    // Reconnect and re-register; the session state lives in the core.
    setTimeout(() => { if (ws?.readyState !== WebSocket.OPEN) connect(); }, 1000);
  };
}

// The last id of the watch list's pages so far; null once it is complete.
let listedAfter = null;

function watchPeers(text) {
  let m;
  try { m = JSON.parse(text); } catch { return; }
  if (m.type === 'peers') {
    // A `peers` with `keys` answers the core's own list_peers (only the
    // participants of a proposal): not the watch list.
    if (m.keys || listedAfter === null) return;
    state.peers = [...new Set([...state.peers, ...m.peers])].sort();
    // Another page follows only if the cursor moves forward: a server
    // that repeats itself cannot make this loop.
    if (typeof m.next === 'string' && m.next > listedAfter) {
      listedAfter = m.next;
      ws.send(JSON.stringify({ type: 'list_peers', after: m.next }));
    } else {
      listedAfter = null;
    }
  } else if (m.type === 'peer_joined' && !state.peers.includes(m.peer_id)) state.peers = [...state.peers, m.peer_id].sort();
  else if (m.type === 'peer_left') state.peers = state.peers.filter((p) => p !== m.peer_id);
  else return;
  publish();
}

async function refreshWallets() {
  const files = await sw('wallets');
  // A file whose cleartext disagrees with itself is listed as an error,
  // never with an address (finding 15).
  state.wallets = Object.entries(files).map(([id, f]) => {
    try {
      return JSON.parse(wallet_info(f, 'mainnet'));
    } catch (e) { return { id, error: String(e.message || e) }; }
  });
  publish();
}

async function start() {
  await init();
  settings = await sw('get_settings');
  state.settings = settings;
  state.peer_id = settings.peer_id;
  state.server = settings.server;
  state.settings_loaded = true;
  try {
    identity = await loadIdentity();
  } catch (e) {
    if (!(e instanceof IdentityUnavailable)) throw e;
    // No node runs: it would have to sign as someone else.
    const stored = await sw('get_identity');
    state.identity = { ok: false, error: e.message };
    state.fingerprint = stored?.public_key ? fingerprintOf(stored.public_key) : '';
    state.connection = 'identity unavailable';
    await refreshWallets();
    return;
  }
  state.identity = { ok: true };
  state.fingerprint = identity.fingerprint();
  await refreshWallets();
  if (!settings.peer_id) {
    state.connection = 'not configured';
    publish();
    return;
  }
  node = new WasmNode(JSON.stringify({
    peer_id: settings.peer_id,
    known_peers: await sw('get_known_peers'),
    timeout_ms: (settings.timeout_secs ?? 60) * 1000,
    // A signed register names the server (review finding 16): the host
    // the browser sends as Host for this URL.
    server_host: serverHost(settings.server),
  }), identity);
  connect();
  setInterval(() => enqueue({ type: 'tick', now: performance.now() - t0 }), 200);
}

/** The host[:port] of a ws:// or wss:// URL, as the browser sends it in Host. */
function serverHost(url) {
  try { return new URL(url).host.toLowerCase() || null; } catch { return null; }
}

// ---- requests from the popup ----

/** The stored wallet with this group key, as `{id, file}` (bad files skipped). */
async function findWallet(groupKey) {
  const files = await sw('wallets');
  const found = Object.entries(files).find(([, f]) => {
    try { return JSON.parse(wallet_info(f, 'mainnet')).group_public_key === groupKey; } catch { return false; }
  });
  return found && { id: found[0], file: found[1] };
}

// A refresh (with the current share, opened by the passphrase that also
// seals the new one) or a repair of this extension's lost share.
async function decideLifecycle(p, msg) {
  const sid = p.proposal.session_id;
  const reason = msg.accept ? undefined : 'declined by user';
  if (msg.accept) {
    const seal = await sealFor(msg.passphrase);
    if (seal.error) return { error: `not accepted: ${seal.error}` };
    sessionSeal = seal;
  }
  state.proposal = null;
  state.error = null;
  if (p.kind === 'repair') {
    await enqueue({ type: 'repair_decision', session_id: sid, accept: !!msg.accept, reason });
    return { ok: true };
  }
  const file = msg.accept ? (await findWallet(p.proposal.group_public_key))?.file : undefined;
  await enqueue({
    type: 'refresh_decision',
    session_id: sid,
    file: msg.accept && file ? file : undefined,
    passphrase: msg.accept && file ? msg.passphrase : undefined,
    reason: reason || (file ? undefined : 'this extension has no such wallet'),
  });
  return { ok: true };
}

// A click names the request it was made on (finding 11): one that is no
// longer pending (it ended, or another replaced it) is refused.
const STALE = 'That request is no longer the one waiting (it ended, or another replaced it): '
  + 'nothing was done. Check the request shown now.';

/** How the new share will be sealed, if the passphrase and settings do for it. */
async function sealFor(passphrase) {
  // The saved settings, even if this run started with older ones.
  const { scrypt_log_n: logN } = await sw('get_settings');
  try {
    check_seal_params(passphrase ?? '', Number(logN));
  } catch (e) {
    const fix = /work factor/.test(e.message) ? ' (Settings: scrypt log N)' : '';
    return { error: `${e.message}${fix}` };
  }
  return { passphrase, log_n: Number(logN) };
}

async function request(msg) {
  switch (msg.op) {
    case 'state':
      return state;
    case 'create': {
      const seal = await sealFor(msg.passphrase);
      if (seal.error) return { error: `not proposed: ${seal.error}` };
      sessionSeal = seal;
      state.error = null;
      state.result = null;
      await enqueue({ type: 'create', participants: msg.participants, threshold: msg.threshold, curve: msg.curve });
      return { ok: true };
    }
    case 'decide': {
      const p = state.proposal;
      if (!p || msg.session_id !== p.proposal.session_id) return { error: STALE };
      if (p.kind === 'refresh' || p.kind === 'repair') return decideLifecycle(p, msg);
      if (msg.accept) {
        // Before accepting, not after the DKG (finding 4).
        const seal = await sealFor(msg.passphrase);
        if (seal.error) return { error: `not accepted: ${seal.error}` };
        sessionSeal = seal;
      }
      state.proposal = null;
      state.error = null;
      await enqueue({
        type: 'decision',
        session_id: p.proposal.session_id,
        accept: !!msg.accept,
        reason: msg.accept ? undefined : 'declined by user',
      });
      return { ok: true };
    }
    case 'sign_decide': {
      const r = state.sign_request;
      if (!r || msg.session_id !== r.proposal.session_id) return { error: STALE };
      if (msg.accept && !msg.passphrase) return { error: 'not approved: enter the wallet\'s passphrase' };
      const file = msg.accept ? (await findWallet(r.proposal.group_public_key))?.file : undefined;
      state.sign_request = null;
      await enqueue({
        type: 'sign_decision',
        session_id: r.proposal.session_id,
        file: msg.accept && file ? file : undefined,
        passphrase: msg.accept && file ? msg.passphrase : undefined,
        reason: !msg.accept ? 'declined by user' : file ? undefined : 'this extension has no such wallet',
      });
      return { ok: true };
    }
    case 'sign': {
      const file = (await findWallet(msg.group_public_key))?.file;
      if (!file) return { error: 'no such wallet' };
      state.signature = null;
      state.error = null;
      await enqueue({
        type: 'sign', file, passphrase: msg.passphrase, message_hex: msg.message_hex,
        format: msg.format, psbt: msg.psbt, transaction: msg.transaction, signers: msg.signers,
      });
      return { ok: true };
    }
    case 'refresh_wallets':
      await refreshWallets();
      return { ok: true };
    case 'restart':
      location.reload();
      return { ok: true };
    case 'new_identity':
      // Only on the user's request, and only when the stored one can't be opened.
      if (state.identity?.ok !== false) return { error: 'this extension\'s identity opens: it is not replaced' };
      await createIdentity(true);
      setTimeout(() => location.reload(), 50);
      return { ok: true };
    default:
      return { error: `unknown op ${msg.op}` };
  }
}

chrome.runtime.onMessage.addListener((msg, _sender, reply) => {
  if (msg?.target !== 'offscreen') return false;
  request(msg).then(reply, (e) => reply({ error: String(e) }));
  return true;
});

start().catch((e) => {
  state.connection = 'failed';
  state.error = String(e);
  publish();
});
