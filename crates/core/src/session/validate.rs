//! What makes a `session_proposal`, `sign_proposal` or `refresh_proposal`
//! acceptable, and why one is refused ([`ProposalError`]).

use mpc_protocol::peer::{Curve, RefreshProposal, RepairProposal, SessionProposal, SignProposal};
use mpc_protocol::{validate_peer_id, PeerIdError};

use super::{ValidProposal, MAX_PARTICIPANTS, MAX_SESSION_ID_LEN, MAX_SIGN_MESSAGE_LEN};
use crate::payload::PayloadError;
use crate::trust::TrustError;

/// Who a proposal's listed peers are: key-generation participants or
/// signers. It only changes the words of a [`ProposalError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Generates a new wallet's key (DKG).
    Participant,
    /// Signs with an existing wallet.
    Signer,
    /// Helps rebuild a lost share.
    Helper,
}

impl Role {
    fn noun(self) -> &'static str {
        match self {
            Role::Participant => "participant",
            Role::Signer => "signer",
            Role::Helper => "helper",
        }
    }

    /// What the proposal calls its head count.
    fn total(self) -> &'static str {
        match self {
            Role::Participant => "total",
            Role::Signer => "signer count",
            Role::Helper => "helper count",
        }
    }
}

/// Why a proposal (received, or about to be sent) is refused. `Display`
/// is the reason sent back in the decline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProposalError {
    /// The session id is empty, too long, or has characters other than
    /// A-Z a-z 0-9 . _ -.
    InvalidSessionId(String),
    /// The sender is not the initiator the proposal names.
    InitiatorMismatch {
        /// The peer that sent the proposal.
        from: String,
        /// The initiator the proposal names.
        initiator: String,
    },
    /// The sender is not among the listed peers.
    SenderNotListed {
        /// What the listed peers are.
        role: Role,
        /// The peer that sent the proposal.
        from: String,
    },
    /// This node is not among the listed peers.
    NotListed {
        /// What the listed peers are.
        role: Role,
        /// This node's peer id.
        me: String,
    },
    /// The stated total is not the number of peers listed.
    TotalMismatch {
        /// What the listed peers are.
        role: Role,
        /// The total the proposal states.
        total: u16,
        /// How many peers it lists.
        listed: usize,
    },
    /// More peers are listed than [`MAX_PARTICIPANTS`].
    TooMany {
        /// What the listed peers are.
        role: Role,
        /// How many peers it lists.
        listed: usize,
    },
    /// The threshold is below 2 or above the total.
    BadThreshold {
        /// What the listed peers are.
        role: Role,
        /// The proposed threshold.
        threshold: u16,
        /// The proposed total.
        total: u16,
    },
    /// A peer is listed more than once.
    ListedTwice {
        /// What the listed peers are.
        role: Role,
        /// The peer listed twice.
        peer: String,
    },
    /// A listed peer id is malformed.
    InvalidPeerId {
        /// What the listed peers are.
        role: Role,
        /// The malformed id.
        peer: String,
        /// What is wrong with it.
        error: PeerIdError,
    },
    /// The proposal names a curve the core does not support.
    UnknownCurve(String),
    /// A sign proposal's group key is not hex.
    GroupKeyNotHex,
    /// A sign proposal's group key is neither 33 bytes (secp256k1) nor 32
    /// (ed25519).
    GroupKeyLength(usize),
    /// The message to sign is longer than [`MAX_SIGN_MESSAGE_LEN`].
    MessageTooLong,
    /// The message to sign is not hex.
    MessageNotHex,
    /// This node took part in a session of that id already.
    SessionIdUsed(String),
    /// Another session is in progress.
    Busy(String),
    /// A participant's identity key is missing, invalid or refused.
    Key(TrustError),
    /// A signer is not a participant of the wallet.
    NotInWallet(String),
    /// Fewer signers are named than the wallet's threshold.
    TooFewSigners {
        /// How many signers are named.
        named: usize,
        /// The wallet's threshold.
        needed: u16,
    },
    /// The wallet the driver found has another group key.
    OtherGroupKey,
    /// The wallet the driver found is of another curve.
    OtherCurve {
        /// The wallet's curve.
        wallet: Curve,
        /// The curve the proposal's group key is of.
        proposal: Curve,
    },
    /// The transaction to sign is malformed, or not this wallet's to sign.
    Payload(PayloadError),
    /// The wallet's shares are of another generation than the proposal's:
    /// they would not combine.
    OtherGeneration {
        /// This node's share's generation.
        wallet: u32,
        /// The proposal's.
        proposal: u32,
    },
    /// A repair's target is also listed as a helper.
    TargetHelps(String),
    /// A repair adds a participant without every current one helping:
    /// those left out would never learn its verifying share.
    AddNeedsEveryone(Vec<String>),
    /// A refresh proposal states another threshold than the wallet's
    /// (a refresh never changes it).
    OtherThreshold {
        /// The wallet's threshold.
        wallet: u16,
        /// The proposal's.
        proposal: u16,
    },
    /// What the proposal asks is not supported for its curve.
    Unsupported {
        /// The wallet's curve.
        curve: Curve,
        /// What was asked.
        what: &'static str,
    },
    /// An ECDSA wallet signs with exactly its threshold of signers
    /// (DKLs23 has no other shape).
    ExactlyThreshold {
        /// How many signers are named.
        named: usize,
        /// The wallet's threshold.
        needed: u16,
    },
}

