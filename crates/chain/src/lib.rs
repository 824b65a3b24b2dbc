//! What a threshold wallet signs on a chain, decoded by each co-signer
//! itself, so the group never signs bytes it was only told the meaning of.
//!
//! * [`bitcoin`]: PSBTs (BIP174 v0) and BIP341 Taproot key-path sighashes.
//! * [`ethereum`]: EIP-1559 transactions from JSON-RPC objects, their
//!   signing hash and review, EIP-191 message hashes, EIP-55 addresses.
//! * [`solana`]: legacy and v0 transactions and messages (what ed25519
//!   signs), their instructions decoded; System transfer messages built.
//!
//! Pure Rust: it builds for wasm32, where the browser extension runs it.

// Never panic on a PSBT or a transaction from outside: the compiler
// checks it outside tests.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

pub mod bitcoin;
pub mod ethereum;
pub mod solana;
