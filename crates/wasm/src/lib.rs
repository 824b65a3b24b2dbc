//! The browser's handle on the sans-IO core. The extension's offscreen
//! document owns the WebSocket, the `RTCPeerConnection`s and the clock; it
//! feeds [`WasmNode::handle`] one JSON event at a time and carries out the
//! JSON actions it gets back, exactly as the CLI's tokio driver does with
//! the Rust types. Secrets stay inside: the identity key is opened and
//! sealed here ([`identity`]: JavaScript holds only its ciphertext and the
//! WebCrypto key's handle), a finished share is sealed into a keystore file
//! here ([`WasmNode::seal_finished`]), and a wallet is opened for signing
//! here ([`WasmNode::sign_decision`]).
//!
//! Events (`{"type": ...}`): `register`, `list_peers`, `create`
//! `{participants, threshold, curve, session_id?}`, `sign` `{file,
//! passphrase, message_hex, signers}`, `cancel {session_id}`, `server
//! {text}` (a WebSocket frame), `peer {from, text}` (a data channel
//! message), `channel_open {peer}`, `channel_closed {peer}`, `tick {now}`,
//! `decision {session_id, accept, reason?}`, `local_signal {to, signal}`
//! (the browser's own offer, answer or candidate).
//!
//! Actions: `send_signal {text}`, `send_peer {to, text}`, `connect {peer,
//! offerer}`, `webrtc_signal {from, signal}`, `progress {event, text, ...}`,
//! `pin_key {peer, key, fingerprint}`, `finished {session_id,
//! group_public_key, curve, threshold, participants, addresses}`,
//! `wallet_confirmed {session_id, group_public_key}`, `wallet_unconfirmed
//! {session_id, group_public_key, missing, reason}`, `signed {session_id,
//! signature, group_public_key, message_hex}`, `aborted {session_id,
//! reason}`, `rejected {from, session_id, reason}`.

mod convert;
pub mod identity;

use mpc_core::{Command, Config, Event, KnownPeers, Node, WalletResult};
use mpc_keystore::{Confirmation, KeyShareFile};
use mpc_protocol::peer::SignFormat;
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;

pub use convert::{action_json, parse_event};
pub use identity::{create_identity, open_identity, Identity};

/// The least scrypt work factor (log2 N) a new share is sealed with: below
/// it a passphrase is cheap to guess (review finding 18).
pub const MIN_WORK_FACTOR: u8 = 15;
/// The most: what any reader of wallet files accepts on open.
pub const MAX_WORK_FACTOR: u8 = mpc_keystore::MAX_WORK_FACTOR;

/// The work factor `log_n` as JavaScript gives it (a number, maybe from an
/// empty field), if it is a whole number from 15 to 22.
pub fn work_factor(log_n: f64) -> Result<u8, String> {
    let (lo, hi) = (f64::from(MIN_WORK_FACTOR), f64::from(MAX_WORK_FACTOR));
    if log_n.fract() == 0.0 && (lo..=hi).contains(&log_n) {
        Ok(log_n as u8)
    } else {
        Err(format!(
            "the scrypt work factor (log N) must be a whole number from {MIN_WORK_FACTOR} \
             to {MAX_WORK_FACTOR}, not {log_n}"
        ))
    }
}

/// What sealing a share needs, checked before a key generation is
/// accepted or proposed and again before sealing: a passphrase, and a work
/// factor [`work_factor`] accepts.
pub fn seal_params(passphrase: &str, log_n: f64) -> Result<u8, String> {
    if passphrase.is_empty() {
        return Err("a passphrase for the new share is needed, and it must not be empty".into());
    }
    work_factor(log_n)
}

/// [`seal_params`], for the extension to ask before it accepts or proposes
/// a key generation.
#[wasm_bindgen]
pub fn check_seal_params(passphrase: &str, log_n: f64) -> Result<(), JsError> {
    seal_params(passphrase, log_n).map(|_| ()).map_err(err)
}

