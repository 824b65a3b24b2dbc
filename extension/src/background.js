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

const DEFAULT_SETTINGS = { server: 'ws://127.0.0.1:8787/ws', peer_id: '', scrypt_log_n: 18 };

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
      await chrome.storage.local.set({ settings: next });
      return next;
    }
    case 'get_identity': {
      const { identity } = await chrome.storage.local.get('identity');
      return identity || null;
    }
    case 'set_identity':
      // Ciphertext only: the key that opens it never leaves IndexedDB.
      await chrome.storage.local.set({ identity: msg.identity });
      return { ok: true };
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
