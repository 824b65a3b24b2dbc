//! Session negotiation rules: what makes a `session_proposal` acceptable,
//! and every reason a session can end without a wallet.
//!
//! The server keeps no session state, so each node checks every proposal
//! itself; the checks here are pure functions of the proposal.

use mpc_protocol::peer::{Curve, SessionProposal, SignProposal};
use mpc_protocol::validate_peer_id;

/// Largest group the core accepts. DKG cost grows with n², and a bound
/// keeps a hostile proposal from making a node allocate without limit.
pub const MAX_PARTICIPANTS: usize = 255;

/// Longest accepted session id, in bytes.
pub const MAX_SESSION_ID_LEN: usize = 128;

/// Longest message a signing session accepts, in bytes (its hex must fit
/// in one relayed `sign_proposal`).
pub const MAX_SIGN_MESSAGE_LEN: usize = 16 * 1024;

/// Default time each phase (negotiation, mesh, DKG) may take.
pub const DEFAULT_TIMEOUT_MS: u64 = 60_000;

/// A proposal that passed validation, with its defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidProposal {
    pub session_id: String,
    pub curve: Curve,
    pub threshold: u16,
    pub initiator: String,
    /// Sorted: FROST identifier `i` is `participants[i - 1]`.
    pub participants: Vec<String>,
    /// The proposal as received, for the user to look at.
    pub proposal: SessionProposal,
}

/// Checks a proposal that `from` sent to `me`: the sender is its initiator
/// and a participant, `me` is listed, `total` matches, `2 <= threshold <=
/// total`, ids are unique and well formed, and the curve is known. Whether
/// the session id is unused is the node's check, since only it knows.
pub fn validate_proposal(
    p: &SessionProposal,
    from: &str,
    me: &str,
) -> Result<ValidProposal, String> {
    let id_ok = !p.session_id.is_empty()
        && p.session_id.len() <= MAX_SESSION_ID_LEN
        && p.session_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !id_ok {
        return Err(format!(
            "invalid session id {:?}: use 1-{MAX_SESSION_ID_LEN} characters of A-Z a-z 0-9 . _ -",
            p.session_id
        ));
    }
    let initiator = p.initiator.clone().unwrap_or_else(|| from.to_string());
    if initiator != from {
        return Err(format!(
            "proposal sent by {from} names {initiator} as its initiator"
        ));
    }
    if !p.participants.iter().any(|x| x == from) {
        return Err(format!(
            "proposal from {from}, who is not among its participants"
        ));
    }
    if !p.participants.iter().any(|x| x == me) {
        return Err(format!("{me} is not listed as a participant"));
    }
    if usize::from(p.total) != p.participants.len() {
        return Err(format!(
            "total is {} but {} participants are listed",
            p.total,
            p.participants.len()
        ));
    }
    if p.participants.len() > MAX_PARTICIPANTS {
        return Err(format!(
            "{} participants is more than the supported {MAX_PARTICIPANTS}",
            p.participants.len()
        ));
    }
    if p.threshold < 2 || p.threshold > p.total {
        return Err(format!(
            "threshold {} must be between 2 and total {}",
            p.threshold, p.total
        ));
    }
    let mut sorted = p.participants.clone();
    sorted.sort();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("participant {} is listed twice", w[0]));
    }
    for id in &sorted {
        if let Err(e) = validate_peer_id(id) {
            return Err(format!("participant id {id:?} is invalid: {e}"));
        }
    }
    let curve = match &p.curve {
        None => Curve::Secp256k1,
        Some(c) => c.parse::<Curve>()?,
    };
    Ok(ValidProposal {
        session_id: p.session_id.clone(),
        curve,
        threshold: p.threshold,
        initiator,
        participants: sorted,
        proposal: p.clone(),
    })
}