/// Seals `wallet`'s share into a keystore file's JSON, once [`seal_params`]
/// accepts `passphrase` and `log_n`.
pub fn seal(
    wallet: &WalletResult,
    peer_id: &str,
    now: u64,
    passphrase: &str,
    log_n: f64,
) -> Result<String, String> {
    let log_n = seal_params(passphrase, log_n)?;
    let mut file = mpc_keystore::wallet::seal_wallet(wallet, peer_id, now, passphrase, log_n)
        .map_err(|e| e.to_string())?;
    // Not to be funded until every participant confirmed storing its share.
    file.confirmation = Some(Confirmation::Pending);
    Ok(file.to_json())
}

/// One node's core, driven from JavaScript.
#[wasm_bindgen]
pub struct WasmNode {
    node: Node,
    peer_id: String,
    /// The last finished DKG, kept until the user's passphrase seals it.
    finished: Option<Box<WalletResult>>,
}

fn err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

#[wasm_bindgen]
impl WasmNode {
    /// `config`: `{peer_id, known_peers (text of the address book),
    /// timeout_ms?, require_pinned?}`; the node signs with `identity`.
    #[wasm_bindgen(constructor)]
    pub fn new(config: &str, identity: &Identity) -> Result<WasmNode, JsError> {
        let c: Value = serde_json::from_str(config).map_err(err)?;
        let peer_id = c["peer_id"]
            .as_str()
            .ok_or_else(|| err("peer_id missing"))?;
        mpc_protocol::validate_peer_id(peer_id).map_err(err)?;
        let mut config = Config::new(peer_id);
        config.identity = Some(identity.key.clone());
        config.known_peers =
            KnownPeers::parse(c["known_peers"].as_str().unwrap_or_default()).map_err(err)?;
        if let Some(t) = c["timeout_ms"].as_u64() {
            config.timeout_ms = t;
        }
        config.require_pinned = c["require_pinned"].as_bool().unwrap_or(false);
        // Which network a PSBT's addresses are shown for (mainnet unless set).
        if let Some(n) = c["network"].as_str() {
            config.signing.network = n.parse().map_err(err)?;
        }
        // The server's host: the signed register names it (finding 16).
        config.server_host = c["server_host"].as_str().map(str::to_ascii_lowercase);
        let node = Node::with_os_rng(config, 0).map_err(err)?;
        Ok(WasmNode {
            node,
            peer_id: peer_id.to_string(),
            finished: None,
        })
    }

    /// Processes one event; returns the JSON array of actions.
    pub fn handle(&mut self, event: &str) -> Result<String, JsError> {
        let v: Value = serde_json::from_str(event).map_err(err)?;
        let event = match v["type"].as_str() {
            Some("sign") => self.sign_command(&v)?,
            _ => parse_event(&v).map_err(err)?,
        };
        Ok(self.run(event))
    }

    /// Answers a sign proposal: with `passphrase`, `file` (the wallet with
    /// the proposal's group key) is opened and signs; without, declines
    /// with `reason`. A file that does not open is a decline saying why.
    pub fn sign_decision(
        &mut self,
        session_id: &str,
        file: Option<String>,
        passphrase: Option<String>,
        reason: Option<String>,
    ) -> String {
        let (wallet, reason) = opened_or_why(file, passphrase, reason);
        self.run(Event::SignDecision {
            session_id: session_id.to_string(),
            wallet,
            reason,
        })
    }

    /// Answers a refresh proposal as [`WasmNode::sign_decision`] answers a
    /// sign proposal: `file` is the wallet's current share.
    pub fn refresh_decision(
        &mut self,
        session_id: &str,
        file: Option<String>,
        passphrase: Option<String>,
        reason: Option<String>,
    ) -> String {
        let (wallet, reason) = opened_or_why(file, passphrase, reason);
        self.run(Event::RefreshDecision {
            session_id: session_id.to_string(),
            wallet,
            reason,
        })
    }

    /// Answers a repair of which this node is the target (it holds no
    /// share: the repair gives it one, sealed like a new wallet's).
    pub fn repair_decision(
        &mut self,
        session_id: &str,
        accept: bool,
        reason: Option<String>,
    ) -> String {
        self.run(Event::RepairDecision {
            session_id: session_id.to_string(),
            accept,
            wallet: None,
            reason: if accept {
                None
            } else {
                reason.or(Some("declined by user".into()))
            },
        })
    }

