//! Session rules that are pure functions of what peers send: what makes a
//! proposal acceptable (`validate`), and every reason a session can end
//! without its result (`abort`).
//!
//! The server keeps no session state, so each node checks every proposal
//! itself.

mod abort;
mod validate;

pub use abort::{AbortReason, Violation};
pub use validate::{
    validate_proposal, validate_refresh_proposal, validate_repair_proposal, validate_sign_proposal,
    ProposalError, Role,
};

use mpc_protocol::peer::{Curve, SessionProposal};

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
    /// The session id, checked well formed.
    pub session_id: String,
    /// The curve, secp256k1 where the proposal names none.
    pub curve: Curve,
    /// How many participants it takes to sign.
    pub threshold: u16,
    /// The proposing peer, who is also a participant.
    pub initiator: String,
    /// Sorted: FROST identifier `i` is `participants[i - 1]`.
    pub participants: Vec<String>,
    /// The proposal as received, for the user to look at.
    pub proposal: SessionProposal,
}

/// The kind of session a proposal opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionKind {
    /// A distributed key generation: a new wallet.
    Keygen,
    /// A threshold signature with an existing wallet.
    Sign,
    /// New shares of an existing wallet's key.
    Refresh,
    /// A lost share rebuilt by helpers.
    Repair,
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
    /// A refresh's rounds, the `ready` agreement and `refresh_committed`.
    Refresh,
    /// A repair's keys, deltas and sigmas, and the target's check.
    Repair,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Negotiation => "negotiation",
            Phase::Mesh => "mesh",
            Phase::Dkg => "dkg",
            Phase::Signing => "signing",
            Phase::Refresh => "refresh",
            Phase::Repair => "repair",
        })
    }
}
