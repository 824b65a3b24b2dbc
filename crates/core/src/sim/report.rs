//! What a run produced: [`SimReport`] with each node's [`Outcome`], the
//! message log ([`LogEntry`], [`Path`]) and the traffic [`Stats`], plus the
//! rendering of the log ([`SimReport::render_flow`], [`abbreviate_json`]).
//! Also the [`Log`] that records messages while the run goes, redacting
//! share data before it is kept.

use std::collections::BTreeMap;

use mpc_protocol::{PeerMessage, RelayData, SignedMessage};

use crate::session::AbortReason;
use crate::wallet::{SignatureResult, WalletResult};

/// How a node's session ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// The key generation produced this wallet.
    Finished(Box<WalletResult>),
    /// The signing session produced (and this node verified) a signature.
    Signed(Box<SignatureResult>),
    /// The session aborted, for this reason.
    Aborted(AbortReason),
    /// It was made to vanish.
    Vanished,
    /// Still running when the simulation stopped.
    Pending,
}

/// The path a logged message took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// Node ↔ signaling server (register, list_peers, peers...).
    Server,
    /// Node → node through the server's relay.
    Relay,
    /// Node → node over a data channel.
    Channel,
}

/// One message as sent. Share data is redacted before it is recorded.
#[derive(Clone, Debug)]
pub struct LogEntry {
    /// Simulated time of sending.
    pub at_ms: u64,
    /// The sender.
    pub from: String,
    /// The recipient.
    pub to: String,
    /// Server, relay or channel.
    pub path: Path,
    /// The message, as sent.
    pub json: String,
}

/// Counts over a whole run.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Messages through the relay.
    pub relay_messages: usize,
    /// Messages over data channels.
    pub channel_messages: usize,
    /// Relayed messages delivered twice.
    pub relay_duplicated: usize,
    /// Relayed messages lost.
    pub relay_lost: usize,
    /// Channel sends with no open channel: always a core bug.
    pub undeliverable: usize,
    /// Unparseable messages at delivery: always a core bug.
    pub parse_errors: usize,
    /// Inputs the nodes rejected.
    pub rejected: usize,
}

/// Everything a run produced.
#[derive(Debug)]
pub struct SimReport {
    /// Every node's id, in index order.
    pub node_ids: Vec<String>,
    /// The key generation session's id, once proposed.
    pub session_id: Option<String>,
    /// How the key generation ended at each node.
    pub outcomes: BTreeMap<String, Outcome>,
    /// The signing session's id, if one was proposed.
    pub sign_session_id: Option<String>,
    /// How the signing session ended at each signer.
    pub sign_outcomes: BTreeMap<String, Outcome>,
    /// The refresh's outcome at each node that keeps a share, if one was
    /// planned and started: `Finished` with its new share once confirmed.
    pub refresh_outcomes: BTreeMap<String, Outcome>,
    /// The repair's outcome at the helpers and the target, if one was
    /// planned and started: the target's is `Finished` with the rebuilt
    /// share, a helper's `Finished` with its own wallet once the target
    /// reported it stored.
    pub repair_outcomes: BTreeMap<String, Outcome>,
    /// Every `Rejected` reason, per node, for diagnosis.
    pub rejections: BTreeMap<String, Vec<String>>,
    /// Per node that finished: confirmed by every peer, or the peers that
    /// never confirmed storing their share.
    pub confirmations: BTreeMap<String, Result<(), Vec<String>>>,
    /// Every message sent, if [`SimConfig::record`](super::SimConfig::record).
    pub log: Vec<LogEntry>,
    /// Counts over the run.
    pub stats: Stats,
    /// Simulated time when the run ended.
    pub end_ms: u64,
    /// The plaintext of every DKG share any node sent (`faults` only), to
    /// search captured traffic for.
    #[cfg(feature = "faults")]
    pub shares_sent: Vec<Vec<u8>>,
}

impl SimReport {
    /// The group key of every node that finished.
    pub fn group_keys(&self) -> BTreeMap<String, String> {
        self.outcomes
            .iter()
            .filter_map(|(id, o)| match o {
                Outcome::Finished(w) => Some((id.clone(), w.group_public_key.clone())),
                _ => None,
            })
            .collect()
    }