/// Checks a `sign_proposal` that `from` sent to `me`: a valid session id,
/// the sender and `me` among at least two unique, well-formed signers, a
/// group key of a known curve (33 bytes: secp256k1, 32: ed25519) and a hex
/// message of at most [`MAX_SIGN_MESSAGE_LEN`] bytes. Whether `me` holds
/// that wallet, and whether the signers reach its threshold, is for the
/// decision (only the keystore knows). The result's `participants` are the
/// sorted signers.
pub fn validate_sign_proposal(
    p: &SignProposal,
    from: &str,
    me: &str,
) -> Result<(ValidProposal, Vec<u8>), String> {
    let as_session = SessionProposal {
        session_id: p.session_id.clone(),
        total: u16::try_from(p.signers.len()).unwrap_or(u16::MAX),
        threshold: u16::try_from(p.signers.len()).unwrap_or(u16::MAX),
        participants: p.signers.clone(),
        curve: None,
        initiator: Some(from.to_string()),
        keys: None,
    };
    let mut v = validate_proposal(&as_session, from, me).map_err(|e| {
        e.replace("participant", "signer")
            .replace("total", "signer count")
    })?;
    let key =
        hex::decode(&p.group_public_key).map_err(|_| "group_public_key is not hex".to_string())?;
    v.curve = match key.len() {
        33 => Curve::Secp256k1,
        32 => Curve::Ed25519,
        n => return Err(format!("group_public_key has {n} bytes; expected 33 or 32")),
    };
    if p.message_hex.len() > 2 * MAX_SIGN_MESSAGE_LEN {
        return Err(format!(
            "message is longer than {MAX_SIGN_MESSAGE_LEN} bytes"
        ));
    }
    let message = hex::decode(&p.message_hex).map_err(|_| "message_hex is not hex".to_string())?;
    v.proposal.curve = Some(v.curve.as_str().to_string());
    Ok((v, message))
}

/// The phase a session was in when something went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Proposal sent or received; waiting for decisions and responses.
    Negotiation,
    /// Everyone accepted; data channels and `mesh_ready`.
    Mesh,
    /// FROST rounds and the `ready` agreement.
    Dkg,
    /// FROST signing rounds and aggregation.
    Signing,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Negotiation => "negotiation",
            Phase::Mesh => "mesh",
            Phase::Dkg => "dkg",
            Phase::Signing => "signing",
        })
    }
}

/// Why a session ended without a wallet. `Display` is the text sent in
/// `session_abort` and shown to users; it names the peer to blame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AbortReason {
    /// A participant (possibly this node) declined the proposal.
    Declined {
        peer: String,
        reason: Option<String>,
    },
    /// A phase took longer than the configured timeout.
    Timeout {
        phase: Phase,
        waiting_for: Vec<String>,
    },
    /// A data channel closed before the wallet was stored.
    ChannelClosed { peer: String },
    /// A peer's round-1 package is malformed or its proof is invalid.
    InvalidCommitment { peer: String, detail: String },
    /// A peer's round-2 share is malformed or fails verification.
    InvalidShare { peer: String, detail: String },
    /// A signer's FROST signature share is malformed or fails verification.
    InvalidSignatureShare { peer: String, detail: String },
    /// A signer's data channel closed before the signature was complete.
    SignerLeft { peer: String },
    /// `ready` hashes differ: someone saw other commitments than we did.
    /// `suspects` are the participants whose round-1 package differs
    /// between our view and a peer's.
    TranscriptMismatch {
        mismatched: Vec<String>,
        suspects: Vec<String>,
    },
    /// A peer broke the protocol in a way that makes the session unsafe.
    ProtocolViolation { peer: String, detail: String },
    /// Signaling for the connection with `peer` was tampered with: its
    /// SDP's DTLS fingerprint is not signed by `peer`'s identity key.
    PossibleMitm { peer: String, detail: String },
    /// A peer sent `session_abort`.
    PeerAborted { peer: String, reason: String },
    /// The local user cancelled.
    Cancelled,
    /// A local failure no peer is to blame for.
    Internal(String),
}