    /// Seals the finished wallet's share with `passphrase` (scrypt work
    /// factor `log_n`, 15 to 22); returns the keystore file's JSON. `now`
    /// is Unix seconds. A refused passphrase or work factor leaves the
    /// share here, to be sealed with better ones.
    pub fn seal_finished(
        &mut self,
        passphrase: &str,
        log_n: f64,
        now: f64,
    ) -> Result<String, JsError> {
        let w = self
            .finished
            .as_ref()
            .ok_or_else(|| err("no finished wallet to seal"))?;
        let file = seal(w, &self.peer_id, now as u64, passphrase, log_n).map_err(err)?;
        self.finished = None;
        Ok(file)
    }

    /// This node's identity public key (hex).
    pub fn public_key(&self) -> String {
        self.node.public_key().to_hex()
    }

    /// When the core next needs a tick, in the driver's ms, if ever.
    pub fn next_deadline(&self) -> Option<f64> {
        self.node.next_deadline().map(|d| d as f64)
    }

    /// The address book as text, pins of this run included.
    pub fn known_peers(&self) -> String {
        self.node.known_peers().to_text()
    }
}

impl WasmNode {
    fn run(&mut self, event: Event) -> String {
        let actions = self.node.handle(event);
        let mut out = Vec::with_capacity(actions.len());
        for a in actions {
            if let mpc_core::Action::Finished(w) | mpc_core::Action::Refreshed(w) = &a {
                self.finished = Some(w.clone());
            }
            out.push(action_json(a));
        }
        Value::Array(out).to_string()
    }

    fn sign_command(&self, v: &Value) -> Result<Event, JsError> {
        let s = |k: &str| {
            v[k].as_str()
                .ok_or_else(|| err(format!("sign: {k} missing")))
        };
        let wallet = open_file(s("file")?, s("passphrase")?).map_err(err)?;
        let format: SignFormat = match v.get("format") {
            None | Some(Value::Null) => SignFormat::Message,
            Some(f) => serde_json::from_value(f.clone())
                .map_err(|_| err(format!("sign: unknown format {f}")))?,
        };
        // A PSBT or a Solana transaction may come as base64, as wallets,
        // Bitcoin Core, the Solana CLI and dApps write them.
        // An Ethereum wallet signs text as personal_sign (EIP-191), and a
        // transaction as the JSON-RPC object a dApp hands a wallet.
        let ecdsa = wallet.curve == mpc_protocol::peer::Curve::Secp256k1Ecdsa;
        let format = match format {
            SignFormat::Message if ecdsa => SignFormat::EthereumMessage,
            f => f,
        };
        let message = match (v["psbt"].as_str(), v["transaction"].as_str()) {
            (_, Some(json)) if format == SignFormat::EthereumTransaction => {
                mpc_chain::ethereum::parse_request(json)
                    .and_then(|r| r.into_tx())
                    .map_err(|e| err(format!("transaction: {e}")))?
                    .unsigned_bytes()
            }
            (Some(b64), _) if format == SignFormat::BitcoinPsbt => {
                mpc_chain::bitcoin::Psbt::from_base64(b64)
                    .map_err(|e| err(format!("psbt: {e}")))?
                    .to_bytes()
            }
            (_, Some(b64)) if format == SignFormat::SolanaTransaction => {
                mpc_chain::solana::SolanaTx::from_base64(b64)
                    .map_err(|e| err(format!("transaction: {e}")))?
                    .to_bytes()
            }
            _ => hex::decode(s("message_hex")?).map_err(|_| err("message_hex is not hex"))?,
        };
        let signers = v["signers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Event::Command(Command::Sign {
            session_id: v["session_id"].as_str().map(String::from),
            wallet: Box::new(wallet),
            message,
            format,
            signers,
        }))
    }
}

/// The wallet `file` opens to with `passphrase`, or why the answer is no.
fn opened_or_why(
    file: Option<String>,
    passphrase: Option<String>,
    reason: Option<String>,
) -> (Option<Box<mpc_core::SigningWallet>>, Option<String>) {
    match (file, passphrase) {
        (Some(f), Some(p)) => match open_file(&f, &p) {
            Ok(w) => (Some(Box::new(w)), None),
            Err(e) => (None, Some(e)),
        },
        _ => (None, reason.or(Some("declined by user".into()))),
    }
}