    /// The group key, if every node finished with the same one.
    pub fn agreed_key(&self) -> Option<String> {
        let keys = self.group_keys();
        let first = keys.values().next()?.clone();
        (keys.len() == self.node_ids.len() && keys.values().all(|k| *k == first)).then_some(first)
    }

    /// The signatures of the signers that finished signing.
    pub fn signatures(&self) -> BTreeMap<String, SignatureResult> {
        self.sign_outcomes
            .iter()
            .filter_map(|(id, o)| match o {
                Outcome::Signed(r) => Some((id.clone(), (**r).clone())),
                _ => None,
            })
            .collect()
    }

    /// Abort reasons of the signers whose signing session aborted.
    pub fn sign_aborts(&self) -> BTreeMap<String, AbortReason> {
        aborts_in(&self.sign_outcomes)
    }

    /// Abort reasons of the nodes that aborted.
    pub fn aborts(&self) -> BTreeMap<String, AbortReason> {
        aborts_in(&self.outcomes)
    }

    /// The message flow in the style of the spec's "Simulation Run
    /// Example": `sender → receiver (path)` and the JSON, long hex cut.
    pub fn render_flow(&self) -> String {
        let mut s = String::new();
        for e in &self.log {
            let path = match e.path {
                Path::Server => "",
                Path::Relay => " (via relay)",
                Path::Channel => " (data channel)",
            };
            s.push_str(&format!(
                "[{:>6} ms] {} → {}{}\n    {}\n",
                e.at_ms,
                e.from,
                e.to,
                path,
                abbreviate_json(&e.json)
            ));
        }
        s
    }
}

/// The abort reasons among `outcomes`.
fn aborts_in(outcomes: &BTreeMap<String, Outcome>) -> BTreeMap<String, AbortReason> {
    outcomes
        .iter()
        .filter_map(|(id, o)| match o {
            Outcome::Aborted(r) => Some((id.clone(), r.clone())),
            _ => None,
        })
        .collect()
}

/// The messages of a run as they are sent, kept only if
/// [`SimConfig::record`](super::SimConfig::record) asks for them.
pub(super) struct Log {
    enabled: bool,
    entries: Vec<LogEntry>,
}

impl Log {
    pub(super) fn new(enabled: bool) -> Self {
        Log {
            enabled,
            entries: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, at_ms: u64, from: &str, to: &str, path: Path, json: String) {
        if self.enabled {
            self.entries.push(LogEntry {
                at_ms,
                from: from.to_string(),
                to: to.to_string(),
                path,
                json: redact_shares(&json),
            });
        }
    }

    pub(super) fn into_entries(self) -> Vec<LogEntry> {
        self.entries
    }
}

/// Replaces a share's data with its length, so logs never hold a share.
fn redact_shares(json: &str) -> String {
    match RelayData::from_json(json) {
        Ok(RelayData::Peer(SignedMessage {
            msg: PeerMessage::Share(mut sh),
            sig,
        })) => {
            let len = sh.data.len();
            sh.data = format!("<secret share, {len} hex chars>");
            SignedMessage {
                msg: PeerMessage::Share(sh),
                sig,
            }
            .to_json()
        }
        _ => json.to_string(),
    }
}

/// Cuts hex strings longer than 24 characters to `abcd…wxyz (n hex)`, keeping
/// the JSON text otherwise as it is (key order included).
pub fn abbreviate_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut rest = json;
    while let Some(start) = rest.find('"') {
        out.push_str(&rest[..=start]);
        rest = &rest[start + 1..];
        // Find the closing quote, skipping escapes.
        let mut end = None;
        let mut escaped = false;
        for (i, c) in rest.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let Some(end) = end else {
            break;
        };
        let body = &rest[..end];
        if body.len() > 24 && body.bytes().all(|b| b.is_ascii_hexdigit()) {
            let tail = &body[body.len() - 8..];
            out.push_str(&format!("{}…{tail} ({} hex)", &body[..8], body.len()));
        } else {
            out.push_str(body);
        }
        out.push('"');
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}