impl From<TrustError> for ProposalError {
    fn from(e: TrustError) -> Self {
        ProposalError::Key(e)
    }
}

impl std::fmt::Display for ProposalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use ProposalError as E;
        match self {
            E::InvalidSessionId(id) => write!(
                f,
                "invalid session id {id:?}: use 1-{MAX_SESSION_ID_LEN} characters of A-Z a-z 0-9 . _ -"
            ),
            E::InitiatorMismatch { from, initiator } => write!(
                f,
                "proposal sent by {from} names {initiator} as its initiator"
            ),
            E::SenderNotListed { role, from } => write!(
                f,
                "proposal from {from}, who is not among its {}s",
                role.noun()
            ),
            E::NotListed { role, me } => write!(f, "{me} is not listed as a {}", role.noun()),
            E::TotalMismatch {
                role,
                total,
                listed,
            } => write!(
                f,
                "{} is {total} but {listed} {}s are listed",
                role.total(),
                role.noun()
            ),
            E::TooMany { role, listed } => write!(
                f,
                "{listed} {}s is more than the supported {MAX_PARTICIPANTS}",
                role.noun()
            ),
            E::BadThreshold {
                role,
                threshold,
                total,
            } => write!(
                f,
                "threshold {threshold} must be between 2 and {} {total}",
                role.total()
            ),
            E::ListedTwice { role, peer } => {
                write!(f, "{} {peer} is listed twice", role.noun())
            }
            E::InvalidPeerId { role, peer, error } => {
                write!(f, "{} id {peer:?} is invalid: {error}", role.noun())
            }
            E::UnknownCurve(e) => f.write_str(e),
            E::GroupKeyNotHex => f.write_str("group_public_key is not hex"),
            E::GroupKeyLength(n) => {
                write!(f, "group_public_key has {n} bytes; expected 33 or 32")
            }
            E::MessageTooLong => write!(f, "message is longer than {MAX_SIGN_MESSAGE_LEN} bytes"),
            E::MessageNotHex => f.write_str("message_hex is not hex"),
            E::SessionIdUsed(id) => write!(f, "session id {id} is already used"),
            E::Busy(id) => write!(f, "busy with session {id}"),
            E::Key(e) => e.fmt(f),
            E::NotInWallet(peer) => write!(f, "{peer} is not a participant of this wallet"),
            E::TooFewSigners { named, needed } => {
                write!(f, "{named} signers named; this wallet needs {needed}")
            }
            E::OtherGroupKey => f.write_str("the wallet found has another group key"),
            E::OtherCurve { wallet, proposal } => {
                write!(f, "the wallet is {wallet}, the proposal {proposal}")
            }
            E::Payload(e) => write!(f, "cannot sign this transaction: {e}"),
            E::OtherGeneration { wallet, proposal } => write!(
                f,
                "this node's share is of generation {wallet}, the proposal's {proposal}: \
                 shares of different generations do not combine"
            ),
            E::TargetHelps(t) => write!(f, "{t} is the repair's target and cannot help"),
            E::AddNeedsEveryone(missing) => write!(
                f,
                "adding a participant needs every current participant as a helper, so that each \
                 learns its verifying share; missing: {}",
                missing.join(", ")
            ),
            E::OtherThreshold { wallet, proposal } => write!(
                f,
                "the wallet's threshold is {wallet}, the proposal's {proposal}: a refresh never changes it"
            ),
            E::Unsupported { curve, what } => write!(f, "{what} is not supported for {curve} wallets"),
            E::ExactlyThreshold { named, needed } => write!(
                f,
                "{named} signers named: an ECDSA wallet signs with exactly its threshold of {needed}"
            ),
        }
    }
}

