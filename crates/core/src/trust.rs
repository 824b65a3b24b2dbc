//! Identity checks: which key each participant has, signing what this node
//! sends, and verifying what it receives. See `docs/security.md`.
//!
//! Keys reach a node three ways: pinned in its address book
//! ([`KnownPeers`]), advertised by the signaling server (`peers` with
//! `keys`), or listed in a signed proposal. Only the address book is
//! trusted as is; a new key is pinned (trust on first use) only when the
//! user acts on a session that shows it, and a key that differs from the
//! pinned one is refused.

use std::collections::BTreeMap;

use mpc_identity::{statement, IdentityKey, KnownPeers, PublicKey, Trust};
use mpc_protocol::peer::SignedMessage;
use mpc_protocol::relay::{sdp_fingerprints, WebRtcSignal};
use mpc_protocol::PeerMessage;

/// Every participant's identity key for one session.
pub(crate) type SessionKeys = BTreeMap<String, PublicKey>;

/// Why a peer's identity key, or its signature, is refused. `Display` is
/// the reason given to the user or the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustError {
    /// The key is new and this node accepts pinned keys only.
    NotPinned {
        /// The peer offering the key.
        peer: String,
        /// The new key's fingerprint.
        fingerprint: String,
    },
    /// The key differs from the pinned one.
    Changed {
        /// The peer whose key changed.
        peer: String,
        /// The pinned key's fingerprint.
        pinned: String,
        /// The offered key's fingerprint.
        offered: String,
    },
    /// The server advertises no key for a participant this node proposes.
    NoKeyKnown {
        /// The participant without a key.
        peer: String,
    },
    /// A received proposal lists no identity keys at all.
    NoKeysListed,
    /// A received proposal lists no identity key for a participant.
    NoKeyListed {
        /// That participant.
        peer: String,
    },
    /// A key a received proposal lists does not parse.
    InvalidKey {
        /// The participant it is listed for.
        peer: String,
        /// Why it does not parse.
        error: String,
    },
    /// A proposal lists another key for this very node.
    OwnKeyDiffers {
        /// The fingerprint of the key listed for this node.
        fingerprint: String,
    },
    /// A message from a peer with no key in the session.
    NoSessionKey {
        /// The message type.
        kind: &'static str,
        /// The sender.
        from: String,
    },
    /// A peer message carries no signature.
    Unsigned {
        /// The message type.
        kind: &'static str,
        /// The sender.
        from: String,
    },
    /// A peer message's signature does not verify under the sender's key.
    BadSignature {
        /// The message type.
        kind: &'static str,
        /// The sender.
        from: String,
        /// Why verification failed.
        error: String,
    },
}

impl TrustError {
    /// The message's signature is missing or wrong: who sent it is unknown.
    pub fn is_signature(&self) -> bool {
        matches!(
            self,
            TrustError::NoSessionKey { .. }
                | TrustError::Unsigned { .. }
                | TrustError::BadSignature { .. }
        )
    }
}

impl std::fmt::Display for TrustError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use TrustError as E;
        match self {
            E::NotPinned { peer, fingerprint } => write!(
                f,
                "identity key of {peer} (fingerprint {fingerprint}) is not pinned, and this node accepts pinned keys only"
            ),
            E::Changed {
                peer,
                pinned,
                offered,
            } => write!(
                f,
                "identity key of {peer} changed: pinned fingerprint {pinned}, offered {offered}; \
                 if {peer} really has a new key, re-pin it after checking out of band"
            ),
            E::NoKeyKnown { peer } => write!(
                f,
                "no identity key known for {peer}: not registered, or registered without a key"
            ),
            E::NoKeysListed => f.write_str("the proposal lists no identity keys"),
            E::NoKeyListed { peer } => write!(f, "the proposal lists no identity key for {peer}"),
            E::InvalidKey { peer, error } => {
                write!(f, "the proposal's identity key for {peer} is invalid: {error}")
            }
            E::OwnKeyDiffers { fingerprint } => write!(
                f,
                "the proposal lists another identity key for this node ({fingerprint}), \
                 a sign of a man-in-the-middle"
            ),
            E::NoSessionKey { kind, from } => write!(
                f,
                "{kind} from {from}, who has no identity key in this session"
            ),
            E::Unsigned { kind, from } => write!(f, "unsigned {kind} from {from}"),
            E::BadSignature { kind, from, error } => {
                write!(f, "bad signature on {kind} from {from}: {error}")
            }
        }
    }
}

/// A key this node would pin if the user goes ahead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewKey {
    /// The peer the key belongs to.
    pub peer: String,
    /// The key to pin.
    pub key: PublicKey,
}

impl NewKey {
    /// The key's fingerprint, for the user to compare out of band.
    pub fn fingerprint(&self) -> String {
        self.key.fingerprint()
    }
}

pub(crate) fn sign(id: &IdentityKey, me: &str, to: &str, msg: PeerMessage) -> SignedMessage {
    let sig = id.sign(&statement::peer_message(me, to, &msg.to_json()));
    SignedMessage {
        msg,
        sig: Some(sig.to_hex()),
    }
}

