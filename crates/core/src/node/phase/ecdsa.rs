//! The rounds of an ECDSA (DKLs23) key generation or signing, as
//! `ecdsa_round` messages over the data channels: round 0 swaps this
//! session's encryption keys, then each round sends every peer the
//! broadcast part and its own direct part, sealed to it. A round starts
//! once every peer's message of the round before is in. The engine behind
//! [`Rounds`] knows nothing of messages; the key generation and signing
//! phases know nothing of DKLs23's rounds.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use mpc_identity::sealed::{self, SessionKey};
use mpc_protocol::peer::EcdsaRound;
use mpc_protocol::PeerMessage;
use zeroize::Zeroizing;

use crate::ecdsa::{EcdsaError, Incoming, Rounds};
use crate::node::api::Progress;
use crate::node::session::{Common, Cx};
use crate::session::{AbortReason, Violation};

/// Moves one engine's rounds over the mesh.
pub(in crate::node) struct EcdsaRounds<R: Rounds> {
    engine: R,
    enc: SessionKey,
    peer_enc: BTreeMap<String, [u8; 32]>,
    /// The last round this node sent (0: only its key).
    sent: u8,
    /// Round → peer → what it sent, opened.
    inbox: BTreeMap<u8, BTreeMap<String, Incoming>>,
    /// Every message as received, to tell a repeat from a conflict.
    seen: BTreeMap<(u8, String), EcdsaRound>,
    /// Whether the engine finished (its output went to the caller).
    done: bool,
    /// Which progress event a round is reported as.
    progress: fn(String, u8) -> Progress,
}

fn engine_abort(round: u8) -> impl Fn(EcdsaError) -> AbortReason {
    move |e| match e {
        EcdsaError::Invalid { peer, detail } => AbortReason::InvalidRound {
            peer,
            round,
            detail,
        },
        EcdsaError::Internal(e) => AbortReason::Internal(e),
    }
}

impl<R: Rounds> EcdsaRounds<R> {
    /// Sends round 0 (this session's encryption key) to every other
    /// participant.
    pub fn start(engine: R, c: &Common, cx: &mut Cx, progress: fn(String, u8) -> Progress) -> Self {
        let enc = SessionKey::generate(cx.rng);
        let msg = PeerMessage::EcdsaRound(EcdsaRound {
            session_id: c.id().to_string(),
            round: 0,
            enc_key: Some(hex::encode(enc.public_bytes())),
            broadcast: String::new(),
            sealed: String::new(),
            enc: None,
        });
        cx.send_all(&c.others, &msg);
        EcdsaRounds {
            engine,
            enc,
            peer_enc: BTreeMap::new(),
            sent: 0,
            inbox: BTreeMap::new(),
            seen: BTreeMap::new(),
            done: false,
            progress,
        }
    }

    /// The peers whose message of the round awaited is not in.
    pub fn waiting_for(&self, c: &Common) -> Vec<String> {
        if self.done {
            return Vec::new();
        }
        c.others
            .iter()
            .filter(|p| !self.seen.contains_key(&(self.sent, (*p).clone())))
            .cloned()
            .collect()
    }

    /// A peer's round message; the engine's output once the last round is
    /// complete.
    pub fn on_round(
        &mut self,
        c: &Common,
        cx: &mut Cx,
        from: &str,
        m: EcdsaRound,
    ) -> Result<Option<R::Output>, AbortReason> {
        let round = m.round;
        let bad = |detail: &str| AbortReason::InvalidRound {
            peer: from.to_string(),
            round,
            detail: detail.to_string(),
        };
        if round > self.engine.rounds() {
            return Err(bad("no such round"));
        }
        let key = (round, from.to_string());
        if let Some(old) = self.seen.get(&key) {
            return if *old == m {
                Ok(None)
            } else {
                Err(AbortReason::ProtocolViolation {
                    peer: from.to_string(),
                    violation: Violation::TwoRoundMessages,
                })
            };
        }
        if round == 0 {
            let enc_key = m
                .enc_key
                .as_deref()
                .and_then(|k| <[u8; 32]>::try_from(hex::decode(k).ok()?).ok())
                .ok_or_else(|| bad("no valid enc_key"))?;
            self.peer_enc.insert(from.to_string(), enc_key);
        } else {
            // Channels are ordered: round 0 came first from an honest peer.
            let sender = self
                .peer_enc
                .get(from)
                .ok_or_else(|| bad("a round before the sender's key"))?;
            let broadcast = B64
                .decode(&m.broadcast)
                .map_err(|_| bad("broadcast is not base64"))?;
            let direct = if m.sealed.is_empty() {
                Zeroizing::new(Vec::new())
            } else {
                if m.enc.as_deref() != Some(sealed::SCHEME) {
                    return Err(AbortReason::ProtocolViolation {
                        peer: from.to_string(),
                        violation: Violation::PlaintextShare,
                    });
                }
                let ct = B64
                    .decode(&m.sealed)
                    .map_err(|_| bad("sealed part is not base64"))?;
                self.enc
                    .open(sender, &ct)
                    .map_err(|_| bad("does not decrypt with the keys of this session"))?
            };
            self.inbox
                .entry(round)
                .or_default()
                .insert(from.to_string(), Incoming { broadcast, direct });
        }
        self.seen.insert(key, m);
        self.advance(c, cx)
    }

    fn complete(&self, c: &Common, round: u8) -> bool {
        c.others
            .iter()
            .all(|p| self.seen.contains_key(&(round, p.clone())))
    }

    /// Runs every round whose inputs are all in.
    fn advance(&mut self, c: &Common, cx: &mut Cx) -> Result<Option<R::Output>, AbortReason> {
        while !self.done && self.complete(c, self.sent) {
            let inbox = self.inbox.remove(&self.sent).unwrap_or_default();
            if self.sent == self.engine.rounds() {
                self.done = true;
                let out = self.engine.finish(inbox).map_err(engine_abort(self.sent))?;
                return Ok(Some(out));
            }
            let round = self.sent + 1;
            let out = self
                .engine
                .round(round, inbox)
                .map_err(engine_abort(self.sent))?;
            let broadcast = B64.encode(&out.broadcast);
            for p in &c.others {
                let (sealed, enc) = match out.direct.get(p) {
                    Some(plain) => {
                        let recipient = self.peer_enc.get(p).ok_or_else(|| {
                            AbortReason::Internal(format!("no encryption key for {p}"))
                        })?;
                        let ct = self
                            .enc
                            .seal(cx.rng, recipient, plain)
                            .map_err(|e| AbortReason::Internal(format!("sealing failed: {e}")))?;
                        (B64.encode(ct), Some(sealed::SCHEME.to_string()))
                    }
                    None => (String::new(), None),
                };
                cx.send(
                    p,
                    PeerMessage::EcdsaRound(EcdsaRound {
                        session_id: c.id().to_string(),
                        round,
                        enc_key: None,
                        broadcast: broadcast.clone(),
                        sealed,
                        enc,
                    }),
                );
            }
            self.sent = round;
            cx.progress((self.progress)(c.id().to_string(), round));
        }
        Ok(None)
    }
}