fn open_file(file: &str, passphrase: &str) -> Result<mpc_core::SigningWallet, String> {
    let f = KeyShareFile::from_json(file).map_err(|e| e.to_string())?;
    mpc_keystore::wallet::open_signing_wallet(&f, passphrase)
}

/// The fingerprint users compare out of band, of a hex identity key.
#[wasm_bindgen]
pub fn fingerprint(public_key: &str) -> Result<String, JsError> {
    let key: mpc_core::PublicKey = public_key.parse().map_err(err)?;
    Ok(key.fingerprint())
}

/// A keystore file's cleartext facts, with its addresses recomputed from
/// its group key: no passphrase needed. A file whose cleartext disagrees
/// with itself (an edited key or id) is refused, never shown with an
/// address (review finding 15). `network` as in the CLI (`mainnet`,
/// `testnet`, ...). `confirmation` is `pending`, `confirmed`,
/// `unconfirmed` (with `missing`) or absent (older files).
#[wasm_bindgen]
pub fn wallet_info(file: &str, network: &str) -> Result<String, JsError> {
    wallet_facts(file, network)
        .map(|v| v.to_string())
        .map_err(err)
}

/// Why a wallet file is not shown or changed.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(transparent)]
    Unreadable(mpc_keystore::KeystoreError),
    /// Its cleartext disagrees with itself: an edited key or id.
    #[error("wallet file {id} is not consistent: {source}")]
    Inconsistent {
        id: String,
        source: mpc_keystore::KeystoreError,
    },
    #[error("{0}")]
    Network(String),
    #[error(transparent)]
    Address(#[from] mpc_address::AddressError),
}

/// [`wallet_info`]'s answer.
pub fn wallet_facts(file: &str, network: &str) -> Result<Value, FileError> {
    let f = KeyShareFile::from_json(file).map_err(FileError::Unreadable)?;
    let m = &f.metadata;
    mpc_keystore::wallet::check_public(m).map_err(|source| FileError::Inconsistent {
        id: m.id.clone(),
        source,
    })?;
    let network = network.parse().map_err(FileError::Network)?;
    let addresses = mpc_address::addresses(&m.curve, &m.group_public_key, network)?;
    let mut info = json!({
        "id": m.id,
        "curve": m.curve,
        "threshold": m.threshold,
        "participants": m.participants,
        "peer_id": m.peer_id,
        "group_public_key": m.group_public_key,
        "session_id": m.session_id,
        "created_at": m.created_at,
        "addresses": addresses,
    });
    match &f.confirmation {
        Some(Confirmation::Pending) => info["confirmation"] = "pending".into(),
        Some(Confirmation::Confirmed) => info["confirmation"] = "confirmed".into(),
        Some(Confirmation::Unconfirmed { missing }) => {
            info["confirmation"] = "unconfirmed".into();
            info["missing"] = json!(missing);
        }
        None => {}
    }
    Ok(info)
}

/// `file` with its confirmation recorded (review finding 4): `missing`
/// empty means every participant confirmed, otherwise they never did.
/// Only that field changes; the sealed share and metadata stay as they are.
#[wasm_bindgen]
pub fn with_confirmation(file: &str, missing: Vec<String>) -> Result<String, JsError> {
    confirmed_file(file, missing).map_err(err)
}

/// [`with_confirmation`]'s answer.
pub fn confirmed_file(file: &str, missing: Vec<String>) -> Result<String, FileError> {
    let mut f = KeyShareFile::from_json(file).map_err(FileError::Unreadable)?;
    f.confirmation = Some(if missing.is_empty() {
        Confirmation::Confirmed
    } else {
        Confirmation::Unconfirmed { missing }
    });
    Ok(f.to_json())
}

