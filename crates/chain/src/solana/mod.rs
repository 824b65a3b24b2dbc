//! What an ed25519 wallet signs on Solana, decoded by the signer itself.
//!
//! A Solana signature covers the transaction's *message* (header, account
//! keys, recent blockhash, instructions, and for v0 the address table
//! lookups), nothing else. A co-signer is handed either a whole serialized
//! transaction (signature slots, then the message: what `--sign-only` and
//! dApps give) or the bare message (`--dump-transaction-message`). It
//! trusts none of it: [`SolanaTx`] parses it strictly (the runtime's own
//! sanitize rules, bounded by the 1232-byte packet size), and [`plan`]
//! derives from it alone whether the wallet is a required signer, in which
//! slot, and the [`SolanaReview`] a person approves before the group signs.
//! [`SolanaTx::with_signature`] puts the group's signature in that slot.
//!
//! * `message`: the wire format: compact-u16 lengths, legacy and v0
//!   messages, transactions; the message bytes kept exactly as received.
//! * `review`: what the signer is shown, and the warnings.
//! * `programs`: System, SPL Token and compute budget instructions
//!   decoded; anything else is named and warned about.
//! * `build`: a System transfer message, account for account what the
//!   Solana SDK's `Message::new` compiles.
//!
//! No solana-sdk: it is large and does not fit wasm32, where the browser
//! extension runs this. Signatures are not checked here: the group that
//! makes them already verifies them against the group key.

mod build;
mod message;
mod programs;
mod review;
mod transaction;

pub use build::transfer_message;
pub use message::MAX_TRANSACTION_BYTES;
pub use review::{plan, InstructionReview, SolanaPlan, SolanaReview, SolanaWarning};
pub use transaction::SolanaTx;

/// Why a Solana transaction or message is refused, or can't be signed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SolanaError {
    #[error("Solana transaction is not valid base64")]
    NotBase64,
    #[error("Solana transaction has {bytes} bytes; at most {max} fit in a packet")]
    TooLarge { bytes: usize, max: usize },
    #[error("Solana transaction ends in the middle of a field")]
    Truncated,
    #[error("Solana transaction has bytes after its message")]
    TrailingBytes,
    #[error("Solana transaction has an invalid compact-u16 length")]
    BadShortVec,
    #[error("Solana message version {0} is not supported (only legacy and v0)")]
    UnsupportedVersion(u8),
    #[error("Solana message is invalid: {0}")]
    BadHeader(String),
    #[error("Solana instruction {index} is invalid: {detail}")]
    BadInstruction { index: usize, detail: String },
    #[error("this wallet is not one of the transaction's required signers")]
    NotASigner,
    #[error("no such signer slot in this transaction")]
    BadSignerIndex,
    #[error("bad Solana address: {0}")]
    BadAddress(String),
}

/// The longest base58 text of 32 bytes (all 0xff).
const MAX_ADDRESS_CHARS: usize = 44;

/// A base58 Solana address (an ed25519 public key or any other account) as
/// its 32 bytes.
pub fn decode_address(s: &str) -> Result<[u8; 32], SolanaError> {
    // Refused before decoding: base58 decoding is quadratic in the length.
    if s.len() > MAX_ADDRESS_CHARS {
        return Err(SolanaError::BadAddress(format!(
            "{} characters; an address has at most {MAX_ADDRESS_CHARS}",
            s.len()
        )));
    }
    let bytes = bs58::decode(s)
        .into_vec()
        .map_err(|_| SolanaError::BadAddress(format!("{s:?} is not base58")))?;
    let n = bytes.len();
    bytes
        .try_into()
        .map_err(|_| SolanaError::BadAddress(format!("{s:?} is {n} bytes, not 32")))
}

/// An address as people write it.
fn base58(key: &[u8; 32]) -> String {
    bs58::encode(key).into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_32_bytes_of_base58() {
        assert_eq!(
            decode_address("11111111111111111111111111111111"),
            Ok([0; 32])
        );
        let key = [0xff; 32];
        let s = base58(&key);
        assert_eq!(s.len(), MAX_ADDRESS_CHARS);
        assert_eq!(decode_address(&s), Ok(key));
        for bad in ["", "0OIl", "1111", &format!("{s}1"), &"1".repeat(33)] {
            assert!(
                matches!(decode_address(bad), Err(SolanaError::BadAddress(_))),
                "{bad:?}"
            );
        }
    }
}