impl AbortReason {
    /// The peer this reason blames, if it blames one.
    pub fn culprit(&self) -> Option<&str> {
        match self {
            AbortReason::Declined { peer, .. }
            | AbortReason::ChannelClosed { peer }
            | AbortReason::InvalidCommitment { peer, .. }
            | AbortReason::InvalidShare { peer, .. }
            | AbortReason::InvalidSignatureShare { peer, .. }
            | AbortReason::SignerLeft { peer }
            | AbortReason::ProtocolViolation { peer, .. } => Some(peer),
            AbortReason::TranscriptMismatch { suspects, .. } if suspects.len() == 1 => {
                Some(&suspects[0])
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for AbortReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AbortReason::Declined { peer, reason: None } => write!(f, "{peer} declined"),
            AbortReason::Declined {
                peer,
                reason: Some(r),
            } => write!(f, "{peer} declined: {r}"),
            AbortReason::Timeout { phase, waiting_for } => write!(
                f,
                "timed out in {phase} phase waiting for {}",
                waiting_for.join(", ")
            ),
            AbortReason::ChannelClosed { peer } => {
                write!(
                    f,
                    "data channel to {peer} closed before the wallet was stored"
                )
            }
            AbortReason::InvalidCommitment { peer, detail } => {
                write!(f, "invalid commitment from {peer}: {detail}")
            }
            AbortReason::InvalidShare { peer, detail } => {
                write!(f, "invalid share from {peer}: {detail}")
            }
            AbortReason::InvalidSignatureShare { peer, detail } => {
                write!(f, "invalid signature share from {peer}: {detail}")
            }
            AbortReason::SignerLeft { peer } => write!(
                f,
                "signer {peer} left (data channel closed) before the signature was complete"
            ),
            AbortReason::TranscriptMismatch {
                mismatched,
                suspects,
            } => {
                write!(
                    f,
                    "transcript mismatch with {}; commitments differ for {}",
                    mismatched.join(", "),
                    if suspects.is_empty() {
                        "nobody (parameters or group key differ)".to_string()
                    } else {
                        suspects.join(", ")
                    }
                )
            }
            AbortReason::ProtocolViolation { peer, detail } => {
                write!(f, "protocol violation by {peer}: {detail}")
            }
            AbortReason::PossibleMitm { peer, detail } => write!(
                f,
                "possible man-in-the-middle on the connection with {peer}: {detail}"
            ),
            AbortReason::PeerAborted { peer, reason } => write!(f, "{peer} aborted: {reason}"),
            AbortReason::Cancelled => f.write_str("cancelled by the user"),
            AbortReason::Internal(e) => write!(f, "internal error: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposal() -> SessionProposal {
        SessionProposal {
            session_id: "s1".into(),
            total: 3,
            threshold: 2,
            participants: vec!["cli1".into(), "cli2".into(), "chrome1".into()],
            curve: Some("secp256k1".into()),
            initiator: Some("cli1".into()),
            keys: None,
        }
    }

    #[track_caller]
    fn rejected(p: SessionProposal, from: &str, me: &str, needle: &str) {
        let e = validate_proposal(&p, from, me).unwrap_err();
        assert!(e.contains(needle), "{e:?} should mention {needle:?}");
    }

    #[test]
    fn accepts_a_good_proposal_and_sorts() {
        let v = validate_proposal(&proposal(), "cli1", "cli2").unwrap();
        assert_eq!(v.participants, vec!["chrome1", "cli1", "cli2"]);
        assert_eq!(v.curve, Curve::Secp256k1);
        let mut p = proposal();
        p.curve = None;
        p.initiator = None;
        let v = validate_proposal(&p, "cli1", "cli2").unwrap();
        assert_eq!((v.curve, v.initiator.as_str()), (Curve::Secp256k1, "cli1"));
    }

    #[test]
    fn rejects_each_bad_field() {
        rejected(proposal(), "cli1", "cli9", "cli9 is not listed");
        let mut p = proposal();
        p.total = 4;
        rejected(p, "cli1", "cli2", "total is 4 but 3");
        for t in [0, 1, 4] {
            let mut p = proposal();
            p.threshold = t;
            rejected(p, "cli1", "cli2", "must be between 2 and total");
        }
        let mut p = proposal();
        p.participants[2] = "cli2".into();
        rejected(p, "cli1", "cli2", "cli2 is listed twice");
        let mut p = proposal();
        p.curve = Some("p256".into());
        rejected(p, "cli1", "cli2", "unknown curve");
        let mut p = proposal();
        p.initiator = None;
        rejected(
            p,
            "mallory",
            "cli2",
            "mallory, who is not among its participants",
        );
        rejected(proposal(), "cli2", "chrome1", "names cli1 as its initiator");
        let mut p = proposal();
        p.session_id = "bad id".into();
        rejected(p, "cli1", "cli2", "invalid session id");
        let mut p = proposal();
        p.participants[2] = "bad id".into();
        rejected(p, "cli1", "cli2", "is invalid");
    }

    #[test]
    fn reasons_name_the_culprit() {
        let r = AbortReason::InvalidShare {
            peer: "cli2".into(),
            detail: "x".into(),
        };
        assert_eq!(r.culprit(), Some("cli2"));
        assert!(r.to_string().contains("cli2"));
    }
}
