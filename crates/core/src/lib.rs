//! The sans-IO core of an mpc-wallet node, shared by the CLI and the
//! browser extension.
//!
//! A [`Node`] takes [`Event`]s and returns [`Action`]s. It opens no socket,
//! starts no task and reads no clock: the driver (tokio + WebRTC in the CLI,
//! JavaScript in the extension, or the [`sim`]ulator) moves bytes and time,
//! and every decision lives here, so a bug seen in a browser can be replayed
//! in the simulator.
//!
//! | module      | owns |
//! |-------------|------|
//! | [`node`]    | the state machine: routing, buffering, timeouts, aborts |
//! | [`session`] | proposal validation and abort reasons |
//! | [`mesh`]    | who offers, open channels, `mesh_ready` |
//! | `dkg`       | FROST DKG rounds (generic over the ciphersuite) and the transcript hash |
//! | `trust`     | identity keys: signing, verifying, pinning (see `docs/security.md`) |
//! | [`wallet`]  | the result handed to the keystore, secrets redacted |
//! | [`sim`]     | a deterministic in-memory network of nodes |
//!
//! # Event/action model
//!
//! ```
//! use mpc_core::{testing, Action, Command, Config, Event, Node};
//! use mpc_protocol::peer::Curve;
//! use mpc_protocol::signal::{ClientMessage, ServerMessage};
//!
//! let mut alice = Node::new(Config::new("alice"), [1; 32], 0);
//! let participants = vec!["alice".to_string(), "bob".into(), "carol".into()];
//! let actions = alice.handle(Event::Command(Command::Create {
//!     session_id: Some("s1".into()),
//!     participants: participants.clone(),
//!     threshold: 2,
//!     curve: Curve::Secp256k1,
//! }));
//! // First the participants' identity keys, fresh from the server...
//! assert!(matches!(
//!     &actions[..],
//!     [Action::SendSignal(ClientMessage::ListPeers { keys: true, .. })]
//! ));
//! let mut keys = testing::keys(&participants, &[]);
//! keys.insert("alice".into(), alice.public_key().to_hex());
//! let actions = alice.handle(Event::Signal(ServerMessage::Peers {
//!     peers: participants.clone(),
//!     keys: Some(keys),
//! }));
//! // ...then bob's and carol's (new) keys are pinned, and each gets a
//! // signed session_proposal through the relay.
//! let pinned = actions.iter().filter(|a| matches!(a, Action::PinKey { .. })).count();
//! let relayed = actions.iter().filter(|a| matches!(a, Action::SendSignal(_))).count();
//! assert_eq!((pinned, relayed), (2, 2));
//!
//! // Time only moves when the driver says so; 60 s later the session,
//! // still unanswered, aborts and names who never answered.
//! let actions = alice.handle(Event::Tick(60_000));
//! let aborted = actions.iter().find_map(|a| match a {
//!     Action::Aborted { reason, .. } => Some(reason.to_string()),
//!     _ => None,
//! });
//! assert_eq!(aborted.as_deref(), Some("timed out in negotiation phase waiting for bob, carol"));
//! ```
//!
//! # Message paths
//!
//! `session_proposal`, `session_response` and (before any channel exists)
//! `session_abort` go through the signaling relay. `channel_open`,
//! `mesh_ready`, `commitment`, `share`, `ready` and `wallet_created` go over
//! data channels only; a share that arrives through the relay aborts the
//! session, because the server has seen it.
//!
//! # Who says `session_abort`
//!
//! During negotiation only the initiator broadcasts an abort (everyone else
//! learns of a decline from the decline itself, which goes to all). From the
//! mesh phase on, every node that aborts tells every other participant,
//! also when it was told itself: its `session_abort` then reaches each peer
//! on the data channel ahead of that channel's closing, so a node that
//! leaves after an abort is never blamed for leaving. A session ends once,
//! so nothing echoes.

pub mod describe;
mod dkg;
pub mod mesh;
pub mod node;
mod roster;
pub mod session;
mod sign;
pub mod sim;
/// Fixed test identities: for tests only, never in a wallet build.
#[cfg(feature = "faults")]
pub mod testing;
mod trust;
pub mod wallet;

pub use mpc_identity::{IdentityKey, KnownPeers, PublicKey};
pub use node::{Action, Command, Config, Event, Node, Progress};
pub use session::{
    validate_proposal, validate_sign_proposal, AbortReason, Phase, ProposalError, Role,
    SessionKind, ValidProposal, Violation,
};
pub use trust::{NewKey, TrustError};
pub use wallet::{
    KeyPackage, PublicKeyPackage, SecretKeyPackage, SignatureResult, SigningWallet, WalletResult,
};

#[cfg(feature = "faults")]
pub use dkg::Misbehaviour;
