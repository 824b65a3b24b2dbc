#![doc = include_str!("../README.md")]
// Never panic on peer input: the compiler checks it outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        missing_docs
    )
)]
pub mod describe;
mod dkg;
mod ecdsa;
pub mod mesh;
pub mod node;
pub mod payload;
mod repair;
mod roster;
pub mod session;
mod sign;
// The simulator indexes its own tables of nodes; it never sees a peer.
#[allow(clippy::indexing_slicing, clippy::expect_used, clippy::unwrap_used)]
pub mod sim;
/// Fixed test identities: for tests only, never in a wallet build.
#[cfg(feature = "faults")]
pub mod testing;
mod trust;
pub mod wallet;

pub use mpc_identity::{IdentityKey, KnownPeers, PublicKey};
pub use node::{Action, Command, Config, Event, Node, Progress};
pub use session::{
    validate_proposal, validate_refresh_proposal, validate_repair_proposal, validate_sign_proposal,
    AbortReason, Phase, ProposalError, Role, SessionKind, ValidProposal, Violation,
};
pub use trust::{NewKey, TrustError};
pub use wallet::{
    KeyPackage, PublicKeyPackage, SecretKeyPackage, SignatureResult, SigningWallet, WalletResult,
};

#[cfg(feature = "faults")]
pub use dkg::Misbehaviour;