/// Checks a proposal that `from` sent to `me`: the sender is its initiator
/// and a participant, `me` is listed, `total` matches, `2 <= threshold <=
/// total`, ids are unique and well formed, and the curve is known. Whether
/// the session id is unused is the node's check, since only it knows.
pub fn validate_proposal(
    p: &SessionProposal,
    from: &str,
    me: &str,
) -> Result<ValidProposal, ProposalError> {
    let v = validate_as(p, from, me, Role::Participant)?;
    if v.curve == Curve::Secp256k1Ecdsa {
        if v.threshold < 2 {
            return Err(ProposalError::Unsupported {
                curve: v.curve,
                what: "a threshold of 1",
            });
        }
        if v.participants.len() > 255 {
            return Err(ProposalError::Unsupported {
                curve: v.curve,
                what: "more than 255 participants",
            });
        }
    }
    Ok(v)
}

fn validate_as(
    p: &SessionProposal,
    from: &str,
    me: &str,
    role: Role,
) -> Result<ValidProposal, ProposalError> {
    let id_ok = !p.session_id.is_empty()
        && p.session_id.len() <= MAX_SESSION_ID_LEN
        && p.session_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !id_ok {
        return Err(ProposalError::InvalidSessionId(p.session_id.clone()));
    }
    let initiator = p.initiator.clone().unwrap_or_else(|| from.to_string());
    if initiator != from {
        return Err(ProposalError::InitiatorMismatch {
            from: from.to_string(),
            initiator,
        });
    }
    if !p.participants.iter().any(|x| x == from) {
        return Err(ProposalError::SenderNotListed {
            role,
            from: from.to_string(),
        });
    }
    if !p.participants.iter().any(|x| x == me) {
        return Err(ProposalError::NotListed {
            role,
            me: me.to_string(),
        });
    }
    let listed = p.participants.len();
    if usize::from(p.total) != listed {
        return Err(ProposalError::TotalMismatch {
            role,
            total: p.total,
            listed,
        });
    }
    if listed > MAX_PARTICIPANTS {
        return Err(ProposalError::TooMany { role, listed });
    }
    if p.threshold < 2 || p.threshold > p.total {
        return Err(ProposalError::BadThreshold {
            role,
            threshold: p.threshold,
            total: p.total,
        });
    }
    let mut sorted = p.participants.clone();
    sorted.sort();
    if let Some([a, _]) = sorted.windows(2).find(|w| w.first() == w.last()) {
        return Err(ProposalError::ListedTwice {
            role,
            peer: a.clone(),
        });
    }
    for id in &sorted {
        if let Err(error) = validate_peer_id(id) {
            return Err(ProposalError::InvalidPeerId {
                role,
                peer: id.clone(),
                error,
            });
        }
    }
    let curve = match &p.curve {
        None => Curve::Secp256k1,
        Some(c) => c.parse::<Curve>().map_err(ProposalError::UnknownCurve)?,
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
) -> Result<(ValidProposal, Vec<u8>), ProposalError> {
    let as_session = SessionProposal {
        session_id: p.session_id.clone(),
        total: u16::try_from(p.signers.len()).unwrap_or(u16::MAX),
        threshold: u16::try_from(p.signers.len()).unwrap_or(u16::MAX),
        participants: p.signers.clone(),
        curve: None,
        initiator: Some(from.to_string()),
        keys: None,
    };
    let mut v = validate_as(&as_session, from, me, Role::Signer)?;
    let key = hex::decode(&p.group_public_key).map_err(|_| ProposalError::GroupKeyNotHex)?;
    v.curve = match key.len() {
        33 if p.format.is_ethereum() => Curve::Secp256k1Ecdsa,
        33 => Curve::Secp256k1,
        32 => Curve::Ed25519,
        n => return Err(ProposalError::GroupKeyLength(n)),
    };
    if p.message_hex.len() > 2 * MAX_SIGN_MESSAGE_LEN {
        return Err(ProposalError::MessageTooLong);
    }
    let message = hex::decode(&p.message_hex).map_err(|_| ProposalError::MessageNotHex)?;
    v.proposal.curve = Some(v.curve.as_str().to_string());
    Ok((v, message))
}

/// A group key of `curve`: 33 bytes of hex for secp256k1, 32 for ed25519.
fn check_group_key(hex_key: &str, curve: Curve) -> Result<(), ProposalError> {
    let key = hex::decode(hex_key).map_err(|_| ProposalError::GroupKeyNotHex)?;
    let expected = match curve {
        Curve::Secp256k1 | Curve::Secp256k1Ecdsa => 33,
        Curve::Ed25519 => 32,
    };
    if key.len() != expected {
        return Err(ProposalError::GroupKeyLength(key.len()));
    }
    Ok(())
}

/// Checks a `refresh_proposal` as a key generation among its
/// participants (the sender its initiator, this node listed, ids well
/// formed, the threshold reachable by who remains) whose group key is of
/// its curve. Whether this node's wallet matches it is for the decision.
pub fn validate_refresh_proposal(
    p: &RefreshProposal,
    from: &str,
    me: &str,
) -> Result<ValidProposal, ProposalError> {
    let as_session = SessionProposal {
        session_id: p.session_id.clone(),
        total: u16::try_from(p.participants.len()).unwrap_or(u16::MAX),
        threshold: p.threshold,
        participants: p.participants.clone(),
        curve: Some(p.curve.clone()),
        initiator: Some(from.to_string()),
        keys: None,
    };
    let v = validate_as(&as_session, from, me, Role::Participant)?;
    check_group_key(&p.group_public_key, v.curve)?;
    no_ecdsa(v.curve, "a refresh")?;
    Ok(v)
}

/// Refresh and repair run FROST's algebra; DKLs23's own are not wired in.
fn no_ecdsa(curve: Curve, what: &'static str) -> Result<(), ProposalError> {
    if curve == Curve::Secp256k1Ecdsa {
        return Err(ProposalError::Unsupported { curve, what });
    }
    Ok(())
}

/// Checks a `repair_proposal`: a session among the helpers and the
/// target, proposed by a helper, with at least the threshold of helpers,
/// the target not one of them, and a group key of its curve.
pub fn validate_repair_proposal(
    p: &RepairProposal,
    from: &str,
    me: &str,
) -> Result<ValidProposal, ProposalError> {
    if p.helpers.contains(&p.target) {
        return Err(ProposalError::TargetHelps(p.target.clone()));
    }
    if !p.helpers.iter().any(|h| h == from) {
        return Err(ProposalError::SenderNotListed {
            role: Role::Helper,
            from: from.to_string(),
        });
    }
    if p.helpers.len() < usize::from(p.threshold) {
        return Err(ProposalError::TooFewSigners {
            named: p.helpers.len(),
            needed: p.threshold,
        });
    }
    let mut participants = p.helpers.clone();
    participants.push(p.target.clone());
    let as_session = SessionProposal {
        session_id: p.session_id.clone(),
        total: u16::try_from(participants.len()).unwrap_or(u16::MAX),
        threshold: p.threshold,
        participants,
        curve: Some(p.curve.clone()),
        initiator: Some(from.to_string()),
        keys: None,
    };
    let v = validate_as(&as_session, from, me, Role::Participant)?;
    check_group_key(&p.group_public_key, v.curve)?;
    no_ecdsa(v.curve, "a repair")?;
    Ok(v)
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
        let e = validate_proposal(&p, from, me).unwrap_err().to_string();
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
    fn errors_are_variants_and_sign_proposals_speak_of_signers() {
        let mut p = proposal();
        p.threshold = 9;
        assert!(matches!(
            validate_proposal(&p, "cli1", "cli2"),
            Err(ProposalError::BadThreshold {
                role: Role::Participant,
                threshold: 9,
                total: 3
            })
        ));
        let sign = SignProposal {
            generation: 0,
            session_id: "s2".into(),
            group_public_key: "02".repeat(33),
            message_hex: "00".into(),
            signers: vec!["cli1".into(), "cli1".into()],
            keys: None,
            format: Default::default(),
        };
        let e = validate_sign_proposal(&sign, "cli1", "cli1").unwrap_err();
        assert_eq!(
            e,
            ProposalError::ListedTwice {
                role: Role::Signer,
                peer: "cli1".into()
            }
        );
        assert_eq!(e.to_string(), "signer cli1 is listed twice");
        let mut sign = sign;
        sign.signers = vec!["cli1".into()];
        let e = validate_sign_proposal(&sign, "cli1", "cli1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "threshold 1 must be between 2 and signer count 1"
        );
    }
}
