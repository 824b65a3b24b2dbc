// The popup: a view. It reads the node's state from the offscreen
// document and sends it the user's requests, all as runtime messages.

import init, { wallet_info, check_passphrase } from './wasm/mpc_wasm.js';

const $ = (id) => document.getElementById(id);
const sw = (op, extra = {}) => chrome.runtime.sendMessage({ target: 'sw', op, ...extra });
const node = (op, extra = {}) => chrome.runtime.sendMessage({ target: 'offscreen', op, ...extra });

// What a new wallet's confirmation means for funding it (finding 4).
function confirmationText(w) {
  switch (w.confirmation) {
    case 'pending':
      return ['warn', 'Waiting for every participant to confirm it stored its share. Do not fund this address yet.'];
    case 'confirmed':
      return ['ok', 'Confirmed: every participant stored its share.'];
    case 'unconfirmed': {
      const who = (w.missing || []).join(', ') || 'a participant';
      return ['error', `NOT confirmed: ${who} never confirmed storing its share`
        + `${w.reason ? ` (${w.reason})` : ''}. Do not fund this address.`];
    }
    default:
      return ['', ''];
  }
}

/** Shows request `s` (or none) in `section`, tagged with its session id. */
function showRequest(section, s, errorId) {
  $(section).hidden = !s;
  const id = s?.proposal?.session_id || '';
  // A new request: the old one's messages don't apply to it.
  if ($(section).dataset.sessionId !== id) $(errorId).textContent = '';
  $(section).dataset.sessionId = id;
}

function render(s) {
  if (!s) return;
  $('status').textContent = s.connection;
  $('me').textContent = s.peer_id || '(no peer id)';
  $('fingerprint').textContent = s.fingerprint;
  const lost = s.identity?.ok === false;
  $('identity-state').textContent = lost ? '(cannot be opened)' : '';
  $('identity-problem').hidden = !lost;
  $('identity-error').textContent = lost ? s.identity.error : '';
  const peers = $('peers');
  const checked = new Set([...peers.querySelectorAll('input:checked')].map((i) => i.value));
  peers.replaceChildren(...s.peers.map((p) => {
    const li = document.createElement('li');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.value = p;
    box.checked = checked.has(p) || p === s.peer_id;
    const label = document.createElement('label');
    label.append(box, ` ${p}`);
    li.append(label);
    return li;
  }));
  showRequest('proposal', s.proposal, 'proposal-error');
  if (s.proposal) {
    const keys = (s.proposal.keys || []).map((k) => `${k.peer} [${k.fingerprint}]${k.new ? ' (new)' : ''}`).join('\n');
    $('proposal-text').textContent = s.proposal.text + (keys ? `\nkeys:\n${keys}` : '');
  }
  showRequest('sign-request', s.sign_request, 'sign-error');
  if (s.sign_request) $('sign-text').textContent = s.sign_request.text;
  $('progress').textContent = s.progress.slice(-12).join('\n');
  $('error').textContent = s.error || '';
  $('result').hidden = !s.result;
  if (s.result) {
    $('group-key').textContent = s.result.group_public_key;
    const a = s.result.addresses || {};
    $('address').textContent = a.bitcoin_taproot || a.solana || a.ethereum || '';
    const [cls, text] = confirmationText(s.result);
    $('wallet-status').className = cls;
    $('wallet-status').textContent = text;
    $('copy').disabled = s.result.confirmation !== 'confirmed';
  }
  $('signature').textContent = s.signature ? s.signature.signature : '';
  // A transaction as the core finished it: the raw hex once every input
  // is final, else the PSBT with this wallet's inputs signed.
  const tx = s.signature?.transaction;
  $('transaction-row').hidden = !tx;
  $('transaction').textContent = tx ? (tx.tx_hex || tx.psbt || tx.raw_tx || tx.transaction) : '';
  const select = $('sign-wallet');
  const chosen = select.value;
  select.replaceChildren(...s.wallets.filter((w) => w.group_public_key).map((w) => {
    const o = document.createElement('option');
    o.value = w.group_public_key;
    o.textContent = `${w.id} (${w.threshold}-of-${w.participants.length} ${w.curve})`;
    return o;
  }));
  if (chosen) select.value = chosen;
  $('wallets').replaceChildren(...s.wallets.map((w) => {
    const li = document.createElement('li');
    if (w.error) {
      li.className = 'error';
      li.textContent = `${w.id}  unreadable: ${w.error}`;
      return li;
    }
    li.dataset.groupKey = w.group_public_key;
    const a = w.addresses || {};
    li.textContent = `${w.id}  ${w.threshold}-of-${(w.participants || []).length} ${w.curve}  ${a.bitcoin_taproot || a.solana || a.ethereum || ''}`;
    if (w.confirmation && w.confirmation !== 'confirmed') {
      const tag = document.createElement('b');
      tag.className = w.confirmation === 'pending' ? 'warn' : 'error';
      tag.textContent = w.confirmation === 'pending' ? ' pending confirmation' : ' NOT confirmed: do not fund';
      li.append(tag);
    }
    return li;
  }));
}

chrome.runtime.onMessage.addListener((msg) => {
  if (msg?.target === 'popup' && msg.type === 'state') render(msg.state);
});

async function refresh() {
  render(await node('state'));
}

