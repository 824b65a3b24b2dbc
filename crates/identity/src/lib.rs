//! Who a node is, and how it proves it.
//!
//! | module          | owns |
//! |-----------------|------|
//! | [`key`]         | the long-term Ed25519 identity key, its public half and fingerprint |
//! | [`statement`]   | every byte string an identity key signs, each under its own domain tag |
//! | [`known_peers`] | the address book of pinned keys (trust on first use, like `known_hosts`) |
//! | [`sealed`]      | end-to-end encryption of DKG shares (X25519 + XChaCha20-Poly1305) |
//!
//! No I/O: the CLI keeps the key and the address book in its keystore
//! directory, the extension in `chrome.storage`.
//!
//! ```
//! use mpc_identity::{IdentityKey, statement};
//!
//! let alice = IdentityKey::from_seed([7; 32]);
//! let sig = alice.sign(&statement::register(b"challenge", "alice"));
//! alice
//!     .public_key()
//!     .verify(&statement::register(b"challenge", "alice"), &sig)
//!     .unwrap();
//! // The same signature says nothing about another peer id.
//! assert!(alice
//!     .public_key()
//!     .verify(&statement::register(b"challenge", "mallory"), &sig)
//!     .is_err());
//! ```

pub mod key;
pub mod known_peers;
pub mod sealed;
pub mod statement;

pub use key::{IdentityKey, PublicKey, Signature};
pub use known_peers::{KnownPeers, Trust};

/// Why a key, signature or ciphertext was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("not a valid hex-encoded Ed25519 public key")]
    BadPublicKey,
    #[error("not a valid hex-encoded 64-byte signature")]
    BadSignatureEncoding,
    #[error("signature does not verify")]
    BadSignature,
    #[error("not a valid X25519 public key")]
    BadEncryptionKey,
    #[error("ciphertext does not decrypt (wrong key, or tampered)")]
    Decrypt,
    #[error("{0}")]
    Parse(String),
}
