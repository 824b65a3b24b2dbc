//! What a Bitcoin wallet signs, decoded by the signer itself.
//!
//! A co-signer is handed a PSBT (BIP174, version 0) by whoever built the
//! transaction. It trusts none of it: [`Psbt`] parses it strictly (bounded
//! lengths, no duplicate keys, the unsigned transaction without scripts),
//! and [`plan`] derives from it alone which inputs pay the wallet's Taproot
//! output key, the BIP341 key-path sighash of each, and the [`Review`] a
//! person approves before the group signs. [`Psbt::finalize_key_path`] and
//! [`Psbt::extract_tx`] turn the group's signatures into the transaction to
//! broadcast.
//!
//! * [`psbt`](Psbt): the key-value maps, kept byte for byte, so a PSBT this
//!   module did not change serializes to the bytes it was read from;
//!   `psbt/finalize`: key-path finalizing and extracting the transaction.
//! * `tx`: consensus encoding of transactions, txid, virtual size.
//! * `sighash`: BIP341 signature messages for key-path spends.
//! * `review`: what the signer is shown, and the fee policy.
//!
//! Pure Rust (sha2, no libsecp256k1), so the browser extension runs the
//! same code as wasm32. Signatures are not checked here: the group that
//! makes them already verifies them against the group key.

mod psbt;
mod review;
mod sighash;
mod tx;

pub use mpc_address::Network;
pub use psbt::Psbt;
pub use review::{plan, InputReview, OutputReview, Plan, Policy, Review, ToSign, Warning};

/// Why a PSBT is refused, or can't be signed or finished.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PsbtError {
    #[error("PSBT is not valid base64")]
    NotBase64,
    #[error("not a PSBT (missing the \"psbt\\xff\" magic)")]
    BadMagic,
    #[error("PSBT ends in the middle of a value")]
    Truncated,
    #[error("PSBT has {bytes} bytes; at most {max} are accepted")]
    TooLarge { bytes: usize, max: usize },
    #[error("{map} has key {key} twice")]
    DuplicateKey { map: String, key: String },
    #[error("PSBT has no unsigned transaction")]
    MissingUnsignedTx,
    #[error("PSBT version {0} is not supported (only version 0)")]
    UnsupportedVersion(u32),
    #[error("PSBT's unsigned transaction is invalid: {0}")]
    BadUnsignedTx(String),
    #[error("PSBT's unsigned transaction has a scriptSig or witness")]
    UnsignedTxHasScripts,
    #[error("PSBT has {maps} {what} maps but its transaction has {tx} {what}")]
    CountMismatch {
        maps: usize,
        tx: usize,
        what: &'static str,
    },
    #[error("{map} has an invalid {field}")]
    BadField { map: String, field: &'static str },
    #[error(
        "input {input} does not say which output it spends (no witness_utxo or non_witness_utxo)"
    )]
    MissingUtxo { input: usize },
    #[error("input {input}'s UTXO does not match the output it spends")]
    UtxoMismatch { input: usize },
    #[error("input {input} asks for sighash type {value:#x}, which Taproot does not have")]
    UnknownSighash { input: usize, value: u32 },
    #[error("input {input} uses SIGHASH_SINGLE but there is no output {input}")]
    SighashSingleWithoutOutput { input: usize },
    #[error("no input of this PSBT pays this wallet's key")]
    NothingToSign,
    #[error(
        "bad signature for input {input} (wrong length for its sighash type, or no such input)"
    )]
    BadSignature { input: usize },
    #[error("inputs {inputs:?} are not finalized")]
    NotFinal { inputs: Vec<usize> },
}