/// Checks that `msg` was signed by `from`'s key in `keys`, for this node.
pub(crate) fn verify(
    keys: &SessionKeys,
    me: &str,
    from: &str,
    msg: &PeerMessage,
    sig: Option<&str>,
) -> Result<(), TrustError> {
    let kind = msg.msg_type();
    let from = from.to_string();
    let Some(key) = keys.get(&from) else {
        return Err(TrustError::NoSessionKey { kind, from });
    };
    let Some(sig) = sig else {
        return Err(TrustError::Unsigned { kind, from });
    };
    key.verify_hex(&statement::peer_message(&from, me, &msg.to_json()), sig)
        .map_err(|e| TrustError::BadSignature {
            kind,
            from,
            error: e.to_string(),
        })
}

/// Signs the DTLS fingerprints of an offer or answer; `None` for ICE
/// candidates (they carry no identity: DTLS authenticates whatever path
/// they open) or an SDP without fingerprints.
pub(crate) fn sign_sdp(
    id: &IdentityKey,
    me: &str,
    to: &str,
    signal: &WebRtcSignal,
) -> Option<String> {
    let (WebRtcSignal::Offer { sdp } | WebRtcSignal::Answer { sdp }) = signal else {
        return None;
    };
    let fps = sdp_fingerprints(sdp)?;
    Some(id.sign(&statement::dtls_fingerprint(me, to, &fps)).to_hex())
}

/// Checks an offer's or answer's fingerprint signature; other signals pass.
pub(crate) fn verify_sdp(
    key: Option<&PublicKey>,
    me: &str,
    from: &str,
    signal: &WebRtcSignal,
    sig: Option<&str>,
) -> Result<(), String> {
    let (WebRtcSignal::Offer { sdp } | WebRtcSignal::Answer { sdp }) = signal else {
        return Ok(());
    };
    let kind = if matches!(signal, WebRtcSignal::Offer { .. }) {
        "offer"
    } else {
        "answer"
    };
    let key = key.ok_or_else(|| format!("{kind} from {from}, who has no identity key"))?;
    let fps = sdp_fingerprints(sdp).ok_or_else(|| format!("the {kind} has no DTLS fingerprint"))?;
    let sig = sig.ok_or_else(|| format!("the {kind}'s DTLS fingerprint is not signed"))?;
    key.verify_hex(&statement::dtls_fingerprint(from, me, &fps), sig)
        .map_err(|_| {
            format!("the {kind}'s DTLS fingerprint is not signed by {from}'s identity key")
        })
}

/// How the address book judges a key for `peer`; `Err` refuses it.
fn judge(
    known: &KnownPeers,
    require_pinned: bool,
    peer: &str,
    key: &PublicKey,
    new: &mut Vec<NewKey>,
) -> Result<(), TrustError> {
    match known.check(peer, key) {
        Trust::Pinned => Ok(()),
        Trust::New if require_pinned => Err(TrustError::NotPinned {
            peer: peer.to_string(),
            fingerprint: key.fingerprint(),
        }),
        Trust::New => {
            new.push(NewKey {
                peer: peer.to_string(),
                key: *key,
            });
            Ok(())
        }
        Trust::Changed { pinned } => Err(TrustError::Changed {
            peer: peer.to_string(),
            pinned: pinned.fingerprint(),
            offered: key.fingerprint(),
        }),
    }
}

/// A proposer's keys for `participants`: the pinned key where there is
/// one, otherwise the one the server advertises (a new key, to be shown).
/// A server that advertises another key than the pinned one is refused:
/// it, or whoever holds that peer id, is not who we know.
pub(crate) fn proposer_keys(
    participants: &[String],
    me: &str,
    own: &PublicKey,
    known: &KnownPeers,
    advertised: &BTreeMap<String, PublicKey>,
    require_pinned: bool,
) -> Result<(SessionKeys, Vec<NewKey>), TrustError> {
    let mut keys = SessionKeys::new();
    let mut new = Vec::new();
    for p in participants {
        if p == me {
            keys.insert(p.clone(), *own);
            continue;
        }
        let Some(key) = advertised.get(p).or(known.get(p)).copied() else {
            return Err(TrustError::NoKeyKnown { peer: p.clone() });
        };
        judge(known, require_pinned, p, &key, &mut new)?;
        keys.insert(p.clone(), key);
    }
    Ok((keys, new))
}

/// A receiver's checks on the keys a proposal lists: one valid key per
/// participant, ours for this node, and none that contradicts the address
/// book.
pub(crate) fn proposal_keys(
    listed: Option<&BTreeMap<String, String>>,
    participants: &[String],
    me: &str,
    own: &PublicKey,
    known: &KnownPeers,
    require_pinned: bool,
) -> Result<(SessionKeys, Vec<NewKey>), TrustError> {
    let listed = listed.ok_or(TrustError::NoKeysListed)?;
    let mut keys = SessionKeys::new();
    let mut new = Vec::new();
    for p in participants {
        let hex = listed
            .get(p)
            .ok_or_else(|| TrustError::NoKeyListed { peer: p.clone() })?;
        let key: PublicKey = hex.parse().map_err(|e| TrustError::InvalidKey {
            peer: p.clone(),
            error: format!("{e}"),
        })?;
        if p == me {
            if key != *own {
                return Err(TrustError::OwnKeyDiffers {
                    fingerprint: key.fingerprint(),
                });
            }
        } else {
            judge(known, require_pinned, p, &key, &mut new)?;
        }
        keys.insert(p.clone(), key);
    }
    Ok((keys, new))
}

/// The wire form of a session's keys.
pub(crate) fn to_wire(keys: &SessionKeys) -> BTreeMap<String, String> {
    keys.iter().map(|(p, k)| (p.clone(), k.to_hex())).collect()
}
