//! A Solana transaction (a shortvec count of 64-byte signatures, then the
//! message) or a bare message, as a signer is handed it: which slot is the
//! wallet's, and the transaction with its signature put in.

use base64::Engine as _;

use super::message::{
    bad_header, write_shortvec, Message, Reader, MAX_TRANSACTION_BYTES, VERSION_PREFIX,
};
use super::SolanaError;

/// A Solana transaction or bare message, as a signer was handed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SolanaTx {
    /// One per required signer when a transaction was given (all zero
    /// bytes for a slot not signed yet); empty for a bare message.
    signatures: Vec<[u8; 64]>,
    /// The message exactly as received.
    message_bytes: Vec<u8>,
    message: Message,
}

/// Why the bytes did not read as a transaction: whether they looked like
/// one (so its error, not the bare message's, is the one to report).
struct NotTransaction {
    looked_like_one: bool,
    error: SolanaError,
}

impl SolanaTx {
    /// A serialized transaction (as `solana ... --sign-only` and dApps give
    /// it, base64-decoded) or a bare message (`--dump-transaction-message`).
    ///
    /// The transaction layout is tried first: a shortvec count n ≥ 1, n
    /// signatures of 64 bytes, then a message that ends where the bytes do
    /// and requires exactly n signatures. Anything else must be a bare
    /// message. Either way what is signed (the message) is what is reviewed,
    /// so bytes that happened to read both ways could not make the wallet
    /// sign something other than it showed.
    ///
    /// At most [`MAX_TRANSACTION_BYTES`], counting for a bare message the
    /// signature slots the signed transaction will need.
    pub fn from_bytes(b: &[u8]) -> Result<SolanaTx, SolanaError> {
        if b.len() > MAX_TRANSACTION_BYTES {
            return Err(SolanaError::TooLarge {
                bytes: b.len(),
                max: MAX_TRANSACTION_BYTES,
            });
        }
        let not_tx = match Self::transaction(b) {
            Ok(tx) => return Ok(tx),
            Err(e) => e,
        };
        let message = match Message::decode(b) {
            Ok(m) => m,
            Err(_) if not_tx.looked_like_one => return Err(not_tx.error),
            Err(e) => return Err(e),
        };
        let tx = SolanaTx {
            signatures: Vec::new(),
            message_bytes: b.to_vec(),
            message,
        };
        let signed = tx.signed_len();
        if signed > MAX_TRANSACTION_BYTES {
            return Err(SolanaError::TooLarge {
                bytes: signed,
                max: MAX_TRANSACTION_BYTES,
            });
        }
        Ok(tx)
    }

    fn transaction(b: &[u8]) -> Result<SolanaTx, NotTransaction> {
        let not = |error| NotTransaction {
            looked_like_one: false,
            error,
        };
        let mut r = Reader::new(b);
        let n = r.shortvec().map_err(not)?;
        if n == 0 {
            return Err(not(bad_header("no signatures")));
        }
        let sigs = r
            .bytes(
                n.checked_mul(64)
                    .ok_or(SolanaError::Truncated)
                    .map_err(not)?,
            )
            .map_err(not)?;
        let rest = r.rest;
        // After the signatures, a header requiring n of them (behind the
        // version byte for a versioned message).
        let required = match rest {
            [p, required, ..] if p & VERSION_PREFIX != 0 => Some(*required),
            [required, ..] => Some(*required),
            [] => None,
        };
        let looked_like_one = required.map(usize::from) == Some(n);
        let message = Message::decode(rest).map_err(|error| NotTransaction {
            looked_like_one,
            error,
        })?;
        if message.num_signers() != n {
            return Err(not(bad_header(format!(
                "{n} signatures for {} signers",
                message.num_signers()
            ))));
        }
        let signatures = sigs
            .chunks_exact(64)
            .map(|s| s.try_into().map_err(|_| not(SolanaError::Truncated)))
            .collect::<Result<Vec<[u8; 64]>, _>>()?;
        Ok(SolanaTx {
            signatures,
            message_bytes: rest.to_vec(),
            message,
        })
    }

    /// [`SolanaTx::from_bytes`] of base64 (standard alphabet, padded),
    /// ignoring ASCII whitespace around it.
    pub fn from_base64(s: &str) -> Result<SolanaTx, SolanaError> {
        let s = s.trim_matches(|c: char| c.is_ascii_whitespace());
        // Refused before decoding, so a huge string is never decoded.
        let decoded_len = s.len() / 4 * 3;
        if decoded_len > MAX_TRANSACTION_BYTES + 3 {
            return Err(SolanaError::TooLarge {
                bytes: decoded_len,
                max: MAX_TRANSACTION_BYTES,
            });
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|_| SolanaError::NotBase64)?;
        SolanaTx::from_bytes(&bytes)
    }

    /// The bytes as received: the transaction, or the bare message.
    pub fn to_bytes(&self) -> Vec<u8> {
        if self.signatures.is_empty() {
            self.message_bytes.clone()
        } else {
            encode_transaction(&self.signatures, &self.message_bytes)
        }
    }

    /// Whether a whole transaction was given (else a bare message).
    pub fn is_transaction(&self) -> bool {
        !self.signatures.is_empty()
    }

    /// The signature slots as received, one per required signer; empty for
    /// a bare message.
    pub fn signatures(&self) -> &[[u8; 64]] {
        &self.signatures
    }

    /// What ed25519 signs: the message, exactly as received.
    pub fn message_bytes(&self) -> &[u8] {
        &self.message_bytes
    }

    /// The signature slot of `key`: its position among the first
    /// `num_required_signatures` static account keys.
    pub fn signer_index(&self, key: &[u8; 32]) -> Option<usize> {
        self.message
            .account_keys
            .iter()
            .take(self.message.num_signers())
            .position(|k| k == key)
    }

    /// The serialized transaction with `signature` in slot `index`: the
    /// other slots as received, or all zero (unsigned) for a bare message.
    pub fn with_signature(
        &self,
        index: usize,
        signature: &[u8; 64],
    ) -> Result<Vec<u8>, SolanaError> {
        let mut signatures = if self.signatures.is_empty() {
            vec![[0u8; 64]; self.message.num_signers()]
        } else {
            self.signatures.clone()
        };
        let slot = signatures
            .get_mut(index)
            .ok_or(SolanaError::BadSignerIndex)?;
        *slot = *signature;
        Ok(encode_transaction(&signatures, &self.message_bytes))
    }

    pub(crate) fn message(&self) -> &Message {
        &self.message
    }

    /// The length of the transaction once signed.
    fn signed_len(&self) -> usize {
        let n = self.message.num_signers();
        let mut count = Vec::with_capacity(3);
        write_shortvec(&mut count, n);
        count.len() + 64 * n + self.message_bytes.len()
    }
}

fn encode_transaction(signatures: &[[u8; 64]], message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(3 + 64 * signatures.len() + message.len());
    write_shortvec(&mut out, signatures.len());
    for s in signatures {
        out.extend_from_slice(s);
    }
    out.extend_from_slice(message);
    out
}
