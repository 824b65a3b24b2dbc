// Service worker: thin. It makes sure the offscreen document (the node
// runtime) exists, and owns chrome.storage for everyone (the offscreen
// document has no chrome.storage). Chrome may stop it at any time; nothing
// here lives in memory across events.

const OFFSCREEN = 'offscreen.html';

async function ensureOffscreen() {
  const contexts = await chrome.runtime.getContexts({ contextTypes: ['OFFSCREEN_DOCUMENT'] });
  if (contexts.length > 0) return;
  try {
    await chrome.offscreen.createDocument({
      url: OFFSCREEN,
      reasons: ['WEB_RTC'],
      justification: 'The wallet node keeps its signaling WebSocket and WebRTC data channels here.',
    });
  } catch (e) {
    // Two callers raced; one document is all we need.
    if (!String(e).includes('Only a single offscreen')) throw e;
  }
}

const DEFAULT_SETTINGS = { server: 'ws://127.0.0.1:8787/ws', peer_id: '', scrypt_log_n: 18, timeout_secs: 60 };

// Whole numbers in range, or why not. The scrypt work factor is checked
// again in the wasm before a share is sealed (finding 18: 0 crashed the
// core after the DKG, 1-14 is cheap to guess).
const LIMITS = {
  scrypt_log_n: [15, 22, 'the scrypt work factor (log N)'],
  timeout_secs: [5, 600, 'the timeout (seconds)'],
};

function invalidSetting(settings) {
  for (const [key, [lo, hi, what]] of Object.entries(LIMITS)) {
    const v = settings[key];
    if (!Number.isInteger(v) || v < lo || v > hi) return `${what} must be a whole number from ${lo} to ${hi}, not ${v}`;
  }
  return null;
}

async function handle(msg) {
  switch (msg.op) {
    case 'ensure':
      await ensureOffscreen();
      return { ok: true };
    case 'get_settings': {
      const { settings } = await chrome.storage.local.get('settings');
      return { ...DEFAULT_SETTINGS, ...(settings || {}) };
    }
    case 'set_settings': {
      const { settings } = await chrome.storage.local.get('settings');
      const next = { ...DEFAULT_SETTINGS, ...(settings || {}), ...msg.settings };
      const invalid = invalidSetting(next);
      if (invalid) return { error: `not saved: ${invalid}` };
      await chrome.storage.local.set({ settings: next });
      return next;
    }
    case 'get_identity': {
      const { identity } = await chrome.storage.local.get('identity');
      return identity || null;
    }
    case 'set_identity': {
      // The sealed record only: the key that opens it never leaves
      // IndexedDB, and the seed never leaves the wasm. An identity is
      // replaced only when the user asked (`replace`), and the old record
      // is kept.
      const { identity, identity_replaced } = await chrome.storage.local.get(['identity', 'identity_replaced']);
      if (identity && !msg.replace) return { error: 'an identity is already stored: it is not replaced silently' };
      const kept = identity ? [...(identity_replaced || []), { replaced_at: Date.now(), record: identity }] : identity_replaced;
      await chrome.storage.local.set({ identity: msg.identity, ...(kept ? { identity_replaced: kept } : {}) });
      return { ok: true };
    }
    case 'get_known_peers': {
      const { known_peers } = await chrome.storage.local.get('known_peers');
      return known_peers || '';
    }
    case 'set_known_peers':
      await chrome.storage.local.set({ known_peers: msg.text });
      return { ok: true };
    case 'wallets': {
      const { wallets } = await chrome.storage.local.get('wallets');
      return wallets || {};
    }
    case 'put_wallet': {
      const { wallets } = await chrome.storage.local.get('wallets');
      const all = wallets || {};
      if (all[msg.id] && !msg.replace) return { error: `wallet ${msg.id} already exists` };
      all[msg.id] = msg.file;
      await chrome.storage.local.set({ wallets: all });
      return { ok: true };
    }
    case 'put_pending': {
      // A refreshed share, kept beside the current one until every
      // participant stored theirs (then 'promote').
      const { pending_wallets } = await chrome.storage.local.get('pending_wallets');
      await chrome.storage.local.set({ pending_wallets: { ...(pending_wallets || {}), [msg.id]: msg.file } });
      return { ok: true };
    }
    case 'promote': {
      const { wallets, pending_wallets } = await chrome.storage.local.get(['wallets', 'pending_wallets']);
      const pending = { ...(pending_wallets || {}) };
      const file = pending[msg.id];
      const generation = file ? (JSON.parse(file).generation || 0) : null;
      if (generation !== msg.generation) {
        return { error: `wallet ${msg.id} has no pending share of generation ${msg.generation}` };
      }
      // One write replaces the current share and drops the pending one.
      await chrome.storage.local.set({
        wallets: { ...(wallets || {}), [msg.id]: file },
        pending_wallets: Object.fromEntries(Object.entries(pending).filter(([k]) => k !== msg.id)),
      });
      return { ok: true };
    }
    default:
      return { error: `unknown op ${msg.op}` };
  }
}

chrome.runtime.onMessage.addListener((msg, _sender, reply) => {
  if (msg?.target !== 'sw') return false;
  handle(msg).then(reply, (e) => reply({ error: String(e) }));
  return true; // reply is async
});

chrome.runtime.onStartup.addListener(() => { ensureOffscreen(); });
chrome.runtime.onInstalled.addListener(() => { ensureOffscreen(); });
ensureOffscreen();
