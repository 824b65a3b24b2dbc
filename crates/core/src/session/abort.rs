//! Every reason a session can end without its result, and how a peer
//! broke the protocol.

use super::{Phase, ProposalError, SessionKind};

/// How a peer broke the protocol. `Display` is the detail shown after
/// "protocol violation by {peer}: ".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// A peer sent a secret share through the relay, not its data channel.
    SecretShareViaRelay,
    /// A share not sealed with the session's encryption scheme.
    PlaintextShare,
    /// A peer announced two different share encryption keys.
    TwoEncryptionKeys,
    /// A peer's `ready` has no transcript hash.
    ReadyWithoutHash,
    /// A peer sent two different `ready` messages.
    TwoReadies,
    /// `wallet_created` with another group key than ours.
    OtherGroupKey,
    /// `refresh_committed` naming another wallet or generation than ours.
    OtherCommit,
    /// `signature_created` with another signature than ours.
    OtherSignature,
    /// A peer sent two different messages for one ECDSA round.
    TwoRoundMessages,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Violation::SecretShareViaRelay => f.write_str("sent a secret share through the relay"),
            Violation::PlaintextShare => write!(
                f,
                "sent a share that is not encrypted with {}",
                mpc_identity::sealed::SCHEME
            ),
            Violation::TwoEncryptionKeys => f.write_str("sent two different share encryption keys"),
            Violation::ReadyWithoutHash => f.write_str("ready without a transcript_hash"),
            Violation::TwoReadies => f.write_str("sent two different ready messages"),
            Violation::OtherGroupKey => f.write_str("wallet_created names another group key"),
            Violation::OtherCommit => {
                f.write_str("refresh_committed names another wallet or generation")
            }
            Violation::OtherSignature => f.write_str("signature_created names another signature"),
            Violation::TwoRoundMessages => f.write_str("sent two different messages for one round"),
        }
    }
}

