//! One file per phase of a session. Negotiation and mesh are shared by
//! every kind; then each kind has its own rounds (`dkg`, `signing`,
//! `refresh`, which reuses key generation's); `ecdsa` moves DKLs23's rounds
//! for the key generation and signing of Ethereum wallets. A new
//! kind of session is a new [`Kind`](super::session::Kind) variant and a
//! new file here.

pub(super) mod dkg;
pub(super) mod ecdsa;
pub(super) mod mesh;
pub(super) mod negotiation;
pub(super) mod refresh;
pub(super) mod repair;
pub(super) mod signing;
