//! What a threshold wallet signs on a chain, decoded by each co-signer
//! itself, so the group never signs bytes it was only told the meaning of.
//!
//! * [`bitcoin`]: PSBTs (BIP174 v0) and BIP341 Taproot key-path sighashes.
//!
//! Pure Rust: it builds for wasm32, where the browser extension runs it.

// Never panic on a PSBT from outside: the compiler checks it outside tests.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

pub mod bitcoin;