/// Why a session ended without a wallet. `Display` is the text sent in
/// `session_abort` and shown to users; it names the peer to blame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AbortReason {
    /// A participant (possibly this node) declined the proposal.
    Declined {
        /// The participant who declined.
        peer: String,
        /// The reason it gave, if any.
        reason: Option<String>,
    },
    /// A phase took longer than the configured timeout.
    Timeout {
        /// The phase that took too long.
        phase: Phase,
        /// The peers this node was still waiting for.
        waiting_for: Vec<String>,
    },
    /// A data channel closed before the wallet was stored.
    ChannelClosed {
        /// The peer whose channel closed.
        peer: String,
    },
    /// A peer's round-1 package is malformed or its proof is invalid.
    InvalidCommitment {
        /// The peer that sent it.
        peer: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A peer's round-2 share is malformed or fails verification.
    InvalidShare {
        /// The peer that sent it.
        peer: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A signer's FROST signature share is malformed or fails verification.
    InvalidSignatureShare {
        /// The signer that sent it.
        peer: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A peer's message in a DKLs23 (ECDSA) round is malformed,
    /// misaddressed, or fails one of the protocol's checks.
    InvalidRound {
        /// The peer that sent it.
        peer: String,
        /// The round (0 is the encryption key).
        round: u8,
        /// What is wrong with it.
        detail: String,
    },
    /// A signer's share was made over another signing package than this
    /// node's: some signer sent different commitments to different
    /// signers. Nobody is blamed, since no message this node holds shows
    /// who.
    SigningPackageMismatch {
        /// The signer whose package differs.
        peer: String,
    },
    /// A signer's data channel closed before the signature was complete.
    SignerLeft {
        /// The signer who left.
        peer: String,
    },
    /// `ready` hashes differ: someone saw other commitments than we did.
    /// `suspects` are the participants whose round-1 package differs
    /// between our view and what a peer's `ready` claims. A claim is no
    /// evidence (the peer may lie), so this blames nobody.
    TranscriptMismatch {
        /// The peers whose `ready` hash differs from ours.
        mismatched: Vec<String>,
        /// The participants whose commitments differ between the views.
        suspects: Vec<String>,
    },
    /// A peer broke the protocol in a way that makes the session unsafe.
    ProtocolViolation {
        /// The peer that broke it.
        peer: String,
        /// What it did.
        violation: Violation,
    },
    /// Signaling for the connection with `peer` was tampered with: its
    /// SDP's DTLS fingerprint is not signed by `peer`'s identity key.
    PossibleMitm {
        /// The peer whose signaling was tampered with.
        peer: String,
        /// What failed to verify.
        detail: String,
    },
    /// A peer sent `session_abort`.
    PeerAborted {
        /// The peer that aborted.
        peer: String,
        /// The reason it sent.
        reason: String,
    },
    /// The local user cancelled.
    Cancelled,
    /// This node cannot start the session it was asked to propose.
    CannotStart {
        /// The kind of session asked for.
        kind: SessionKind,
        /// Why it cannot start.
        error: ProposalError,
    },
    /// The server never sent the peer list a proposal waits for.
    NoPeerList,
    /// A proposal already waits for the peer list.
    BusyParked {
        /// The session that waits.
        session_id: String,
    },
    /// A participant answered another proposal for this session than the
    /// one this node got: the proposer sent them different ones.
    ProposalsDiffer {
        /// Who proposed, and is blamed.
        proposer: String,
        /// Who answered the other proposal.
        peer: String,
    },
    /// Repair: these helpers sent the target another wallet (public key
    /// package, participants or generation) than the one its rebuilt share
    /// belongs to.
    HelpersLied {
        /// The helpers whose wallet data is wrong.
        helpers: Vec<String>,
    },
    /// Repair: the rebuilt share matches no helper's public key package: a
    /// helper sent a wrong delta or sigma (which one can't be told).
    RepairMismatch,
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
            | AbortReason::InvalidRound { peer, .. }
            | AbortReason::SignerLeft { peer }
            | AbortReason::ProtocolViolation { peer, .. } => Some(peer),
            AbortReason::ProposalsDiffer { proposer, .. } => Some(proposer),
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
            AbortReason::HelpersLied { helpers } => write!(
                f,
                "{} sent another wallet's public data than the one the rebuilt share belongs to",
                helpers.join(", ")
            ),
            AbortReason::RepairMismatch => f.write_str(
                "the rebuilt share matches no helper's public key package: a helper sent a wrong delta or sigma",
            ),
            AbortReason::ProposalsDiffer { proposer, peer } => write!(
                f,
                "{proposer} sent {peer} another proposal for this session than this \
                 node (or {peer} misreports it): refusing to sign either"
            ),
            AbortReason::InvalidCommitment { peer, detail } => {
                write!(f, "invalid commitment from {peer}: {detail}")
            }
            AbortReason::InvalidShare { peer, detail } => {
                write!(f, "invalid share from {peer}: {detail}")
            }
            AbortReason::InvalidSignatureShare { peer, detail } => {
                write!(f, "invalid signature share from {peer}: {detail}")
            }
            AbortReason::InvalidRound {
                peer,
                round,
                detail,
            } => write!(f, "invalid round-{round} message from {peer}: {detail}"),
            AbortReason::SigningPackageMismatch { peer } => write!(
                f,
                "{peer} signed over other signing commitments than this node: \
                 a signer sent different commitments to different signers \
                 (nobody is blamed without evidence)"
            ),
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
                    "transcript mismatch with {}; commitments differ for {}{}",
                    mismatched.join(", "),
                    if suspects.is_empty() {
                        "nobody (parameters or group key differ)".to_string()
                    } else {
                        suspects.join(", ")
                    },
                    if suspects.is_empty() {
                        ""
                    } else {
                        " by that peer's unverified claim"
                    }
                )
            }
            AbortReason::ProtocolViolation { peer, violation } => {
                write!(f, "protocol violation by {peer}: {violation}")
            }
            AbortReason::PossibleMitm { peer, detail } => write!(
                f,
                "possible man-in-the-middle on the connection with {peer}: {detail}"
            ),
            AbortReason::PeerAborted { peer, reason } => write!(f, "{peer} aborted: {reason}"),
            AbortReason::Cancelled => f.write_str("cancelled by the user"),
            AbortReason::CannotStart { kind, error } => {
                let what = match kind {
                    SessionKind::Keygen => "create session",
                    SessionKind::Sign => "start signing",
                    SessionKind::Refresh => "start the refresh",
                    SessionKind::Repair => "start the repair",
                };
                write!(f, "internal error: cannot {what}: {error}")
            }
            AbortReason::NoPeerList => f.write_str(
                "internal error: the signaling server never sent the peer list with identity keys",
            ),
            AbortReason::BusyParked { session_id } => write!(
                f,
                "internal error: busy: session {session_id} waits for the peer list"
            ),
            AbortReason::Internal(e) => write!(f, "internal error: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