/// Checks that `file` opens with `passphrase` (for import), without
/// returning anything secret.
#[wasm_bindgen]
pub fn check_passphrase(file: &str, passphrase: &str) -> Result<(), JsError> {
    open_file(file, passphrase).map(|_| ()).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpc_core::sim::{Outcome, SimConfig};
    use mpc_protocol::peer::Curve;

    fn finished_wallet() -> WalletResult {
        let report = mpc_core::sim::run(&SimConfig::new(2, 2, Curve::Ed25519, 7));
        match report.outcomes.into_values().next() {
            Some(Outcome::Finished(w)) => *w,
            other => panic!("the simulated DKG did not finish: {other:?}"),
        }
    }

    /// Review finding 18: work factor 0 used to reach age (which panics on
    /// it, killing the core after the DKG) and 1 to 14 sealed a share
    /// cheap to guess. Both are refused before sealing, with the range.
    #[test]
    fn work_factors_outside_15_to_22_are_refused_before_sealing() {
        let w = finished_wallet();
        for bad in [
            0.0,
            1.0,
            9.0,
            14.0,
            23.0,
            255.0,
            271.0,
            -1.0,
            15.5,
            f64::NAN,
        ] {
            let e = seal(&w, "chrome1", 0, "pass", bad).unwrap_err();
            assert!(e.contains("from 15 to 22"), "{bad}: {e}");
            assert!(work_factor(bad).is_err(), "{bad}");
        }
        for good in [15.0, 22.0] {
            assert_eq!(work_factor(good), Ok(good as u8));
        }
        let file = seal(&w, "chrome1", 0, "pass", 15.0).unwrap();
        let f = mpc_keystore::KeyShareFile::from_json(&file).unwrap();
        assert!(mpc_keystore::wallet::open_signing_wallet(&f, "pass").is_ok());
    }

    /// Review finding 4: an empty passphrase is refused up front (the
    /// extension asks before accepting), never discovered after the DKG.
    #[test]
    fn an_empty_passphrase_is_refused_before_sealing() {
        let e = seal_params("", 18.0).unwrap_err();
        assert!(e.contains("passphrase"), "{e}");
        assert!(seal(&finished_wallet(), "chrome1", 0, "", 18.0).is_err());
        assert_eq!(seal_params("p", 18.0), Ok(18));
    }

    /// Review findings 4 and 15: a new file is pending until confirmed,
    /// the confirmation is kept in the file (as the CLI keeps it), and a
    /// file whose group key was edited is refused, never shown with an
    /// address.
    #[test]
    fn the_file_keeps_its_confirmation_and_an_edited_key_is_refused() {
        let file = seal(&finished_wallet(), "chrome1", 0, "pass", 15.0).unwrap();
        let info = wallet_facts(&file, "mainnet").unwrap();
        assert_eq!(info["confirmation"], "pending");
        let missed = confirmed_file(&file, vec!["cli2".into()]).unwrap();
        let info = wallet_facts(&missed, "mainnet").unwrap();
        assert_eq!(info["confirmation"], "unconfirmed");
        assert_eq!(info["missing"], json!(["cli2"]));
        let f = KeyShareFile::from_json(&missed).unwrap();
        assert_eq!(
            f.confirmation,
            Some(Confirmation::Unconfirmed {
                missing: vec!["cli2".into()]
            })
        );
        assert!(mpc_keystore::wallet::open_signing_wallet(&f, "pass").is_ok());
        let done = confirmed_file(&file, vec![]).unwrap();
        assert_eq!(
            wallet_facts(&done, "mainnet").unwrap()["confirmation"],
            "confirmed"
        );

        // Another valid ed25519 key in place of the group key.
        let mut v: Value = serde_json::from_str(&file).unwrap();
        let other = mpc_core::IdentityKey::from_seed([9; 32])
            .public_key()
            .to_hex();
        v["group_public_key"] = other.clone().into();
        use mpc_keystore::KeystoreError as K;
        let e = wallet_facts(&v.to_string(), "mainnet").unwrap_err();
        assert!(
            matches!(e, FileError::Unreadable(K::IdMismatch { .. })),
            "{e}"
        );
        // With the id made to match, the key package still tells.
        v["id"] = mpc_keystore::wallet_id(&other).into();
        let e = wallet_facts(&v.to_string(), "mainnet").unwrap_err();
        assert!(
            matches!(
                e,
                FileError::Inconsistent {
                    source: K::GroupKeyMismatch(_),
                    ..
                }
            ),
            "{e}"
        );
    }
}