async function main() {
  await init();
  await sw('ensure');
  const settings = await sw('get_settings');
  $('server').value = settings.server;
  $('peer-id').value = settings.peer_id;
  $('log-n').value = settings.scrypt_log_n;
  $('timeout').value = settings.timeout_secs;
  // The offscreen document may still be starting.
  for (let i = 0; i < 50; i++) {
    try { await refresh(); break; } catch { await new Promise((r) => setTimeout(r, 100)); }
  }

  $('save-settings').onclick = async () => {
    const saved = await sw('set_settings', {
      settings: {
        server: $('server').value,
        peer_id: $('peer-id').value,
        scrypt_log_n: Number($('log-n').value),
        timeout_secs: Number($('timeout').value),
      },
    });
    $('settings-error').textContent = saved?.error || '';
    if (saved?.error) return;
    // Restart the node with them, unless it is still starting (it then
    // reads the new settings itself); retry until it runs them.
    const runs = (s) => s?.settings && Object.keys(saved).every((k) => s.settings[k] === saved[k]);
    for (let i = 0; i < 50; i++) {
      const s = await node('state').catch(() => null);
      if (runs(s)) break;
      if (s?.settings_loaded) await node('restart').catch(() => {});
      await new Promise((r) => setTimeout(r, 200));
    }
    refresh();
  };
  $('create').onclick = async () => {
    const participants = [...$('peers').querySelectorAll('input:checked')].map((i) => i.value);
    const r = await node('create', {
      participants,
      threshold: Number($('threshold').value),
      curve: $('curve').value,
      passphrase: $('passphrase-create').value,
    });
    $('create-error').textContent = r?.error || '';
  };
  // Each click carries the id of the request it was made on; the node
  // refuses it if another is pending by the time it arrives (finding 11).
  const decide = async (section, op, errorId, extra) => {
    const r = await node(op, { session_id: $(section).dataset.sessionId, ...extra });
    // Refused: show what is pending now, then why nothing was done.
    if (r?.error) await refresh().catch(() => {});
    $(errorId).textContent = r?.error || '';
  };
  $('accept').onclick = () => decide('proposal', 'decide', 'proposal-error',
    { accept: true, passphrase: $('passphrase-accept').value });
  $('decline').onclick = () => decide('proposal', 'decide', 'proposal-error', { accept: false });
  $('approve').onclick = () => decide('sign-request', 'sign_decide', 'sign-error',
    { accept: true, passphrase: $('passphrase-sign').value });
  $('reject').onclick = () => decide('sign-request', 'sign_decide', 'sign-error', { accept: false });
  // An error about a field goes once the field is changed.
  for (const [field, error] of [['passphrase-create', 'create-error'], ['passphrase-accept', 'proposal-error'],
    ['passphrase-sign', 'sign-error'], ['log-n', 'settings-error'], ['timeout', 'settings-error']]) {
    $(field).addEventListener('input', () => { $(error).textContent = ''; });
  }
  $('new-identity').onclick = async () => {
    const r = await node('new_identity').catch((e) => ({ error: String(e) }));
    $('new-identity-error').textContent = r?.error || '';
    // The node restarts with the new identity; its state arrives by push.
    if (!r?.error) setTimeout(() => refresh().catch(() => {}), 1000);
  };
  $('sign').onclick = async () => {
    const signers = [...$('peers').querySelectorAll('input:checked')].map((i) => i.value);
    const message = new TextEncoder().encode($('sign-message').value);
    const tx = $('sign-psbt').value.trim();
    // A transaction goes as it is: the core decodes it, here and at every
    // signer. Base64 of a PSBT starts with its magic "psbt\xff"; a JSON
    // object is an Ethereum transaction (as eth_sendTransaction takes it);
    // anything else is taken for a Solana transaction or message.
    const what = !tx
      ? null
      : tx.startsWith('cHNidP8')
        ? { format: 'bitcoin_psbt', psbt: tx }
        : tx.startsWith('{')
          ? { format: 'ethereum_transaction', transaction: tx }
          : { format: 'solana_transaction', transaction: tx };
    const r = await node('sign', {
      group_public_key: $('sign-wallet').value,
      ...(what || { message_hex: [...message].map((b) => b.toString(16).padStart(2, '0')).join('') }),
      signers,
      passphrase: $('passphrase-propose').value,
    });
    if (r?.error) $('error').textContent = r.error;
  };
  $('sign-psbt-file').onchange = async (e) => {
    const f = e.target.files[0];
    if (!f) return;
    const bytes = new Uint8Array(await f.arrayBuffer());
    const binary = [0x70, 0x73, 0x62, 0x74, 0xff].every((m, i) => bytes[i] === m);
    $('sign-psbt').value = binary
      ? btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(''))
      : new TextDecoder().decode(bytes).trim();
  };
  $('copy').onclick = () => navigator.clipboard.writeText($('address').textContent);
  $('export').onclick = async () => {
    const files = await sw('wallets');
    const first = Object.values(files)[0];
    $('export-text').value = first || '';
  };
  $('import').onclick = async () => {
    const file = $('import-text').value;
    try {
      check_passphrase(file, $('import-pass').value);
      const info = JSON.parse(wallet_info(file, 'mainnet'));
      const r = await sw('put_wallet', { id: info.id, file });
      if (r?.error) throw new Error(r.error);
      await node('refresh_wallets');
      $('import-error').textContent = '';
    } catch (e) {
      // Its own line: the node's state, pushed at any time, owns #error.
      $('import-error').textContent = `import failed: ${e.message || e}`;
    }
  };
}

main();
